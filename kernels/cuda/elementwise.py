"""The CUDA kernels of `gpubk.kernels.elementwise`: one thread per element (grid-stride)."""
from __future__ import annotations

import math

from numba import cuda

from ..elementwise import ELU, HARD_SIGMOID, RELU, SIGMOID, SOFTPLUS, TANH
from ..precision import like
from .blocks import clamp


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
        if threshold == zero and low == -math.inf:  # no max_value: tf.nn.leaky_relu (or relu)
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
