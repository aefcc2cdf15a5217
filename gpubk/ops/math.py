"""Elementwise arithmetic, unary math, casts and comparisons: declared primitives
(core/primitive.py) and the Keras functions that check their arguments and bind them.

Binary ops broadcast like NumPy; each vjp sums its gradient back to its input's shape
(`sum_to`). Python scalars and host arrays take the tensor operand's dtype, so `x * 2.0` stays
float32 (as in Keras); two tensors of different dtypes promote as in NumPy.
"""
from __future__ import annotations

import numpy as np

from ..config import floatx
from ..core.primitive import (
    Primitive, as_input, bind, broadcast_shapes, broadcasts_to, device_of, is_symbolic,
    same_as_input, shaped_like, static)
from ..dtypes import as_dtype
from ..tensor import Tensor, as_tensor, to_array
from .validate import check_number

_symbolic = is_symbolic


# -- operands --------------------------------------------------------------------------------
def _join(value, like, func: str) -> Tensor:
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
    device = device_of(like)
    return Tensor(device.put(array), device)


def operands(x, y, func: str) -> tuple:
    """Both operands of a binary op as tensors (or symbolic tensors) on one device (mixing
    devices is an error)."""
    if isinstance(x, Tensor):
        if isinstance(y, Tensor):
            if x.device is not y.device:
                raise ValueError(
                    f"{func}: operands are on different devices ({x.device.name} and "
                    f"{y.device.name}); move one with K.to_device(x, device) first")
            return x, y
        return (x, y) if _symbolic(y) else (x, _join(y, x, func))
    if isinstance(y, Tensor) or _symbolic(y):
        return (x, y) if _symbolic(x) else (_join(x, y, func), y)
    if not _symbolic(x):
        x = as_tensor(x, func)
    return x, _join(y, x, func)


def _operands_error(func: str, x, y) -> ValueError:
    return ValueError(f"{func}: shapes {x.shape} ({x.dtype.name}) and {y.shape} "
                      f"({y.dtype.name}) do not broadcast; expected equal or size-1 dims")


def _result_dtype(ufunc, func: str, *dtypes) -> np.dtype:
    """The dtype NumPy's `ufunc` gives for inputs of `dtypes` (nothing computed)."""
    try:
        return ufunc.resolve_dtypes((*dtypes, None))[-1]
    except TypeError:
        raise TypeError(f"{func}: not defined for dtypes "
                        f"{', '.join(d.name for d in dtypes)}") from None


def _binary_primitive(name: str, compute, ufunc, vjp=None, saves=(0, 1)) -> Primitive:
    """An elementwise primitive of two broadcast operands: `compute(device, a, b)` works on
    NumPy and CuPy arrays alike; the result dtype is NumPy's `ufunc`'s."""
    p = Primitive(name, elementwise=True)
    p.def_impl(compute)
    p.def_abstract(lambda x, y: (broadcast_shapes(name, x.shape, y.shape),
                                 _result_dtype(ufunc, name, x.dtype, y.dtype)))
    if vjp is not None:
        p.def_vjp(vjp, saves=saves)
    return p


def _apply_binary(p: Primitive, x, y):
    if x.__class__ is not Tensor or y.__class__ is not Tensor or x.device is not y.device:
        x, y = operands(x, y, p.name)
    try:
        return bind(p, x, y)
    except ValueError:  # NumPy's message, or shapes that do not broadcast: say which
        try:
            broadcast_shapes(p.name, x.shape, y.shape)
        except ValueError:
            raise _operands_error(p.name, x, y) from None
        raise


# -- broadcasting and its inverse -------------------------------------------------------------
# Every binary vjp sums its gradient back to its input's shape; broadcasting is sum_to's vjp and
# the reverse. Both live here, below the other families, so that math imports none of them.
def _sum_to_impl(device, a, *, shape):
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and a.shape[lead + i] != 1)
    if axes:
        a = a.sum(axis=axes, keepdims=True, dtype=a.dtype)
    return a.reshape(shape)


def _broadcast_error(shape, target) -> ValueError:
    return ValueError(f"broadcast_to: cannot broadcast shape {shape} to {target}")


def _broadcast_impl(device, a, *, shape):
    try:
        return device.xp.broadcast_to(a, shape)
    except ValueError:
        raise _broadcast_error(a.shape, shape) from None


def _broadcast_abstract(x, *, shape):
    if not broadcasts_to(x.shape, shape):
        raise _broadcast_error(x.shape, shape)
    return shape, x.dtype


