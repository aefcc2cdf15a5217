"""The CUDA kernels of `gpubk.kernels.fused`: one kernel per `Pattern`, generated from the same
member code as the CPU loop (`fused.body`, `fused.loads`) with each formula compiled as a CUDA
device function.

Elementwise patterns run one thread per element (grid-stride); the row and column of an element
are computed only when an input broadcasts. Reductions run one block per row (grid-stride over
rows): each thread folds a strided share of the row, then the block combines the partials in
shared memory (`blocks._block_reduce`: the simulator has no warp shuffles). Everything is in the
work dtype (float32 for float32 and float16 patterns: sums accumulate in float32, as every GPU
kernel here does); NaN wins in max and min, as in NumPy.

A kernel is named after its pattern (`pattern.name`), cached per pattern, and compiled from a
generated file under `fused.cache_dir()` with Numba's on-disk cache where that folder is
writable. `LAUNCHES` lists a catalogue of representative patterns for the audit (each kernel a
module attribute, `__getattr__` below); `register` adds a pattern generated at run time.
"""
from __future__ import annotations

import functools
import hashlib
import math
import pathlib

import numba
from numba import config, cuda

from .. import audit, fused, generate
from ..fused import Pattern
from . import blocks

MAX_BLOCKS = 65_535
# The simulator runs every thread as a Python thread: a few small blocks cover any shape (the
# grid-stride loops take the rest) and still exercise striding and the reduction tree.
SIM_BLOCKS, SIM_THREADS = 4, 8

# What the generated code calls but does not show (the block reduction, the compile options of
# the device functions): part of each generated file, so that an edit invalidates Numba's cache.
_DEPENDS = hashlib.sha256(b"".join(pathlib.Path(path).read_bytes() for path in (
    __file__, blocks.__file__, generate.__file__))).hexdigest()[:12]


def source(pattern: Pattern) -> str:
    """The kernel of `pattern`, as Python source: a function named after it, taking
    `(out, rows, cols, *inputs)`."""
    lines, _ = fused.body(pattern, "cuda")
    params = "".join(f", x{i}" for i in range(len(pattern.inputs)))
    src = [f"def {pattern.name}(out, rows, cols{params}):"]
    src += [f"    {s}" for s in fused.scalar_loads(pattern)]
    if pattern.reduce is None:
        src.append("    for i in range(cuda.grid(1), rows * cols, cuda.gridsize(1)):")
        if pattern.broadcasts:
            src += ["        r = i // cols", "        c = i - r * cols"]
        src += [f"        {s}" for s in fused.loads(pattern, "i", "r", "c") + lines]
        src.append("        out[i] = work(result)")  # converted to out's dtype by the store
        return "\n".join(src) + "\n"
    # one block per row; `acc` is each thread's partial, then the block's
    start = "-work(math.inf)" if pattern.reduce == "max" else (
        "work(math.inf)" if pattern.reduce == "min" else "work(0)")
    src += ["    buf = cuda.shared.array(MAX_THREADS, work)",
            "    for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):",
            f"        acc = {start}",
            "        for c in range(cuda.threadIdx.x, cols, cuda.blockDim.x):",
            "            i = r * cols + c"]
    src += [f"            {s}" for s in fused.loads(pattern, "i", "r", "c") + lines]
    src.append("            value = work(result)")
    if pattern.reduce in ("sum", "mean"):
        src += ["            acc += value",
                "        acc = block_sum(buf, acc)"]
    else:  # NaN wins, as in NumPy; min is -max(-x), so that one combine serves both
        compare = ">" if pattern.reduce == "max" else "<"
        sign = "" if pattern.reduce == "max" else "-"
        src += [f"            if value {compare} acc or value != value:",
                "                acc = value",
                f"        acc = {sign}block_reduce(buf, {sign}acc, True)"]
    if pattern.reduce == "mean":
        src.append("        acc = acc / work(cols)")
    src += ["        if cuda.threadIdx.x == 0:", "            out[r] = acc"]
    return "\n".join(src) + "\n"


@functools.cache
def kernel(pattern: Pattern):
    """The compiled kernel of `pattern` (`cuda.jit`, lazily specialised on its first launch;
    cached on disk where `fused.cache_dir()` is writable)."""
    text = source(pattern)
    _, namespace = fused.body(pattern, "cuda")
    namespace.update(cuda=cuda, work=getattr(numba, pattern.work_dtype),
                     MAX_THREADS=blocks.MAX_THREADS, block_sum=blocks.block_sum,
                     block_reduce=blocks._block_reduce)  # (True: max)
    register(pattern)
    function, cache = fused.compile_source(
        pattern, text, namespace, "_cuda", f".kernels.cuda.fused ({_DEPENDS})",
        cacheable=not config.ENABLE_CUDASIM)
    return cuda.jit(cache=cache)(function)


def _type(dtype: str) -> str:
    return "boolean" if dtype == "bool" else dtype


