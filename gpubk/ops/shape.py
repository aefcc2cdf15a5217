"""Ops that move values around without arithmetic: reshape, transpose, broadcast_to, tile,
repeat_elements, concatenate, stack, indexing, gather, padding: declared primitives
(core/primitive.py) and the Keras functions that check their arguments and bind them; the other
Keras shape functions (flatten, reverse, repeat, bias_add, padding...) are compositions.

Shape arguments known only when fed (`K.reshape(x, K.shape(y))`, or `K.shape(x)[0]` inside a
tuple) are parsed by dims.py into a 1-D integer tensor and what is known of it; reshape,
broadcast_to, permute_dimensions and tile then bind a `*_fed` primitive taking that tensor as a
second input. Indexing with arrays (`x[indices]`, `x[mask]`) is a primitive whose inputs are the
index arrays.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from .. import devices
from ..config import check_data_format
from ..core.primitive import (
    Primitive, as_input, bind, broadcast_shapes, broadcasts_to, device_of, is_symbolic,
    shaped_like, static)
from ..dtypes import as_dtype
from ..symbolic import symbols_in
from ..tensor import SymbolicValueError, Tensor, as_tensor
from . import dims
from .dims import resolve
from .math import broadcast_to_p, sum_to
from .validate import (
    check_axis, check_dims, check_int, check_number, check_sequence, normalize_axes)


def _known(shape: tuple) -> tuple:
    """(product of the known dims, whether a dim is unknown)."""
    size, unknown = 1, False
    for n in shape:
        if n is None:
            unknown = True
        else:
            size *= n
    return size, unknown


# -- reshape ---------------------------------------------------------------------------------
def _reshape_error(shape: tuple, target: tuple) -> ValueError:
    size, unknown = _known(shape)
    elements = "an unknown number of" if unknown and size else str(size)
    return ValueError(f"reshape: cannot reshape a tensor of shape {shape} ({elements} "
                      f"elements) to {target}; expected the same number of elements (and at "
                      "most one -1, which must be inferable)")


def _reshape_impl(device, a, *, shape):
    try:
        return a.reshape(shape)
    except ValueError:
        raise _reshape_error(a.shape, shape) from None


def _reshape_abstract(x, *, shape):
    if shape.count(-1) > 1:
        raise _reshape_error(x.shape, shape)
    size, unknown = _known(x.shape)
    rest = 1
    for n in shape:
        if n != -1:
            rest *= n
    if unknown and size:  # size * k elements, for an unknown k >= 0
        if -1 in shape:
            if rest == 0:
                raise _reshape_error(x.shape, shape)
            return tuple(None if n == -1 else n for n in shape), x.dtype
        if rest % size:  # no value of the unknown dims gives that many elements
            raise _reshape_error(x.shape, shape)
        return shape, x.dtype
    if -1 in shape:
        if rest == 0 or size % rest:
            raise _reshape_error(x.shape, shape)
        return tuple(size // rest if n == -1 else n for n in shape), x.dtype
    if rest != size:
        raise _reshape_error(x.shape, shape)
    return shape, x.dtype


reshape_p = Primitive("reshape")
reshape_p.def_impl(_reshape_impl)
reshape_p.def_abstract(_reshape_abstract)
reshape_p.def_vjp(lambda g, y, needs, x, *, shape: (reshape_like(g, x),))
reshape_like_p = shaped_like("reshape_like", _reshape_impl, lambda g, x: reshape_like(g, x))


def reshape_like(g: Tensor, like) -> Tensor:
    """`g` reshaped to the shape of `like` (a vjp's input: a tensor, a node or an Aval): where
    one dimension is unknown it is inferred (-1), where more are, the runtime shape decides."""
    shape = like.shape
    if shape.count(None) > 1 or None in shape and 0 in shape:  # -1 could not be inferred
        return bind(reshape_like_p, g, like)
    return reshape(g, tuple(-1 if n is None else n for n in shape))


def reshape(x, shape) -> Tensor:
    """Keras: `K.reshape(x, shape)`. Reshapes to `shape` (one dimension may be -1); `shape` may
    be known only when fed (`K.shape(y)`, `(K.shape(x)[0], -1)`)."""
    if x.__class__ is not Tensor:
        x = as_input(x, "reshape")
    target = dims.parse(shape, "reshape", minimum=-1)
    if target.__class__ is not tuple:
        return bind(reshape_fed_p, x, target.vector, known=target.known,
                    axes=target.axes_of(x))
    if target == x.shape:
        return x
    return bind(reshape_p, x, shape=target)


def _reshape_fed_abstract(x, vector, *, known, axes):
    """The static shape of a reshape to a target partly unknown: its known entries, and the
    one -1 where the others and x's size tell it: where the target's unknown entries are the
    sizes of x's unknown axes (`(K.shape(x)[0], -1)`), they cancel out."""
    if known.count(-1) > 1:
        raise _reshape_error(x.shape, known)
    if -1 not in known:
        return known, x.dtype
    size, _ = _known(x.shape)
    rest, _ = _known(tuple(n for n in known if n != -1))
    cancel = sorted(a for n, a in zip(known, axes) if n is None and a is not None)
    if known.count(None) != len(cancel) or \
            cancel != [i for i, n in enumerate(x.shape) if n is None]:
        return tuple(None if n == -1 else n for n in known), x.dtype
    if rest == 0 or size % rest:
        raise _reshape_error(x.shape, known)
    return tuple(size // rest if n == -1 else n for n in known), x.dtype


# A reshape to a target known only when fed: the target is its second input.
reshape_fed_p = Primitive("reshape_fed")
reshape_fed_p.def_impl(lambda device, a, vector, *, known, axes: _reshape_impl(
    device, a, shape=resolve(device, vector, "reshape", minimum=-1)))
reshape_fed_p.def_abstract(_reshape_fed_abstract)
reshape_fed_p.def_vjp(lambda g, y, needs, x, vector, *, known, axes: (
    reshape_like(g, x), None))


# -- broadcast_to ----------------------------------------------------------------------------
def broadcast_to(x, shape) -> Tensor:
    """Broadcasts `x` to `shape` (NumPy rules); a view, no copy. `shape` may be known only when
    fed."""
    x = as_input(x, "broadcast_to")
    shape = dims.parse(shape, "broadcast_to")
    if shape.__class__ is not tuple:
        return bind(broadcast_to_fed_p, x, shape.vector, known=shape.known)
    if x.shape == shape:
        return x
    return bind(broadcast_to_p, x, shape=shape)


def _broadcast_to_fed_abstract(x, vector, *, known):
    """The target's known entries; an unknown one is x's where x's is known and not 1."""
    if not broadcasts_to(x.shape, known):
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {known}")
    lead = len(known) - len(x.shape)
    result = list(known)
    for i, n in enumerate(x.shape):
        if n is not None and n != 1:
            result[lead + i] = n
    return tuple(result), x.dtype


broadcast_to_fed_p = Primitive("broadcast_to_fed")
broadcast_to_fed_p.def_impl(lambda device, a, vector, *, known: broadcast_to_p.impl(
    device, a, shape=resolve(device, vector, "broadcast_to")))
broadcast_to_fed_p.def_abstract(_broadcast_to_fed_abstract)
broadcast_to_fed_p.def_vjp(lambda g, y, needs, x, vector, *, known: (sum_to(g, x), None))


# -- transposes ------------------------------------------------------------------------------
def _inverse(perm: tuple) -> tuple:
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)


transpose_p = Primitive("transpose")
transpose_p.def_impl(lambda device, a, *, perm: a.transpose(perm))
transpose_p.def_abstract(lambda x, *, perm: (tuple(x.shape[i] for i in perm), x.dtype))
transpose_p.def_vjp(lambda g, y, needs, x, *, perm: (bind(transpose_p, g, perm=_inverse(perm)),))


def _not_a_permutation(pattern, shape) -> ValueError:
    return ValueError(f"permute_dimensions: pattern {pattern} is not a permutation of the "
                      f"{len(shape)} axes of a tensor of shape {shape}")


def permute_dimensions(x, pattern) -> Tensor:
    """Keras: `K.permute_dimensions(x, pattern)`. Permutes axes, e.g. `(0, 2, 1)`; `pattern`
    may be known only when fed."""
    x = as_input(x, "permute_dimensions")
    pattern = dims.parse(pattern, "permute_dimensions", "pattern")
    if pattern.__class__ is not tuple:
        known = pattern.known
        given = [p for p in known if p is not None]
        if len(known) != x.ndim or len(set(given)) != len(given) or \
                any(p >= x.ndim for p in given):
            raise _not_a_permutation(known, x.shape)
        return bind(permute_fed_p, x, pattern.vector, known=known, inverse=False)
    if sorted(pattern) != list(range(x.ndim)):
        raise _not_a_permutation(pattern, x.shape)
    return bind(transpose_p, x, perm=pattern)


def _permute_fed_impl(device, a, vector, *, known, inverse):
    perm = resolve(device, vector, "permute_dimensions", "pattern")
    if sorted(perm) != list(range(a.ndim)):
        raise _not_a_permutation(perm, a.shape)
    return a.transpose(_inverse(perm) if inverse else perm)


def _permute_fed_abstract(x, vector, *, known, inverse):
    """Axis i of the result is axis known[i] of x (or, for the inverse, axis known[i] of the
    result is axis i of x); unknown where the pattern is."""
    if not inverse:
        return tuple(None if p is None else x.shape[p] for p in known), x.dtype
    result = [None] * len(known)
    for i, p in enumerate(known):
        if p is not None:
            result[p] = x.shape[i]
    return tuple(result), x.dtype


# A transpose by a pattern known only when fed (its second input), or by its inverse: each is
# the other's vjp.
permute_fed_p = Primitive("permute_fed")
permute_fed_p.def_impl(_permute_fed_impl)
permute_fed_p.def_abstract(_permute_fed_abstract)
permute_fed_p.def_vjp(lambda g, y, needs, x, vector, *, known, inverse: (
    bind(permute_fed_p, g, vector, known=known, inverse=not inverse), None), saves=(1,))


def transpose(x) -> Tensor:
    """Keras: `K.transpose(x)`. Reverses the order of all axes (a matrix transpose in 2-D)."""
    x = as_input(x, "transpose")
    return bind(transpose_p, x, perm=tuple(range(x.ndim - 1, -1, -1)))


def swap_last_axes(x: Tensor) -> Tensor:
    """Transposes the last two axes (matrix transpose of a batch of matrices)."""
    pattern = list(range(x.ndim))
    pattern[-2], pattern[-1] = pattern[-1], pattern[-2]
    return permute_dimensions(x, tuple(pattern))


# -- size-1 axes -----------------------------------------------------------------------------
def _squeeze_error(shape, axis) -> ValueError:
    return ValueError(f"squeeze: axis {axis} of shape {shape} has size {shape[axis]}; "
                      "expected 1")


def _squeeze_impl(device, a, *, axis):
    shape = a.shape
    if shape[axis] != 1:
        raise _squeeze_error(shape, axis)
    return a.reshape(shape[:axis] + shape[axis + 1:])


def _squeeze_abstract(x, *, axis):
    if x.shape[axis] not in (1, None):
        raise _squeeze_error(x.shape, axis)
    return x.shape[:axis] + x.shape[axis + 1:], x.dtype


expand_dims_p = Primitive("expand_dims")
expand_dims_p.def_impl(lambda device, a, *, axis: a.reshape(a.shape[:axis] + (1,) +
                                                            a.shape[axis:]))
expand_dims_p.def_abstract(lambda x, *, axis: (x.shape[:axis] + (1,) + x.shape[axis:], x.dtype))
expand_dims_p.def_vjp(lambda g, y, needs, x, *, axis: (bind(squeeze_p, g, axis=axis),))

squeeze_p = Primitive("squeeze")
squeeze_p.def_impl(_squeeze_impl)
squeeze_p.def_abstract(_squeeze_abstract)
squeeze_p.def_vjp(lambda g, y, needs, x, *, axis: (bind(expand_dims_p, g, axis=axis),))


def expand_dims(x, axis: int = -1) -> Tensor:
    """Keras: `K.expand_dims(x, axis=-1)`. Adds a size-1 axis at `axis`."""
    x = as_input(x, "expand_dims")
    axis = check_axis(axis, x.ndim + 1, "expand_dims")  # axes of the result
    return bind(expand_dims_p, x, axis=axis)


def squeeze(x, axis: int) -> Tensor:
    """Keras: `K.squeeze(x, axis)`. Removes the size-1 dimension at `axis`."""
    x = as_input(x, "squeeze")
    return bind(squeeze_p, x, axis=check_axis(axis, x.ndim, "squeeze"))


def flatten(x) -> Tensor:
    """Keras: `K.flatten(x)`. A 1-D tensor of all the values."""
    x = as_input(x, "flatten")
    if x.ndim == 1:
        return x
    return bind(reshape_p, x, shape=(-1,))


def _batch_flatten_abstract(x):
    size, unknown = _known(x.shape[1:])
    return (x.shape[0], None if unknown and size else size), x.dtype


batch_flatten_p = Primitive("batch_flatten")
# explicit sizes: -1 cannot be inferred for an empty batch, e.g. (0, 3)
batch_flatten_p.def_impl(lambda device, a: a.reshape(a.shape[0], math.prod(a.shape[1:])))
batch_flatten_p.def_abstract(_batch_flatten_abstract)
batch_flatten_p.def_vjp(lambda g, y, needs, x: (reshape_like(g, x),))


def batch_flatten(x) -> Tensor:
    """Keras: `K.batch_flatten(x)`. `(batch, ...)` to `(batch, product of the rest)`."""
    x = as_input(x, "batch_flatten")
    if x.ndim == 0:
        return reshape(x, (1, 1))
    if x.ndim == 2:
        return x
    return bind(batch_flatten_p, x)


# -- repetitions -----------------------------------------------------------------------------
def _times(n, r: int):
    """A dim `n` (None if unknown) repeated `r` times."""
    return n * r if n is not None else (0 if r == 0 else None)


def _untile(g, x):
    """A tile's gradient: g's repeats summed back to x's shape (its runtime shape where the
    graph leaves it unknown); the repeats are read from g's shape."""
    return bind(untile_like_p, g, x) if None in x.shape else bind(untile_p, g, shape=x.shape)


tile_p = Primitive("tile")
tile_p.def_impl(lambda device, a, *, reps: device.xp.tile(a, reps))
tile_p.def_abstract(lambda x, *, reps: (tuple(_times(n, r) for n, r in zip(x.shape, reps)),
                                        x.dtype))
tile_p.def_vjp(lambda g, y, needs, x, *, reps: (_untile(g, x),))


def tile(x, n) -> Tensor:
    """Keras: `K.tile(x, n)`. Repeats `x` `n[i]` times along axis i; `n` may be known only when
    fed (`(K.shape(y)[0], 1)`).

    As in Keras (`tf.tile`), `n` needs one entry per axis; an int `n` is allowed for 1-D `x`."""
    x = as_input(x, "tile")
    reps = dims.parse(n, "tile", "n")
    fed = reps.__class__ is not tuple
    count = len(reps.known) if fed else len(reps)
    if count != x.ndim:
        raise ValueError(f"tile: n={n!r} has {count} entries but x has shape {x.shape}; "
                         f"expected one repetition count per axis ({x.ndim})")
    if fed:
        return bind(tile_fed_p, x, reps.vector, known=reps.known)
    return bind(tile_p, x, reps=reps)


def _untile_impl(device, g, *, shape):
    """The gradient of a tile of a tensor of `shape`: g's repeats (g's size over x's along
    each axis) summed."""
    if 0 in shape:
        return device.xp.zeros(shape, dtype=g.dtype)
    reps = tuple(m // n for m, n in zip(g.shape, shape))
    split = tuple(d for r, n in zip(reps, shape) for d in (r, n))
    return g.reshape(split).sum(axis=tuple(range(0, 2 * len(shape), 2)), dtype=g.dtype)


def _retile(gg, g, shape):
    """The vjp of untile: a tile of gg by the repeats of g over `shape` (both known)."""
    return tile(gg, tuple(m // n if n else 0 for m, n in zip(static(g.shape), static(shape))))


tile_fed_p = Primitive("tile_fed")
tile_fed_p.def_impl(lambda device, a, vector, *, known: device.xp.tile(
    a, resolve(device, vector, "tile", "n")))
tile_fed_p.def_abstract(lambda x, vector, *, known: (tuple(
    0 if n == 0 else None if r is None else _times(n, r) for n, r in zip(x.shape, known)),
    x.dtype))
tile_fed_p.def_vjp(lambda g, y, needs, x, vector, *, known: (_untile(g, x), None))
# The transpose of a tile: the repeats are read from g's shape over x's (given, or that of a
# second input where a graph leaves it unknown).
untile_p = Primitive("untile")
untile_p.def_impl(_untile_impl)
untile_p.def_abstract(lambda g, *, shape: (shape, g.dtype))
untile_p.def_vjp(lambda gg, y, needs, g, *, shape: (_retile(gg, g, shape),))
untile_like_p = Primitive("untile_like")
untile_like_p.def_impl(lambda device, g, like: _untile_impl(device, g, shape=like.shape))
untile_like_p.def_abstract(lambda g, like: (like.shape, g.dtype))
untile_like_p.def_vjp(lambda gg, y, needs, g, like: (_retile(gg, g, like.shape), None))


def _repeat_vjp(g, y, needs, x, *, rep, axis):
    shape = static(x.shape)
    split = shape[:axis] + (shape[axis], rep) + shape[axis + 1:]
    kept = shape[:axis] + (shape[axis], 1) + shape[axis + 1:]
    return (reshape(sum_to(reshape(g, split), kept), shape),)


repeat_elements_p = Primitive("repeat_elements")
repeat_elements_p.def_impl(lambda device, a, *, rep, axis: device.xp.repeat(a, rep, axis=axis))
repeat_elements_p.def_abstract(lambda x, *, rep, axis: (
    x.shape[:axis] + (_times(x.shape[axis], rep),) + x.shape[axis + 1:], x.dtype))
repeat_elements_p.def_vjp(_repeat_vjp)


def repeat_elements(x, rep: int, axis: int) -> Tensor:
    """Keras: `K.repeat_elements(x, rep, axis)`. Repeats each element `rep` times along `axis`,
    like `np.repeat`: `[1, 2]` with rep 2 gives `[1, 1, 2, 2]`."""
    x = as_input(x, "repeat_elements")
    axis = check_axis(axis, x.ndim, "repeat_elements")
    rep = check_int(rep, "repeat_elements", "rep", 0)
    return bind(repeat_elements_p, x, rep=rep, axis=axis)


def repeat(x, n: int) -> Tensor:
    """Keras: `K.repeat(x, n)`. `(samples, dim)` to `(samples, n, dim)`."""
    x = as_input(x, "repeat")
    if x.ndim != 2:
        raise ValueError(f"repeat: expected a 2-D tensor, got shape {x.shape}")
    return tile(expand_dims(x, 1), (1, check_int(n, "repeat", "n", 0), 1))


# -- joining ---------------------------------------------------------------------------------
def _inputs(tensors, func: str) -> list:
    """A non-empty list of tensors (or symbolic tensors) on one device."""
    tensors = [as_input(t, func) for t in check_sequence(tensors, func, "tensors")]
    if not tensors:
        raise ValueError(f"{func}: expected a non-empty list of tensors")
    first = None
    for t in tensors:
        if isinstance(t, Tensor):
            if first is None:
                first = t.device
            elif t.device is not first:
                raise ValueError(f"{func}: tensors are on different devices ({first.name} and "
                                 f"{t.device.name}); move them with K.to_device first")
    return tensors


def _merge(dims, error: str):
    """One dimension that several shapes share: the known one (None if none is known)."""
    known = None
    for n in dims:
        if n is not None:
            if known is not None and n != known:
                raise ValueError(error)
            known = n
    return known


def _concatenate_abstract(*xs, axis):
    shapes = [tuple(x.shape) for x in xs]
    if any(len(s) != len(shapes[0]) for s in shapes):
        raise ValueError(f"concatenate: tensors of ranks {[len(s) for s in shapes]} "
                         f"(shapes {shapes}); expected equal ranks")
    result = []
    for i, sizes in enumerate(zip(*shapes)):
        if i == axis:
            result.append(None if None in sizes else builtins.sum(sizes))
        else:
            result.append(_merge(sizes, f"concatenate: shapes {shapes} differ outside axis "
                                 f"{axis}; expected equal dimensions except along the axis"))
    return tuple(result), np.result_type(*[x.dtype for x in xs])


def _concatenate_impl(device, *arrays, axis):
    try:
        return device.xp.concatenate(arrays, axis=axis)
    except ValueError:
        _concatenate_abstract(*arrays, axis=axis)  # raises the message for these shapes
        raise


def _concatenate_vjp(g, y, needs, *xs, axis):
    grads, start, lead = [], 0, (slice(None),) * axis
    for need, x in zip(needs, xs):
        size = static(x.shape)[axis]
        grads.append(g[lead + (slice(start, start + size),)] if need else None)
        start += size
    return grads


concatenate_p = Primitive("concatenate")
concatenate_p.def_impl(_concatenate_impl)
concatenate_p.def_abstract(_concatenate_abstract)
concatenate_p.def_vjp(_concatenate_vjp)


@dims.folds(concatenate_p)
def _(node):  # K.concatenate([K.shape(x)[:1], [3]]): the known parts of a shape joined
    parts = [dims.known_value(a) for a in node.args]
    if node.ndim != 1 or not all(isinstance(p, tuple) for p in parts):
        return None
    return builtins.sum(parts, ())


def concatenate(tensors, axis: int = -1) -> Tensor:
    """Keras: `K.concatenate(tensors, axis=-1)`. Joins tensors along `axis`; their other
    dimensions must agree."""
    tensors = _inputs(tensors, "concatenate")
    ndim = tensors[0].ndim
    for t in tensors:
        if t.ndim != ndim:
            raise ValueError(f"concatenate: tensors of ranks {[t.ndim for t in tensors]} "
                             f"(shapes {[t.shape for t in tensors]}); expected equal ranks")
    return bind(concatenate_p, *tensors, axis=check_axis(axis, ndim, "concatenate"))


def _stack_abstract(*xs, axis):
    shapes = [tuple(x.shape) for x in xs]
    error = f"stack: tensors of shapes {shapes}; expected equal shapes"
    if any(len(s) != len(shapes[0]) for s in shapes):
        raise ValueError(error)
    shape = [_merge(dims, error) for dims in zip(*shapes)]
    shape.insert(axis, len(xs))
    return tuple(shape), np.result_type(*[x.dtype for x in xs])


def _stack_impl(device, *arrays, axis):
    shape = arrays[0].shape
    for a in arrays:
        if a.shape != shape:
            raise ValueError(f"stack: tensors of shapes {[a.shape for a in arrays]}; expected "
                             "equal shapes")
    return device.xp.stack(arrays, axis=axis)


def _stack_vjp(g, y, needs, *xs, axis):
    lead = (slice(None),) * axis
    return [g[lead + (i,)] if need else None for i, need in enumerate(needs)]


stack_p = Primitive("stack")
stack_p.def_impl(_stack_impl)
stack_p.def_abstract(_stack_abstract)
stack_p.def_vjp(_stack_vjp)


@dims.folds(stack_p)
def _(node):  # K.stack([K.shape(x)[0], 3]): a shape of known and fed scalars
    if node.ndim != 1:
        return None
    return tuple(dims.known_value(a) for a in node.args)


def stack(x, axis: int = 0) -> Tensor:
    """Keras: `K.stack(x, axis=0)`. Stacks a list of same-shape tensors along a new `axis`.

    A single tensor is first unstacked along its first axis, as `tf.stack` does, so
    `stack(t, axis)` moves axis 0 of `t` to position `axis`."""
    if isinstance(x, Tensor) or is_symbolic(x):
        if x.ndim == 0:
            raise ValueError("stack: cannot unstack a 0-d tensor; expected a list or rank >= 1")
        axis = check_axis(axis, x.ndim, "stack")
        pattern = list(range(1, x.ndim))
        pattern.insert(axis, 0)
        return bind(transpose_p, x, perm=tuple(pattern))
    tensors = _inputs(x, "stack")  # shapes are checked by the primitive
    return bind(stack_p, *tensors, axis=check_axis(axis, tensors[0].ndim + 1, "stack"))


# -- indexing --------------------------------------------------------------------------------
def _is_basic(key) -> bool:
    """True for keys of ints, slices, None and Ellipsis only (each element hit at most once)."""
    cls = key.__class__
    if cls is int or cls is slice or key is None or key is Ellipsis:
        return True
    if cls is tuple:
        for k in key:
            c = k.__class__
            if not (c is int or c is slice or k is None or k is Ellipsis or
                    isinstance(k, np.integer)):
                return False
        return True
    return isinstance(key, np.integer)


def _index_error(key, shape, reason) -> IndexError:
    return IndexError(f"getitem: index {key!r} is invalid for shape {shape}: {reason}")


def _getitem_impl(device, a, *, key):
    try:
        return a[key]
    except IndexError as err:
        raise _index_error(key, a.shape, err) from None


def _getitem_abstract(x, *, key):
    """The shape of `x[key]` for a basic key, unknown dims staying unknown: NumPy's advanced
    rules without arrays give it (the ints' broadcast shape is (), wherever it goes)."""
    return _advanced_abstract(x, key=key)


def _check_counts(key, shape: tuple, parts: tuple, used: int) -> None:
    """NumPy's errors for a key with two ellipses, or indexing more axes than there are."""
    if builtins.sum(k is Ellipsis for k in parts) > 1:
        raise _index_error(key, shape, "an index can only have a single ellipsis ('...')")
    if used > len(shape):
        raise _index_error(key, shape, f"too many indices: array is {len(shape)}-dimensional, "
                           f"but {used} were indexed")


def _slice_length(k: slice, n):
    """How many elements slice `k` takes of an axis of size `n` (None if unknown)."""
    for bound in (k.start, k.stop, k.step):
        if bound is not None and not hasattr(bound, "__index__"):
            raise TypeError(f"getitem: slice bounds must be ints or None, got {k!r}")
    return None if n is None else len(range(*k.indices(n)))


def _check_int(key, shape: tuple, axis: int, k) -> None:
    """An int index must lie in [-n, n) of its axis (unknown sizes pass)."""
    n, k = shape[axis], int(k)
    if n is not None and not -n <= k < n:
        raise _index_error(key, shape, f"index {k} is out of bounds for axis {axis} with "
                           f"size {n}")


def _scatter_impl(device, g, *, key, shape):
    data = device.xp.zeros(shape, dtype=g.dtype)
    data[key] = g  # a basic key reaches each element once (arrays: index_add below)
    return data


getitem_p = Primitive("getitem")
getitem_p.def_impl(_getitem_impl)
getitem_p.def_abstract(_getitem_abstract)
# The transpose of indexing: g placed at `key` in zeros of the indexed tensor's shape.
index_scatter_p = Primitive("index_scatter")
index_scatter_p.def_impl(_scatter_impl)
index_scatter_p.def_abstract(lambda g, *, key, shape: (shape, g.dtype))
index_scatter_p.def_vjp(lambda gg, y, needs, g, *, key, shape: (getitem(gg, key),))
index_scatter_like_p = shaped_like("index_scatter_like", _scatter_impl,
                                   lambda gg, g, *, key: getitem(gg, key))
getitem_p.def_vjp(lambda g, y, needs, x, *, key: (
    bind(index_scatter_p, g, key=key, shape=x.shape) if None not in x.shape else
    bind(index_scatter_like_p, g, x, key=key),))


@dims.folds(getitem_p)
def _(node):  # K.shape(x)[0], K.shape(x)[1:]: entries of a known shape
    vector, key = dims.known_value(node.args[0]), node.kwargs["key"]
    if not isinstance(vector, tuple) or not (key.__class__ is slice or
                                             isinstance(key, (int, np.integer))):
        return None
    try:
        return vector[key]
    except IndexError:  # the getitem node raises its own error when evaluated
        return None


def getitem(x, key) -> Tensor:
    """`x[key]`: NumPy indexing (ints, slices with steps, negative indices, None, Ellipsis,
    integer and boolean arrays)."""
    if _is_basic(key):
        if x.__class__ is not Tensor:
            x = as_input(x, "getitem")
        return bind(getitem_p, x, key=key)
    x = as_input(x, "getitem")
    template, indices = _advanced_key(key, x)
    return bind(advanced_getitem_p, x, *indices, key=template)


# -- indexing with arrays --------------------------------------------------------------------
class _Index:
    """Marks, in an advanced key's template, the place of an index array (an input)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<index>"


INDEX = _Index()


def _is_basic_part(k) -> bool:
    cls = k.__class__
    return cls is int or cls is slice or k is None or k is Ellipsis or \
        isinstance(k, np.integer)


def _advanced_key(key, x):
    """An advanced key as (its template: the key with INDEX in place of each array, the index
    arrays as tensors on x's device, or symbolic)."""
    if key.__class__ is not tuple:  # x[indices], x[mask]: a key that is not basic is an array
        return INDEX, (_index_input(key, x),)
    template, indices = [], []
    for k in key:
        if _is_basic_part(k):
            template.append(k)
        else:
            template.append(INDEX)
            indices.append(_index_input(k, x))
    return tuple(template), indices


def _index_input(k, x):
    """One index array of a key: a tensor on x's device, or a symbolic tensor."""
    if isinstance(k, Tensor):
        if isinstance(x, Tensor) and k.device is not x.device:
            raise ValueError(f"getitem: index is on {k.device.name} but the tensor is on "
                             f"{x.device.name}")
        return k
    if is_symbolic(k):
        return k
    try:
        array = np.asarray(k)
    except SymbolicValueError:
        array = None
    if array is None or array.dtype == object and symbols_in(k):
        raise TypeError("getitem: got a list holding symbolic tensors as an index; expected a "
                        "tensor (join them with K.stack first)")
    device = device_of(x)
    return Tensor(device.put(array), device)


def _full_key(key, indices):
    """The template of an advanced key with its index arrays in place."""
    if key is INDEX:
        return indices[0]
    arrays = iter(indices)
    return tuple(next(arrays) if k is INDEX else k for k in key)


def _advanced_abstract(x, *indices, key):
    """The shape of `x[key]` under NumPy's rules for advanced indexing: the index arrays (and
    ints among them) broadcast together; their shape takes the place of the first where they
    are adjacent in the key, else comes first. A boolean mask selects an unknown number of
    elements."""
    shape = x.shape
    parts = key if key.__class__ is tuple else (key,)
    arrays = iter(indices)
    entries = [(k, next(arrays) if k is INDEX else None) for k in parts]
    used = builtins.sum(
        (a.ndim if a.dtype.kind == "b" else 1) if k is INDEX else 1
        for k, a in entries if k is not None and k is not Ellipsis)
    _check_counts(key, shape, parts, used)
    result, index_shapes, places, i = [], [], [], 0
    for k, a in entries:
        if k is None:
            result.append(1)
        elif k is Ellipsis:
            rest = len(shape) - used
            result.extend(shape[i:i + rest])
            i += rest
        elif k.__class__ is slice:
            result.append(_slice_length(k, shape[i]))
            i += 1
        else:  # an index array, or an int (advanced too, next to arrays)
            index_shapes.append(_index_shape(key, shape, i, k, a))
            places.append(len(result))
            result.append(INDEX)
            i += a.ndim if k is INDEX and a.dtype.kind == "b" else 1
    result.extend(shape[i:])
    if not index_shapes:  # slices, None and Ellipsis only
        return tuple(result), x.dtype
    try:
        joint = list(broadcast_shapes("getitem", *index_shapes))
    except ValueError:
        raise _index_error(key, shape, "shape mismatch: indexing arrays could not be broadcast "
                           f"together with shapes {index_shapes}") from None
    kept = [n for n in result if n is not INDEX]
    first = places[0] if _adjacent(parts) else 0
    return tuple(kept[:first] + joint + kept[first:]), x.dtype


def _index_shape(key, shape, axis: int, k, a) -> tuple:
    """What one advanced entry adds to the broadcast: an array's shape, () for an int, and
    (count of True,) for a mask, whose shape must match the dims it covers."""
    if k is not INDEX:
        _check_int(key, shape, axis, k)
        return ()
    if a.dtype.kind == "b":
        covered = shape[axis:axis + a.ndim]
        for j, (m, n) in enumerate(zip(a.shape, covered)):
            if None not in (m, n) and m != n:
                raise _index_error(key, shape, f"boolean index did not match indexed array "
                                   f"along axis {axis + j}; size of axis is {n} but size of "
                                   f"corresponding boolean axis is {m}")
        return (None,)
    if a.dtype.kind not in "iu":
        raise _index_error(key, shape, "arrays used as indices must be of integer (or boolean) "
                           f"type, got {a.dtype.name}")
    return tuple(a.shape)


def _adjacent(parts) -> bool:
    """Whether a key's advanced entries (arrays, and ints next to them) are next to each other
    (a slice, None or Ellipsis between them, even an empty Ellipsis, separates them: NumPy's
    rule)."""
    advanced = [i for i, k in enumerate(parts)
                if k is INDEX or not (k is None or k is Ellipsis or k.__class__ is slice)]
    return advanced[-1] - advanced[0] == len(advanced) - 1


def _scatter_add_impl(device, g, *indices, key, shape):
    data = device.xp.zeros(shape, dtype=g.dtype)
    device.backend.scatter_add(data, _full_key(key, indices), g)  # repeated indices accumulate
    return data


_INDICES = tuple(range(1, 65))  # the inputs after the first: index arrays (one per axis at most)
advanced_getitem_p = Primitive("advanced_getitem")
advanced_getitem_p.def_impl(lambda device, a, *indices, key: _getitem_impl(
    device, a, key=indices[0] if key is INDEX else _full_key(key, indices)))
advanced_getitem_p.def_abstract(_advanced_abstract)
advanced_getitem_p.def_vjp(lambda g, y, needs, x, *indices, key: (
    bind(index_add_like_p, g, x, *indices, key=key) if None in x.shape else
    bind(index_add_p, g, *indices, key=key, shape=x.shape), *[None] * len(indices)),
    saves=_INDICES)
# Its transpose: g added at the indexed places of zeros of x's shape (given, or that of a second
# input where a graph leaves it unknown); repeated indices accumulate.
index_add_p = Primitive("index_add")
index_add_p.def_impl(_scatter_add_impl)
index_add_p.def_abstract(lambda g, *indices, key, shape: (shape, g.dtype))
index_add_p.def_vjp(lambda gg, y, needs, g, *indices, key, shape: (
    bind(advanced_getitem_p, gg, *indices, key=key), *[None] * len(indices)), saves=_INDICES)
index_add_like_p = Primitive("index_add_like")
index_add_like_p.def_impl(lambda device, g, like, *indices, key: _scatter_add_impl(
    device, g, *indices, key=key, shape=like.shape))
index_add_like_p.def_abstract(lambda g, like, *indices, key: (like.shape, g.dtype))
index_add_like_p.def_vjp(lambda gg, y, needs, g, like, *indices, key: (
    bind(advanced_getitem_p, gg, *indices, key=key), None, *[None] * len(indices)),
    saves=tuple(i + 1 for i in _INDICES))


def _gather_impl(device, a, indices):
    bad = (indices < 0) | (indices >= a.shape[0])
    if bool(bad.any()):
        raise ValueError(f"gather: indices must be in [0, {a.shape[0]}) for a reference "
                         f"of shape {a.shape}")
    return a[indices]


def _gather_grad_impl(device, g, indices, *, shape):
    data = device.xp.zeros(shape, dtype=g.dtype)
    device.backend.scatter_add(data, indices, g)  # repeated indices accumulate
    return data


gather_p = Primitive("gather")
gather_p.def_impl(_gather_impl)
gather_p.def_abstract(lambda ref, indices: (tuple(indices.shape) + tuple(ref.shape[1:]),
                                            ref.dtype))
gather_p.def_vjp(lambda g, y, needs, ref, indices: (
    bind(gather_grad_p, g, indices, shape=static(ref.shape)), None), saves=(1,))
# The transpose of gather: rows of g added into zeros of the reference's shape.
gather_grad_p = Primitive("gather_grad")
gather_grad_p.def_impl(_gather_grad_impl)
gather_grad_p.def_abstract(lambda g, indices, *, shape: (shape, g.dtype))
gather_grad_p.def_vjp(lambda gg, y, needs, g, indices, *, shape: (
    bind(gather_p, gg, indices), None), saves=(1,))


def gather(reference, indices) -> Tensor:
    """Keras: `K.gather(reference, indices)`. The rows `reference[indices]` (along axis 0);
    indices out of range raise an error."""
    reference = as_input(reference, "gather")
    if indices.__class__ is not Tensor and not is_symbolic(indices):
        indices = as_tensor(indices, "gather", device=device_of(reference))
    if indices.dtype.kind not in "iu":
        raise TypeError(f"gather: expected integer indices, got {indices.dtype.name}")
    if reference.ndim == 0:
        raise ValueError("gather: expected a reference of rank >= 1, got a scalar")
    if isinstance(reference, Tensor) and isinstance(indices, Tensor) and \
            indices.device is not reference.device:
        raise ValueError(f"gather: indices are on {indices.device.name} but the reference is "
                         f"on {reference.device.name}; move them with K.to_device first")
    return bind(gather_p, reference, indices)


def reverse(x, axes) -> Tensor:
    """Keras: `K.reverse(x, axes)`. Reverses the order of the values along `axes` (an int or a
    list of ints)."""
    x = as_input(x, "reverse")
    if axes is None:  # tf.reverse needs the axes
        raise TypeError("reverse: axes must be an int or a list of ints, got None")
    axes = normalize_axes(axes, x.ndim, "reverse", "axes")
    return bind(getitem_p, x, key=tuple(slice(None, None, -1) if i in axes else slice(None)
                                        for i in range(x.ndim)))


# -- more Keras functions ----------------------------------------------------------------------
def arange(start, stop=None, step=1, dtype="int32") -> Tensor:
    """Keras: `K.arange(start, stop=None, step=1, dtype='int32')`. Evenly spaced values in
    [start, stop); with one argument, [0, start) (a negative start gives an empty tensor)."""
    start = check_number(start, "arange", "start")
    stop = None if stop is None else check_number(stop, "arange", "stop")
    if check_number(step, "arange", "step") == 0:
        raise ValueError("arange: step must not be 0")
    if stop is None and start < 0:
        start = 0
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    dev = devices.current()
    return Tensor(dev.put(values.astype(as_dtype(dtype, "arange"))), dev)


one_hot_p = Primitive("one_hot")  # no vjp: its input is integer
one_hot_p.def_impl(lambda device, a, *, num_classes: (
    a[..., None] == device.xp.arange(num_classes)).astype(np.float32))
one_hot_p.def_abstract(lambda x, *, num_classes: (tuple(x.shape) + (num_classes,),
                                                  np.dtype(np.float32)))


def one_hot(indices, num_classes: int) -> Tensor:
    """Keras: `K.one_hot(indices, num_classes)`. float32 one-hot vectors along a new last axis;
    an index outside [0, num_classes) gives a row of zeros (as `tf.one_hot`)."""
    indices = as_input(indices, "one_hot")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer indices, got {indices.dtype.name}")
    return bind(one_hot_p, indices,
                num_classes=check_int(num_classes, "one_hot", "num_classes", 0))


# -- padding ---------------------------------------------------------------------------------
def _pad_impl(device, a, *, widths, value):
    out = device.xp.full(tuple(n + lo + hi for n, (lo, hi) in zip(a.shape, widths)), value,
                         dtype=a.dtype)
    out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(a.shape, widths))] = a
    return out


pad_p = Primitive("pad")
pad_p.def_impl(_pad_impl)
pad_p.def_abstract(lambda x, *, widths, value: (
    tuple(None if n is None else n + lo + hi for n, (lo, hi) in zip(x.shape, widths)), x.dtype))
pad_p.def_vjp(lambda g, y, needs, x, *, widths, value: (
    g[tuple(slice(lo, -hi if hi else None) for lo, hi in widths)],))


def pad(x, widths, value: float = 0.0) -> Tensor:
    """Constant padding (zeros by default): `widths` is one (before, after) pair per axis."""
    x = as_input(x, "pad")
    widths = tuple((int(lo), int(hi)) for lo, hi in widths)
    if len(widths) != x.ndim or any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ValueError(f"pad: expected {x.ndim} non-negative (before, after) pairs for shape "
                         f"{x.shape}, got {widths}")
    return bind(pad_p, x, widths=widths, value=value)


def _spatial_padding(x, padding, data_format, rank: int, func: str) -> Tensor:
    x = as_input(x, func)
    if x.ndim != rank:
        raise ValueError(f"{func}: expected a {rank}-D tensor, got shape {x.shape}")
    padding = _padding_pairs(padding, rank - 2, func)
    if check_data_format(data_format, func) == "channels_first":
        return pad(x, [(0, 0), (0, 0), *padding])
    return pad(x, [(0, 0), *padding, (0, 0)])


def _padding_pairs(padding, count: int, func: str) -> list:
    """`count` (before, after) pairs of sizes >= 0."""
    expected = f"{count} (before, after) pairs of ints >= 0"
    if not isinstance(padding, (list, tuple)) or len(padding) != count or \
            not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in padding):
        raise ValueError(f"{func}: padding must be {expected}, got {padding!r}")
    return [check_dims(tuple(p), func, "padding") for p in padding]


def temporal_padding(x, padding=(1, 1)) -> Tensor:
    """Keras: `K.temporal_padding(x, padding=(1, 1))`. Zero padding of axis 1 of a 3-D tensor."""
    return _spatial_padding(x, [padding], "channels_last", 3, "temporal_padding")


def spatial_2d_padding(x, padding=((1, 1), (1, 1)), data_format=None) -> Tensor:
    """Keras: `K.spatial_2d_padding(x, padding=((1, 1), (1, 1)), data_format=None)`. Zero
    padding of the two spatial axes of a 4-D tensor."""
    return _spatial_padding(x, padding, data_format, 4, "spatial_2d_padding")


def spatial_3d_padding(x, padding=((1, 1), (1, 1), (1, 1)), data_format=None) -> Tensor:
    """Keras: `K.spatial_3d_padding(x, padding=((1, 1), (1, 1), (1, 1)), data_format=None)`.
    Zero padding of the three spatial axes of a 5-D tensor."""
    return _spatial_padding(x, padding, data_format, 5, "spatial_3d_padding")


def reshape_target(shape: tuple) -> tuple:
    """A shape as a reshape target: one unknown dim becomes -1."""
    return tuple(-1 if n is None else n for n in shape)


def bias_add(x, bias, data_format=None) -> Tensor:
    """Keras: `K.bias_add(x, bias, data_format=None)`. Adds a bias of the channel axis's size
    (or of x's shape without the batch axis, channels last)."""
    x, bias = as_input(x, "bias_add"), as_input(bias, "bias_add")
    data_format = check_data_format(data_format, "bias_add")
    if x.ndim < 2:  # as tf.nn.bias_add
        raise ValueError(f"bias_add: expected x of rank >= 2, got shape {x.shape}")
    if bias.ndim not in (1, x.ndim - 1):
        raise ValueError(f"bias_add: unexpected bias dimensions {bias.ndim} (shape "
                         f"{bias.shape}); expected 1 or {x.ndim - 1}")
    channels_first = data_format == "channels_first" and x.ndim > 2
    if bias.ndim == 1:
        channels = x.shape[1] if channels_first else x.shape[-1]
        if bias.shape[0] != channels and None not in (bias.shape[0], channels):
            raise ValueError(f"bias_add: bias of shape {bias.shape} for x of shape {x.shape}; "
                             f"expected {channels} values ({data_format})")
        if channels_first:
            return x + reshape(bias, (1, -1) + (1,) * (x.ndim - 2))
        return x + bias
    if channels_first:
        return x + reshape(bias, reshape_target((1, bias.shape[-1]) + bias.shape[:-1]))
    return x + reshape(bias, reshape_target((1,) + bias.shape))


