"""Reductions over axes (sum, mean, max, min, prod, any, all, logsumexp), arg reductions and
cumulative ops: declared primitives (core/primitive.py) and the Keras functions that check
their arguments and bind them; var and std are compositions of them.

A reduction's params are `axes`, a sorted tuple of non-negative axes (None: all; `()`: none),
and `keepdims`. Integer sums and products keep their dtype (wrapping on overflow, as TF).
"""
from __future__ import annotations

import math

import numpy as np

from ..config import floatx
from ..core.primitive import Primitive, as_input, bind, same_as_input
from ..tensor import Tensor
from .math import broadcast_like, cast, equal, exp, sqrt
from .query import shape_p
from .shape import expand_dims, reshape
from .validate import check_axis, normalize_axes


# -- shapes ----------------------------------------------------------------------------------
def _kept_shape(shape: tuple, axes: tuple | None) -> tuple:
    """`shape` with the reduced axes set to 1 (the keepdims shape)."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _reduced_shape(shape: tuple, axes: tuple | None, keepdims: bool) -> tuple:
    """The shape of a reduction of `shape` over `axes` (unknown dims stay None)."""
    if keepdims:
        return _kept_shape(shape, axes)
    if axes is None:
        return ()
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _kept(g: Tensor, x, axes) -> Tensor:
    """A reduction's output (or its gradient) with the reduced axes of input `x` back, of size
    1 (as `keepdims` gives)."""
    if g.ndim == x.ndim:
        return g
    kept = _kept_shape(x.shape, axes)
    if None not in kept:
        return reshape(g, kept)
    for axis in range(x.ndim) if axes is None else axes:  # sorted: each lands in place
        g = expand_dims(g, axis)
    return g


def _expand_to_input(g: Tensor, x, axes) -> Tensor:
    """A reduction's output gradient broadcast back over the reduced axes of input `x`."""
    return broadcast_like(_kept(g, x, axes), x)


def _count(x, axes, dtype):
    """How many values of `x` each output of a reduction over `axes` takes: an int, or a 0-d
    tensor computed from the runtime shape where a reduced dimension is unknown."""
    reduced = range(x.ndim) if axes is None else axes
    count, unknown = 1, []
    for i in reduced:
        if x.shape[i] is None:
            unknown.append(i)
        else:
            count *= x.shape[i]
    if unknown:
        sizes = cast(bind(shape_p, x), dtype)
        for i in unknown:
            count = sizes[i] * count
    return count


def _check_nonempty(shape: tuple, axes, func: str) -> None:
    """max, min, argmax, argmin and logsumexp have no value over an empty axis. Unknown (None)
    dims pass: the evaluation checks again."""
    reduced = shape if axes is None else [shape[i] for i in axes]
    if 0 in reduced:  # `0 in` rather than any(): this module's `any` is K.any
        raise ValueError(f"{func}: cannot reduce an empty tensor of shape {shape} over "
                         f"axis {axes}; expected a non-empty reduced axis")


def _accumulator(dtype):
    """The result dtype of sum, prod, cumsum, cumprod: an integer input's own, as TensorFlow
    (NumPy would widen int32 to int64); NumPy's default integer for bool (TF's reduce_sum
    rejects bool, so there is no TF result to follow); floats their own."""
    return np.dtype(np.int_) if dtype.kind == "b" else dtype


def _reduction_abstract(x, *, axes, keepdims):
    return _reduced_shape(x.shape, axes, keepdims), _accumulator(x.dtype)


def _reduction_primitive(name: str, impl, abstract=_reduction_abstract, vjp=None,
                         saves=(), output=False) -> Primitive:
    p = Primitive(name)
    p.may_view = False  # a reduction's value is new memory (buffers.py), axes=() included
    p.def_impl(impl)
    p.def_abstract(abstract)
    if vjp is not None:
        p.def_vjp(vjp, saves=saves, output=output)
    return p


def _apply_reduction(p: Primitive, x, axis, keepdims):
    """Binds reduction `p` over `axis` (an int, a list of ints, or None for all)."""
    return bind(p, x, axes=normalize_axes(axis, x.ndim, p.name),
                keepdims=keepdims if keepdims.__class__ is bool else bool(keepdims))


# -- sum, mean -------------------------------------------------------------------------------
def _sum_impl(device, a, *, axes, keepdims):
    return a.sum(axis=axes, keepdims=keepdims, dtype=a.dtype if a.dtype.kind in "iu" else None)


