"""What the CUDA kernels share: launch geometry, streams, NaN-safe scalar helpers and the block
reductions. Imported only when a GPU or the simulator runs the kernels."""
from __future__ import annotations

import math

import numpy as np
from numba import config, cuda

from .. import fastmath

# Threads per block for row kernels: a power of two (the shared-memory reductions halve it).
# Shared buffers are sized for the largest; the simulator runs every thread as a Python thread,
# so it gets a small block that still exercises striding and a three-level reduction tree.
MAX_THREADS = 256
SIM_THREADS = 8
ELEMENTWISE_THREADS = 256

def threads_per_row(n: int) -> int:
    """A power-of-two block size for rows of `n` elements."""
    if config.ENABLE_CUDASIM:
        return SIM_THREADS
    threads = 32
    while threads < n and threads < MAX_THREADS:
        threads *= 2
    return threads


def device_args(xp, *arrays):
    """Arrays for a kernel launch (inputs first, the output last), and the stream: CuPy arrays
    are wrapped zero-copy without the host synchronisation Numba would otherwise do; NumPy
    arrays (simulator) pass as they are, the inputs as `cuda.In` (the simulator copies every
    other array back after the launch: into a read-only input that fails, and an input that
    is also the output would put its old values back over the result)."""
    if xp is np:
        return (*[cuda.In(a) for a in arrays[:-1]], *arrays[-1:]), 0
    stream = cuda.external_stream(xp.cuda.get_current_stream().ptr)
    return tuple(cuda.as_cuda_array(a, sync=False) for a in arrays), stream


# -- CUDA device helpers -------------------------------------------------------------------------
# NaN must come out the same compiled and under the simulator, so no min()/max() builtins on
# values that may be NaN: compiled, they are fminf/fmaxf (NaN dropped); simulated, Python's
# (NaN kept or dropped by argument order). Plain comparisons mean the same thing in both.
clamp = cuda.jit(device=True)(fastmath.clamp.py_func)  # one body with the CPU kernels'


@cuda.jit(device=True)
def nan_max(a, b):
    """max(a, b), NaN if either is NaN."""
    return b if b > a or b != b else a


# -- CUDA block reductions (one block per row; blockDim.x a power of two <= MAX_THREADS) -------
# `buf` is the kernel's `cuda.shared.array(MAX_THREADS, x.dtype)`: the reductions run in the
# rows' dtype (float32 math for float32 rows). Each thread adds a strided share of the row
# (n / blockDim.x elements: 40 for rows of 10,000), then the tree halves, so a float32 sum of
# 10,000 positive terms is within about one ulp of the float64 one; the error grows with the
# share (some 50 ulp for rows of a million), as the CPU twins' vector lanes do.
@cuda.jit(device=True)
def _block_reduce(buf, value, take_max):
    """Sum (or maximum, NaN propagating) of `value` over the threads of the block, returned to
    every thread."""
    tid = cuda.threadIdx.x
    buf[tid] = value
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if tid < step:
            other = buf[tid + step]
            buf[tid] = nan_max(buf[tid], other) if take_max else buf[tid] + other
        cuda.syncthreads()
        step //= 2
    total = buf[0]
    cuda.syncthreads()  # everyone has read buf[0] before the buffer is reused
    return total


@cuda.jit(device=True)
def block_sum(buf, value):
    return _block_reduce(buf, value, False)


@cuda.jit(device=True)
def block_row_max(buf, x, row):
    """max(x[row, :]) for the whole block, in x's dtype (as `buf`), NaN if the row holds one."""
    m = x.dtype.type(-math.inf)
    for j in range(cuda.threadIdx.x, x.shape[1], cuda.blockDim.x):
        m = nan_max(m, x[row, j])
    return _block_reduce(buf, m, True)


@cuda.jit(device=True)
def block_row_sum(buf, x, row):
    """sum(x[row, :]) for the whole block, in x's dtype (as `buf`)."""
    s = x.dtype.type(0)
    for j in range(cuda.threadIdx.x, x.shape[1], cuda.blockDim.x):
        s += x[row, j]
    return _block_reduce(buf, s, False)


# -- launches ------------------------------------------------------------------------------------
def launch_rows(kernel, xp, rows, arrays, scalars=()) -> None:
    """`kernel` with one block per row of the 2-D `rows`; `arrays` go zero-copy on CuPy's
    current stream, `scalars` as they are."""
    args, stream = device_args(xp, *arrays)
    kernel[rows.shape[0], threads_per_row(rows.shape[1]), stream](*args, *scalars)


def launch_flat(kernel, xp, size: int, arrays, scalars=()) -> None:
    """`kernel` over `size` elements, grid-stride (at most 65,535 blocks)."""
    args, stream = device_args(xp, *arrays)
    blocks = max(1, min((size + ELEMENTWISE_THREADS - 1) // ELEMENTWISE_THREADS, 65_535))
    kernel[blocks, ELEMENTWISE_THREADS, stream](*args, *scalars)
