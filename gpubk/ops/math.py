"""Elementwise arithmetic, unary math, casts and comparisons, with their backward rules.

Binary ops broadcast like NumPy; each backward rule sums its gradient back to its input's shape
(`sum_to`). Python scalars and host arrays take the tensor operand's dtype, so `x * 2.0` stays
float32 (as in Keras); two tensors of different dtypes promote as in NumPy.
"""
from __future__ import annotations

import operator

import numpy as np

from ..autodiff import record
from ..config import floatx
from ..dtypes import as_dtype
from ..symbolic import traced
from ..tensor import Tensor, as_tensor, to_array
from .validate import check_number


# -- operands --------------------------------------------------------------------------------
def _join(value, like: Tensor, func: str) -> Tensor:
    """A non-tensor operand as a constant tensor on `like`'s device, in `like`'s dtype where
    that loses nothing (Python scalars, and float arrays next to a float tensor)."""
    if isinstance(value, (int, float)):  # Python scalars are weak: they take the tensor's dtype
        kind = like.dtype.kind
        if kind == "f" or kind in "iu" and isinstance(value, int) or \
                kind == "b" and isinstance(value, bool):
            dtype = like.dtype
        else:
            dtype = floatx() if isinstance(value, float) else None
        array = np.asarray(value, dtype=dtype)
    else:
        array = to_array(value, None, func)
        if like.dtype.kind == "f" and array.dtype.kind in "fiub":
            array = array.astype(like.dtype, copy=False)
    return Tensor(like.device.put(array), like.device)


def operands(x, y, func: str) -> tuple[Tensor, Tensor]:
    """Both operands of a binary op as tensors on one device (mixing devices is an error)."""
    if isinstance(x, Tensor):
        if isinstance(y, Tensor):
            if x.device is not y.device:
                raise ValueError(
                    f"{func}: operands are on different devices ({x.device.name} and "
                    f"{y.device.name}); move one with K.to_device(x, device) first")
            return x, y
        return x, _join(y, x, func)
    if isinstance(y, Tensor):
        return _join(x, y, func), y
    x = as_tensor(x, func)
    return x, _join(y, x, func)


def _broadcast_error(func: str, x: Tensor, y: Tensor) -> ValueError:
    return ValueError(f"{func}: shapes {x.shape} ({x.dtype.name}) and {y.shape} "
                      f"({y.dtype.name}) do not broadcast; expected equal or size-1 dims")


