"""Neural-network functions: softmax, log-softmax, relu, tanh, with their backward rules."""
from __future__ import annotations

from ..autodiff import record
from ..tensor import Tensor, as_tensor
from .reduce import normalize_axes


def _softmax_data(xp, a, axis: int):
    if a.size == 0:
        return xp.empty_like(a)
    # Array methods rather than xp.max/xp.sum: the same on NumPy and CuPy, and cheaper to call.
    e = xp.exp(a - a.max(axis=axis, keepdims=True))  # never overflows, even for logits of 1e4
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _softmax_grad(g, y, needs, axis):
    # Keeps the output y, not the input: dx = y * (g - sum(g * y)).
    return (y * (g - sum(g * y, axis=axis, keepdims=True)),)


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
    out._logits = x
    return out


def softmax_any_rank(x: Tensor, axis: int) -> Tensor:
    """Softmax without Keras's rank check (crossentropy over a single row needs it)."""
    axis = normalize_axes(axis, x.ndim, "softmax")[0]
    data = _softmax_data(x.device.xp, x.data, axis)
    if x._rg:
        return record(data, (x,), _softmax_grad, (axis,), save_output=True)
    return Tensor(data, x.device)


def _relu_grad(g, y, needs, x):
    return (where(greater(x, 0), g, zeros_like_data(g)),)


def _plain_relu(x: Tensor) -> Tensor:
    data = x.device.xp.maximum(x.data, 0)
    if x._rg:
        return record(data, (x,), _relu_grad, (x,))
    return Tensor(data, x.device)


def relu(x, alpha: float = 0.0, max_value=None, threshold: float = 0.0) -> Tensor:
    """Keras: `K.relu(x, alpha=0.0, max_value=None, threshold=0.0)`. Rectified linear unit.

    `f(x) = max_value` for `x >= max_value`, `x` for `threshold <= x < max_value`, and
    `alpha * (x - threshold)` otherwise."""
    x = as_tensor(x, "relu")
    if alpha != 0.0 and max_value is None and threshold == 0.0:
        return where(greater(x, 0), x, x * alpha)  # leaky relu
    negative_part = _plain_relu(-x + threshold) if alpha != 0.0 else None
    if threshold != 0.0:
        y = x * cast(greater(x, threshold), x.dtype)
    else:
        y = _plain_relu(x)
    if max_value is not None:
        y = clip(y, 0, max_value)
    if negative_part is not None:
        y = y - alpha * negative_part
    return y


def _tanh_grad(g, y, needs):
    return (g * (1.0 - y * y),)


def tanh(x) -> Tensor:
    """Keras: `K.tanh(x)`. Elementwise hyperbolic tangent."""
    x = as_tensor(x, "tanh")
    data = x.device.xp.tanh(x.data)
    if x._rg:
        return record(data, (x,), _tanh_grad, save_output=True)
    return Tensor(data, x.device)


def _log_softmax_data(xp, a, axis: int):
    if a.size == 0:
        return xp.empty_like(a)
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def _log_softmax_grad(g, y, needs, axis):
    return (g - exp(y) * sum(g, axis=axis, keepdims=True),)


def log_softmax(x, axis: int = -1) -> Tensor:
    """Log of the softmax along `axis`, computed stably as `x - max - log(sum(exp(x - max)))`."""
    x = as_tensor(x, "log_softmax")
    axis = normalize_axes(axis, x.ndim, "log_softmax")[0]
    data = _log_softmax_data(x.device.xp, x.data, axis)
    if x._rg:
        return record(data, (x,), _log_softmax_grad, (axis,), save_output=True)
    return Tensor(data, x.device)


from .math import cast, clip, exp, greater, where, zeros_like_data  # noqa: E402
from .reduce import sum  # noqa: E402
