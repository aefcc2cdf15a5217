"""Neural-network functions: softmax, log-softmax and the activations, with their backward
rules."""
from __future__ import annotations

import math

from .. import kernels
from ..autodiff import composition_grads, record, recording
from ..symbolic import traced
from ..tensor import Tensor, as_tensor
from .reduce import normalize_axes
from .validate import check_number


def _softmax_grad(g, y, needs, axis):
    # Keeps the output y, not the input: dx = y * (g - sum(g * y)), one kernel pass.
    if recording():  # differentiable, for gradients of gradients
        return (y * (g - sum(g * y, axis=axis, keepdims=True)),)
    return (Tensor(kernels.softmax.backward(y.device, y.data, g.data, axis), y.device),)


@traced
def softmax(x, axis: int = -1) -> Tensor:
    """Keras: `K.softmax(x, axis=-1)`. Softmax of `x` along `axis`.

    Stable for large logits. The result remembers its logits, so
    `K.categorical_crossentropy(target, K.softmax(z))` takes the exact logits path, as Keras 2
    does. Raises ValueError for rank-1 input, as Keras does."""
    x = as_tensor(x, "softmax")
    if x.ndim <= 1:
        raise ValueError(f"softmax: cannot apply softmax to a tensor of shape {x.shape}; "
                         "expected rank >= 2 (Keras rejects 1-D input)")
    if x.dtype.kind != "f":
        raise TypeError(f"softmax: expected a float tensor, got {x.dtype.name}")
    out = softmax_any_rank(x, axis)
    out._logits = (softmax, x)
    return out


def softmax_any_rank(x: Tensor, axis: int) -> Tensor:
    """Softmax without Keras's rank check (crossentropy over a single row needs it)."""
    axis = normalize_axes(axis, x.ndim, "softmax")[0]
    data = kernels.softmax.forward(x.device, x.data, axis)
    if x._rg:
        return record(data, (x,), _softmax_grad, (axis,), save_output=True)
    return Tensor(data, x.device)


# -- activations ---------------------------------------------------------------------------------
# Forward and first-order backward run as one-pass kernels (kernels/elementwise.py), whose
# gradients at the kinks are TensorFlow's. Gradients of gradients: relu and hard_sigmoid are
# piecewise linear, so their gradient is `g * slope(x)` with a slope that is constant between
# kinks (the kernel's, from a gradient of ones): linear in g, and with TF's zero derivative in x.
# The smooth activations differentiate the same function composed of gpubk ops.

def _zero_grad(g, y, needs, x):
    return (zeros_like_data(x),)


def _slope(x: Tensor, op: int, params: tuple) -> Tensor:
    """The derivative of piecewise-linear activation `op` at `x`: constant between kinks, so
    its own gradient is zero (connected to x, as TensorFlow's ReluGrad is)."""
    ones = x.device.xp.ones_like(x.data)
    return record(kernels.elementwise.backward(x.device, op, x.data, ones, *params), (x,),
                  _zero_grad, (x,))


def _input_activation_grad(g, y, needs, x, op, composition, params):
    if recording():
        if composition is None:
            return (g * _slope(x, op, params),)
        return composition_grads(composition, (x,), g, needs)
    return (Tensor(kernels.elementwise.backward(x.device, op, x.data, g.data, *params),
                   x.device),)


def softplus_parts(x: Tensor) -> tuple:
    """TensorFlow's stable split of softplus(x) = relu_part + log1p(exp(neg_abs)), both written
    with selects on `x >= 0` so that the gradient at 0 is exactly sigmoid(0) = 0.5 (relu and abs
    would each give 0 there)."""
    positive = greater_equal(x, 0)
    return where(positive, x, zeros_like_data(x)), where(positive, -x, x)


def _softplus_composed(x: Tensor) -> Tensor:
    relu_part, neg_abs = softplus_parts(x)
    return relu_part + log(1.0 + exp(neg_abs))  # neg_abs <= 0: exp cannot overflow


def _output_activation_grad(g, y, needs, op, derivative):
    if recording():
        return (g * derivative(y),)
    return (Tensor(kernels.elementwise.backward(y.device, op, y.data, g.data), y.device),)


def _activation(x, func: str, op: int, composition=None, derivative=None,
                params: tuple = ()) -> Tensor:
    """Runs activation `op`. Its second-order backward differentiates `composition(x)` (the
    function in gpubk ops), or, for ops whose gradient comes from their output y, uses
    `derivative(y)`; with neither, `op` is piecewise linear (see `_slope`)."""
    x = as_tensor(x, func)
    if x.dtype.kind != "f":
        raise TypeError(f"{func}: expected a float tensor, got {x.dtype.name}")
    data = kernels.elementwise.forward(x.device, op, x.data, *params)
    if not x._rg:
        return Tensor(data, x.device)
    if op in kernels.elementwise.USES_OUTPUT:
        return record(data, (x,), _output_activation_grad, (op, derivative), save_output=True)
    return record(data, (x,), _input_activation_grad, (x, op, composition, params))


