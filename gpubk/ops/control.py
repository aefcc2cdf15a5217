"""Selection and iteration: switch, in_top_k, map_fn, foldl, foldr."""
from __future__ import annotations

import numbers

import numpy as np

from ..core.primitive import (
    Primitive, as_input, bind, bind_composite, broadcast_shapes, device_of, is_symbolic)
from ..dtypes import as_dtype
from ..subgraph import Body, merged
from ..symbolic import Symbol
from ..core import trace
from ..tensor import Tensor, Variable, as_tensor
from .math import cast, where
from .shape import expand_dims, stack
from .validate import check_callable, check_int, type_name


def switch(condition, then_expression, else_expression):
    """Keras: `K.switch(condition, then_expression, else_expression)`.

    A scalar condition picks one expression; callables are called only for the branch taken.
    A tensor condition selects elementwise: expressions are called, and a condition of lower
    rank gets trailing size-1 axes (Keras tiles it), so a `(batch,)` condition picks rows.
    A condition known only when evaluated (symbolic, or a variable in graph style) builds a
    node: both callables are called now to build their branches, as TensorFlow 1's `tf.cond`
    builds both, and each evaluation picks one.
    """
    staged = is_symbolic(condition) or isinstance(condition, Variable) and trace.staging()
    if staged and condition.ndim == 0:
        return _cond(condition, then_expression, else_expression)
    if staged:
        then_expression = _called(then_expression)
        else_expression = _called(else_expression)
    elif not isinstance(condition, (Tensor, numbers.Number)) and \
            not (hasattr(condition, "dtype") and hasattr(condition, "shape")):  # ndarray, np.bool_
        raise TypeError(f"switch: condition must be a bool, a number or a tensor, got "
                        f"{type_name(condition)}")
    if not isinstance(condition, Tensor) and not staged or condition.ndim == 0:
        taken = _called(then_expression if bool(condition) else else_expression)
        if isinstance(condition, Tensor) and not isinstance(taken, (Tensor, Symbol)):
            taken = as_tensor(taken, "switch", device=condition.device)  # as tf.cond
        return taken
    then_expression = _branch(_called(then_expression), device_of(condition))
    else_expression = _branch(_called(else_expression), device_of(condition))
    if condition.ndim > then_expression.ndim:
        raise ValueError(f"switch: condition of rank {condition.ndim} (shape "
                         f"{condition.shape}) and expressions of rank {then_expression.ndim}; "
                         "expected the condition's rank to be at most the expressions'")
    try:
        broadcast_shapes("switch", condition.shape + (1,) * (then_expression.ndim -
                                                             condition.ndim),
                         then_expression.shape, else_expression.shape)
    except ValueError:
        raise ValueError(f"switch: condition of shape {condition.shape} and expressions of "
                         f"shapes {then_expression.shape} and {else_expression.shape} do not "
                         "broadcast; expected the same shapes") from None
    condition = cast(condition, "bool")
    for _ in range(then_expression.ndim - condition.ndim):
        condition = expand_dims(condition, -1)
    return where(condition, then_expression, else_expression)


def _called(expression):
    return expression() if callable(expression) else expression


def _branch(value, device, dtype=None):
    """A branch as a tensor (or symbolic tensor) on the condition's device."""
    return value if is_symbolic(value) else as_tensor(value, "switch", dtype=dtype,
                                                      device=device)


def _cond(condition, then_expression, else_expression):
    """`tf.cond`: each branch (a callable traced into a sub-graph, or a value) as a body, of
    which each evaluation runs the one the condition picks. A constant branch takes the dtype
    of the other; otherwise the dtypes must agree, as in TensorFlow."""
    device = device_of(condition)
    branches = [then_expression, else_expression]
    bodies = [Body(lambda e=e: _branch(_called(e), device), [], "switch") for e in branches]
    dtypes = [b.result.dtype for b in bodies]
    if dtypes[0] != dtypes[1]:
        constant = [not callable(e) and not is_symbolic(e) for e in branches]
        if not any(constant):
            raise ValueError(f"switch: branches of dtypes {dtypes[0].name} and "
                             f"{dtypes[1].name}; expected the same dtype (as tf.cond)")
        i = constant.index(True)
        bodies[i] = Body(lambda: _branch(branches[i], device, dtypes[1 - i]), [], "switch")
    if bodies[0].result.ndim != bodies[1].result.ndim:
        raise ValueError(f"switch: branches of shapes {bodies[0].result.shape} and "
                         f"{bodies[1].result.shape} for a condition known only when evaluated; "
                         "expected branches of the same rank")
    return bind_composite(cond_p, condition, bodies[0].captures, bodies[1].captures,
                          bodies=tuple(bodies))


