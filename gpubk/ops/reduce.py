"""Reductions over axes: sum, mean, max, min, prod, with their backward rules."""
from __future__ import annotations

import numpy as np

from ..autodiff import record
from ..config import floatx
from ..symbolic import traced
from ..tensor import Tensor, as_tensor
from .validate import check_axis, normalize_axes  # noqa: F401  (nn and losses import it here)


def _kept_shape(shape: tuple, axes: tuple | None) -> tuple:
    """`shape` with the reduced axes set to 1 (the keepdims shape)."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand_to_input(g: Tensor, in_shape: tuple, axes) -> Tensor:
    """A reduction's output gradient broadcast back over the reduced axes."""
    return broadcast_to(reshape(g, _kept_shape(in_shape, axes)), in_shape)


def _reduce(x, axis, keepdims: bool, func: str, forward, backward, save_input: bool,
            save_output: bool = False) -> Tensor:
    x = as_tensor(x, func)
    axes = normalize_axes(axis, x.ndim, func)
    data = forward(x.device.xp, x.data, axes, keepdims)
    if x._rg:
        saved = (x, axes) if save_input else (x.shape, axes)
        return record(data, (x,), backward, saved, save_output)
    return Tensor(data, x.device)


def _sum_grad(g, y, needs, in_shape, axes):
    return (_expand_to_input(g, in_shape, axes),)


def _same_int_dtype(a):
    """The accumulator dtype: an integer input's own, as TensorFlow (NumPy would widen int32
    to int64); None (NumPy's choice) otherwise. Bool sums stay integer, as now: TF's
    reduce_sum rejects bool, so there is no TF result to follow."""
    return a.dtype if a.dtype.kind in "iu" else None