def _sum_vjp(g, y, needs, x, *, axes, keepdims):
    return (_expand_to_input(g, x, axes),)


sum_p = _reduction_primitive("sum", _sum_impl, vjp=_sum_vjp)


def sum(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.sum(x, axis=None, keepdims=False)`. Sum of the values over `axis` (an int, a list
    of ints, or None for all). Integer inputs keep their dtype (wrapping on overflow, as TF)."""
    return _apply_reduction(sum_p, as_input(x, "sum"), axis, keepdims)


def _mean_impl(device, a, *, axes, keepdims):
    if a.dtype.kind != "f":  # an integer mean stays integer
        return a.mean(axis=axes, keepdims=keepdims).astype(a.dtype)
    if device.xp is not np:
        return a.mean(axis=axes, keepdims=keepdims)
    # The sum divided by the count in the input's dtype (float16 summed in float32), as
    # TensorFlow's reduce_mean; np.mean's Python-level wrapper costs more than the sum here.
    n = a.size if axes is None else a.shape[axes[0]] if len(axes) == 1 else \
        math.prod([a.shape[i] for i in axes])
    if not n:  # NumPy's "mean of empty slice" warning, and NaN
        return a.mean(axis=axes, keepdims=keepdims)
    if a.dtype == np.float16:
        return (a.sum(axis=axes, keepdims=keepdims, dtype=np.float32) /
                np.float32(n)).astype(np.float16)
    total = a.sum(axis=axes, keepdims=keepdims)
    return total / total.dtype.type(n)


def _mean_vjp(g, y, needs, x, *, axes, keepdims):
    return (_expand_to_input(g, x, axes) / _count(x, axes, g.dtype),)


def _same_dtype_abstract(x, *, axes, keepdims):
    return _reduced_shape(x.shape, axes, keepdims), x.dtype


mean_p = _reduction_primitive("mean", _mean_impl, _same_dtype_abstract, _mean_vjp)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.mean(x, axis=None, keepdims=False)`. Mean of the values over `axis`."""
    x = as_input(x, "mean")
    if x.dtype.kind == "b":  # Keras casts bool to floatx before averaging
        x = cast(x, floatx())
    return _apply_reduction(mean_p, x, axis, keepdims)


# -- max, min --------------------------------------------------------------------------------
def _extremum_vjp(g, y, needs, x, *, axes, keepdims):
    """Gradient of max/min: shared equally among the tied extrema (as TensorFlow does)."""
    hits = cast(equal(x, _kept(y, x, axes)), x.dtype)
    share = hits / sum(hits, axis=axes, keepdims=True)
    return (_expand_to_input(g, x, axes) * share,)


def _extremum_abstract(name: str):
    def abstract(x, *, axes, keepdims):
        _check_nonempty(x.shape, axes, name)
        return _same_dtype_abstract(x, axes=axes, keepdims=keepdims)
    return abstract


def _max_impl(device, a, *, axes, keepdims):
    if a.size == 0:
        _check_nonempty(a.shape, axes, "max")
    return a.max(axis=axes, keepdims=keepdims)


def _min_impl(device, a, *, axes, keepdims):
    if a.size == 0:
        _check_nonempty(a.shape, axes, "min")
    return a.min(axis=axes, keepdims=keepdims)


max_p = _reduction_primitive("max", _max_impl, _extremum_abstract("max"), _extremum_vjp,
                             saves=(0,), output=True)
min_p = _reduction_primitive("min", _min_impl, _extremum_abstract("min"), _extremum_vjp,
                             saves=(0,), output=True)


def max(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.max(x, axis=None, keepdims=False)`. Maximum over `axis`."""
    return _apply_reduction(max_p, as_input(x, "max"), axis, keepdims)


def min(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.min(x, axis=None, keepdims=False)`. Minimum over `axis`."""
    return _apply_reduction(min_p, as_input(x, "min"), axis, keepdims)


# -- prod ------------------------------------------------------------------------------------
def _product_of_others(xp, a, axes):
    """For each element, the product of the other elements of its reduced group.

    Exclusive cumulative products from both ends, so zeros need no division (x * 0 / 0)."""
    axes = tuple(range(a.ndim)) if axes is None else axes
    kept = [i for i in range(a.ndim) if i not in axes]
    order = kept + list(axes)
    moved = xp.transpose(a, order)
    rows = moved.reshape(moved.shape[:len(kept)] + (-1,))
    ones = xp.ones_like(rows[..., :1])
    before = xp.cumprod(xp.concatenate([ones, rows[..., :-1]], axis=-1), axis=-1)
    after = xp.cumprod(xp.concatenate([ones, rows[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = (before * after).reshape(moved.shape)
    return xp.transpose(others, np.argsort(order))


def _product_of_others_vjp(g, y, needs, x, *, axes):
    raise NotImplementedError(
        "prod: second and higher derivatives of K.prod are not implemented")


# prod's backward: recorded (when gradients of gradients are) so that differentiating it again
# says it is not implemented rather than silently giving a wrong answer.
product_of_others_p = Primitive("product_of_others")
product_of_others_p.def_impl(lambda device, a, *, axes: _product_of_others(device.xp, a, axes))
product_of_others_p.def_abstract(same_as_input)
product_of_others_p.def_vjp(_product_of_others_vjp)


def _prod_impl(device, a, *, axes, keepdims):
    return a.prod(axis=axes, keepdims=keepdims, dtype=a.dtype if a.dtype.kind in "iu" else None)


def _prod_vjp(g, y, needs, x, *, axes, keepdims):
    others = bind(product_of_others_p, x, axes=axes)
    return (_expand_to_input(g, x, axes) * others,)


prod_p = _reduction_primitive("prod", _prod_impl, vjp=_prod_vjp, saves=(0,))


def prod(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.prod(x, axis=None, keepdims=False)`. Product of the values over `axis`.

    The gradient is exact with zeros among the values; it is differentiable once. Integer
    inputs keep their dtype, as in TensorFlow."""
    return _apply_reduction(prod_p, as_input(x, "prod"), axis, keepdims)


# -- var, std (compositions) -----------------------------------------------------------------
def _variance(x, axis, keepdims: bool, func: str) -> Tensor:
    x = as_input(x, func)
    if x.dtype.kind == "b":  # Keras casts bool input to floatx before statistics
        x = cast(x, floatx())
    axis = normalize_axes(axis, x.ndim, func)  # errors name `func`, not the inner mean
    deviation = x - mean(x, axis=axis, keepdims=True)
    return mean(deviation * deviation, axis=axis, keepdims=keepdims)


def var(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.var(x, axis=None, keepdims=False)`. Variance over `axis` (ddof 0)."""
    return _variance(x, axis, keepdims, "var")


def std(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.std(x, axis=None, keepdims=False)`. Standard deviation over `axis` (ddof 0)."""
    return sqrt(_variance(x, axis, keepdims, "std"))


# -- logsumexp -------------------------------------------------------------------------------
def _logsumexp_impl(device, a, *, axes, keepdims):
    if a.size == 0:
        _check_nonempty(a.shape, axes, "logsumexp")
    xp = device.xp
    # As tf.reduce_logsumexp, a non-finite maximum is not taken out (all -inf rows give -inf,
    # a +inf gives inf, NaN stays NaN; never inf - inf).
    top = a.max(axis=axes, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the answer for all -inf rows
        out = xp.log(xp.exp(a - top).sum(axis=axes, keepdims=True)) + top
    return out if keepdims else out.reshape(_reduced_shape(a.shape, axes, False))


def _logsumexp_abstract(x, *, axes, keepdims):
    _check_nonempty(x.shape, axes, "logsumexp")
    try:
        dtype = np.exp.resolve_dtypes((x.dtype, None))[-1]
    except TypeError:
        raise TypeError(f"logsumexp: not defined for dtype {x.dtype.name}") from None
    return _reduced_shape(x.shape, axes, keepdims), dtype


def _logsumexp_vjp(g, y, needs, x, *, axes, keepdims):
    # The gradient of TF's composition (its maximum under stop_gradient cancels): softmax of x
    # over the axes, exp(x - y); NaN for all -inf, +inf or NaN groups, as there.
    return (_kept(g, x, axes) * exp(x - _kept(y, x, axes)),)


logsumexp_p = _reduction_primitive("logsumexp", _logsumexp_impl, _logsumexp_abstract,
                                   _logsumexp_vjp, saves=(0,), output=True)


def logsumexp(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.logsumexp(x, axis=None, keepdims=False)`. `log(sum(exp(x)))` over `axis`,
    computed without overflow (the maximum is taken out first)."""
    return _apply_reduction(logsumexp_p, as_input(x, "logsumexp"), axis, keepdims)


# -- all, any (boolean, no gradient) ---------------------------------------------------------
def _logical_abstract(x, *, axes, keepdims):
    return _reduced_shape(x.shape, axes, keepdims), np.dtype(bool)


def _all_impl(device, a, *, axes, keepdims):
    return (a if a.dtype.kind == "b" else a.astype(bool)).all(axis=axes, keepdims=keepdims)


def _any_impl(device, a, *, axes, keepdims):
    return (a if a.dtype.kind == "b" else a.astype(bool)).any(axis=axes, keepdims=keepdims)


all_p = _reduction_primitive("all", _all_impl, _logical_abstract)
any_p = _reduction_primitive("any", _any_impl, _logical_abstract)


def all(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.all(x, axis=None, keepdims=False)`. Logical AND over `axis` (bool)."""
    return _apply_reduction(all_p, as_input(x, "all"), axis, keepdims)


def any(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.any(x, axis=None, keepdims=False)`. Logical OR over `axis` (bool)."""
    return _apply_reduction(any_p, as_input(x, "any"), axis, keepdims)


# -- argmax, argmin (int64, no gradient) -----------------------------------------------------
_INT64 = np.dtype(np.int64)


def _arg_primitive(name: str) -> Primitive:
    def impl(device, a, *, axis):
        if a.size == 0:
            _check_nonempty(a.shape, (axis,), name)
        out = getattr(a, name)(axis=axis)
        return out if out.dtype is _INT64 else out.astype(_INT64)

    def abstract(x, *, axis):
        _check_nonempty(x.shape, (axis,), name)
        return _reduced_shape(x.shape, (axis,), False), _INT64

    p = Primitive(name)
    p.def_impl(impl)
    p.def_abstract(abstract)
    return p


argmax_p = _arg_primitive("argmax")
argmin_p = _arg_primitive("argmin")


def _apply_arg(p: Primitive, x, axis):
    x = as_input(x, p.name)
    # Keras passes axis on to tf.argmax, whose axis=None means axis 0
    return bind(p, x, axis=check_axis(0 if axis is None else axis, x.ndim, p.name))


def argmax(x, axis: int = -1) -> Tensor:
    """Keras: `K.argmax(x, axis=-1)`. Index of the maximum along `axis` (int64, no gradient)."""
    return _apply_arg(argmax_p, x, axis)


def argmin(x, axis: int = -1) -> Tensor:
    """Keras: `K.argmin(x, axis=-1)`. Index of the minimum along `axis` (int64, no gradient)."""
    return _apply_arg(argmin_p, x, axis)


# -- cumsum, cumprod -------------------------------------------------------------------------
def _reverse_cumsum(g: Tensor, axis: int) -> Tensor:
    flip = (slice(None),) * axis + (slice(None, None, -1),)
    return cumsum(g[flip], axis)[flip]


def _cumsum_vjp(g, y, needs, x, *, axis):
    return (_reverse_cumsum(g, axis),)


def _cumprod_vjp(g, y, needs, x, *, axis):
    # TensorFlow's rule: reverse-cumsum(g * y) / x (not finite where x has zeros, as in TF).
    return (_reverse_cumsum(g * y, axis) / x,)


def _cumulative_abstract(x, *, axis):
    return x.shape, _accumulator(x.dtype)


cumsum_p = Primitive("cumsum")
cumsum_p.def_impl(lambda device, a, *, axis: a.cumsum(
    axis=axis, dtype=a.dtype if a.dtype.kind in "iu" else None))
cumsum_p.def_abstract(_cumulative_abstract)
cumsum_p.def_vjp(_cumsum_vjp)

cumprod_p = Primitive("cumprod")
cumprod_p.def_impl(lambda device, a, *, axis: a.cumprod(
    axis=axis, dtype=a.dtype if a.dtype.kind in "iu" else None))
cumprod_p.def_abstract(_cumulative_abstract)
cumprod_p.def_vjp(_cumprod_vjp, saves=(0,), output=True)


def cumsum(x, axis: int = 0) -> Tensor:
    """Keras: `K.cumsum(x, axis=0)`. Cumulative sum along `axis`."""
    x = as_input(x, "cumsum")
    return bind(cumsum_p, x, axis=check_axis(axis, x.ndim, "cumsum"))


def cumprod(x, axis: int = 0) -> Tensor:
    """Keras: `K.cumprod(x, axis=0)`. Cumulative product along `axis`.

    Its gradient is TensorFlow's, `reverse_cumsum(g * y) / x`: not finite at zeros of x."""
    x = as_input(x, "cumprod")
    return bind(cumprod_p, x, axis=check_axis(axis, x.ndim, "cumprod"))
