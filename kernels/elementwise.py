"""Activations and their gradients, one pass each: read the input once, write the output once.

Ops are named by the integer codes below (RELU ... SOFTSIGN). Forward kernels take `x`; backward
kernels take the input `x`, except SIGMOID and TANH, whose gradients come from their output `y`
(`USES_OUTPUT`), so that a tape keeps one buffer per activation.

relu follows Keras 2 (TensorFlow) exactly: `r = x if x > threshold else 0`, clipped to
[0, max_value] when max_value is given, minus `alpha * max(threshold - x, 0)`; its parameters
reach the kernels as `(alpha, low, high, threshold, top_open)` with `low = -inf, high = inf` when
there is no max_value. Its gradient at the kinks is TensorFlow's, from the op Keras 2 picks:
`tf.nn.leaky_relu` (no max_value, threshold 0: slope alpha at 0 and for NaN), `tf.nn.relu6`
(max_value 6, threshold 0: `top_open`, 0 at both 0 and 6), else relu (0 at the threshold) with
`tf.clip_by_value` (passes at max_value).

NaN propagates as in NumPy and TensorFlow: every comparison below is written so that a NaN
input fails it and passes through (`0 if v <= t else v`, never `max(v, 0)`: Numba compiles
`max` to a select that drops NaN, while the simulator runs Python's `max`, which keeps it).
Gradients at NaN inputs follow TensorFlow's kernels: where TF selects on a comparison (leaky
relu, elu, clip_by_value inside hard_sigmoid) a NaN input takes the non-kink branch.

The binary arithmetic ops are not here: on the GPU they stay CuPy's ufuncs, which are already
one-pass elementwise kernels reading each input once (a Numba kernel could at best tie them; the
GPU benchmark, bench/gpu_check.sh, measures them against the device copy bandwidth).

CPU twins exist for the ops where the benchmark (bench/kernels_cpu.py) shows them beating NumPy
over large arrays: the ones built on exp, which NumPy computes in several passes
(`CPU_TWIN_OPS`). relu, hard_sigmoid, softsign and tanh are one or two NumPy passes (tanh has a
vectorised NumPy implementation) and stay NumPy.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .fastmath import exp, expm1, log1p, maxnum
from .launch import cpu_twin_applies, cuda_family

RELU, SIGMOID, HARD_SIGMOID, TANH, ELU, SOFTPLUS, SOFTSIGN = range(7)
USES_OUTPUT = frozenset({SIGMOID, TANH})
CPU_TWIN_OPS = frozenset({SIGMOID, ELU, SOFTPLUS})


# -- CPU twins (CPU_TWIN_OPS) ---------------------------------------------------------------------
@njit(parallel=True, fastmath={"contract"}, cache=True)
def _forward_cpu(x, out, op, alpha):
    one = x.dtype.type(1)
    alpha = x.dtype.type(alpha)
    if op == SIGMOID:
        for i in prange(x.shape[0]):
            out[i] = one / (one + exp(-x[i]))
    elif op == ELU:
        for i in prange(x.shape[0]):
            v = x[i]
            out[i] = v if v > 0 else alpha * expm1(v)
    else:  # SOFTPLUS: log1p keeps the precision for very negative x
        zero = x.dtype.type(0)
        for i in prange(x.shape[0]):
            v = x[i]
            out[i] = maxnum(v, zero) + log1p(exp(-abs(v)))


@njit(parallel=True, fastmath={"contract"}, cache=True)
def _backward_cpu(v, dy, dx, op, alpha):
    one = v.dtype.type(1)
    alpha = v.dtype.type(alpha)
    if op == SIGMOID:
        for i in prange(v.shape[0]):
            dx[i] = dy[i] * v[i] * (one - v[i])
    elif op == ELU:  # as _backward_one
        for i in prange(v.shape[0]):
            dx[i] = dy[i] if v[i] > 0 else dy[i] * alpha * (exp(v[i]) if v[i] < 0 else one)
    else:  # SOFTPLUS
        for i in prange(v.shape[0]):
            dx[i] = dy[i] / (one + exp(-v[i]))


# -- NumPy / CuPy --------------------------------------------------------------------------------
def _forward_xp(xp, op, x, alpha, low, high, threshold, top_open):
    if op == RELU:  # x * (x > t), as Keras 2: NaN stays NaN
        r = x * (x > threshold) if threshold != 0 else xp.maximum(x, 0)
        if low != -math.inf or high != math.inf:
            r = xp.clip(r, low, high)
        return r - alpha * xp.maximum(threshold - x, 0) if alpha else r
    if op == SIGMOID:
        with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x: sigmoid is 0
            return 1 / (1 + xp.exp(-x))
    if op == HARD_SIGMOID:
        return xp.clip(x * 0.2 + 0.5, 0, 1)
    if op == TANH:
        return xp.tanh(x)
    if op == ELU:
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))
    if op == SOFTPLUS:
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
    return x / (1 + xp.abs(x))


def _backward_xp(xp, op, v, g, alpha, low, high, threshold, top_open):
    if op == RELU:  # as _backward_one
        if threshold == 0 and low == -math.inf:  # no max_value: tf.nn.leaky_relu (or relu)
            return xp.where(v > 0, g, g * alpha) if alpha else g * (v > 0)
        inside = (v > threshold) & (v >= low) & ((v < high) if top_open else (v <= high))
        grad = g * inside
        return grad + (g * alpha) * (v < threshold) if alpha else grad
    if op == SIGMOID:
        return g * v * (1 - v)
    if op == HARD_SIGMOID:
        h = v * 0.2 + 0.5
        return xp.where((h < 0) | (h > 1), 0, g * 0.2)  # a select: 0 even for an inf g
    if op == TANH:
        return g * (1 - v * v)
    if op == ELU:
        return xp.where(v > 0, g, g * (alpha * xp.exp(xp.fmin(v, 0))))  # fmin: NaN -> 0
    if op == SOFTPLUS:
        with np.errstate(over="ignore"):  # as sigmoid
            return g / (1 + xp.exp(-v))
    d = 1 + xp.abs(v)
    return g / (d * d)


# -- launchers -----------------------------------------------------------------------------------
def _flat(xp, a, dtype):
    return xp.ascontiguousarray(a, dtype=dtype).reshape(-1)


def _work_dtype(a):
    return np.dtype(np.float32) if a.dtype == np.float16 else a.dtype


def _params(dtype, *values) -> tuple:
    """The scalar parameters in the kernel's work dtype (float32 math for float32 arrays; a
    threshold is compared in the input's precision, as TensorFlow converts it)."""
    return tuple(dtype.type(v) for v in values)


