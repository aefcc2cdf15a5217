"""Shape arguments known only when fed: `K.reshape(x, K.shape(y))`, `K.tile(x, (K.shape(x)[0],
1))`, `K.zeros((K.shape(x)[0], 2))`.

`parse` takes a shape argument as the Keras functions do (an int, a list or tuple of ints and
0-d integer tensors, a 1-D integer tensor) and gives either a tuple of Python ints, as
`check_dims` does, or, when the argument holds symbolic parts, a `FedShape`:
- `vector`: a 1-D integer tensor (symbolic) holding the whole shape when fed: the argument itself
  where it is one (`K.shape(y)`), else a `dims` node packing the tuple's entries;
- `known`: what is known before feeding, one entry per dimension, None where unknown. The common
  case is folded: `K.shape(y)[i]` is `y.shape[i]` where that is known (and `K.shape(y)` is
  `y.shape`), so a shape that is wholly known this way is returned as plain ints.

A primitive taking a fed shape takes `vector` as an input (its abstract evaluation reads
`known`) and turns it into Python ints at evaluation with `resolve`, which checks the entries as
the static path does.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.primitive import Primitive, bind, is_symbolic
from ..tensor import Tensor, Variable
from .math import cast_p
from .query import shape_p
from .validate import check_dims, type_name


class FedShape:
    """A shape known only when fed: a 1-D integer tensor (`vector`), its static knowledge
    (`known`, a tuple of ints and None), and per entry, where it is the unknown size of a
    tensor's axis (`K.shape(y)[i]`), (that tensor, i), else None (`origins`)."""

    __slots__ = ("vector", "known", "origins")

    def __init__(self, vector, known: tuple, origins: tuple) -> None:
        self.vector = vector
        self.known = known
        self.origins = origins

    def __repr__(self) -> str:
        return f"FedShape({self.known})"

    def axes_of(self, x) -> tuple:
        """Per entry, the axis of `x` whose unknown size it is, or None."""
        return tuple(None if o is None or o[0] is not x else o[1] for o in self.origins)


class _Size:
    """What is known of an unknown size: the tensor and axis it is the size of."""

    __slots__ = ("source", "axis")

    def __init__(self, source, axis: int) -> None:
        self.source = source
        self.axis = axis


def parse(shape, func: str, name: str = "shape", minimum: int = 0):
    """`shape` as a tuple of Python ints (see `check_dims`), or a FedShape where it holds
    symbolic parts; each known entry at least `minimum` (-1 for a reshape target)."""
    if shape.__class__ is tuple:  # the common case, as check_dims's: a loop, no generator
        for n in shape:
            if n.__class__ is not int or n < minimum:
                break
        else:
            return shape
    if shape.__class__ is FedShape:
        return shape
    if is_symbolic(shape):
        if shape.ndim == 0:  # one symbolic int: as check_dims takes one int
            return _from_entries((shape,), func, name, minimum)
        return _from_vector(shape, func, name, minimum)
    if isinstance(shape, (list, tuple)) and any(is_symbolic(n) for n in shape):
        return _from_entries(shape, func, name, minimum)
    return check_dims(shape, func, name, minimum)


def _from_vector(vector, func: str, name: str, minimum: int):
    """A whole shape given as a symbolic 1-D integer tensor (`K.shape(y)`, `K.stack([...])`)."""
    if vector.ndim != 1 or vector.dtype.kind not in "iu":
        raise TypeError(f"{func}: {name} must be a 1-D integer tensor or a tuple of ints, got "
                        f"{vector.dtype.name} of shape {vector.shape}")
    if vector.shape[0] is None:
        raise ValueError(f"{func}: {name} is a 1-D tensor of unknown length (shape "
                         f"{vector.shape}); expected one entry per dimension, a known number")
    return _result(vector, known_value(vector), func, name, minimum)