def signature(pattern: Pattern) -> str:
    """The Numba signature `launch` compiles `pattern`'s kernel for (for the audit)."""
    inputs = [f"{_type(d)}[::1]" for _, d in pattern.inputs]
    return f"void({', '.join([f'{pattern.dtype}[::1]', 'int64', 'int64', *inputs])})"


def geometry(pattern: Pattern, rows: int, cols: int) -> tuple:
    """(blocks, threads): a block per row for reductions (its size by the row length), else
    enough 256-thread blocks for one element each, at most MAX_BLOCKS (grid-stride beyond)."""
    most = SIM_BLOCKS if config.ENABLE_CUDASIM else MAX_BLOCKS
    if pattern.reduce is not None:
        return min(rows, most), blocks.threads_per_row(cols)
    threads = SIM_THREADS if config.ENABLE_CUDASIM else blocks.ELEMENTWISE_THREADS
    return min(-(-rows * cols // threads), most), threads


def launch(device, pattern: Pattern, out, rows: int, cols: int, inputs) -> None:
    """Runs `pattern` on `device` (a backend with CUDA kernels: gpu, or sim on NumPy arrays):
    `out` is flat and C-contiguous, of `fused.output_size(pattern, rows, cols)` values in
    `pattern.dtype`; `inputs` are flat contiguous device arrays (per their kind: rows * cols,
    cols, rows or one value). Launched on the device's current stream, without a host
    synchronisation."""
    if fused.output_size(pattern, rows, cols) == 0:
        return  # (a reduction of empty rows runs: sums of 0, as the CPU loop's)
    grid, threads = geometry(pattern, rows, cols)
    stream = device.stream()
    args = list(inputs)
    compiled = kernel(pattern)
    with device.context():
        if stream is None:  # the simulator: NumPy arrays, inputs copied in only (blocks.py)
            compiled[grid, threads](out, rows, cols, *[cuda.In(a) for a in args])
            return
        wrap = functools.partial(cuda.as_cuda_array, sync=False)  # no sync, zero-copy
        args = [wrap(x) for x in args]
        compiled[grid, threads, cuda.external_stream(stream.ptr)](
            wrap(out), rows, cols, *args)


# -- the audit -------------------------------------------------------------------------------------
def _chain(dtype: str) -> Pattern:
    """((x * 2 + 1) * x - 3) / (x * x + 1): seven members, the constants passed as scalars."""
    return Pattern(dtype, (("a", dtype), ("s", dtype), ("s", dtype), ("s", dtype)), (
        ("multiply", ("x0", "x1"), ()), ("add", ("t0", "x2"), ()),
        ("multiply", ("t1", "x0"), ()), ("subtract", ("t2", "x3"), ()),
        ("multiply", ("x0", "x0"), ()), ("add", ("t4", "x2"), ()),
        ("divide", ("t3", "t5"), ())))


RELU = (0.0, -math.inf, math.inf, 0.0, False)  # relu's params: alpha, low, high, threshold, ...
F32 = "float32"
CATALOGUE = (
    _chain("float32"), _chain("float16"), _chain("float64"),
    # relu(x * row + col)
    Pattern(F32, (("a", F32), ("r", F32), ("c", F32)), (
        ("multiply", ("x0", "x1"), ()), ("add", ("t0", "x2"), ()), ("relu", ("t1",), RELU))),
    # elu(x, 0.5) and relu(x, alpha=0.1, max_value=6) of x * s
    Pattern(F32, (("a", F32), ("s", F32)), (
        ("multiply", ("x0", "x1"), ()), ("elu", ("t0",), (0.5,)))),
    Pattern(F32, (("a", F32), ("s", F32)), (
        ("multiply", ("x0", "x1"), ()), ("relu", ("t0",), (0.1, 0.0, 6.0, 0.0, True)))),
    # sum((x - col) ** 2) and max(abs(x * row)) of each row
    Pattern(F32, (("a", F32), ("c", F32)), (
        ("subtract", ("x0", "x1"), ()), ("square", ("t0",), ())), "sum"),
    Pattern(F32, (("a", F32), ("r", F32)), (
        ("multiply", ("x0", "x1"), ()), ("abs", ("t0",), ())), "max"),
)
_PATTERNS = {p.name: p for p in CATALOGUE}  # every pattern a module attribute may name
LAUNCHES = {p.name: [signature(p)] for p in CATALOGUE}


def register(pattern: Pattern) -> None:
    """Adds `pattern` (generated at run time: `kernel` calls this) to the audit, once."""
    if pattern.name not in _PATTERNS:
        _PATTERNS[pattern.name] = pattern
        audit.register(__name__, pattern.name, [signature(pattern)])


def __getattr__(name: str):
    """The kernel of a catalogued or registered pattern, by its name."""
    if name not in _PATTERNS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return kernel(_PATTERNS[name])
