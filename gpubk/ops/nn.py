"""Neural-network functions: softmax, log-softmax and the activations, as declared primitives
whose forward and backward run as one-pass kernels (gpubk.kernels: CUDA, CPU twins, or array
code by size).

Each backward is itself a primitive (softmax_grad, relu_grad, ...) with its own vjp written in
gpubk functions, so there is one backward path: first-order gradients run the kernel, and
gradients of gradients differentiate the backward primitive, recorded or staged like any op.
"""
from __future__ import annotations

import math

from .. import kernels
from ..core.primitive import Primitive, as_input, bind, same_as_input
from ..tensor import Tensor
from .math import (
    abs, exp, greater_equal, less, maximum, sign, sqrt, square, where, zeros_like_data)
from .reduce import normalize_axes, sum
from .validate import check_number


def _same_as_second(v, g, **params) -> tuple:
    return g.shape, g.dtype


# -- softmax and log-softmax -----------------------------------------------------------------
def _row_primitives(name: str, log: bool) -> tuple:
    """The forward and backward primitives of a row function (softmax or log-softmax along
    `axis`); both backward rules read the output y, not the input."""
    forward = Primitive(name, remembers_input=not log)
    forward.def_impl(lambda device, a, *, axis: kernels.softmax.forward(device, a, axis, log))
    forward.def_abstract(same_as_input)
    backward = Primitive(f"{name}_grad")
    backward.def_impl(
        lambda device, y, g, *, axis: kernels.softmax.backward(device, y, g, axis, log))
    backward.def_abstract(_same_as_second)
    forward.def_vjp(lambda g, y, needs, x, *, axis: (bind(backward, y, g, axis=axis),),
                    output=True)
    return forward, backward


softmax_p, softmax_grad_p = _row_primitives("softmax", log=False)
log_softmax_p, log_softmax_grad_p = _row_primitives("log_softmax", log=True)


def _softmax_grad_vjp(u, out, needs, y, g, *, axis):
    # out = y * (g - s) with s = sum(g * y): d/dy = u * (g - s) - sum(u * y) * g,
    # d/dg = y * (u - sum(u * y)), which is softmax_grad(y, u) again.
    uy = sum(u * y, axis=axis, keepdims=True)
    return (u * (g - sum(g * y, axis=axis, keepdims=True)) - uy * g if needs[0] else None,
            bind(softmax_grad_p, y, u, axis=axis) if needs[1] else None)


def _log_softmax_grad_vjp(u, out, needs, y, g, *, axis):
    # out = g - exp(y) * sum(g): d/dy = -u * exp(y) * sum(g), d/dg = u - sum(u * exp(y)).
    e = exp(y)
    return (-u * e * sum(g, axis=axis, keepdims=True) if needs[0] else None,
            u - sum(u * e, axis=axis, keepdims=True) if needs[1] else None)


softmax_grad_p.def_vjp(_softmax_grad_vjp, saves=(0, 1))
log_softmax_grad_p.def_vjp(_log_softmax_grad_vjp, saves=(0, 1))


def softmax(x, axis: int = -1) -> Tensor:
    """Keras: `K.softmax(x, axis=-1)`. Softmax of `x` along `axis`.

    Stable for large logits. The result remembers its logits, so
    `K.categorical_crossentropy(target, K.softmax(z))` takes the exact logits path, as Keras 2
    does. Raises ValueError for rank-1 input, as Keras does."""
    x = as_input(x, "softmax")
    if x.ndim <= 1:
        raise ValueError(f"softmax: cannot apply softmax to a tensor of shape {x.shape}; "
                         "expected rank >= 2 (Keras rejects 1-D input)")
    if x.dtype.kind != "f":
        raise TypeError(f"softmax: expected a float tensor, got {x.dtype.name}")
    return softmax_any_rank(x, axis)


def softmax_any_rank(x, axis: int):
    """Softmax without Keras's rank check (crossentropy over a single row needs it)."""
    return bind(softmax_p, x, axis=normalize_axes(axis, x.ndim, "softmax")[0])


def log_softmax(x, axis: int = -1) -> Tensor:
    """Log of the softmax along `axis`, computed stably as `x - max - log(sum(exp(x - max)))`."""
    x = as_input(x, "log_softmax")
    return bind(log_softmax_p, x, axis=normalize_axes(axis, x.ndim, "log_softmax")[0])


# -- activations ---------------------------------------------------------------------------------
# Forward and first-order backward run as one-pass kernels (kernels/elementwise.py), whose
# gradients at the kinks are TensorFlow's. The backward primitive's own vjp gives gradients of
# gradients: for the piecewise-linear activations (relu, hard_sigmoid) it is `u * slope(x)` in g
# and zero in x (TensorFlow's ReluGrad); for the smooth ones, their second derivative.