sum_to_p = Primitive("sum_to")
sum_to_p.def_impl(_sum_to_impl)
sum_to_p.def_abstract(lambda x, *, shape: (shape, x.dtype))
broadcast_to_p = Primitive("broadcast_to")
broadcast_to_p.def_impl(_broadcast_impl)
broadcast_to_p.def_abstract(_broadcast_abstract)
sum_to_p.def_vjp(lambda g, y, needs, x, *, shape: (broadcast_like(g, x),))
broadcast_to_p.def_vjp(lambda g, y, needs, x, *, shape: (sum_to(g, x),))

# The same to the runtime shape of a second input (staged gradients of a placeholder with
# unknown dimensions: TensorFlow's BroadcastGradientArgs); the second input gets no gradient.
sum_to_like_p = shaped_like("sum_to_like", _sum_to_impl, lambda g, x: broadcast_like(g, x))
broadcast_to_like_p = shaped_like("broadcast_to_like", _broadcast_impl, lambda g, x: sum_to(g, x))


def sum_to(g: Tensor, like) -> Tensor:
    """Sums a broadcast gradient back to the shape of `like`: a vjp's input (a tensor, a node,
    or the Aval of an input not saved), or a shape."""
    shape = static(like) if isinstance(like, tuple) else like.shape
    if g.shape == shape and None not in shape:
        return g
    if None in shape:  # a node's unknown dimensions: its runtime shape decides
        return bind(sum_to_like_p, g, like)
    return bind(sum_to_p, g, shape=tuple(shape))


def broadcast_like(g: Tensor, like) -> Tensor:
    """Broadcasts `g` to the shape of `like` (see `sum_to`)."""
    shape = like.shape
    if g.shape == shape and None not in shape:
        return g
    if None in shape:
        return bind(broadcast_to_like_p, g, like)
    return bind(broadcast_to_p, g, shape=tuple(shape))


# -- binary arithmetic -----------------------------------------------------------------------
def _add_vjp(g, y, needs, a, b):
    return (sum_to(g, a) if needs[0] else None,
            sum_to(g, b) if needs[1] else None)


def _subtract_vjp(g, y, needs, a, b):
    return (sum_to(g, a) if needs[0] else None,
            sum_to(-g, b) if needs[1] else None)


def _multiply_vjp(g, y, needs, a, b):
    return (sum_to(g * b, a) if needs[0] else None,
            sum_to(g * a, b) if needs[1] else None)


def _divide_vjp(g, y, needs, a, b):
    return (sum_to(g / b, a) if needs[0] else None,
            sum_to(-g * a / (b * b), b) if needs[1] else None)


def _mod_vjp(g, y, needs, a, b):
    return (sum_to(g, a) if needs[0] else None,
            sum_to(-g * floordiv(a, b), b) if needs[1] else None)


def _pow_vjp(g, y, needs, a, b):
    ga = gb = None
    if needs[0]:
        ga = sum_to(g * b * a ** (b - 1), a)
    if needs[1]:  # d(a^b)/db = a^b log a, taken as 0 where a <= 0 (as TensorFlow does)
        positive = greater(a, 0)
        safe_a = where(positive, a, ones_like_data(a))
        gb = sum_to(g * where(positive, (a ** b) * log(safe_a), zeros_like_data(a)), b)
    return ga, gb


# The array operators work on NumPy and CuPy arrays alike (one call: these are the hot ops).
def _add(device, a, b): return a + b
def _subtract(device, a, b): return a - b
def _multiply(device, a, b): return a * b
def _divide(device, a, b): return a / b
def _floordiv(device, a, b): return a // b
def _mod(device, a, b): return a % b
def _pow(device, a, b): return a ** b


add_p = _binary_primitive("add", _add, np.add, _add_vjp, saves=())
subtract_p = _binary_primitive("subtract", _subtract, np.subtract, _subtract_vjp, saves=())
multiply_p = _binary_primitive("multiply", _multiply, np.multiply, _multiply_vjp)
divide_p = _binary_primitive("divide", _divide, np.true_divide, _divide_vjp)
floordiv_p = _binary_primitive("floordiv", _floordiv, np.floor_divide)
mod_p = _binary_primitive("mod", _mod, np.remainder, _mod_vjp)
pow_p = _binary_primitive("pow", _pow, np.power, _pow_vjp)


def add(x, y) -> Tensor:
    """Elementwise `x + y`, with broadcasting."""
    return _apply_binary(add_p, x, y)


