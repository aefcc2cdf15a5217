"""The benchmark harness behind `gpubk bench`, installed as `gpubk.bench`.

`harness.py` times every available implementation of each case in one process and reports
time, throughput and the fraction of the machine's own measured ceilings; `cases.py` holds the
cases, one small function each; `formulas.py` the naive formulas the peers are written with.
"""

from .harness import Context, case

__all__ = ["Context", "case"]
