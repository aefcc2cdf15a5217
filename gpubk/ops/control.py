"""Selection and iteration: switch, in_top_k, map_fn, foldl, foldr."""
from __future__ import annotations

from ..symbolic import traced
from ..tensor import Tensor, as_tensor


@traced
def switch(condition, then_expression, else_expression):
    """Keras: `K.switch(condition, then_expression, else_expression)`.

    A scalar condition picks one expression; callables are called only for the branch taken.
    A tensor condition selects elementwise: expressions are called, and a condition of lower
    rank gets trailing size-1 axes (Keras tiles it), so a `(batch,)` condition picks rows.
    """
    if not isinstance(condition, Tensor) or condition.ndim == 0:
        taken = then_expression if bool(condition) else else_expression
        return taken() if callable(taken) else taken
    then_expression = then_expression() if callable(then_expression) else then_expression
    else_expression = else_expression() if callable(else_expression) else else_expression
    then_expression = as_tensor(then_expression, "switch", device=condition.device)
    if condition.ndim > then_expression.ndim:
        raise ValueError(f"switch: condition of rank {condition.ndim} (shape "
                         f"{condition.shape}) and expressions of rank {then_expression.ndim}; "
                         "expected the condition's rank to be at most the expressions'")
    condition = cast(condition, "bool")
    condition = reshape(condition, condition.shape + (1,) * (then_expression.ndim -
                                                             condition.ndim))
    return where(condition, then_expression, else_expression)


@traced
def in_top_k(predictions, targets, k: int) -> Tensor:
    """Keras: `K.in_top_k(predictions, targets, k)`. Whether each target class is among the k
    highest predictions of its row (bool `(batch,)`); ties count in its favour, as in TF."""
    predictions = as_tensor(predictions, "in_top_k")
    targets = as_tensor(targets, "in_top_k", device=predictions.device)
    if predictions.ndim != 2 or targets.shape != predictions.shape[:1]:
        raise ValueError(f"in_top_k: predictions of shape {predictions.shape} and targets of "
                         f"shape {targets.shape}; expected (batch, classes) and (batch,)")
    xp, p = predictions.device.xp, predictions.data
    chosen = p[xp.arange(p.shape[0]), targets.data.astype("int64")]
    better = (p > chosen[:, None]).sum(axis=1)
    return Tensor((better < k) & xp.isfinite(chosen), predictions.device)


@traced
def map_fn(fn, elems, name=None, dtype=None) -> Tensor:
    """Keras: `K.map_fn(fn, elems, name=None, dtype=None)`. `fn` applied to each slice of
    `elems` along axis 0, stacked (gradients flow through)."""
    elems = as_tensor(elems, "map_fn")
    out = stack([fn(elems[i]) for i in range(len(elems))])
    return out if dtype is None else cast(out, dtype)


@traced
def foldl(fn, elems, initializer=None, name=None):
    """Keras: `K.foldl(fn, elems, initializer=None, name=None)`. Reduces `elems` along axis 0
    from the left: `acc = fn(acc, x)`, starting from `initializer` (default `elems[0]`)."""
    elems = as_tensor(elems, "foldl")
    items = [elems[i] for i in range(len(elems))]
    return _fold(fn, items, initializer, "foldl")


@traced
def foldr(fn, elems, initializer=None, name=None):
    """Keras: `K.foldr(fn, elems, initializer=None, name=None)`. As `foldl`, from the right."""
    elems = as_tensor(elems, "foldr")
    items = [elems[i] for i in range(len(elems) - 1, -1, -1)]
    return _fold(fn, items, initializer, "foldr")


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


from .math import cast, where  # noqa: E402
from .shape import reshape, stack  # noqa: E402
