"""Row softmax and log-softmax, forward and backward.

CUDA (`cuda/softmax.py`): one block per row, any row length (threads stride along the row), max
and sum reduced in shared memory, in the rows' dtype. CPU twins: rows in parallel (prange), two
passes per row with the vectorisable exp of `fastmath`; on one thread below
`launch.cpu_twin_min_size` elements; NumPy for float16 (`launch.cpu_twin`).
All three put NaN and inf where the NumPy formulas (`_forward_xp`, `_backward_xp`) do.
"""
from __future__ import annotations

from numba import njit, prange

from .fastmath import REDUCE_FLAGS, exp, log, row_max
from .launch import Rows, cpu_twin, cuda_family


# -- CPU twins -----------------------------------------------------------------------------------
@njit(parallel=True, fastmath=REDUCE_FLAGS, cache=True)
def _forward_cpu(x, out, take_log):
    for i in prange(x.shape[0]):
        row, o = x[i], out[i]
        m = row_max(row)
        s = row.dtype.type(0)
        if take_log:  # (x - m) - log(s), as NumPy: x - (m + log(s)) rounds at the scale of m
            for j in range(row.shape[0]):
                d = row[j] - m
                o[j] = d  # stored, so that "reassoc" cannot fold the subtractions back
                s += exp(d)
            log_s = log(s)
            for j in range(row.shape[0]):
                o[j] -= log_s
        else:
            for j in range(row.shape[0]):
                e = exp(row[j] - m)
                o[j] = e
                s += e
            inv = row.dtype.type(1) / s  # not 1 / s: that is float64 in Numba
            for j in range(row.shape[0]):
                o[j] *= inv


@njit(parallel=True, fastmath=REDUCE_FLAGS, cache=True)
def _backward_cpu(y, dy, dx, of_log):
    for i in prange(y.shape[0]):
        yr, gr, o = y[i], dy[i], dx[i]
        s = yr.dtype.type(0)
        if of_log:
            for j in range(yr.shape[0]):
                s += gr[j]
            for j in range(yr.shape[0]):
                o[j] = gr[j] - exp(yr[j]) * s
        else:
            for j in range(yr.shape[0]):
                s += gr[j] * yr[j]
            for j in range(yr.shape[0]):
                o[j] = yr[j] * (gr[j] - s)


# -- NumPy / CuPy --------------------------------------------------------------------------------
def _forward_xp(xp, a, axis, take_log):
    # Array methods rather than xp.max/xp.sum: the same on NumPy and CuPy, and cheaper to call.
    shifted = a - a.max(axis=axis, keepdims=True)  # exp never overflows, even for 1e4
    if take_log:
        return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    e = xp.exp(shifted)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _backward_xp(xp, y, dy, axis, of_log):
    if of_log:
        return dy - xp.exp(y) * dy.sum(axis=axis, keepdims=True)
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


# -- launchers -----------------------------------------------------------------------------------
def forward(device, a, axis: int, take_log: bool = False):
    """softmax(a) (or log-softmax) along `axis` (non-negative), as a new array of `a`'s kind."""
    xp = device.xp
    if a.size == 0:
        return xp.empty_like(a)
    twin = None if device.cuda_kernels else cpu_twin(_forward_cpu, a)
    if not device.cuda_kernels and twin is None:
        return _forward_xp(xp, a, axis, take_log)
    rows = Rows(xp, a, axis)
    out = xp.empty_like(rows.data)
    if device.cuda_kernels:
        kernel = cuda_family("softmax")._forward_cuda
        cuda_family("blocks").launch_rows(kernel, xp, rows.data, (rows.data, out), (take_log,))
    else:
        twin(rows.data, out, take_log)
    return rows.restore(out)


def backward(device, y, dy, axis: int, of_log: bool = False):
    """The input gradient of softmax (or log-softmax) from its output `y` and output gradient
    `dy`: `y * (dy - sum(dy * y))`, or `dy - exp(y) * sum(dy)`, in one pass."""
    xp = device.xp
    if y.size == 0:
        return xp.empty_like(y)
    twin = None if device.cuda_kernels else cpu_twin(_backward_cpu, y)
    if not device.cuda_kernels and twin is None:
        return _backward_xp(xp, y, dy, axis, of_log)
    rows_y, rows_dy = Rows(xp, y, axis), Rows(xp, dy.astype(y.dtype, copy=False), axis)
    out = xp.empty_like(rows_y.data)
    if device.cuda_kernels:
        kernel = cuda_family("softmax")._backward_cuda
        cuda_family("blocks").launch_rows(kernel, xp, rows_y.data,
                                          (rows_y.data, rows_dy.data, out), (of_log,))
    else:
        twin(rows_y.data, rows_dy.data, out, of_log)
    return rows_y.restore(out)
