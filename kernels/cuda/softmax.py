"""The CUDA kernels of `gpubk.kernels.softmax`: one block per row, any row length (threads
stride along the row), max and sum reduced in shared memory."""
from __future__ import annotations

import math

from numba import cuda

from ..precision import like
from .blocks import MAX_THREADS, block_row_max, block_sum


# -- CUDA ----------------------------------------------------------------------------------------
# In the rows' dtype throughout (shared buffer, accumulators, constants): float32 math for
# float32 rows (and float16, computed in float32), float64 for float64.
@cuda.jit(cache=True)
def _forward_cuda(x, out, take_log):
    row, tid, step, n = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x, x.shape[1]
    buf = cuda.shared.array(MAX_THREADS, x.dtype)
    m = block_row_max(buf, x, row)
    s = x.dtype.type(0)
    for j in range(tid, n, step):
        s += math.exp(x[row, j] - m)
    s = block_sum(buf, s)
    if take_log:  # (x - m) - log(s), as NumPy: x - (m + log(s)) rounds at the scale of m
        log_s = math.log(s)
        for j in range(tid, n, step):
            out[row, j] = (x[row, j] - m) - log_s
    else:
        inv = like(s, 1.0) / s  # one division per row
        for j in range(tid, n, step):
            out[row, j] = math.exp(x[row, j] - m) * inv


@cuda.jit(cache=True)
def _backward_cuda(y, dy, dx, of_log):
    row, tid, step, n = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x, y.shape[1]
    buf = cuda.shared.array(MAX_THREADS, y.dtype)
    s = y.dtype.type(0)
    for j in range(tid, n, step):  # softmax: sum(dy * y); log-softmax: sum(dy)
        s += dy[row, j] if of_log else dy[row, j] * y[row, j]
    s = block_sum(buf, s)
    for j in range(tid, n, step):
        if of_log:
            dx[row, j] = dy[row, j] - math.exp(y[row, j]) * s
        else:
            dx[row, j] = y[row, j] * (dy[row, j] - s)


# What the launchers pass (for the audit, gpubk.kernels.audit): rows in the work dtype.
LAUNCHES = {
    "_forward_cuda": [f"void({t}[:, ::1], {t}[:, ::1], boolean)" for t in ("float32", "float64")],
    "_backward_cuda": [f"void({t}[:, ::1], {t}[:, ::1], {t}[:, ::1], boolean)"
                       for t in ("float32", "float64")],
}

