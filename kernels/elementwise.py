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
from numba import cuda, njit, prange

from .fastmath import exp, expm1, log1p, maxnum
from .launch import ELEMENTWISE_THREADS, clamp, cpu_twin_applies, device_args
from .precision import like

RELU, SIGMOID, HARD_SIGMOID, TANH, ELU, SOFTPLUS, SOFTSIGN = range(7)
USES_OUTPUT = frozenset({SIGMOID, TANH})
CPU_TWIN_OPS = frozenset({SIGMOID, ELU, SOFTPLUS})


# -- CUDA ----------------------------------------------------------------------------------------
# Every constant is `like(v, c)`, in the type of v: float32 math for float32 (and float16)
# inputs; the scalar parameters arrive in that type too (see `_params`).
@cuda.jit(device=True)
def _sigmoid(v):
    """1 / (1 + exp(-v)) from exp(-|v|), which never overflows (the simulator's math.exp would
    raise where a GPU returns inf) and keeps full precision for very negative v."""
    one = like(v, 1.0)
    e = math.exp(-abs(v))
    return one / (one + e) if v >= like(v, 0.0) else e / (one + e)  # NaN: the second branch


@cuda.jit(device=True)
def _forward_one(op, v, alpha, low, high, threshold, top_open):
    zero, one = like(v, 0.0), like(v, 1.0)
    if op == RELU:
        if threshold == zero:  # tf.nn.relu
            r = zero if v <= zero else v
        else:  # x * cast(x > threshold), as Keras 2 writes it: -inf * 0 is NaN there too
            r = v if v > threshold else v * zero
        r = clamp(r, low, high)
        below = threshold - v
        return r - alpha * below if below > zero and alpha != zero else r  # 0 * inf is NaN
    if op == SIGMOID:
        return _sigmoid(v)
    if op == HARD_SIGMOID:
        return clamp(like(v, 0.2) * v + like(v, 0.5), zero, one)
    if op == TANH:
        return math.tanh(v)
    if op == ELU:
        return v if v > zero else alpha * math.expm1(v)
    if op == SOFTPLUS:
        return (v if v > zero else zero) + math.log1p(math.exp(-abs(v)))
    return v / (one + abs(v))  # SOFTSIGN


@cuda.jit(device=True)
def _backward_one(op, v, g, alpha, low, high, threshold, top_open):
    """`v` is the input, or the output for the USES_OUTPUT ops."""
    zero, one = like(v, 0.0), like(v, 1.0)
    if op == RELU:
        if threshold == zero and high == math.inf:  # tf.nn.leaky_relu (or relu: alpha 0)
            return g if v > zero else g * alpha
        inside = v > threshold and v >= low and (v < high if top_open else v <= high)
        return g * ((one if inside else zero) + (alpha if v < threshold else zero))
    if op == SIGMOID:
        return g * v * (one - v)
    if op == HARD_SIGMOID:
        h = like(v, 0.2) * v + like(v, 0.5)
        # clip_by_value: the gradient passes at the bounds
        return zero if h < zero or h > one else g * like(v, 0.2)
    if op == TANH:
        return g * (one - v * v)
    if op == ELU:  # TF's EluGrad: g where elu(x) >= 0 (x = 0 and NaN too), times alpha there
        return g if v > zero else g * alpha * (math.exp(v) if v < zero else one)
    if op == SOFTPLUS:
        return g * _sigmoid(v)
    d = one + abs(v)  # SOFTSIGN
    return g / (d * d)


@cuda.jit(cache=True)
def _forward_cuda(x, out, op, alpha, low, high, threshold, top_open):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = _forward_one(op, x[i], alpha, low, high, threshold, top_open)


@cuda.jit(cache=True)
def _backward_cuda(v, dy, dx, op, alpha, low, high, threshold, top_open):
    for i in range(cuda.grid(1), v.shape[0], cuda.gridsize(1)):
        dx[i] = _backward_one(op, v[i], dy[i], alpha, low, high, threshold, top_open)


# What the launchers below pass (for the audit, gpubk.kernels.audit): flat contiguous arrays in
# the work dtype (float16 is computed in float32), the op code, and the scalar parameters.
LAUNCHES = {
    "_forward_cuda": [f"void({t}[::1], {t}[::1], int64, {t}, {t}, {t}, {t}, boolean)"
                      for t in ("float32", "float64")],
    "_backward_cuda": [f"void({t}[::1], {t}[::1], {t}[::1], int64, {t}, {t}, {t}, {t}, boolean)"
                       for t in ("float32", "float64")],
}


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
        if threshold == 0 and high == math.inf:
            return xp.where(v > 0, g, g * alpha) if alpha else g * (v > 0)
        inside = (v > threshold) & (v >= low) & ((v < high) if top_open else (v <= high))
        grad = g * inside
        return grad + (g * alpha) * (v < threshold) if alpha else grad
    if op == SIGMOID:
        return g * v * (1 - v)
    if op == HARD_SIGMOID:
        h = v * 0.2 + 0.5
        return g * 0.2 * ~((h < 0) | (h > 1))
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


def _grid(n: int) -> int:
    return max(1, min((n + ELEMENTWISE_THREADS - 1) // ELEMENTWISE_THREADS, 65_535))


def _twin_applies(op, a) -> bool:
    return op in CPU_TWIN_OPS and cpu_twin_applies(a)


def forward(device, op: int, x, alpha=0.0, low=-math.inf, high=math.inf, threshold=0.0,
            top_open=False):
    """Activation `op` of `x`, as a new array of `x`'s kind, shape and dtype."""
    xp = device.xp
    if x.size and device.cuda_kernels:
        flat = _flat(xp, x, _work_dtype(x))
        out = xp.empty_like(flat)
        args, stream = device_args(xp, flat, out)
        _forward_cuda[_grid(flat.size), ELEMENTWISE_THREADS, stream](
            *args, op, *_params(flat.dtype, alpha, low, high, threshold), top_open)
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
        args, stream = device_args(xp, flat_v, flat_g, out)
        _backward_cuda[_grid(flat_v.size), ELEMENTWISE_THREADS, stream](
            *args, op, *_params(dtype, alpha, low, high, threshold), top_open)
        return out.reshape(v.shape).astype(v.dtype, copy=False)
    if _twin_applies(op, v):
        flat_v, flat_g = _flat(xp, v, v.dtype), _flat(xp, g, v.dtype)
        out = np.empty_like(flat_v)
        _backward_cpu(flat_v, flat_g, out, op, alpha)
        return out.reshape(v.shape)
    return _backward_xp(xp, op, v, g, alpha, low, high, threshold, top_open).astype(
        v.dtype, copy=False)
