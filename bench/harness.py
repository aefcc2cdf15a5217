"""Runs the cases of `cases.py`: every available implementation of each op, at each size, in
one process; measures the machine's ceilings first; prints a table and writes JSON and a plot.

A case is one function registered with `@case(...)`: given a `Context` (the device and the
peer libraries present) and a size, it returns the work done per call (bytes moved or FLOPs) and
a callable per implementation. A case that fails reports an error row instead of stopping the
run.
"""
from __future__ import annotations

import dataclasses
import json
import platform
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


def case(name: str, sizes: list, quick_sizes: list, unit: str = "B"):
    """Registers `fn(ctx, size) -> (work per call, {implementation: callable})` as a case."""
    def register(fn):
        CASES[name] = Case(name, fn, sizes, quick_sizes, unit)
        return fn
    return register


class Context:
    """The device under test and the peers importable here, with helpers to build inputs."""

    def __init__(self, device: str) -> None:
        self.device = device
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
        return self.rng.standard_normal(shape).astype(np.float32)

    def one_hot(self, rows: int, classes: int) -> np.ndarray:
        return np.eye(classes, dtype=np.float32)[self.rng.integers(0, classes, rows)]

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


def measure_ceilings(ctx: Context, quick: bool) -> dict:
    """The machine's own limits: a large copy (bytes read + written per second) and a large
    float32 matrix product (FLOP/s), on the device under test."""
    xp, gpu = ctx.xp, ctx.cupy
    n = (1 << 24 if quick else 1 << 26) if not ctx.on_gpu else 1 << 28
    src = xp.ones(n, dtype=xp.float32)
    dst = xp.empty_like(src)
    copy_s, _ = measure(lambda: xp.copyto(dst, src), 3, gpu)
    m = 1024 if not ctx.on_gpu else 8192
    a = xp.ones((m, m), dtype=xp.float32)
    mm_s, _ = measure(lambda: a @ a, 3, gpu)
    return {"bandwidth_Bps": 2 * src.nbytes / copy_s, "matmul_FLOPps": 2 * m ** 3 / mm_s}


def run(only=None, quick: bool = False, device: str | None = None) -> dict:
    """Runs the cases named in `only` (default all); returns {"machine": ..., "rows": [...]}."""
    from . import cases  # noqa: F401  (registers the cases)
    unknown = sorted(set(only or []) - set(CASES))
    if unknown:
        raise KeyError(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    with K.device(device or K.get_device()):
        ctx = Context(K.get_device())
        ceilings = measure_ceilings(ctx, quick)
        rows = []
        for name in only or CASES:
            spec = CASES[name]
            for size in spec.quick_sizes if quick else spec.sizes:
                rows += _run_case(ctx, spec, size, ceilings, repeats=3 if quick else 7)
    return {"machine": _machine(ctx, ceilings), "rows": rows}


def _run_case(ctx: Context, spec: Case, size, ceilings: dict, repeats: int) -> list:
    base = {"op": spec.name, "size": str(size)}
    try:
        work, impls = spec.fn(ctx, size)
    except Exception as err:  # a broken case is a row, not a crash
        return [{**base, "impl": "-", "error": _describe(err)}]
    ceiling = ceilings["bandwidth_Bps" if spec.unit == "B" else "matmul_FLOPps"]
    rows = []
    for impl, fn in impls.items():
        try:
            seconds, spread = measure(fn, repeats, ctx.timer_module(impl))
        except Exception as err:
            rows.append({**base, "impl": impl, "error": _describe(err)})
            continue
        rate = work / seconds
        rows.append({**base, "impl": impl, "seconds": seconds, "spread": spread,
                     "rate": rate, "unit": f"{spec.unit}/s",
                     "fraction_of_ceiling": rate / ceiling})
    return rows


def _describe(err: Exception) -> str:
    where = traceback.extract_tb(err.__traceback__)[-1]
    return f"{type(err).__name__}: {err} ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})"


def _machine(ctx: Context, ceilings: dict) -> dict:
    info = {"device": ctx.device, "python": platform.python_version(),
            "numpy": np.__version__, "processor": platform.processor() or platform.machine(),
            **ceilings}
    if ctx.cupy is not None:
        props = ctx.cupy.cuda.runtime.getDeviceProperties(ctx.cupy.cuda.Device().id)
        info["gpu"] = props["name"].decode()
    for lib in ("torch", "jax"):
        module = getattr(ctx, lib)
        info[lib] = module.__version__ if module is not None else None
    return info


# -- output --------------------------------------------------------------------------------------
def _rate(row: dict) -> str:
    scale, prefix = (1e9, "G") if row["rate"] >= 1e8 else (1e6, "M")
    unit = "B/s" if row["unit"] == "B/s" else "FLOP/s"
    return f"{row['rate'] / scale:8.2f} {prefix}{unit}"


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:9.2f} us"


def table(result: dict) -> str:
    m = result["machine"]
    lines = [f"device {m['device']}{' (' + m['gpu'] + ')' if m.get('gpu') else ''}: copy "
             f"{m['bandwidth_Bps'] / 1e9:.1f} GB/s, float32 matmul "
             f"{m['matmul_FLOPps'] / 1e9:.1f} GFLOP/s (the ceilings below)",
             f"{'op':<22}{'size':<22}{'impl':<7}{'median':>13}{'spread':>8}{'rate':>16}"
             f"{'of ceiling':>11}"]
    for row in result["rows"]:
        head = f"{row['op']:<22}{row['size']:<22}{row['impl']:<7}"
        if "error" in row:
            lines.append(f"{head}  error: {row['error']}")
        else:
            lines.append(f"{head}{_time(row['seconds']):>13}{row['spread']:>8.0%}"
                         f"{_rate(row):>16}{row['fraction_of_ceiling']:>11.1%}")
    return "\n".join(lines)


def write_json(result: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=1)


def plot(result: dict, path: str) -> None:
    """Throughput against size, one panel per op, one line per implementation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ops = list(dict.fromkeys(r["op"] for r in result["rows"]))
    cols = min(3, len(ops))
    rows = -(-len(ops) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, op in zip(axes.flat, ops):
        mine = [r for r in result["rows"] if r["op"] == op and "error" not in r]
        sizes = list(dict.fromkeys(r["size"] for r in mine))
        for impl in dict.fromkeys(r["impl"] for r in mine):
            points = [(sizes.index(r["size"]), r["rate"]) for r in mine if r["impl"] == impl]
            ax.plot(*zip(*points), marker="o", label=impl)
        ax.set_title(op)
        ax.set_xticks(range(len(sizes)), sizes, rotation=20, fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel(mine[0]["unit"] if mine else "")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(ops):]:
        ax.axis("off")
    fig.suptitle(f"gpubk bench on {result['machine']['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
