"""Ops that move values around without arithmetic: reshape, transpose, permute_dimensions,
broadcast_to, tile, repeat_elements, concatenate, stack, indexing; with their backward rules."""
from __future__ import annotations

import numpy as np

from ..autodiff import record
from ..devices import scatter_add
from ..tensor import Tensor, as_tensor


def _as_ints(shape, func: str) -> tuple:
    """A target shape given as ints, tensors or a shape tensor, as a tuple of Python ints."""
    if isinstance(shape, Tensor):
        shape = shape.numpy().tolist()
    try:
        return tuple(int(n) for n in (shape if isinstance(shape, (list, tuple)) else (shape,)))
    except (TypeError, ValueError):
        raise TypeError(f"{func}: expected a shape of integers, got {shape!r}") from None


def _reshape_grad(g, y, needs, in_shape):
    return (reshape(g, in_shape),)


def reshape(x, shape) -> Tensor:
    """Keras: `K.reshape(x, shape)`. Reshapes to `shape` (one dimension may be -1)."""
    x = as_tensor(x, "reshape")
    target = _as_ints(shape, "reshape")
    if target == x.shape:
        return x
    try:
        data = x.data.reshape(target)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} "
                         f"elements) to {target}; expected the same number of elements") from None
    if x._rg:
        return record(data, (x,), _reshape_grad, (x.shape,))
    return Tensor(data, x.device)


def _broadcast_grad(g, y, needs, in_shape):
    return (sum_to(g, in_shape),)


def broadcast_to(x, shape) -> Tensor:
    """Broadcasts `x` to `shape` (NumPy rules); a view, no copy."""
    x = as_tensor(x, "broadcast_to")
    shape = _as_ints(shape, "broadcast_to")
    if x.shape == shape:
        return x
    try:
        data = x.device.xp.broadcast_to(x.data, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    if x._rg:
        return record(data, (x,), _broadcast_grad, (x.shape,))
    return Tensor(data, x.device)


def _permute_grad(g, y, needs, pattern):
    return (permute_dimensions(g, tuple(np.argsort(pattern))),)


def permute_dimensions(x, pattern) -> Tensor:
    """Keras: `K.permute_dimensions(x, pattern)`. Permutes axes, e.g. `(0, 2, 1)`."""
    x = as_tensor(x, "permute_dimensions")
    pattern = tuple(int(p) for p in pattern)
    if sorted(pattern) != list(range(x.ndim)):
        raise ValueError(f"permute_dimensions: pattern {pattern} is not a permutation of the "
                         f"{x.ndim} axes of a tensor of shape {x.shape}")
    data = x.device.xp.transpose(x.data, pattern)
    if x._rg:
        return record(data, (x,), _permute_grad, (pattern,))
    return Tensor(data, x.device)


def transpose(x) -> Tensor:
    """Keras: `K.transpose(x)`. Reverses the order of all axes (a matrix transpose in 2-D)."""
    x = as_tensor(x, "transpose")
    return permute_dimensions(x, tuple(range(x.ndim))[::-1])


def swap_last_axes(x: Tensor) -> Tensor:
    """Transposes the last two axes (matrix transpose of a batch of matrices)."""
    pattern = list(range(x.ndim))
    pattern[-2], pattern[-1] = pattern[-1], pattern[-2]
    return permute_dimensions(x, pattern)


def expand_dims(x, axis: int = -1) -> Tensor:
    """Keras: `K.expand_dims(x, axis=-1)`. Adds a size-1 axis at `axis`."""
    x = as_tensor(x, "expand_dims")
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"expand_dims: axis {axis} is out of range for a tensor of rank "
                         f"{x.ndim}; expected an axis in [{-x.ndim - 1}, {x.ndim}]")
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def _tile_grad(g, y, needs, in_shape, reps):
    # Split each tiled axis into (repeat, original) and sum over the repeats.
    split = tuple(d for r, n in zip(reps, in_shape) for d in (r, n))
    return (sum(reshape(g, split), axis=tuple(range(0, len(split), 2))),)


def tile(x, n) -> Tensor:
    """Keras: `K.tile(x, n)`. Repeats `x` `n[i]` times along axis i.

    As in Keras (`tf.tile`), `n` needs one entry per axis; an int `n` is allowed for 1-D `x`."""
    x = as_tensor(x, "tile")
    reps = _as_ints(n, "tile")
    if len(reps) != x.ndim:
        raise ValueError(f"tile: n={n!r} has {len(reps)} entries but x has shape {x.shape}; "
                         f"expected one repetition count per axis ({x.ndim})")
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: repetition counts must be >= 0, got {reps}")
    data = x.device.xp.tile(x.data, reps)
    if x._rg:
        return record(data, (x,), _tile_grad, (x.shape, reps))
    return Tensor(data, x.device)


def _repeat_grad(g, y, needs, in_shape, rep, axis):
    split = in_shape[:axis] + (in_shape[axis], rep) + in_shape[axis + 1:]
    return (sum(reshape(g, split), axis=axis + 1),)