def subtract(x, y) -> Tensor:
    """Elementwise `x - y`, with broadcasting."""
    return _apply_binary(subtract_p, x, y)


def multiply(x, y) -> Tensor:
    """Elementwise `x * y`, with broadcasting."""
    return _apply_binary(multiply_p, x, y)


def divide(x, y) -> Tensor:
    """Elementwise `x / y` (true division), with broadcasting."""
    return _apply_binary(divide_p, x, y)


def floordiv(x, y) -> Tensor:
    """Elementwise `x // y`; piecewise constant, so it passes no gradient (as in TensorFlow)."""
    return _apply_binary(floordiv_p, x, y)


def mod(x, y) -> Tensor:
    """Elementwise `x % y` (sign of `y`, like Python and NumPy)."""
    return _apply_binary(mod_p, x, y)


def pow(x, a) -> Tensor:
    """Keras: `K.pow(x, a)`. Elementwise power `x ** a`."""
    return _apply_binary(pow_p, x, a)


# -- unary math ------------------------------------------------------------------------------
def _unary_primitive(name: str, compute, vjp=None, saves=(0,), output=False) -> Primitive:
    """An elementwise primitive of one tensor: `compute(device, a)`; its vjp reads the input
    (`saves`), or only the output y (`output`)."""
    p = Primitive(name, elementwise=True)
    p.def_impl(compute)
    p.def_abstract(same_as_input)
    if vjp is not None:
        p.def_vjp(vjp, saves=() if output else saves, output=output)
    return p


def _apply_unary(p: Primitive, x):
    return bind(p, x if x.__class__ is Tensor else as_input(x, p.name))


negative_p = _unary_primitive("negative", lambda device, a: device.xp.negative(a),
                              lambda g, y, needs, x: (-g,), saves=())
abs_p = _unary_primitive("abs", lambda device, a: device.xp.abs(a), lambda g, y, needs, x: (g * sign(x),))
sign_p = _unary_primitive("sign", lambda device, a: device.xp.sign(a))
exp_p = _unary_primitive("exp", lambda device, a: device.xp.exp(a), lambda g, y, needs, x: (g * y,),
                         output=True)
log_p = _unary_primitive("log", lambda device, a: device.xp.log(a), lambda g, y, needs, x: (g / x,))
# Negative inputs are clipped to 0 first, as Keras does.
sqrt_p = _unary_primitive("sqrt", lambda device, a: device.xp.sqrt(device.xp.maximum(a, 0)),
                          lambda g, y, needs, x: (g / (2.0 * y),), output=True)
square_p = _unary_primitive("square", lambda device, a: device.xp.square(a),
                            lambda g, y, needs, x: (g * (2.0 * x),))
sin_p = _unary_primitive("sin", lambda device, a: device.xp.sin(a), lambda g, y, needs, x: (g * cos(x),))
cos_p = _unary_primitive("cos", lambda device, a: device.xp.cos(a),
                         lambda g, y, needs, x: (-g * sin(x),))
round_p = _unary_primitive("round", lambda device, a: device.xp.round(a))


def negative(x) -> Tensor:
    """Elementwise `-x`."""
    return _apply_unary(negative_p, x)


def abs(x) -> Tensor:
    """Keras: `K.abs(x)`. Elementwise absolute value (gradient `sign(x)`, 0 at 0)."""
    return _apply_unary(abs_p, x)


def sign(x) -> Tensor:
    """Elementwise sign (-1, 0, 1); passes no gradient."""
    return _apply_unary(sign_p, x)


def exp(x) -> Tensor:
    """Keras: `K.exp(x)`. Elementwise exponential."""
    return _apply_unary(exp_p, x)


def log(x) -> Tensor:
    """Keras: `K.log(x)`. Elementwise natural logarithm."""
    return _apply_unary(log_p, x)


def sqrt(x) -> Tensor:
    """Keras: `K.sqrt(x)`. Elementwise square root (negative inputs are clipped to 0 first, as
    Keras does)."""
    return _apply_unary(sqrt_p, x)


def square(x) -> Tensor:
    """Keras: `K.square(x)`. Elementwise square."""
    return _apply_unary(square_p, x)


def round(x) -> Tensor:
    """Keras: `K.round(x)`. Rounds to the nearest integer, halves to even; no gradient."""
    return _apply_unary(round_p, x)


def sin(x) -> Tensor:
    """Keras: `K.sin(x)`. Elementwise sine."""
    return _apply_unary(sin_p, x)