def _binary(x, y, func: str, forward, backward, saved_inputs: bool = True) -> Tensor:
    x, y = operands(x, y, func)
    try:
        data = forward(x.data, y.data)
    except ValueError:
        raise _broadcast_error(func, x, y) from None
    if x._rg or y._rg:
        return record(data, (x, y), backward, (x, y) if saved_inputs else (x.shape, y.shape))
    return Tensor(data, x.device)


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sums a broadcast gradient back to `shape` (the inverse of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return reshape(sum(g, axis=axes, keepdims=True), shape)


# -- binary arithmetic -----------------------------------------------------------------------
def _add_grad(g, y, needs, x_shape, y_shape):
    return (sum_to(g, x_shape) if needs[0] else None,
            sum_to(g, y_shape) if needs[1] else None)


@traced
def add(x, y) -> Tensor:
    """Elementwise `x + y`, with broadcasting."""
    return _binary(x, y, "add", operator.add,
                   _add_grad, saved_inputs=False)


def _subtract_grad(g, y, needs, x_shape, y_shape):
    return (sum_to(g, x_shape) if needs[0] else None,
            sum_to(-g, y_shape) if needs[1] else None)


@traced
def subtract(x, y) -> Tensor:
    """Elementwise `x - y`, with broadcasting."""
    return _binary(x, y, "subtract", operator.sub,
                   _subtract_grad, saved_inputs=False)


def _multiply_grad(g, y, needs, a, b):
    return (sum_to(g * b, a.shape) if needs[0] else None,
            sum_to(g * a, b.shape) if needs[1] else None)


@traced
def multiply(x, y) -> Tensor:
    """Elementwise `x * y`, with broadcasting."""
    return _binary(x, y, "multiply", operator.mul,
                   _multiply_grad)


def _divide_grad(g, y, needs, a, b):
    return (sum_to(g / b, a.shape) if needs[0] else None,
            sum_to(-g * a / (b * b), b.shape) if needs[1] else None)


@traced
def divide(x, y) -> Tensor:
    """Elementwise `x / y` (true division), with broadcasting."""
    return _binary(x, y, "divide", operator.truediv, _divide_grad)


@traced
def floordiv(x, y) -> Tensor:
    """Elementwise `x // y`; piecewise constant, so it passes no gradient (as in TensorFlow)."""
    x, y = operands(x, y, "floordiv")
    try:
        return Tensor(x.data // y.data, x.device)
    except ValueError:
        raise _broadcast_error("floordiv", x, y) from None


def _mod_grad(g, y, needs, a, b):
    return (sum_to(g, a.shape) if needs[0] else None,
            sum_to(-g * floordiv(a, b), b.shape) if needs[1] else None)


@traced
def mod(x, y) -> Tensor:
    """Elementwise `x % y` (sign of `y`, like Python and NumPy)."""
    return _binary(x, y, "mod", operator.mod, _mod_grad)


def _pow_grad(g, y, needs, a, b):
    ga = gb = None
    if needs[0]:
        ga = sum_to(g * b * a ** (b - 1), a.shape)
    if needs[1]:  # d(a^b)/db = a^b log a, taken as 0 where a <= 0 (as TensorFlow does)
        positive = greater(a, 0)
        safe_a = where(positive, a, ones_like_data(a))
        gb = sum_to(g * where(positive, (a ** b) * log(safe_a), zeros_like_data(a)), b.shape)
    return ga, gb


@traced
def pow(x, a) -> Tensor:
    """Keras: `K.pow(x, a)`. Elementwise power `x ** a`."""
    return _binary(x, a, "pow", operator.pow, _pow_grad)


# -- unary math ------------------------------------------------------------------------------
def _unary(x, func: str, forward, backward, save_output: bool = False) -> Tensor:
    """An elementwise op of one tensor; its rule gets the input, or only the output (y) when
    `save_output` is set."""
    x = as_tensor(x, func)
    data = forward(x.device.xp, x.data)
    if x._rg:
        return record(data, (x,), backward, () if save_output else (x,), save_output)
    return Tensor(data, x.device)


def _negative_grad(g, y, needs, x):
    return (-g,)


@traced
def negative(x) -> Tensor:
    """Elementwise `-x`."""
    return _unary(x, "negative", lambda xp, a: xp.negative(a), _negative_grad)


def _abs_grad(g, y, needs, x):
    return (g * sign(x),)


@traced
def abs(x) -> Tensor:
    """Keras: `K.abs(x)`. Elementwise absolute value (gradient `sign(x)`, 0 at 0)."""
    return _unary(x, "abs", lambda xp, a: xp.abs(a), _abs_grad)


@traced
def sign(x) -> Tensor:
    """Elementwise sign (-1, 0, 1); passes no gradient."""
    x = as_tensor(x, "sign")
    return Tensor(x.device.xp.sign(x.data), x.device)


def _exp_grad(g, y, needs):
    return (g * y,)


@traced
def exp(x) -> Tensor:
    """Keras: `K.exp(x)`. Elementwise exponential."""
    return _unary(x, "exp", lambda xp, a: xp.exp(a), _exp_grad, save_output=True)


def _log_grad(g, y, needs, x):
    return (g / x,)


@traced
def log(x) -> Tensor:
    """Keras: `K.log(x)`. Elementwise natural logarithm."""
    return _unary(x, "log", lambda xp, a: xp.log(a), _log_grad)


def _sqrt_grad(g, y, needs):
    return (g / (2.0 * y),)


@traced
def sqrt(x) -> Tensor:
    """Keras: `K.sqrt(x)`. Elementwise square root (negative inputs are clipped to 0 first, as
    Keras does)."""
    return _unary(x, "sqrt", lambda xp, a: xp.sqrt(xp.maximum(a, 0)), _sqrt_grad,
                  save_output=True)


def _square_grad(g, y, needs, x):
    return (g * (2.0 * x),)


@traced
def square(x) -> Tensor:
    """Keras: `K.square(x)`. Elementwise square."""
    return _unary(x, "square", lambda xp, a: xp.square(a), _square_grad)


def _clip_grad(g, y, needs, x, low, high):
    # tf.clip_by_value's rule: zero only strictly outside, so the gradient passes at the bounds
    # (and for NaN inputs).
    outside = logical_or(less(x, low), greater(x, high))
    return (where(outside, zeros_like_data(g), g),)


def _clip_bound(value, x: Tensor, unbounded: float, name: str):
    """A bound of `clip`: None (unbounded), a number, or a tensor or array (elementwise, as
    `tf.clip_by_value` takes them, in x's dtype)."""
    if value is None:
        return unbounded
    if isinstance(value, (Tensor, np.ndarray, list, tuple)):
        return as_tensor(value, "clip", dtype=x.dtype, device=x.device).data
    return check_number(value, "clip", name)


@traced
def clip(x, min_value, max_value) -> Tensor:
    """Keras: `K.clip(x, min_value, max_value)`. Elementwise clipping to [min, max].

    As in Keras, `max_value < min_value` clips to `min_value`, and None means unbounded.
    The gradient passes where `min <= x <= max`, bounds included (as `tf.clip_by_value`).
    """
    x = as_tensor(x, "clip")
    low, high = _clip_bound(min_value, x, -np.inf, "min_value"), \
        _clip_bound(max_value, x, np.inf, "max_value")
    if isinstance(high, (int, float)) and isinstance(low, (int, float)) and high < low:
        high = low
    data = x.device.xp.clip(x.data, low, high)
    if x._rg:
        return record(data, (x,), _clip_grad, (x, low, high))
    return Tensor(data, x.device)


@traced
def round(x) -> Tensor:
    """Keras: `K.round(x)`. Rounds to the nearest integer, halves to even; no gradient."""
    x = as_tensor(x, "round")
    return Tensor(x.device.xp.round(x.data), x.device)


def _sin_grad(g, y, needs, x):
    return (g * cos(x),)


@traced
def sin(x) -> Tensor:
    """Keras: `K.sin(x)`. Elementwise sine."""
    return _unary(x, "sin", lambda xp, a: xp.sin(a), _sin_grad)


def _cos_grad(g, y, needs, x):
    return (-g * sin(x),)


@traced
def cos(x) -> Tensor:
    """Keras: `K.cos(x)`. Elementwise cosine."""
    return _unary(x, "cos", lambda xp, a: xp.cos(a), _cos_grad)


def _extremum_grad(g, y, needs, a, b, pick_a):
    """maximum/minimum: the gradient goes to `a` where `pick_a` holds (ties included, as in
    TensorFlow), else to `b`."""
    zeros = zeros_like_data(g)
    return (sum_to(where(pick_a, g, zeros), a.shape) if needs[0] else None,
            sum_to(where(pick_a, zeros, g), b.shape) if needs[1] else None)


def _elementwise_extremum(x, y, func: str, pick_a) -> Tensor:
    x, y = operands(x, y, func)
    try:
        chosen = pick_a(x.data, y.data)
        data = x.device.xp.where(chosen, x.data, y.data)
    except ValueError:
        raise _broadcast_error(func, x, y) from None
    if x._rg or y._rg:
        return record(data, (x, y), _extremum_grad, (x, y, Tensor(chosen, x.device)))
    return Tensor(data, x.device)


@traced
def maximum(x, y) -> Tensor:
    """Keras: `K.maximum(x, y)`. Elementwise maximum, with broadcasting."""
    return _elementwise_extremum(x, y, "maximum", operator.ge)


@traced
def minimum(x, y) -> Tensor:
    """Keras: `K.minimum(x, y)`. Elementwise minimum, with broadcasting."""
    return _elementwise_extremum(x, y, "minimum", operator.le)


# -- casts and selection ---------------------------------------------------------------------
def _cast_grad(g, y, needs, dtype):
    return (cast(g, dtype),)


@traced
def cast(x, dtype) -> Tensor:
    """Keras: `K.cast(x, dtype)`. Casts to `dtype`; gradients pass between float dtypes only."""
    target = as_dtype(dtype, "cast")
    x = as_tensor(x, "cast")
    if x.dtype == target:
        return x
    data = x.data.astype(target)
    if x._rg and target.kind == "f":
        return record(data, (x,), _cast_grad, (x.dtype,))
    return Tensor(data, x.device)


def _where_grad(g, y, needs, condition):
    zeros = zeros_like_data(g)
    return (None,
            where(condition, g, zeros) if needs[1] else None,
            where(condition, zeros, g) if needs[2] else None)


@traced
def where(condition, x, y) -> Tensor:
    """Elementwise `x` where `condition` else `y` (all three of one shape after broadcasting)."""
    x, y = operands(x, y, "where")
    condition = as_tensor(condition, "where", device=x.device)
    try:
        data = x.device.xp.where(condition.data, x.data, y.data)
    except ValueError:
        raise ValueError(f"where: condition of shape {condition.shape}, x of shape {x.shape} "
                         f"and y of shape {y.shape} do not broadcast; expected equal or size-1 "
                         "dims") from None
    if x._rg or y._rg:
        if data.shape != x.shape or data.shape != y.shape:
            x, y = broadcast_to(x, data.shape), broadcast_to(y, data.shape)
        return record(data, (condition, x, y), _where_grad, (condition,))
    return Tensor(data, x.device)


def zeros_like_data(x: Tensor) -> Tensor:
    """A constant of zeros shaped like `x` (no gradient): for use inside backward rules."""
    return Tensor(x.device.xp.zeros_like(x.data), x.device)


def ones_like_data(x: Tensor) -> Tensor:
    """A constant of ones shaped like `x` (no gradient): for use inside backward rules."""
    return Tensor(x.device.xp.ones_like(x.data), x.device)


# -- comparisons (boolean results, no gradient) ----------------------------------------------
def _compare(x, y, func: str, name: str) -> Tensor:
    x, y = operands(x, y, func)
    try:
        data = getattr(x.device.xp, name)(x.data, y.data)
    except ValueError:
        raise _broadcast_error(func, x, y) from None
    return Tensor(data, x.device)


@traced
def equal(x, y) -> Tensor:
    """Elementwise `x == y` (bool)."""
    return _compare(x, y, "equal", "equal")


@traced
def not_equal(x, y) -> Tensor:
    """Elementwise `x != y` (bool)."""
    return _compare(x, y, "not_equal", "not_equal")


@traced
def greater(x, y) -> Tensor:
    """Elementwise `x > y` (bool)."""
    return _compare(x, y, "greater", "greater")


@traced
def greater_equal(x, y) -> Tensor:
    """Elementwise `x >= y` (bool)."""
    return _compare(x, y, "greater_equal", "greater_equal")


@traced
def less(x, y) -> Tensor:
    """Elementwise `x < y` (bool)."""
    return _compare(x, y, "less", "less")


@traced
def less_equal(x, y) -> Tensor:
    """Elementwise `x <= y` (bool)."""
    return _compare(x, y, "less_equal", "less_equal")


@traced
def logical_and(x, y) -> Tensor:
    """Elementwise `x and y` (bool)."""
    return _compare(x, y, "logical_and", "logical_and")


@traced
def logical_or(x, y) -> Tensor:
    """Elementwise `x or y` (bool)."""
    return _compare(x, y, "logical_or", "logical_or")


from .reduce import sum  # noqa: E402  (reduce imports this module)
from .shape import broadcast_to, reshape  # noqa: E402
