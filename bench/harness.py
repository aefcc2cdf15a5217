"""Runs the cases of `cases.py` (and of a user's file, `gpubk bench --cases FILE`): every
available implementation of each op, at each size, in one process; measures the machine's
ceilings first; prints a table and writes JSON and a plot.

A case is one function registered with `@case(...)`: given a `Context` (the device and the
peer libraries present) and a size, it returns the work done per call (bytes moved or FLOPs) and
a callable per implementation. A case that fails reports an error row instead of stopping the
run.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.machinery
import importlib.util
import json
import os
import platform
import sys
import traceback

import numpy as np

import gpubk as K

from .timing import measure


@dataclasses.dataclass
class Case:
    name: str
    fn: object
    sizes: list
    quick_sizes: list
    unit: str  # "B" (bytes moved) or "FLOP"


CASES: dict[str, Case] = {}
UNITS = ("B", "FLOP")
NOISY_SPREAD = 0.5  # rounds that differ by more than half their median: a noisy row
# Below this many bytes per call, a copy's time is mostly call overhead, not bandwidth: rows that
# small get no fraction of a ceiling.
MIN_CEILING_BYTES = 1 << 18


class CaseFileError(Exception):
    """A `--cases` file that cannot be used: missing, failing, or registering no case."""


def case(name: str, sizes: list, quick_sizes: list, unit: str = "B"):
    """Registers `fn(ctx, size) -> (work per call, {implementation: callable})` as a case: `work`
    is the bytes read plus written per call (`unit="B"`) or the floating-point operations
    (`unit="FLOP"`); `ctx` is a `Context`. Import it as `from gpubk.bench import case`."""
    if unit not in UNITS:
        raise ValueError(f"case {name!r}: unit must be one of {UNITS}, got {unit!r}")
    if name in CASES:
        raise ValueError(f"a case named {name!r} is already registered")

    def register(fn):
        CASES[name] = Case(name, fn, list(sizes), list(quick_sizes), unit)
        return fn
    return register


def load_builtin_cases() -> None:
    from . import cases  # noqa: F401, PLC0415  (importing registers them)


def load_case_file(path: str) -> list[str]:
    """Runs a user's Python file of `@case` functions, beside the built-in cases; returns the
    names it registered. Raises CaseFileError (one line) when the file is missing, fails, or
    registers no case; nothing stays registered then."""
    load_builtin_cases()
    if not os.path.isfile(path):
        raise CaseFileError(f"{path}: no such file")
    before = set(CASES)
    name = f"gpubk_user_cases_{len(sys.modules)}"
    loader = importlib.machinery.SourceFileLoader(name, path)  # any file name, not only *.py
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    sys.modules[name] = module  # as an import would (dataclasses and pickling look it up)
    try:
        loader.exec_module(module)
    except Exception as err:  # SyntaxError included: the user's own mistake, in one line
        _forget_cases(set(CASES) - before)
        raise CaseFileError(f"{path}: {_describe(err, in_file=path)}") from None
    added = [n for n in CASES if n not in before]
    if not added:
        raise CaseFileError(f"{path} registers no case (decorate a function with @case, from "
                            "`from gpubk.bench import case`)")
    return added


def _forget_cases(names) -> None:
    for name in names:
        CASES.pop(name, None)


def unknown_cases(names) -> list[str]:
    """The names in `names` that are not registered cases (after loading the built-in ones)."""
    load_builtin_cases()
    return sorted(set(names) - set(CASES))


class Context:
    """The device under test and the peers importable here, with helpers to build inputs."""

    def __init__(self, device: str, dtype: str = "float32") -> None:
        self.device = device
        self.dtype = np.dtype(dtype)  # of the inputs the cases build
        self.on_gpu = device.startswith("gpu")
        self.cupy = None
        if self.on_gpu:
            import cupy
            self.cupy = cupy
        self.xp = self.cupy or np
        self.torch = self._torch()
        self.torch_device = "cuda" if self.on_gpu else "cpu"
        self.jax = self._jax()
        self.rng = np.random.default_rng(0)

    def _torch(self):
        try:
            import torch
        except ImportError:
            return None
        if self.on_gpu and not torch.cuda.is_available():
            return None
        torch.backends.cuda.matmul.allow_tf32 = False  # compare like with like
        return torch

    def _jax(self):
        try:
            import jax
        except ImportError:
            return None
        wanted = "gpu" if self.on_gpu else "cpu"
        return jax if any(d.platform == wanted for d in jax.devices()) else None

    # -- inputs, made once on the host and copied to each implementation's device -------------
    def normal(self, shape) -> np.ndarray:
        return self.rng.standard_normal(shape).astype(self.dtype)

    def one_hot(self, rows: int, classes: int) -> np.ndarray:
        return np.eye(classes, dtype=self.dtype)[self.rng.integers(0, classes, rows)]

    def device_array(self, a: np.ndarray):
        return self.xp.asarray(a)

    def tensor(self, a: np.ndarray):
        return K.constant(self.device_array(a))

    def torch_tensor(self, a: np.ndarray, grad: bool = False):
        t = self.torch.tensor(a, device=self.torch_device)
        return t.requires_grad_() if grad else t

    def jax_array(self, a: np.ndarray):
        return self.jax.device_put(a)

    def implementations(self, gpubk=None, naive=None, torch=None, jax=None) -> dict:
        """The callables of one case, keeping those whose library is present. `naive` is
        `formula(xp)`: NumPy always (on the host), CuPy on a GPU."""
        impls = {"gpubk": gpubk}
        if naive is not None:
            impls["numpy"] = naive(np)
            if self.cupy is not None:
                impls["cupy"] = naive(self.cupy)
        if torch is not None and self.torch is not None:
            impls["torch"] = torch()
        if jax is not None and self.jax is not None:
            impls["jax"] = jax()
        return {k: v for k, v in impls.items() if v is not None}

    def timer_module(self, impl: str):
        """CuPy for the implementations that run on the GPU (timed with CUDA events)."""
        return self.cupy if self.on_gpu and impl != "numpy" else None


@functools.cache
def _parallel_copy():
    """A copy on all CPU threads (NumPy's copy uses one; gpubk's CPU kernels use all)."""
    import numba  # noqa: PLC0415  (compiled only when a CPU run measures its ceilings)

    @numba.njit(parallel=True, cache=True)
    def copy(src, dst):
        for i in numba.prange(src.size):
            dst[i] = src[i]
    return copy


class Ceilings:
    """The machine's own limits on the device under test: a float32 matmul for FLOP rows; for
    byte rows, a copy that moves as many bytes as the row does, measured when a row of that
    size first needs it. A copy's speed depends on whether its arrays fit in a cache, so one
    large copy would be beaten by any cache-resident case (fractions over 100%). On the CPU the
    copy is the faster of NumPy's (one thread) and a parallel loop (all, as gpubk's kernels)."""

    def __init__(self, ctx: Context, quick: bool) -> None:
        self.xp, self.gpu, self.on_gpu = ctx.xp, ctx.cupy, ctx.on_gpu
        self.copies: dict[int, float] = {}  # bytes moved per call -> bytes per second
        m = 8192 if ctx.on_gpu else 1024
        a = self.xp.ones((m, m), dtype=self.xp.float32)
        seconds, _ = measure(lambda: a @ a, 3, self.gpu)
        self.matmul = (f"matmul {m}x{m}", 2 * m ** 3 / seconds)
        # One copy too large for any cache, for the headline figure.
        self.dram_bytes = 8 << (28 if ctx.on_gpu else 24 if quick else 26)
        self.dram_Bps = self.copy(self.dram_bytes)

    def copy(self, traffic: int) -> float:
        """Bytes per second of a float32 copy that reads and writes `traffic` bytes in all."""
        if traffic not in self.copies:
            src = self.xp.ones(max(1, traffic // 8), dtype=self.xp.float32)
            dst = self.xp.empty_like(src)
            copies = [lambda: self.xp.copyto(dst, src)]
            if not self.on_gpu:
                copies.append(lambda: _parallel_copy()(src, dst))
            fastest = min(measure(fn, 3, self.gpu)[0] for fn in copies)
            self.copies[traffic] = 2 * src.nbytes / fastest
        return self.copies[traffic]

    def for_row(self, unit: str, work: float) -> tuple[str, float] | None:
        """(name, rate) of the ceiling a row doing `work` per call is a fraction of, or None
        where a copy that small would measure call overhead rather than bandwidth."""
        if unit == "FLOP":
            return self.matmul
        if work < MIN_CEILING_BYTES:
            return None
        return f"copy {_bytes(work)}", self.copy(int(work))


def run(only=None, quick: bool = False, device: str | None = None,
        dtype: str = "float32") -> dict:
    """Runs the cases named in `only` (default all, with any loaded by `load_case_file`), with
    inputs of `dtype` where a case builds them with `Context.normal`/`one_hot`; returns
    {"machine": ..., "rows": [...]}."""
    unknown = unknown_cases(only or [])
    if unknown:
        raise KeyError(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    with K.device(device or K.get_device()):
        ctx = Context(K.get_device(), dtype)
        ceilings = Ceilings(ctx, quick)
        rows = []
        for name in only or list(CASES):
            spec = CASES[name]
            for size in spec.quick_sizes if quick else spec.sizes:
                rows += _run_case(ctx, spec, size, ceilings, repeats=3 if quick else 7)
    return {"machine": _machine(ctx, ceilings), "rows": rows}


def _run_case(ctx: Context, spec: Case, size, ceilings: Ceilings, repeats: int) -> list:
    base = {"op": spec.name, "size": str(size)}
    try:
        work, impls = spec.fn(ctx, size)
    except Exception as err:  # a broken case is a row, not a crash
        return [{**base, "impl": "-", "error": _describe(err)}]
    ceiling = ceilings.for_row(spec.unit, work)
    rows = []
    for impl, fn in impls.items():
        try:
            seconds, spread = measure(fn, repeats, ctx.timer_module(impl))
        except Exception as err:
            rows.append({**base, "impl": impl, "error": _describe(err)})
            continue
        rate = work / seconds
        rows.append({**base, "impl": impl, "seconds": seconds, "spread": spread,
                     "noisy": spread > NOISY_SPREAD, "work": work, "rate": rate,
                     "unit": f"{spec.unit}/s", "ceiling": ceiling and ceiling[0],
                     "fraction_of_ceiling": ceiling and rate / ceiling[1]})
    return rows


def _describe(err: Exception, in_file: str | None = None) -> str:
    """`Type: message (file:line)` on one line, at the innermost frame (in `in_file` if any)."""
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg} ({os.path.basename(err.filename or '?')}:{err.lineno})"
    frames = traceback.extract_tb(err.__traceback__)
    if in_file:
        frames = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(in_file)
                  ] or frames
    message = (str(err).splitlines() or [""])[0]
    where = f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {message}{where}"


def _machine(ctx: Context, ceilings: Ceilings) -> dict:
    info = {"device": ctx.device, "dtype": ctx.dtype.name, "python": platform.python_version(),
            "numpy": np.__version__, "processor": platform.processor() or platform.machine(),
            "bandwidth_Bps": ceilings.dram_Bps, "bandwidth_bytes": ceilings.dram_bytes,
            "matmul": ceilings.matmul[0], "matmul_FLOPps": ceilings.matmul[1],
            "copy_ceilings_Bps": {str(n): rate for n, rate in sorted(ceilings.copies.items())}}
    if ctx.cupy is not None:
        props = ctx.cupy.cuda.runtime.getDeviceProperties(ctx.cupy.cuda.Device().id)
        info["gpu"] = props["name"].decode()
    for lib in ("torch", "jax"):
        module = getattr(ctx, lib)
        info[lib] = module.__version__ if module is not None else None
    return info


# -- output --------------------------------------------------------------------------------------
def _bytes(n: float) -> str:
    for scale, prefix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.3g} {prefix}"
    return f"{n:.0f} B"


def _rate(row: dict) -> str:
    scale, prefix = (1e9, "G") if row["rate"] >= 1e8 else (1e6, "M")
    unit = "B/s" if row["unit"] == "B/s" else "FLOP/s"
    return f"{row['rate'] / scale:8.2f} {prefix}{unit}"


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:9.2f} us"


def _spread(row: dict) -> str:
    return "noisy" if row["noisy"] else f"{row['spread']:.0%}"


def _fraction(row: dict) -> str:
    fraction = row["fraction_of_ceiling"]
    if fraction is None:
        return "-"
    return f"{fraction:.1%}" + ("*" if fraction > 1 else " ")


def table(result: dict) -> str:
    """The rows as a text table, with a header naming the ceilings and a legend."""
    m, rows = result["machine"], result["rows"]
    op_width = max([22] + [len(r["op"]) + 2 for r in rows])
    impl_width = max([7] + [len(r["impl"]) + 2 for r in rows])
    lines = [f"device {m['device']}{' (' + m['gpu'] + ')' if m.get('gpu') else ''}, "
             f"{m.get('dtype', 'float32')} inputs: a copy "
             f"of {_bytes(m['bandwidth_bytes'])} moves {m['bandwidth_Bps'] / 1e9:.1f} GB/s, "
             f"a float32 {m['matmul']} does {m['matmul_FLOPps'] / 1e9:.1f} GFLOP/s",
             f"{'op':<{op_width}}{'size':<22}{'impl':<{impl_width}}{'median':>13}{'spread':>8}"
             f"{'rate':>16}{'of ceiling ':>12}  ceiling"]
    for row in rows:
        head = f"{row['op']:<{op_width}}{row['size']:<22}{row['impl']:<{impl_width}}"
        if "error" in row:
            lines.append(f"{head}  error: {row['error']}")
        else:
            lines.append(f"{head}{_time(row['seconds']):>13}{_spread(row):>8}{_rate(row):>16}"
                         f"{_fraction(row):>12}  {row['ceiling'] or '-'}")
    return "\n".join(lines + _legend(rows))


def _legend(rows: list) -> list:
    lines = ["of ceiling: the row's rate over the ceiling named beside it, measured here first: "
             "a copy moving as many bytes as the row (same cache regime), or the matmul; '-' "
             f"under {_bytes(MIN_CEILING_BYTES)} per call, where a copy times call overhead."]
    if any((r.get("fraction_of_ceiling") or 0) > 1 for r in rows):
        lines.append("*: faster than its ceiling: a row that mostly reads can beat a copy of "
                     "as many bytes; otherwise the machine was busier while one was measured.")
    noisy = [r["spread"] for r in rows if r.get("noisy")]
    if noisy:
        lines.append(f"noisy: {len(noisy)} row(s) whose rounds differ by more than "
                     f"{NOISY_SPREAD:.0%} of the median (up to {max(noisy):,.0%}): rerun "
                     "them before trusting their figures.")
    return lines


def write_json(result: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=1)


def plot(result: dict, path: str) -> None:
    """Writes `figure(result)` as a PNG."""
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig = figure(result)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure(result: dict):
    """Throughput against size, one panel per op, one line per implementation (bars where an
    op has a single size)."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    ops = list(dict.fromkeys(r["op"] for r in result["rows"]))
    cols = min(3, len(ops))
    rows = -(-len(ops) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows + 0.6), squeeze=False,
                             layout="constrained")
    impls = dict.fromkeys(r["impl"] for r in result["rows"])
    colors = {impl: f"C{i}" for i, impl in enumerate(impls)}  # the same in every panel
    for ax, op in zip(axes.flat, ops):
        mine = [r for r in result["rows"] if r["op"] == op and "error" not in r]
        sizes = list(dict.fromkeys(r["size"] for r in mine))
        (_bars if len(sizes) == 1 else _lines)(ax, mine, sizes, colors)
        ax.set_title(op if len(sizes) != 1 else f"{op}, size {sizes[0]}", fontsize=10)
        ax.set_ylabel(mine[0]["unit"] if mine else "")
    for ax in list(axes.flat)[len(ops):]:
        ax.axis("off")
    fig.suptitle(f"gpubk bench on {result['machine']['device']}: throughput, higher is better")
    return fig


