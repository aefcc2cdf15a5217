"""The CUDA kernels of `gpubk.kernels.crossentropy`: one block per row, one pass over its inputs
per value written."""
from __future__ import annotations

import math

from numba import cuda

from ..crossentropy import _target_term
from ..precision import like
from .blocks import MAX_THREADS, block_row_max, block_row_sum, block_sum, clamp as cuda_clamp

_target_term_cuda = cuda.jit(device=True)(_target_term)


# -- CUDA ----------------------------------------------------------------------------------------
# In the rows' dtype throughout (shared buffer, accumulators, constants, the clip bounds `low`
# and `high`): float32 math for float32 rows (and float16, computed in float32). Normalising
# multiplies by one reciprocal of the row sum, as the CPU twins do.
@cuda.jit(cache=True)
def _probs_forward_cuda(t, p, loss, low, high):
    row, tid, step, n = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x, p.shape[1]
    buf = cuda.shared.array(MAX_THREADS, p.dtype)
    total = block_row_sum(buf, p, row)
    inv = like(total, 1.0) / total
    acc = p.dtype.type(0)
    for j in range(tid, n, step):
        acc += t[row, j] * math.log(cuda_clamp(p[row, j] * inv, low, high))
    acc = block_sum(buf, acc)
    if tid == 0:
        loss[row] = -acc


@cuda.jit(cache=True)
def _probs_backward_cuda(t, p, g, dp, low, high):
    row, tid, step, n = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x, p.shape[1]
    buf = cuda.shared.array(MAX_THREADS, p.dtype)
    zero = p.dtype.type(0)
    total = block_row_sum(buf, p, row)
    inv = like(total, 1.0) / total
    dot = zero
    for j in range(tid, n, step):
        q = p[row, j] * inv
        dot += -t[row, j] if low <= q <= high else zero * q  # a * q, NaN where q is NaN or inf
    dot = block_sum(buf, dot)
    scale = g[row] * inv
    for j in range(tid, n, step):
        q = p[row, j] * inv
        a = -t[row, j] / q if low <= q <= high else zero
        dp[row, j] = (a - dot) * scale


@cuda.jit(cache=True)
def _logits_forward_cuda(t, z, loss):
    row, tid, step, n = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x, z.shape[1]
    buf = cuda.shared.array(MAX_THREADS, z.dtype)
    m = block_row_max(buf, z, row)
    s = z.dtype.type(0)
    t_sum = z.dtype.type(0)
    tz = z.dtype.type(0)
    for j in range(tid, n, step):
        s += math.exp(z[row, j] - m)
        t_sum += t[row, j]
        tz += _target_term_cuda(t[row, j], z[row, j] - m)
    s = block_sum(buf, s)
    t_sum = block_sum(buf, t_sum)
    tz = block_sum(buf, tz)
    if tid == 0:
        loss[row] = t_sum * math.log(s) - tz  # -sum(t * (z - m - log s))


@cuda.jit(cache=True)
def _logits_backward_cuda(t, z, g, dz):
    row, tid, step, n = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x, z.shape[1]
    buf = cuda.shared.array(MAX_THREADS, z.dtype)
    m = block_row_max(buf, z, row)
    s = z.dtype.type(0)
    t_sum = z.dtype.type(0)
    for j in range(tid, n, step):
        s += math.exp(z[row, j] - m)
        t_sum += t[row, j]
    s = block_sum(buf, s)
    t_sum = block_sum(buf, t_sum)
    scale = t_sum / s
    for j in range(tid, n, step):
        dz[row, j] = g[row] * (math.exp(z[row, j] - m) * scale - t[row, j])


# What `_run` passes (for the audit, gpubk.kernels.audit): target and input rows in the work
# dtype, one value per row for losses and output gradients, and the clip bounds (work dtype).
_ROWS, _PER_ROW, _BOUNDS = "{t}[:, ::1]", "{t}[::1]", "{t}, {t}"
LAUNCHES = {name: [sig.format(t=t) for t in ("float32", "float64")] for name, sig in {
    "_probs_forward_cuda": f"void({_ROWS}, {_ROWS}, {_PER_ROW}, {_BOUNDS})",
    "_probs_backward_cuda": f"void({_ROWS}, {_ROWS}, {_PER_ROW}, {_ROWS}, {_BOUNDS})",
    "_logits_forward_cuda": f"void({_ROWS}, {_ROWS}, {_PER_ROW})",
    "_logits_backward_cuda": f"void({_ROWS}, {_ROWS}, {_PER_ROW}, {_ROWS})",
}.items()}