@traced
def relu(x, alpha: float = 0.0, max_value=None, threshold: float = 0.0) -> Tensor:
    """Keras: `K.relu(x, alpha=0.0, max_value=None, threshold=0.0)`. Rectified linear unit.

    `f(x) = max_value` for `x >= max_value`, `x` for `threshold < x < max_value`, and
    `alpha * (x - threshold)` otherwise (leaky when `alpha` is set).

    Gradients at the kinks are those of the TensorFlow op Keras 2 uses: `tf.nn.leaky_relu`
    when only `alpha` is set (slope `alpha` at 0), `tf.nn.relu6` for `max_value=6` without a
    threshold (0 at 0 and at 6), else relu (0 at the threshold) clipped by
    `tf.clip_by_value` (1 at `max_value`)."""
    alpha = float(check_number(alpha, "relu", "alpha"))
    threshold = float(check_number(threshold, "relu", "threshold"))
    low, high = (-math.inf, math.inf) if max_value is None else (
        0.0, float(check_number(max_value, "relu", "max_value")))
    top_open = high == 6.0 and threshold == 0.0  # Keras 2 calls tf.nn.relu6 here
    return _activation(x, "relu", kernels.elementwise.RELU,
                       params=(alpha, low, high, threshold, top_open))


@traced
def sigmoid(x) -> Tensor:
    """Keras: `K.sigmoid(x)`. Elementwise `1 / (1 + exp(-x))`. The result remembers its
    logits, so `K.binary_crossentropy(target, K.sigmoid(z))` works from z exactly."""
    x = as_tensor(x, "sigmoid")
    out = _activation(x, "sigmoid", kernels.elementwise.SIGMOID,
                      derivative=lambda y: y * (1.0 - y))
    out._logits = (sigmoid, x)
    return out


@traced
def hard_sigmoid(x) -> Tensor:
    """Keras: `K.hard_sigmoid(x)`. `0` below -2.5, `1` above 2.5, `0.2 * x + 0.5` between
    (a `tf.clip_by_value`: the gradient is 0.2 at ±2.5)."""
    return _activation(x, "hard_sigmoid", kernels.elementwise.HARD_SIGMOID)


@traced
def tanh(x) -> Tensor:
    """Keras: `K.tanh(x)`. Elementwise hyperbolic tangent."""
    return _activation(x, "tanh", kernels.elementwise.TANH, derivative=lambda y: 1.0 - y * y)


@traced
def elu(x, alpha: float = 1.0) -> Tensor:
    """Keras: `K.elu(x, alpha=1.0)`. `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise; the
    gradient at 0 is `alpha`, as TensorFlow's."""
    alpha = float(check_number(alpha, "elu", "alpha"))
    return _activation(
        x, "elu", kernels.elementwise.ELU,
        composition=lambda v: where(greater(v, 0), v, alpha * (exp(clip(v, None, 0.0)) - 1.0)),
        params=(alpha,))


@traced
def softplus(x) -> Tensor:
    """Keras: `K.softplus(x)`. `log(exp(x) + 1)`, computed without overflow for large `x`."""
    return _activation(x, "softplus", kernels.elementwise.SOFTPLUS,
                       composition=_softplus_composed)


@traced
def softsign(x) -> Tensor:
    """Keras: `K.softsign(x)`. `x / (1 + |x|)`."""
    return _activation(x, "softsign", kernels.elementwise.SOFTSIGN,
                       composition=lambda v: v / (1.0 + abs(v)))


@traced
def l2_normalize(x, axis=None) -> Tensor:
    """Keras: `K.l2_normalize(x, axis=None)`. `x / sqrt(max(sum(x ** 2, axis), 1e-12))`."""
    x = as_tensor(x, "l2_normalize")
    axes = normalize_axes(axis, x.ndim, "l2_normalize")
    return x / sqrt(maximum(sum(square(x), axis=axes, keepdims=True), 1e-12))


def _log_softmax_grad(g, y, needs, axis):
    if recording():
        return (g - exp(y) * sum(g, axis=axis, keepdims=True),)
    return (Tensor(kernels.softmax.backward(y.device, y.data, g.data, axis, True), y.device),)


@traced
def log_softmax(x, axis: int = -1) -> Tensor:
    """Log of the softmax along `axis`, computed stably as `x - max - log(sum(exp(x - max)))`."""
    x = as_tensor(x, "log_softmax")
    axis = normalize_axes(axis, x.ndim, "log_softmax")[0]
    data = kernels.softmax.forward(x.device, x.data, axis, True)
    if x._rg:
        return record(data, (x,), _log_softmax_grad, (axis,), save_output=True)
    return Tensor(data, x.device)


from .math import (  # noqa: E402
    abs, clip, exp, greater, greater_equal, log, maximum, sqrt, square, where, zeros_like_data)
from .reduce import sum  # noqa: E402
