"""Fused kernels: one loop computing a group of elementwise primitives (any DAG of them),
optionally ending in a reduction of each row, generated from the members' scalar formulas
(`formulas.py`). `gpubk/fuse.py` finds the groups in a K.function's plan; this module only
turns a `Pattern` into code: for the CPU here (`cpu_kernel`), for CUDA and the simulator in
`cuda/fused.py`, both from one body (`body`).

The output is seen as `rows x cols` (C order; `cols` = the last axis of a reduction). Each input
is one of four kinds, so that broadcasting needs no copy:
  "a"  every element: a flat C-contiguous array of rows * cols values
  "r"  one row, the same for every row: `cols` values (a bias, a row vector)
  "c"  one column: `rows` values, each repeated along its row (a per-sample value)
  "s"  one value for every element: a one-element array (on the device: no host read)
Inputs are converted to the work dtype when loaded (float16 and float32 work in float32,
float64 in float64: the precision rules of every kernel), so a float16 or integer input may
feed a float32 group exactly as NumPy's promotion would convert it.

Calling convention of a generated kernel: `kernel(out, rows, cols, *inputs)`; `out` is flat:
rows * cols values, or `rows` values for a reduction ("sum", "mean", "max", "min" of the last
member along each row; the CPU accumulates float32 sums in float64).

Generated CPU loops are written to files under `cache_dir()` and compiled with Numba's on-disk
cache: a pattern compiles once per machine, not once per process.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import pathlib
import sys
import types
import uuid

from . import formulas, generate

KINDS = ("a", "r", "c", "s")
REDUCTIONS = ("sum", "mean", "max", "min")

# Part of each pattern's name, so that an edit renames (Numba's cache sees only the generated
# file): this generator, and what a loop inlines without naming it (fastmath's exp, log and
# tanh, `like`, the formulas' helpers).
_THIS_FILE = hashlib.sha256(b"".join(
    pathlib.Path(__file__).with_name(name).read_bytes()
    for name in ("fused.py", "fastmath.py", "precision.py", "formulas.py"))).hexdigest()



@dataclasses.dataclass(frozen=True)
class Pattern:
    """What a fused kernel computes, independent of the graph it came from: equal patterns
    share one kernel.

    dtype:  the members' dtype (the output's), "float16", "float32" or "float64"
    inputs: per input, (kind, dtype name); kind one of KINDS
    ops:    per member, in order, (primitive name, args, params): each arg is "x<i>" (input i)
            or "t<n>" (member n's value); params are the member's constant floats and flags
            (an activation's `params`), passed after its args
    reduce: None, or one of REDUCTIONS applied to the last member along each row
    """

    dtype: str
    inputs: tuple
    ops: tuple
    reduce: str | None = None

    def __post_init__(self):
        if self.dtype not in ("float16", "float32", "float64"):
            raise ValueError(f"fused: pattern dtype {self.dtype!r}; expected a float dtype")
        for kind, _ in self.inputs:
            if kind not in KINDS:
                raise ValueError(f"fused: input kind {kind!r}; expected one of {KINDS}")
        if self.reduce not in (None, *REDUCTIONS):
            raise ValueError(f"fused: reduction {self.reduce!r}; expected one of {REDUCTIONS}")
        for name, args, _ in self.ops:
            if name not in formulas.SCALAR:
                raise ValueError(f"fused: {name!r} has no scalar formula")
            for arg in args:
                if not (arg[:1] in "xt" and arg[1:].isdigit()):
                    raise ValueError(f"fused: argument {arg!r}; expected x<i> or t<n>")

    @property
    def work_dtype(self) -> str:
        """The dtype the kernel computes in (float16 works in float32)."""
        return "float32" if self.dtype == "float16" else self.dtype

    @property
    def broadcasts(self) -> bool:
        """Whether an input is a row or a column (the loop needs the row and column index)."""
        return any(kind in "rc" for kind, _ in self.inputs)

    @functools.cached_property
    def name(self) -> str:
        """A stable name: the same pattern is named alike in every process and on every
        machine; an edited formula or generator gives a new one."""
        digest = hashlib.sha256(repr(self).encode())
        for name, _, _ in self.ops:
            digest.update(generate.fingerprint(formulas.SCALAR[name]).encode())
        digest.update(f"{_THIS_FILE} {generate.identity(formulas.SCALAR['add'], 'cpu')}"
                      .encode())  # this generator, and generate.py's compile options
        return f"fused_{digest.hexdigest()[:12]}"

    def describe(self) -> str:
        """One line: the members as an expression list, the inputs' kinds, the reduction."""
        ops = "; ".join(f"t{n} = {name}({', '.join(args + tuple(map(repr, params)))})"
                        for n, (name, args, params) in enumerate(self.ops))
        inputs = ", ".join(f"x{i}: {kind} {dtype}" for i, (kind, dtype) in
                           enumerate(self.inputs))
        tail = f"; {self.reduce} of each row" if self.reduce else ""
        return f"{self.dtype} [{inputs}] {ops}{tail}"


def body(pattern: Pattern, target: str) -> tuple:
    """The members' code, shared by every target: (lines, namespace). The lines compute
    `t0`, `t1`, ... from `v0`, `v1`, ... (the loaded inputs, in the work dtype), one statement
    each, unindented; the result is `result`. The namespace holds each member's formula
    compiled for `target` (`f<n>`), `like` and `math`; a target adds `work`, the work dtype's
    constructor."""
    lines, namespace = [], {"like": formulas.like, "math": math}
    for n, (name, args, params) in enumerate(pattern.ops):
        namespace[f"f{n}"] = generate.scalar(formulas.SCALAR[name], target)
        values = [f"v{arg[1:]}" if arg[0] == "x" else arg for arg in args]
        for value in params:
            values.append(repr(value) if isinstance(value, bool) else f"like(v0, {_literal(value)})")
        lines.append(f"t{n} = f{n}({', '.join(values)})")
    lines.append(f"result = t{len(pattern.ops) - 1}")
    return lines, namespace


def _literal(value: float) -> str:
    """A float as source text (`math.inf` for infinities: their repr is no Python name)."""
    value = float(value)
    if value != value:
        return "math.nan"
    if value in (math.inf, -math.inf):
        return "math.inf" if value > 0 else "-math.inf"
    return repr(value)


def loads(pattern: Pattern, flat: str, row: str, col: str) -> list:
    """The statements loading each input as `v<i>` in the work dtype, given the names of the
    flat index, the row and the column (scalars are loaded before the loop: `scalar_loads`)."""
    index = {"a": flat, "r": col, "c": row}
    return [f"v{i} = work(x{i}[{index[kind]}])"
            for i, (kind, _) in enumerate(pattern.inputs) if kind != "s"]


def scalar_loads(pattern: Pattern) -> list:
    """The statements loading each scalar input (`x<i>[0]`) as `v<i>`, before the loop."""
    return [f"v{i} = work(x{i}[0])" for i, (kind, _) in enumerate(pattern.inputs) if kind == "s"]


def cpu_source(pattern: Pattern, parallel: bool = True) -> str:
    """The CPU loop of `pattern`: a function named after it, over rows (or over the elements
    when no input broadcasts along a row or column and nothing is reduced), in parallel threads
    if `parallel` (`prange`; else `range`)."""
    lines, _ = body(pattern, "cpu")
    params = ", ".join(f"x{i}" for i in range(len(pattern.inputs)))
    src = [f"def {pattern.name}(out, rows, cols, {params}):"]
    src += [f"    {s}" for s in scalar_loads(pattern)]
    if pattern.reduce is None and not pattern.broadcasts:
        src.append(f"    for i in {'prange' if parallel else 'range'}(rows * cols):")
        src += [f"        {s}" for s in loads(pattern, "i", "", "")]
        src += [f"        {s}" for s in lines]
        src.append("        out[i] = result")
        return "\n".join(src) + "\n"
    src.append(f"    for r in {'prange' if parallel else 'range'}(rows):")
    if pattern.reduce is not None:
        start = {"sum": "0.0", "mean": "0.0", "max": "-math.inf", "min": "math.inf"}
        src.append(f"        acc = acc_type({start[pattern.reduce]})")
    src.append("        for c in range(cols):")
    src.append("            i = r * cols + c")
    src += [f"            {s}" for s in loads(pattern, "i", "r", "c")]
    src += [f"            {s}" for s in lines]
    if pattern.reduce is None:
        src.append("            out[i] = result")
    elif pattern.reduce in ("sum", "mean"):
        src.append("            acc += acc_type(result)")
    else:  # NaN wins, as in NumPy's max and min
        compare = ">" if pattern.reduce == "max" else "<"
        src.append(f"            if result {compare} acc or result != result:")
        src.append("                acc = result")
    if pattern.reduce == "mean":
        src.append("        out[r] = acc / acc_type(cols)")
    elif pattern.reduce is not None:
        src.append("        out[r] = acc")
    return "\n".join(src) + "\n"


def cache_dir() -> str | None:
    """Where generated CPU loops are written and Numba caches them: `$GPUBK_CACHE_DIR`, else
    `$XDG_CACHE_HOME/gpubk` or `~/.cache/gpubk`, folder `fused`; None when it cannot be
    written (each process then compiles its loops anew)."""
    root = os.environ.get("GPUBK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "gpubk")
    folder = os.path.join(root, "fused")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def _write_once(path: str, text: str) -> None:
    """Writes `text` to `path` unless it holds it already (atomically: processes may race).
    Numba's cache checks the file's time stamp, so an unchanged file is never rewritten."""
    try:
        with open(path) as file:
            if file.read() == text:
                return
    except OSError:
        pass
    # a name of this writer's own, opened as any file is (the umask decides its mode)
    tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "x") as file:
            file.write(text)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def compile_source(pattern: Pattern, text: str, namespace: dict, suffix: str = "",
                   header: str = "", cacheable: bool = True) -> tuple:
    """The function `pattern.name` defined by `text`, compiled as Python in a module of its
    own, and whether Numba may cache it on disk: where `cache_dir()` is writable (and
    `cacheable`), `text` is written to `<name><suffix>.py` there (after a comment line: the
    pattern and `header`) and compiled from that file, which Numba's cache needs (where writing
    that file fails, it is compiled uncached; Numba's own index files are Numba's to write).
    The module is registered: a cached function's environment is rebuilt by importing its
    module by name."""
    folder = cache_dir() if cacheable else None
    path = f"<{pattern.name}{suffix}>"
    if folder:
        try:
            cached = os.path.join(folder, f"{pattern.name}{suffix}.py")
            _write_once(cached, f"# generated by gpubk{header}: {pattern.describe()}\n{text}")
            with open(cached) as file:
                text, path = file.read(), cached
        except OSError:  # a full disk, a folder made read-only since: compile it uncached
            folder = None
    module = types.ModuleType(f"gpubk_fused{suffix}_{pattern.name}")
    module.__dict__.update(namespace, __file__=path)
    sys.modules[module.__name__] = module
    exec(compile(text, path, "exec"), module.__dict__)  # noqa: S102 (generated from a Pattern)
    return getattr(module, pattern.name), folder is not None


@functools.cache
def cpu_kernel(pattern: Pattern, parallel: bool = True):
    """The compiled CPU loop of `pattern` (`numba.njit`, in parallel threads if `parallel`;
    cached on disk where `cache_dir()` is writable)."""
    import numba  # noqa: PLC0415 (compiled on first use: importing gpubk loads no Numba)

    _, namespace = body(pattern, "cpu")
    work = getattr(numba, pattern.work_dtype)
    namespace.update(prange=numba.prange, work=work,
                     acc_type=numba.float64 if pattern.reduce in ("sum", "mean") else work)
    function, cache = compile_source(pattern, cpu_source(pattern, parallel), namespace,
                                     "" if parallel else "_serial")
    return numba.njit(parallel=parallel, cache=cache, **generate.CPU_SCALAR_OPTIONS)(function)


def cpu_supports(pattern: Pattern) -> bool:
    """Whether the CPU loop can run `pattern`: Numba's CPU target has no float16."""
    return pattern.dtype != "float16" and all(d != "float16" for _, d in pattern.inputs)


def output_size(pattern: Pattern, rows: int, cols: int) -> int:
    """How many values the flat output holds."""
    return rows if pattern.reduce else rows * cols