def _activation_primitives(name: str, op: int, second_derivative,
                           remembers_input: bool = False) -> Primitive:
    """The primitive of activation `op` and its backward primitive; `second_derivative(v, g,
    params)` is d(backward)/dv times the cotangent's factor (see `_activation_grad_vjp`),
    with v the input, or the output for the ops in kernels.elementwise.USES_OUTPUT."""
    uses_output = op in _USES_OUTPUT
    forward = Primitive(name, elementwise=True, remembers_input=remembers_input)
    forward.def_impl(
        lambda device, a, *, params: kernels.elementwise.forward(device, op, a, *params))
    forward.def_abstract(same_as_input)
    backward = Primitive(f"{name}_grad", elementwise=True)
    backward.def_impl(
        lambda device, v, g, *, params: kernels.elementwise.backward(device, op, v, g, *params))
    backward.def_abstract(_same_as_second)

    def backward_vjp(u, out, needs, v, g, *, params):
        return (u * second_derivative(v, g, params) if needs[0] else None,
                bind(backward, v, u, params=params) if needs[1] else None)
    backward.def_vjp(backward_vjp, saves=(0, 1))
    if uses_output:
        forward.def_vjp(lambda g, y, needs, x, *, params:
                        (bind(backward, y, g, params=params),), output=True)
    else:
        forward.def_vjp(lambda g, y, needs, x, *, params:
                        (bind(backward, x, g, params=params),), saves=(0,))
    return forward


def _sigmoid_of(x):
    return bind(sigmoid_p, x, params=())


_USES_OUTPUT = frozenset({1, 3})  # SIGMOID, TANH (kernels.elementwise.USES_OUTPUT; checked
                                  # against it by tests, so that kernels load lazily)
relu_p = _activation_primitives("relu", 0, lambda x, g, params: zeros_like_data(x))
sigmoid_p = _activation_primitives("sigmoid", 1, lambda y, g, params: g * (1.0 - 2.0 * y),
                                   remembers_input=True)
hard_sigmoid_p = _activation_primitives("hard_sigmoid", 2,
                                        lambda x, g, params: zeros_like_data(x))
tanh_p = _activation_primitives("tanh", 3, lambda y, g, params: -2.0 * g * y)
elu_p = _activation_primitives(  # TF's EluGradGrad: zero at 0 and above
    "elu", 4, lambda x, g, params: where(less(x, 0), g * params[0] * exp(x),
                                         zeros_like_data(x)))
softplus_p = _activation_primitives(
    "softplus", 5, lambda x, g, params: g * _sigmoid_of(x) * (1.0 - _sigmoid_of(x)))
softsign_p = _activation_primitives(
    "softsign", 6, lambda x, g, params: -2.0 * g * sign(x) / (1.0 + abs(x)) ** 3)


def _activation(p: Primitive, x, func: str, params: tuple = ()):
    x = as_input(x, func)
    if x.dtype.kind != "f":
        raise TypeError(f"{func}: expected a float tensor, got {x.dtype.name}")
    return bind(p, x, params=params)


def softplus_parts(x: Tensor) -> tuple:
    """TensorFlow's stable split of softplus(x) = relu_part + log1p(exp(neg_abs)), both written
    with selects on `x >= 0` so that the gradient at 0 is exactly sigmoid(0) = 0.5 (relu and abs
    would each give 0 there)."""
    positive = greater_equal(x, 0)
    return where(positive, x, zeros_like_data(x)), where(positive, -x, x)


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
    return _activation(relu_p, x, "relu", (alpha, low, high, threshold, top_open))


def sigmoid(x) -> Tensor:
    """Keras: `K.sigmoid(x)`. Elementwise `1 / (1 + exp(-x))`. The result remembers its
    logits, so `K.binary_crossentropy(target, K.sigmoid(z))` works from z exactly."""
    return _activation(sigmoid_p, x, "sigmoid")


def hard_sigmoid(x) -> Tensor:
    """Keras: `K.hard_sigmoid(x)`. `0` below -2.5, `1` above 2.5, `0.2 * x + 0.5` between
    (a `tf.clip_by_value`: the gradient is 0.2 at ±2.5)."""
    return _activation(hard_sigmoid_p, x, "hard_sigmoid")


def tanh(x) -> Tensor:
    """Keras: `K.tanh(x)`. Elementwise hyperbolic tangent."""
    return _activation(tanh_p, x, "tanh")


def elu(x, alpha: float = 1.0) -> Tensor:
    """Keras: `K.elu(x, alpha=1.0)`. `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise; the
    gradient at 0 is `alpha`, as TensorFlow's."""
    alpha = float(check_number(alpha, "elu", "alpha"))
    return _activation(elu_p, x, "elu", (alpha,))


def softplus(x) -> Tensor:
    """Keras: `K.softplus(x)`. `log(exp(x) + 1)`, computed without overflow for large `x`."""
    return _activation(softplus_p, x, "softplus")


def softsign(x) -> Tensor:
    """Keras: `K.softsign(x)`. `x / (1 + |x|)`."""
    return _activation(softsign_p, x, "softsign")


def l2_normalize(x, axis=None) -> Tensor:
    """Keras: `K.l2_normalize(x, axis=None)`. `x / sqrt(max(sum(x ** 2, axis), 1e-12))`."""
    x = as_input(x, "l2_normalize")
    axes = normalize_axes(axis, x.ndim, "l2_normalize")
    return x / sqrt(maximum(sum(square(x), axis=axes, keepdims=True), 1e-12))