def cos(x) -> Tensor:
    """Keras: `K.cos(x)`. Elementwise cosine."""
    return _apply_unary(cos_p, x)


def _clip_vjp(g, y, needs, x, low, high):
    # tf.clip_by_value's rule: zero only strictly outside, so the gradient passes at the bounds
    # (and for NaN inputs). The bounds get no gradient.
    outside = logical_or(less(x, low), greater(x, high))
    return where(outside, zeros_like_data(g), g), None, None


clip_p = Primitive("clip", elementwise=True)
clip_p.def_impl(lambda device, a, low, high: device.xp.clip(a, low, high))
clip_p.def_abstract(lambda x, low, high: (broadcast_shapes("clip", x.shape, low.shape,
                                                           high.shape), x.dtype))
clip_p.def_vjp(_clip_vjp, saves=(0, 1, 2))


def _clip_bound(value, x, unbounded: float, name: str):
    """A bound of `clip`: None (unbounded), a number, or a tensor or array (elementwise, as
    `tf.clip_by_value` takes them), as a tensor in x's dtype."""
    if value is None:
        value = unbounded
    elif _symbolic(value):
        return cast(value, x.dtype)
    elif isinstance(value, (Tensor, np.ndarray, list, tuple)):
        return as_tensor(value, "clip", dtype=x.dtype, device=device_of(x))
    else:
        value = check_number(value, "clip", name)
    device = device_of(x)
    return Tensor(device.put(np.asarray(value, dtype=x.dtype)), device)


def clip(x, min_value, max_value) -> Tensor:
    """Keras: `K.clip(x, min_value, max_value)`. Elementwise clipping to [min, max].

    As in Keras, `max_value < min_value` clips to `min_value`, and None means unbounded.
    The gradient passes where `min <= x <= max`, bounds included (as `tf.clip_by_value`).
    """
    x = as_input(x, "clip")
    if _is_number(min_value) and _is_number(max_value) and \
            check_number(max_value, "clip", "max_value") < \
            check_number(min_value, "clip", "min_value"):
        max_value = min_value
    low = _clip_bound(min_value, x, -np.inf, "min_value")
    high = _clip_bound(max_value, x, np.inf, "max_value")
    return bind(clip_p, x, low, high)


def _is_number(value) -> bool:
    """A bound given as a plain number (not None, an array or a tensor)."""
    return value is not None and not _symbolic(value) and \
        not isinstance(value, (Tensor, np.ndarray, list, tuple))


def _extremum_vjp(g, y, needs, a, b, pick_a):
    """maximum/minimum: the gradient goes to `a` where `pick_a(a, b)` holds (ties included, as
    in TensorFlow), else to `b`."""
    chosen = pick_a(a, b)
    zeros = zeros_like_data(g)
    return (sum_to(where(chosen, g, zeros), a) if needs[0] else None,
            sum_to(where(chosen, zeros, g), b) if needs[1] else None)


def _extremum_primitive(name: str, pick_a, xp_pick: str) -> Primitive:
    p = _binary_primitive(
        name, lambda device, a, b: device.xp.where(getattr(device.xp, xp_pick)(a, b), a, b),
        np.maximum)
    p.def_vjp(lambda g, y, needs, a, b: _extremum_vjp(g, y, needs, a, b, pick_a), saves=(0, 1))
    return p


maximum_p = _extremum_primitive("maximum", lambda a, b: greater_equal(a, b), "greater_equal")
minimum_p = _extremum_primitive("minimum", lambda a, b: less_equal(a, b), "less_equal")


def maximum(x, y) -> Tensor:
    """Keras: `K.maximum(x, y)`. Elementwise maximum, with broadcasting."""
    return _apply_binary(maximum_p, x, y)


def minimum(x, y) -> Tensor:
    """Keras: `K.minimum(x, y)`. Elementwise minimum, with broadcasting."""
    return _apply_binary(minimum_p, x, y)


# -- casts, selection, stop_gradient ---------------------------------------------------------
stop_gradient_p = Primitive("stop_gradient", elementwise=True)  # no vjp: nothing flows back
stop_gradient_p.def_impl(lambda device, a: a)
stop_gradient_p.may_view = True  # the input itself
stop_gradient_p.def_abstract(same_as_input)