def repeat_elements(x, rep: int, axis: int) -> Tensor:
    """Keras: `K.repeat_elements(x, rep, axis)`. Repeats each element `rep` times along `axis`,
    like `np.repeat`: `[1, 2]` with rep 2 gives `[1, 1, 2, 2]`."""
    x = as_tensor(x, "repeat_elements")
    axis = normalize_axes(axis, x.ndim, "repeat_elements")[0]
    rep = int(rep)
    if rep < 0:
        raise ValueError(f"repeat_elements: rep must be >= 0, got {rep}")
    data = x.device.xp.repeat(x.data, rep, axis=axis)
    if x._rg:
        return record(data, (x,), _repeat_grad, (x.shape, rep, axis))
    return Tensor(data, x.device)


def _same_device(tensors: list, func: str) -> list:
    tensors = [as_tensor(t, func) for t in tensors]
    if not tensors:
        raise ValueError(f"{func}: expected a non-empty list of tensors")
    first = tensors[0].device
    for t in tensors[1:]:
        if t.device is not first:
            raise ValueError(f"{func}: tensors are on different devices ({first.name} and "
                             f"{t.device.name}); move them with K.to_device first")
    return tensors


def _concatenate_grad(g, y, needs, axis, sizes):
    grads, start = [], 0
    for need, size in zip(needs, sizes):
        index = (slice(None),) * axis + (slice(start, start + size),)
        grads.append(g[index] if need else None)
        start += size
    return grads


def concatenate(tensors, axis: int = -1) -> Tensor:
    """Keras: `K.concatenate(tensors, axis=-1)`. Joins tensors along `axis`; their other
    dimensions must agree."""
    tensors = _same_device(list(tensors), "concatenate")
    ndim = tensors[0].ndim
    for t in tensors:
        if t.ndim != ndim:
            raise ValueError(f"concatenate: tensors of ranks {[t.ndim for t in tensors]} "
                             f"(shapes {[t.shape for t in tensors]}); expected equal ranks")
    axis = normalize_axes(axis, ndim, "concatenate")[0]
    rest = [t.shape[:axis] + t.shape[axis + 1:] for t in tensors]
    if any(r != rest[0] for r in rest):
        raise ValueError(f"concatenate: shapes {[t.shape for t in tensors]} differ outside axis "
                         f"{axis}; expected equal dimensions except along the axis")
    data = tensors[0].device.xp.concatenate([t.data for t in tensors], axis=axis)
    return record(data, tensors, _concatenate_grad, (axis, [t.shape[axis] for t in tensors]))


def _stack_grad(g, y, needs, axis):
    index = (slice(None),) * axis
    return [g[index + (i,)] if need else None for i, need in enumerate(needs)]


def stack(x, axis: int = 0) -> Tensor:
    """Keras: `K.stack(x, axis=0)`. Stacks a list of same-shape tensors along a new `axis`.

    A single tensor is first unstacked along its first axis, as `tf.stack` does, so
    `stack(t, axis)` moves axis 0 of `t` to position `axis`."""
    if isinstance(x, Tensor):
        if x.ndim == 0:
            raise ValueError("stack: cannot unstack a 0-d tensor; expected a list or rank >= 1")
        axis = normalize_axes(axis, x.ndim, "stack")[0]
        pattern = list(range(1, x.ndim))
        pattern.insert(axis, 0)
        return permute_dimensions(x, pattern)
    tensors = _same_device(list(x), "stack")
    shapes = [t.shape for t in tensors]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"stack: tensors of shapes {shapes}; expected equal shapes")
    axis = normalize_axes(axis, len(shapes[0]) + 1, "stack")[0]
    data = tensors[0].device.xp.stack([t.data for t in tensors], axis=axis)
    return record(data, tensors, _stack_grad, (axis,))


def _index_key(key, x: Tensor):
    """An indexing key with tensors replaced by their device buffers."""
    if isinstance(key, tuple):
        return tuple(_index_key(k, x) for k in key)
    if isinstance(key, Tensor):
        if key.device is not x.device:
            raise ValueError(f"getitem: index is on {key.device.name} but the tensor is on "
                             f"{x.device.name}")
        return key.data
    if isinstance(key, list):
        return x.device.xp.asarray(key)
    return key


def _is_basic(key) -> bool:
    """True for keys of ints, slices, None and Ellipsis only (each element hit at most once)."""
    parts = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice, np.integer))
               for k in parts)


def _scatter_grad(g, y, needs, key):
    return (g[key],)


def _getitem_grad(g, y, needs, in_shape, key):
    data = g.device.xp.zeros(in_shape, dtype=g.dtype)
    if _is_basic(key):
        data[key] = g.data
    else:
        scatter_add(data, key, g.data)  # repeated indices accumulate
    return (record(data, (g,), _scatter_grad, (key,)),)


def getitem(x: Tensor, key) -> Tensor:
    """`x[key]`: NumPy indexing (ints, slices with steps, negative indices, None, Ellipsis,
    integer and boolean arrays)."""
    key = _index_key(key, x)
    try:
        data = x.data[key]
    except IndexError as err:
        raise IndexError(f"getitem: index {key!r} is invalid for shape {x.shape}: {err}") from None
    if x._rg:
        return record(data, (x,), _getitem_grad, (x.shape, key))
    return Tensor(data, x.device)


from .math import sum_to  # noqa: E402  (math imports this module)
from .reduce import normalize_axes, sum  # noqa: E402