@traced
def sum(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.sum(x, axis=None, keepdims=False)`. Sum of the values over `axis` (an int, a list
    of ints, or None for all). Integer inputs keep their dtype (wrapping on overflow, as TF)."""
    return _reduce(x, axis, keepdims, "sum",
                   lambda xp, a, axes, k: a.sum(axis=axes, keepdims=k, dtype=_same_int_dtype(a)),
                   _sum_grad, False)


def _mean_grad(g, y, needs, in_shape, axes):
    count = int(np.prod([in_shape[a] for a in (axes or range(len(in_shape)))]))
    return (_expand_to_input(g, in_shape, axes) / count,)


def _mean_forward(xp, a, axes, keepdims):
    if a.dtype.kind == "b":  # Keras casts bool to floatx before averaging
        a = a.astype(floatx())
    out = a.mean(axis=axes, keepdims=keepdims)
    return out if a.dtype.kind == "f" else out.astype(a.dtype)  # integer mean stays integer


@traced
def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.mean(x, axis=None, keepdims=False)`. Mean of the values over `axis`."""
    return _reduce(x, axis, keepdims, "mean", _mean_forward, _mean_grad, False)


def _extremum_grad(g, y, needs, x, axes):
    """Gradient of max/min: shared equally among the tied extrema (as TensorFlow does)."""
    kept = _kept_shape(x.shape, axes)
    hits = cast(equal(x, reshape(y, kept)), x.dtype)
    share = hits / sum(hits, axis=axes, keepdims=True)
    return (_expand_to_input(g, x.shape, axes) * share,)


def _check_nonempty(a, axes, func: str) -> None:
    # `0 in` rather than any(): this module's `any` is K.any
    if a.size == 0 and (axes is None or 0 in [a.shape[i] for i in axes]):
        raise ValueError(f"{func}: cannot reduce an empty tensor of shape {a.shape} over "
                         f"axis {axes}; expected a non-empty reduced axis")


def _extremum(x, axis, keepdims: bool, func: str, reduce_array) -> Tensor:
    """max or min, whose gradient goes to the elements equal to the result."""
    def forward(xp, a, axes, k):
        _check_nonempty(a, axes, func)
        return reduce_array(a, axes, k)
    return _reduce(x, axis, keepdims, func, forward, _extremum_grad, True, save_output=True)


@traced
def max(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.max(x, axis=None, keepdims=False)`. Maximum over `axis`."""
    return _extremum(x, axis, keepdims, "max", lambda a, ax, k: a.max(axis=ax, keepdims=k))


@traced
def min(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.min(x, axis=None, keepdims=False)`. Minimum over `axis`."""
    return _extremum(x, axis, keepdims, "min", lambda a, ax, k: a.min(axis=ax, keepdims=k))


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


def _product_of_others_grad(g, y, needs, *saved):
    raise NotImplementedError(
        "prod: second and higher derivatives of K.prod are not implemented")


def _prod_grad(g, y, needs, x, axes):
    others = record(_product_of_others(x.device.xp, x.data, axes), (x,),
                    _product_of_others_grad)
    return (_expand_to_input(g, x.shape, axes) * others,)


@traced
def prod(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.prod(x, axis=None, keepdims=False)`. Product of the values over `axis`.

    The gradient is exact with zeros among the values; it is differentiable once. Integer
    inputs keep their dtype, as in TensorFlow."""
    return _reduce(x, axis, keepdims, "prod",
                   lambda xp, a, axes, k: a.prod(axis=axes, keepdims=k, dtype=_same_int_dtype(a)),
                   _prod_grad, True)


def _float_input(x, func: str) -> Tensor:
    """Keras casts bool input to floatx before statistics."""
    x = as_tensor(x, func)
    return cast(x, floatx()) if x.dtype.kind == "b" else x


def _variance(x, axis, keepdims: bool, func: str) -> Tensor:
    x = _float_input(x, func)
    axis = normalize_axes(axis, x.ndim, func)  # errors name `func`, not the inner mean
    deviation = x - mean(x, axis=axis, keepdims=True)
    return mean(deviation * deviation, axis=axis, keepdims=keepdims)


@traced
def var(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.var(x, axis=None, keepdims=False)`. Variance over `axis` (ddof 0)."""
    return _variance(x, axis, keepdims, "var")


@traced
def std(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.std(x, axis=None, keepdims=False)`. Standard deviation over `axis` (ddof 0)."""
    return sqrt(_variance(x, axis, keepdims, "std"))


@traced
def logsumexp(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.logsumexp(x, axis=None, keepdims=False)`. `log(sum(exp(x)))` over `axis`,
    computed without overflow (the maximum is taken out first)."""
    x = as_tensor(x, "logsumexp")
    axis = normalize_axes(axis, x.ndim, "logsumexp")
    # The maximum cancels out of the gradient. As tf.reduce_logsumexp, a non-finite maximum is
    # not taken out (all -inf rows give -inf, a +inf gives inf, NaN stays NaN; never inf - inf).
    top = max(x, axis=axis, keepdims=True).data
    top = Tensor(x.device.xp.where(x.device.xp.isfinite(top), top, 0), x.device)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the answer for all -inf rows
        out = log(sum(exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else reshape(out, _drop_axes(out.shape, axis))


def _drop_axes(shape: tuple, axes) -> tuple:
    return () if axes is None else tuple(n for i, n in enumerate(shape) if i not in axes)


@traced
def all(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.all(x, axis=None, keepdims=False)`. Logical AND over `axis` (bool)."""
    x = as_tensor(x, "all")
    axes = normalize_axes(axis, x.ndim, "all")
    return Tensor(x.data.astype(bool).all(axis=axes, keepdims=keepdims), x.device)


@traced
def any(x, axis=None, keepdims: bool = False) -> Tensor:
    """Keras: `K.any(x, axis=None, keepdims=False)`. Logical OR over `axis` (bool)."""
    x = as_tensor(x, "any")
    axes = normalize_axes(axis, x.ndim, "any")
    return Tensor(x.data.astype(bool).any(axis=axes, keepdims=keepdims), x.device)


def _arg_axis(x, axis: int, func: str) -> tuple:
    x = as_tensor(x, func)
    # Keras passes axis on to tf.argmax, whose axis=None means axis 0
    axis = check_axis(0 if axis is None else axis, x.ndim, func)
    _check_nonempty(x.data, (axis,), func)
    return x, axis


@traced
def argmax(x, axis: int = -1) -> Tensor:
    """Keras: `K.argmax(x, axis=-1)`. Index of the maximum along `axis` (int64, no gradient)."""
    x, axis = _arg_axis(x, axis, "argmax")
    return Tensor(x.data.argmax(axis=axis).astype("int64"), x.device)


@traced
def argmin(x, axis: int = -1) -> Tensor:
    """Keras: `K.argmin(x, axis=-1)`. Index of the minimum along `axis` (int64, no gradient)."""
    x, axis = _arg_axis(x, axis, "argmin")
    return Tensor(x.data.argmin(axis=axis).astype("int64"), x.device)


def _reverse_cumsum(g: Tensor, axis: int) -> Tensor:
    flip = (slice(None),) * axis + (slice(None, None, -1),)
    return cumsum(g[flip], axis)[flip]


def _cumsum_grad(g, y, needs, axis):
    return (_reverse_cumsum(g, axis),)


@traced
def cumsum(x, axis: int = 0) -> Tensor:
    """Keras: `K.cumsum(x, axis=0)`. Cumulative sum along `axis`."""
    x = as_tensor(x, "cumsum")
    axis = check_axis(axis, x.ndim, "cumsum")
    data = x.device.xp.cumsum(x.data, axis=axis, dtype=_same_int_dtype(x.data))
    if x._rg:
        return record(data, (x,), _cumsum_grad, (axis,))
    return Tensor(data, x.device)


def _cumprod_grad(g, y, needs, x, axis):
    # TensorFlow's rule: reverse-cumsum(g * y) / x (not finite where x has zeros, as in TF).
    return (_reverse_cumsum(g * y, axis) / x,)


@traced
def cumprod(x, axis: int = 0) -> Tensor:
    """Keras: `K.cumprod(x, axis=0)`. Cumulative product along `axis`.

    Its gradient is TensorFlow's, `reverse_cumsum(g * y) / x`: not finite at zeros of x."""
    x = as_tensor(x, "cumprod")
    axis = check_axis(axis, x.ndim, "cumprod")
    data = x.device.xp.cumprod(x.data, axis=axis, dtype=_same_int_dtype(x.data))
    if x._rg:
        return record(data, (x,), _cumprod_grad, (x, axis), save_output=True)
    return Tensor(data, x.device)


from .math import cast, equal, exp, log, sqrt  # noqa: E402
from .shape import broadcast_to, reshape  # noqa: E402