def stop_gradient(variables):
    """Keras: `K.stop_gradient(variables)`. The tensor (or each tensor of a list) cut from
    gradient computation: the same values, no gradient flows through."""
    if isinstance(variables, (list, tuple)):
        return [stop_gradient(v) for v in variables]
    return bind(stop_gradient_p, as_input(variables, "stop_gradient"))



cast_p = Primitive("cast", elementwise=True)
cast_p.def_impl(lambda device, a, *, dtype: a.astype(dtype))
cast_p.def_abstract(lambda x, *, dtype: (x.shape, dtype))
# Gradients pass between float dtypes only.
cast_p.def_vjp(lambda g, y, needs, x, *, dtype:
               (cast(g, x.dtype) if dtype.kind == "f" and x.dtype.kind == "f" else None,))


def cast(x, dtype) -> Tensor:
    """Keras: `K.cast(x, dtype)`. Casts to `dtype`; gradients pass between float dtypes only."""
    target = as_dtype(dtype, "cast")
    x = as_input(x, "cast")
    if x.dtype == target:
        return x
    return bind(cast_p, x, dtype=target)


def _where_vjp(g, y, needs, condition, a, b):
    zeros = zeros_like_data(g)
    return (None,
            sum_to(where(condition, g, zeros), a) if needs[1] else None,
            sum_to(where(condition, zeros, g), b) if needs[2] else None)


where_p = Primitive("where", elementwise=True)
where_p.def_impl(lambda device, c, a, b: device.xp.where(c, a, b))
where_p.def_abstract(lambda c, x, y: (broadcast_shapes("where", c.shape, x.shape, y.shape),
                                      _result_dtype(np.add, "where", x.dtype, y.dtype)))
where_p.def_vjp(_where_vjp, saves=(0,))


def where(condition, x, y) -> Tensor:
    """Elementwise `x` where `condition` else `y` (all three of one shape after broadcasting)."""
    x, y = operands(x, y, "where")
    if not _symbolic(condition):
        condition = as_tensor(condition, "where", device=device_of(x))
    try:
        return bind(where_p, condition, x, y)
    except ValueError:
        raise ValueError(f"where: condition of shape {condition.shape}, x of shape {x.shape} "
                         f"and y of shape {y.shape} do not broadcast; expected equal or size-1 "
                         "dims") from None


full_like_p = Primitive("full_like")  # no vjp: a constant whatever x is
full_like_p.def_impl(lambda device, a, *, value, dtype: device.xp.full(a.shape, value, dtype))
full_like_p.def_abstract(lambda x, *, value, dtype: (x.shape, dtype))


def zeros_like_data(x) -> Tensor:
    """A constant of zeros shaped like `x` (no gradient): for use inside backward rules."""
    return bind(full_like_p, x, value=0, dtype=x.dtype)


def ones_like_data(x) -> Tensor:
    """A constant of ones shaped like `x` (no gradient): for use inside backward rules."""
    return bind(full_like_p, x, value=1, dtype=x.dtype)


# -- comparisons (boolean results, no gradient) ----------------------------------------------
def _comparison_primitive(name: str) -> Primitive:
    return _binary_primitive(name, lambda device, a, b: getattr(device.xp, name)(a, b),
                             getattr(np, name))


equal_p, not_equal_p, greater_p, greater_equal_p, less_p, less_equal_p, logical_and_p, \
    logical_or_p = (_comparison_primitive(name) for name in (
        "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and",
        "logical_or"))


def equal(x, y) -> Tensor:
    """Elementwise `x == y` (bool)."""
    return _apply_binary(equal_p, x, y)


def not_equal(x, y) -> Tensor:
    """Elementwise `x != y` (bool)."""
    return _apply_binary(not_equal_p, x, y)


def greater(x, y) -> Tensor:
    """Elementwise `x > y` (bool)."""
    return _apply_binary(greater_p, x, y)


def greater_equal(x, y) -> Tensor:
    """Elementwise `x >= y` (bool)."""
    return _apply_binary(greater_equal_p, x, y)


def less(x, y) -> Tensor:
    """Elementwise `x < y` (bool)."""
    return _apply_binary(less_p, x, y)


def less_equal(x, y) -> Tensor:
    """Elementwise `x <= y` (bool)."""
    return _apply_binary(less_equal_p, x, y)


def logical_and(x, y) -> Tensor:
    """Elementwise `x and y` (bool)."""
    return _apply_binary(logical_and_p, x, y)


def logical_or(x, y) -> Tensor:
    """Elementwise `x or y` (bool)."""
    return _apply_binary(logical_or_p, x, y)


