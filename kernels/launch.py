"""What every kernel family shares: rows, launch geometry, streams, and the CPU-twin threshold."""
from __future__ import annotations

import math

import numpy as np
from numba import config, cuda

from . import fastmath

# Threads per block for row kernels: a power of two (the shared-memory reductions halve it).
# Shared buffers are sized for the largest; the simulator runs every thread as a Python thread,
# so it gets a small block that still exercises striding and a three-level reduction tree.
MAX_THREADS = 256
SIM_THREADS = 8
ELEMENTWISE_THREADS = 256

# Below this many elements NumPy wins on the CPU: a parallel Numba call costs ~10-20 us to start.
# (A module variable so that tests can run the twins on small shapes.)
cpu_twin_min_size = 1 << 15

FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Rows:
    """An array seen as rows: `axis` moved last, the other axes folded, C-contiguous, in a dtype
    the kernels take (float16 is computed in float32, then cast back)."""

    __slots__ = ("data", "_xp", "_moved_shape", "_axis", "_last", "_dtype")

    def __init__(self, xp, a, axis: int) -> None:
        self._xp, self._axis, self._last, self._dtype = xp, axis, a.ndim - 1, a.dtype
        moved = a if axis == self._last else a.swapaxes(axis, self._last)
        self._moved_shape = moved.shape
        work = np.float32 if a.dtype == np.float16 else a.dtype
        self.data = xp.ascontiguousarray(moved.reshape(-1, moved.shape[-1]), dtype=work)

    def restore(self, out):
        """Rows of results back to the input's layout and dtype."""
        out = out.reshape(self._moved_shape)
        if self._axis != self._last:
            out = out.swapaxes(self._axis, self._last)
        return out.astype(self._dtype, copy=False)

    def restore_reduced(self, values):
        """One result per row, shaped as the input without `axis`."""
        out = values.reshape(self._moved_shape[:-1])
        if self._axis != self._last:  # the input's last axis sits at `axis` now: put it back
            out = self._xp.moveaxis(out, self._axis, -1)
        return out.astype(self._dtype, copy=False)

    def vector_per_row(self, values):
        """The inverse of `restore_reduced`: values shaped as the input without `axis`, as one
        contiguous value per row."""
        if self._axis != self._last:
            values = self._xp.moveaxis(values, -1, self._axis)
        return self._xp.ascontiguousarray(values.reshape(-1), dtype=self.data.dtype)


def threads_per_row(n: int) -> int:
    """A power-of-two block size for rows of `n` elements."""
    if config.ENABLE_CUDASIM:
        return SIM_THREADS
    threads = 32
    while threads < n and threads < MAX_THREADS:
        threads *= 2
    return threads


def device_args(xp, *arrays):
    """Arrays for a kernel launch, and the stream: CuPy arrays are wrapped zero-copy without the
    host synchronisation Numba would otherwise do; NumPy arrays (simulator) pass as they are."""
    if xp is np:
        return arrays, 0
    stream = cuda.external_stream(xp.cuda.get_current_stream().ptr)
    return tuple(cuda.as_cuda_array(a, sync=False) for a in arrays), stream


def cpu_twin_applies(a) -> bool:
    """Whether the CPU twin should run: big enough to beat NumPy, and a dtype it compiles for."""
    return a.size >= cpu_twin_min_size and a.dtype in FLOAT_TYPES


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