def _bars(ax, rows: list, sizes: list, colors: dict) -> None:
    """One size: a bar per implementation, on linear axes (bar heights compare as ratios)."""
    from matplotlib import ticker  # noqa: PLC0415
    ax.bar([r["impl"] for r in rows], [r["rate"] for r in rows],
           color=[colors[r["impl"]] for r in rows])
    ax.yaxis.set_major_formatter(ticker.EngFormatter(sep=""))  # 20G, not 2.0 + 1e10
    ax.tick_params(axis="x", labelsize=8)


def _lines(ax, rows: list, sizes: list, colors: dict) -> None:
    """Several sizes: a line per implementation, against the number of elements (log axis)
    where every size is a shape, else against the sizes in order."""
    from matplotlib import ticker  # noqa: PLC0415
    ax.set_yscale("log")  # rates across sizes span decades
    elements = [_elements(s) for s in sizes]
    if None in elements or len(set(elements)) != len(elements):
        elements = list(range(len(sizes)))
    else:
        ax.set_xscale("log")
    for impl in dict.fromkeys(r["impl"] for r in rows):
        points = [(elements[sizes.index(r["size"])], r["rate"]) for r in rows
                  if r["impl"] == impl]
        ax.plot(*zip(*points), marker="o", label=impl, color=colors[impl])
    ax.set_xticks(elements, sizes, rotation=20, fontsize=7)
    ax.xaxis.set_minor_locator(ticker.NullLocator())  # only the sizes measured
    ax.legend(fontsize=7)


def _elements(size: str) -> int | None:
    """The number of elements of a size written as a shape, e.g. '(256, 256)' -> 65536."""
    try:
        shape = ast.literal_eval(size)
    except (ValueError, SyntaxError):
        return None
    if not (isinstance(shape, tuple) and shape and all(isinstance(d, int) for d in shape)):
        return None
    return int(np.prod(shape))