def _twin_applies(op, a) -> bool:
    return op in CPU_TWIN_OPS and cpu_twin_applies(a)


def forward(device, op: int, x, alpha=0.0, low=-math.inf, high=math.inf, threshold=0.0,
            top_open=False):
    """Activation `op` of `x`, as a new array of `x`'s kind, shape and dtype."""
    xp = device.xp
    if x.size and device.cuda_kernels:
        flat = _flat(xp, x, _work_dtype(x))
        out = xp.empty_like(flat)
        cuda_family("blocks").launch_flat(
            cuda_family("elementwise")._forward_cuda, xp, flat.size, (flat, out),
            (op, *_params(flat.dtype, alpha, low, high, threshold), top_open))
        return out.reshape(x.shape).astype(x.dtype, copy=False)
    if _twin_applies(op, x):
        flat = _flat(xp, x, x.dtype)
        out = np.empty_like(flat)
        _forward_cpu(flat, out, op, alpha)
        return out.reshape(x.shape)
    return _forward_xp(xp, op, x, alpha, low, high, threshold, top_open).astype(
        x.dtype, copy=False)


def backward(device, op: int, v, g, alpha=0.0, low=-math.inf, high=math.inf, threshold=0.0,
             top_open=False):
    """The input gradient of activation `op` from `v` (its input, or its output for the
    USES_OUTPUT ops) and the output gradient `g`, in one pass."""
    xp = device.xp
    if v.size and device.cuda_kernels:
        dtype = _work_dtype(v)
        flat_v, flat_g = _flat(xp, v, dtype), _flat(xp, g, dtype)
        out = xp.empty_like(flat_v)
        cuda_family("blocks").launch_flat(
            cuda_family("elementwise")._backward_cuda, xp, flat_v.size, (flat_v, flat_g, out),
            (op, *_params(dtype, alpha, low, high, threshold), top_open))
        return out.reshape(v.shape).astype(v.dtype, copy=False)
    if _twin_applies(op, v):
        flat_v, flat_g = _flat(xp, v, v.dtype), _flat(xp, g, v.dtype)
        out = np.empty_like(flat_v)
        _backward_cpu(flat_v, flat_g, out, op, alpha)
        return out.reshape(v.shape)
    return _backward_xp(xp, op, v, g, alpha, low, high, threshold, top_open).astype(
        v.dtype, copy=False)