def _from_entries(entries, func: str, name: str, minimum: int):
    """A list or tuple of ints and 0-d integer tensors, some symbolic (`(K.shape(x)[0], -1)`).
    Entries known before feeding become ints; the others are packed into a `dims` node."""
    template, values, fed = [], [], []
    for n in entries:
        if is_symbolic(n):
            if n.ndim != 0 or n.dtype.kind not in "iu":
                raise TypeError(f"{func}: {name} must be a tuple of ints, got {entries!r} (an "
                                f"entry of dtype {n.dtype.name} and shape {n.shape}; expected "
                                "a 0-d integer tensor)")
            value = known_value(n)
            if value is None or value.__class__ is _Size:
                fed.append(n)
                template.append(None)
            else:
                template.append(value)
            values.append(value)
        elif isinstance(n, Tensor) and n.ndim == 0 and n.dtype.kind in "iu" or \
                isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)):
            template.append(int(n))
            values.append(int(n))
        else:
            raise TypeError(f"{func}: {name} must be a tuple of ints, got {entries!r} (an entry "
                            f"of type {type_name(n)})")
    template = tuple(template)
    vector = bind(dims_p, *fed, template=template) if fed else None
    return _result(vector, tuple(values), func, name, minimum)


def _result(vector, values: tuple, func: str, name: str, minimum: int):
    """The parsed shape: ints where all are known, else a FedShape."""
    known = tuple(None if n is None or n.__class__ is _Size else n for n in values)
    for n in known:
        if n is not None and n < minimum:
            raise ValueError(f"{func}: {name} entries must be >= {minimum}, got {known}")
    if None not in known:
        return known
    return FedShape(vector, known, tuple(
        (n.source, n.axis) if n.__class__ is _Size else None for n in values))


def resolve(device, vector, func: str, name: str = "shape", minimum: int = 0) -> tuple:
    """A fed shape's `vector` (a device array) as a tuple of Python ints, checked as the static
    path checks them."""
    dims = tuple(device.to_host(vector).reshape(-1).tolist())
    for n in dims:
        if n < minimum:
            raise ValueError(f"{func}: {name} entries must be >= {minimum}, got {dims}")
    return dims


# -- the dims node: a tuple of ints and symbolic scalars packed into one vector ----------------
def _dims_impl(device, *scalars, template):
    values = iter(scalars)
    dims = [int(device.to_host(next(values))) if n is None else n for n in template]
    return device.put(np.asarray(dims, dtype=np.int64))


dims_p = Primitive("dims")  # no vjp: an integer result
dims_p.def_impl(_dims_impl)
dims_p.def_abstract(lambda *scalars, template: ((len(template),), np.dtype(np.int64)))


# -- what is known of an integer tensor's value before feeding -----------------------------------
# Per primitive passing shape values through, how to read its node's value statically: an int
# (0-d) or a tuple of ints and None (1-D), None if nothing is known. Registered next to each
# primitive's declaration (shape.py: getitem, stack, concatenate).
_FOLDS: dict[Primitive, Callable] = {}


def folds(p: Primitive):
    """Decorator: `fn(node)` tells what is known of the value of `p`'s node (see above)."""
    def register(fn):
        _FOLDS[p] = fn
        return fn
    return register


def known_value(t):
    """What is known of an integer tensor's value before feeding: an int (0-d), a tuple of ints
    and None (1-D of known length), or None; in place of None, a `_Size` where the value is the
    unknown size of an axis."""
    if isinstance(t, Tensor):
        # (a variable's value may change before the graph runs: unknown)
        if not isinstance(t, Variable) and t.ndim <= 1 and t.dtype.kind in "iu":
            value = t.numpy().tolist()
            return tuple(value) if isinstance(value, list) else value
        value = None
    else:
        fold = _FOLDS.get(t.op)
        value = None if fold is None else fold(t)
    if value is None and t.ndim == 1 and t.shape[0] is not None:
        return (None,) * t.shape[0]
    return value


folds(shape_p)(lambda node: tuple(  # K.shape(y): y's static shape
    _Size(node.args[0], i) if n is None else n for i, n in enumerate(node.args[0].shape)))
folds(dims_p)(lambda node: _fill(node.kwargs["template"], node.args))
folds(cast_p)(lambda node: known_value(node.args[0]) if node.dtype.kind in "iu" else None)


def _fill(template: tuple, scalars: tuple) -> tuple:
    values = iter(scalars)
    return tuple(known_value(next(values)) if n is None else n for n in template)
