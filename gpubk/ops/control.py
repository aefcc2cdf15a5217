"""Selection and iteration: switch, in_top_k, map_fn, foldl, foldr."""
from __future__ import annotations

import numbers

import numpy as np

from .. import symbolic
from ..core.primitive import Primitive, as_input, bind
from ..dtypes import as_dtype
from ..symbolic import traced
from ..tensor import Tensor, as_tensor
from .math import cast, where
from .shape import reshape, stack
from .validate import check_callable, check_int, type_name


def switch(condition, then_expression, else_expression):
    """Keras: `K.switch(condition, then_expression, else_expression)`.

    A scalar condition picks one expression; callables are called only for the branch taken.
    A tensor condition selects elementwise: expressions are called, and a condition of lower
    rank gets trailing size-1 axes (Keras tiles it), so a `(batch,)` condition picks rows.
    A symbolic condition (known only when fed) builds a node: both callables are called now
    to build their branches, as TensorFlow 1's `tf.cond` builds both, and each evaluation
    picks one.
    """
    if getattr(condition, "_symbolic", False):
        if callable(then_expression):
            then_expression = then_expression()
        if callable(else_expression):
            else_expression = else_expression()
        if condition.shape == ():
            spec = _cond_spec(then_expression, else_expression)
            if spec is not None:
                return symbolic.build(_switch.eager, (condition, then_expression,
                                                      else_expression), {}, spec=lambda *a: spec)
    return _switch(condition, then_expression, else_expression)


def _cond_spec(then_expression, else_expression):
    """The static shape of `tf.cond`'s result: each dimension the branches agree on (None where
    they differ, or are unknown), so that neither branch's shape is taken for the other's.
    None (left to inference) when their ranks differ."""
    avals = []
    for branch in (then_expression, else_expression):
        if isinstance(branch, (Tensor, symbolic.Symbol)):
            avals.append((tuple(branch.shape), branch.dtype))
        else:
            try:
                t = as_tensor(branch, "switch")
            except (TypeError, ValueError):
                return None
            avals.append((t.shape, t.dtype))
    (then_shape, dtype), (else_shape, _) = avals
    if len(then_shape) != len(else_shape):
        return None
    return tuple(a if a == b else None for a, b in zip(then_shape, else_shape)), dtype


@traced
def _switch(condition, then_expression, else_expression):
    if not isinstance(condition, (Tensor, numbers.Number)) and \
            not (hasattr(condition, "dtype") and hasattr(condition, "shape")):  # ndarray, np.bool_
        raise TypeError(f"switch: condition must be a bool, a number or a tensor, got "
                        f"{type_name(condition)}")
    if not isinstance(condition, Tensor) or condition.ndim == 0:
        taken = then_expression if bool(condition) else else_expression
        taken = taken() if callable(taken) else taken
        if isinstance(condition, Tensor) and not isinstance(taken, (Tensor, symbolic.Symbol)):
            taken = as_tensor(taken, "switch", device=condition.device)  # as tf.cond
        return taken
    then_expression = then_expression() if callable(then_expression) else then_expression
    else_expression = else_expression() if callable(else_expression) else else_expression
    then_expression = as_tensor(then_expression, "switch", device=condition.device)
    if condition.ndim > then_expression.ndim:
        raise ValueError(f"switch: condition of rank {condition.ndim} (shape "
                         f"{condition.shape}) and expressions of rank {then_expression.ndim}; "
                         "expected the condition's rank to be at most the expressions'")
    else_expression = as_tensor(else_expression, "switch", device=condition.device)
    try:
        np.broadcast_shapes(condition.shape + (1,) * (then_expression.ndim - condition.ndim),
                            then_expression.shape, else_expression.shape)
    except ValueError:
        raise ValueError(f"switch: condition of shape {condition.shape} and expressions of "
                         f"shapes {then_expression.shape} and {else_expression.shape} do not "
                         "broadcast; expected the same shapes") from None
    condition = cast(condition, "bool")
    condition = reshape(condition, condition.shape + (1,) * (then_expression.ndim -
                                                             condition.ndim))
    return where(condition, then_expression, else_expression)


