"""Activations and their gradients, one pass each: read the input once, write the output once.

Ops are named by the integer codes below (RELU ... SOFTSIGN). Each one's scalar formula is
written once, in formulas.py (`FORMULAS[op]`), with its kink and NaN rules (TensorFlow's, as
Keras 2 calls it); its CUDA kernels (cuda/elementwise.py) and its CPU twins (below) are
generated from it (generate.py), one kernel per op and direction, on first use. Forward kernels
take `x`; backward kernels take the input `x`, except SIGMOID and TANH, whose gradients come
from their output `y` (`USES_OUTPUT`), so that a tape keeps one buffer per activation.

The launchers take every parameter an activation may have, `(alpha, low, high, threshold,
top_open)` (relu's; elu takes alpha; `low = -inf, high = inf` when relu has no max_value), and
pass each kernel the ones its formula names, as a tuple in the work dtype.

The NumPy/CuPy array code (`_forward_xp`, `_backward_xp`) runs on the CPU for small arrays and
for the ops without a CPU twin; it follows the same rules as the formulas (tests/test_kinks.py
and tests/test_nan_activations.py check every path against TensorFlow's definitions).

The binary arithmetic ops are not here: on the GPU they stay CuPy's ufuncs, which are already
one-pass elementwise kernels reading each input once (a Numba kernel could at best tie them; the
GPU benchmark, bench/gpu_check.sh, measures them against the device copy bandwidth).

CPU twins exist for the ops where a benchmark of the twins against NumPy over large arrays shows
them winning: the ones built on exp, which NumPy computes in several passes (`CPU_TWIN_OPS`).
relu, hard_sigmoid, softsign and tanh are one or two NumPy passes (tanh has a vectorised NumPy
implementation) and stay NumPy.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, prange

from . import formulas, generate
from . import launch
from .launch import cpu_twin_applies, cuda_family

RELU, SIGMOID, HARD_SIGMOID, TANH, ELU, SOFTPLUS, SOFTSIGN = range(7)
FORMULAS = formulas.ACTIVATIONS  # FORMULAS[op]
assert [f.name for f in FORMULAS] == ["relu", "sigmoid", "hard_sigmoid", "tanh", "elu",
                                      "softplus", "softsign"]
USES_OUTPUT = frozenset(op for op, f in enumerate(FORMULAS) if f.uses_output)
CPU_TWIN_OPS = frozenset({SIGMOID, ELU, SOFTPLUS})


# -- CPU twins (CPU_TWIN_OPS), generated from the formulas ----------------------------------------
# Loop templates: `formula` is the op's scalar formula compiled for the CPU (generate.scalar),
# inlined by LLVM into the loop, which vectorises. `params` is the tuple of the formula's
# parameters, in the arrays' dtype.
def _forward_twin(x, out, params):
    for i in prange(x.shape[0]):
        out[i] = formula(x[i], *params)  # noqa: F821 (set per op by generate.instantiate)


def _backward_twin(v, g, out, params):
    for i in prange(v.shape[0]):
        out[i] = formula(v[i], g[i], *params)  # noqa: F821


_TWIN_TEMPLATES = {"forward": _forward_twin, "backward": _backward_twin}


@functools.cache
def cpu_twin(op: int, direction: str):
    """The CPU twin of op `op` in `direction` ("forward" or "backward"), compiled on first call
    for each dtype and cached on disk: `twin(x, out, params)` or `twin(v, g, out, params)` on
    flat contiguous arrays, `params` as `kernel_params` gives them."""
    formula = FORMULAS[op]
    fn = getattr(formula, direction)
    kernel = generate.instantiate(_TWIN_TEMPLATES[direction], f"{formula.name}_{direction}",
                                  fn, "cpu")
    return njit(parallel=True, cache=True, **generate.CPU_SCALAR_OPTIONS)(kernel)


# For each op, where each parameter of its formula sits among the launchers' (alpha, low, high,
# threshold, top_open), and whether it is a flag.
_PARAM_SLOTS = tuple(tuple((formulas.PARAM_NAMES.index(name), formulas.PARAMS[
    formulas.PARAM_NAMES.index(name)].is_flag) for name in f.params) for f in FORMULAS)


def kernel_params(op: int, dtype, alpha=0.0, low=-math.inf, high=math.inf, threshold=0.0,
                  top_open=False) -> tuple:
    """The parameters op `op`'s formula takes, in its order, as the kernels take them: floats
    in the work dtype (float32 math for float32 arrays; a threshold is compared in the input's
    precision, as TensorFlow converts it), flags as bools."""
    values = (alpha, low, high, threshold, top_open)
    return tuple(bool(values[i]) if flag else dtype.type(values[i])
                 for i, flag in _PARAM_SLOTS[op])


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
        # expm1 of x itself where x <= 0 (not of minimum(x, 0), which may turn -0.0 into
        # +0.0): elu(-0.0) is -0.0 and elu(+0.0) is +0.0, as tf.nn.elu gives them
        return xp.where(x > 0, x, alpha * xp.expm1(xp.where(x > 0, 0, x)))
    if op == SOFTPLUS:
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
    return x / (1 + xp.abs(x))


def _backward_xp(xp, op, v, g, alpha, low, high, threshold, top_open):
    if op == RELU:  # as formulas.relu_backward
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


def _twin_applies(op, a) -> bool:
    return op in CPU_TWIN_OPS and cpu_twin_applies(a)


def _cuda_kernel(op: int, direction: str):
    """The generated CUDA kernel (cuda/elementwise.py), looked up by its stable name."""
    return getattr(cuda_family("elementwise"), f"{FORMULAS[op].name}_{direction}")


def forward(device, op: int, x, alpha=0.0, low=-math.inf, high=math.inf, threshold=0.0,
            top_open=False):
    """Activation `op` of `x`, as a new array of `x`'s kind, shape and dtype."""
    xp = device.xp
    values = (alpha, low, high, threshold, top_open)
    if x.size and device.cuda_kernels:
        flat = _flat(xp, x, _work_dtype(x))
        out = xp.empty_like(flat)
        cuda_family("blocks").launch_flat(
            _cuda_kernel(op, "forward"), xp, flat.size, (flat, out),
            (kernel_params(op, flat.dtype, *values),))
        return out.reshape(x.shape).astype(x.dtype, copy=False)
    if _twin_applies(op, x):
        flat = _flat(xp, x, x.dtype)
        out = np.empty_like(flat)
        launch.cpu_twin(cpu_twin(op, "forward"), flat)(
            flat, out, kernel_params(op, flat.dtype, *values))
        return out.reshape(x.shape)
    return _forward_xp(xp, op, x, *values).astype(x.dtype, copy=False)