def _run_cond(condition, then_captures, else_captures, *, bodies):
    taken = 0 if bool(condition) else 1
    return bodies[taken].run([], (then_captures, else_captures)[taken])


# A scalar condition known only when evaluated: a node holding both branches' sub-graphs, each
# evaluation running the one the condition picks (gradients: the taken branch's, recomputed).
cond_p = Primitive("cond", composite=True, differentiable=(1, 2))
cond_p.def_impl(_run_cond)
cond_p.def_abstract(lambda condition, then_captures, else_captures, *, bodies: (
    merged(bodies[0].result.shape, bodies[1].result.shape), bodies[0].result.dtype))


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


def map_fn(fn, elems, name=None, dtype=None) -> Tensor:
    """Keras: `K.map_fn(fn, elems, name=None, dtype=None)`. `fn` applied to each slice of
    `elems` along axis 0, stacked (gradients flow through). On symbolic `elems`, `fn` is traced
    once into a loop node (see subgraph.py)."""
    check_callable(fn, "map_fn", "fn")
    elems = _sliceable(elems, "map_fn")
    if dtype is not None:
        dtype = as_dtype(dtype, "map_fn")
    if is_symbolic(elems):
        body = Body(lambda e: as_input(fn(e), "map_fn"), [(elems.shape[1:], elems.dtype)],
                    "map_fn")
        return bind_composite(map_p, elems, body.captures, body=body, dtype=dtype)
    return _map(fn, elems, dtype)


def _map(fn, elems, dtype):
    out = stack([fn(elems[i]) for i in range(len(elems))])
    return out if dtype is None else cast(out, dtype)


# K.map_fn, K.foldl and K.foldr over symbolic tensors: loops holding the function's sub-graph
# (gradients: recomputed, see staged_backprop.py).
map_p = Primitive("map_fn", composite=True)
map_p.def_impl(lambda elems, captures, *, body, dtype: _map(
    lambda e: body.run([e], captures), elems, dtype))
map_p.def_abstract(lambda elems, captures, *, body, dtype: (
    (elems.shape[0],) + body.result.shape, dtype or body.result.dtype))


def foldl(fn, elems, initializer=None, name=None):
    """Keras: `K.foldl(fn, elems, initializer=None, name=None)`. Reduces `elems` along axis 0
    from the left: `acc = fn(acc, x)`, starting from `initializer` (default `elems[0]`)."""
    return _fold(fn, elems, initializer, "foldl")


def foldr(fn, elems, initializer=None, name=None):
    """Keras: `K.foldr(fn, elems, initializer=None, name=None)`. As `foldl`, from the right."""
    return _fold(fn, elems, initializer, "foldr")


def _sliceable(elems, func: str) -> Tensor:
    elems = as_input(elems, func)
    if elems.ndim == 0:
        raise ValueError(f"{func}: elems must have rank >= 1 (it is sliced along axis 0), got "
                         "a scalar")
    return elems


def _fold(fn, elems, initializer, func: str):
    check_callable(fn, func, "fn")
    elems = _sliceable(elems, func)
    if initializer is not None and (is_symbolic(initializer) or is_symbolic(elems)):
        initializer = as_input(initializer, func)
    if not is_symbolic(elems) and not is_symbolic(initializer):
        return _fold_items(fn, elems, initializer, func)
    item = (elems.shape[1:], elems.dtype)
    start = item if initializer is None else (initializer.shape, initializer.dtype)
    body = Body(lambda acc, x: as_input(fn(acc, x), func), [start, item], func)
    acc = body.result
    if acc.ndim != len(start[0]):
        raise ValueError(f"{func}: fn returned shape {acc.shape} for an accumulator of shape "
                         f"{start[0]}; expected the same rank")
    return bind_composite(fold_p, elems, initializer, body.captures, body=body, func=func)


def _fold_items(fn, elems, initializer, func: str):
    """The fold itself, on tensors: from the left (foldl) or the right (foldr)."""
    order = range(len(elems)) if func == "foldl" else range(len(elems) - 1, -1, -1)
    items = [elems[i] for i in order]
    if initializer is None:
        if not items:
            raise ValueError(f"{func}: elems is empty and there is no initializer")
        acc, items = items[0], items[1:]
    else:
        acc = initializer
    for item in items:
        acc = fn(acc, item)
    return acc


fold_p = Primitive("fold", composite=True)
fold_p.def_impl(lambda elems, initializer, captures, *, body, func: _fold_items(
    lambda acc, x: body.run([acc, x], captures), elems, initializer, func))
fold_p.def_abstract(lambda elems, initializer, captures, *, body, func: (
    merged(body.params[0].shape, body.result.shape), body.result.dtype))