def _in_top_k_impl(device, p, targets, *, k):
    xp = device.xp
    # A target outside [0, classes) is not in the top k (TF's in_top_k says False, no error).
    inside = (targets >= 0) & (targets < p.shape[1])
    chosen = p[xp.arange(p.shape[0]), xp.where(inside, targets, 0).astype("int64")]
    better = (p > chosen[:, None]).sum(axis=1)
    return (better < k) & xp.isfinite(chosen) & inside


in_top_k_p = Primitive("in_top_k")  # no vjp: a boolean result
in_top_k_p.def_impl(_in_top_k_impl)
in_top_k_p.def_abstract(lambda p, targets, *, k: (p.shape[:1], np.dtype(bool)))


def in_top_k(predictions, targets, k: int) -> Tensor:
    """Keras: `K.in_top_k(predictions, targets, k)`. Whether each target class is among the k
    highest predictions of its row (bool `(batch,)`); ties count in its favour, as in TF."""
    predictions = as_input(predictions, "in_top_k")
    targets = as_input(targets, "in_top_k")
    k = check_int(k, "in_top_k", "k")
    batch = predictions.shape[:1]
    if predictions.ndim != 2 or targets.ndim != 1 or (
            None not in batch + targets.shape and targets.shape != batch):
        raise ValueError(f"in_top_k: predictions of shape {predictions.shape} and targets of "
                         f"shape {targets.shape}; expected (batch, classes) and (batch,)")
    if targets.dtype.kind not in "iu":
        raise TypeError(f"in_top_k: targets must be integers, got {targets.dtype.name}")
    return bind(in_top_k_p, predictions, targets, k=k)


@traced
def map_fn(fn, elems, name=None, dtype=None) -> Tensor:
    """Keras: `K.map_fn(fn, elems, name=None, dtype=None)`. `fn` applied to each slice of
    `elems` along axis 0, stacked (gradients flow through)."""
    check_callable(fn, "map_fn", "fn")
    elems = _sliceable(elems, "map_fn")
    if dtype is not None:
        as_dtype(dtype, "map_fn")
    out = stack([fn(elems[i]) for i in range(len(elems))])
    return out if dtype is None else cast(out, dtype)


@traced
def foldl(fn, elems, initializer=None, name=None):
    """Keras: `K.foldl(fn, elems, initializer=None, name=None)`. Reduces `elems` along axis 0
    from the left: `acc = fn(acc, x)`, starting from `initializer` (default `elems[0]`)."""
    check_callable(fn, "foldl", "fn")
    elems = _sliceable(elems, "foldl")
    items = [elems[i] for i in range(len(elems))]
    return _fold(fn, items, initializer, "foldl")


@traced
def foldr(fn, elems, initializer=None, name=None):
    """Keras: `K.foldr(fn, elems, initializer=None, name=None)`. As `foldl`, from the right."""
    check_callable(fn, "foldr", "fn")
    elems = _sliceable(elems, "foldr")
    items = [elems[i] for i in range(len(elems) - 1, -1, -1)]
    return _fold(fn, items, initializer, "foldr")


def _sliceable(elems, func: str) -> Tensor:
    elems = as_tensor(elems, func)
    if elems.ndim == 0:
        raise ValueError(f"{func}: elems must have rank >= 1 (it is sliced along axis 0), got "
                         "a scalar")
    return elems


def _fold(fn, items, initializer, func: str):
    if initializer is None:
        if not items:
            raise ValueError(f"{func}: elems is empty and there is no initializer")
        acc, items = items[0], items[1:]
    else:
        acc = initializer
    for item in items:
        acc = fn(acc, item)
    return acc