def backward(device, op: int, v, g, alpha=0.0, low=-math.inf, high=math.inf, threshold=0.0,
             top_open=False):
    """The input gradient of activation `op` from `v` (its input, or its output for the
    USES_OUTPUT ops) and the output gradient `g`, in one pass."""
    xp = device.xp
    values = (alpha, low, high, threshold, top_open)
    if v.size and device.cuda_kernels:
        dtype = _work_dtype(v)
        flat_v, flat_g = _flat(xp, v, dtype), _flat(xp, g, dtype)
        out = xp.empty_like(flat_v)
        cuda_family("blocks").launch_flat(
            _cuda_kernel(op, "backward"), xp, flat_v.size, (flat_v, flat_g, out),
            (kernel_params(op, dtype, *values),))
        return out.reshape(v.shape).astype(v.dtype, copy=False)
    if _twin_applies(op, v):
        flat_v, flat_g = _flat(xp, v, v.dtype), _flat(xp, g, v.dtype)
        out = np.empty_like(flat_v)
        launch.cpu_twin(cpu_twin(op, "backward"), flat_v)(
            flat_v, flat_g, out, kernel_params(op, flat_v.dtype, *values))
        return out.reshape(v.shape)
    return _backward_xp(xp, op, v, g, *values).astype(v.dtype, copy=False)
