"""Ops that move values around without arithmetic: reshape, transpose, permute_dimensions,
broadcast_to, tile, repeat_elements, concatenate, stack, indexing; with their backward rules."""
from __future__ import annotations

import math

import numpy as np

from ..autodiff import record
from ..devices import scatter_add
from ..symbolic import traced
from ..tensor import Tensor, as_tensor
from .validate import check_axis, check_dims, check_int, check_number, check_sequence




def _reshape_grad(g, y, needs, in_shape):
    return (reshape(g, in_shape),)


@traced
def reshape(x, shape) -> Tensor:
    """Keras: `K.reshape(x, shape)`. Reshapes to `shape` (one dimension may be -1)."""
    x = as_tensor(x, "reshape")
    target = check_dims(shape, "reshape", minimum=-1)
    if target == x.shape:
        return x
    try:
        data = x.data.reshape(target)
    except ValueError:
        data = None
    if data is None or target.count(-1) > 1:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} "
                         f"elements) to {target}; expected the same number of elements (and "
                         "at most one -1, which must be inferable)")
    if x._rg:
        return record(data, (x,), _reshape_grad, (x.shape,))
    return Tensor(data, x.device)


def _broadcast_grad(g, y, needs, in_shape):
    return (sum_to(g, in_shape),)


@traced
def broadcast_to(x, shape) -> Tensor:
    """Broadcasts `x` to `shape` (NumPy rules); a view, no copy."""
    x = as_tensor(x, "broadcast_to")
    shape = check_dims(shape, "broadcast_to")
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


@traced
def permute_dimensions(x, pattern) -> Tensor:
    """Keras: `K.permute_dimensions(x, pattern)`. Permutes axes, e.g. `(0, 2, 1)`."""
    x = as_tensor(x, "permute_dimensions")
    pattern = check_dims(pattern, "permute_dimensions", "pattern")
    if sorted(pattern) != list(range(x.ndim)):
        raise ValueError(f"permute_dimensions: pattern {pattern} is not a permutation of the "
                         f"{x.ndim} axes of a tensor of shape {x.shape}")
    data = x.device.xp.transpose(x.data, pattern)
    if x._rg:
        return record(data, (x,), _permute_grad, (pattern,))
    return Tensor(data, x.device)


@traced
def transpose(x) -> Tensor:
    """Keras: `K.transpose(x)`. Reverses the order of all axes (a matrix transpose in 2-D)."""
    x = as_tensor(x, "transpose")
    return permute_dimensions(x, tuple(range(x.ndim))[::-1])


def swap_last_axes(x: Tensor) -> Tensor:
    """Transposes the last two axes (matrix transpose of a batch of matrices)."""
    pattern = list(range(x.ndim))
    pattern[-2], pattern[-1] = pattern[-1], pattern[-2]
    return permute_dimensions(x, pattern)


@traced
def expand_dims(x, axis: int = -1) -> Tensor:
    """Keras: `K.expand_dims(x, axis=-1)`. Adds a size-1 axis at `axis`."""
    x = as_tensor(x, "expand_dims")
    axis = check_axis(axis, x.ndim + 1, "expand_dims")  # axes of the result
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def _tile_grad(g, y, needs, in_shape, reps):
    # Split each tiled axis into (repeat, original) and sum over the repeats.
    split = tuple(d for r, n in zip(reps, in_shape) for d in (r, n))
    return (sum(reshape(g, split), axis=tuple(range(0, len(split), 2))),)


@traced
def tile(x, n) -> Tensor:
    """Keras: `K.tile(x, n)`. Repeats `x` `n[i]` times along axis i.

    As in Keras (`tf.tile`), `n` needs one entry per axis; an int `n` is allowed for 1-D `x`."""
    x = as_tensor(x, "tile")
    reps = check_dims(n, "tile", "n")
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


@traced
def repeat_elements(x, rep: int, axis: int) -> Tensor:
    """Keras: `K.repeat_elements(x, rep, axis)`. Repeats each element `rep` times along `axis`,
    like `np.repeat`: `[1, 2]` with rep 2 gives `[1, 1, 2, 2]`."""
    x = as_tensor(x, "repeat_elements")
    axis = check_axis(axis, x.ndim, "repeat_elements")
    rep = check_int(rep, "repeat_elements", "rep", 0)
    data = x.device.xp.repeat(x.data, rep, axis=axis)
    if x._rg:
        return record(data, (x,), _repeat_grad, (x.shape, rep, axis))
    return Tensor(data, x.device)


def _same_device(tensors, func: str) -> list:
    tensors = [as_tensor(t, func) for t in check_sequence(tensors, func, "tensors")]
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


@traced
def concatenate(tensors, axis: int = -1) -> Tensor:
    """Keras: `K.concatenate(tensors, axis=-1)`. Joins tensors along `axis`; their other
    dimensions must agree."""
    tensors = _same_device(tensors, "concatenate")
    ndim = tensors[0].ndim
    for t in tensors:
        if t.ndim != ndim:
            raise ValueError(f"concatenate: tensors of ranks {[t.ndim for t in tensors]} "
                             f"(shapes {[t.shape for t in tensors]}); expected equal ranks")
    axis = check_axis(axis, ndim, "concatenate")
    rest = [t.shape[:axis] + t.shape[axis + 1:] for t in tensors]
    if any(r != rest[0] for r in rest):
        raise ValueError(f"concatenate: shapes {[t.shape for t in tensors]} differ outside axis "
                         f"{axis}; expected equal dimensions except along the axis")
    data = tensors[0].device.xp.concatenate([t.data for t in tensors], axis=axis)
    return record(data, tensors, _concatenate_grad, (axis, [t.shape[axis] for t in tensors]))


def _stack_grad(g, y, needs, axis):
    index = (slice(None),) * axis
    return [g[index + (i,)] if need else None for i, need in enumerate(needs)]


@traced
def stack(x, axis: int = 0) -> Tensor:
    """Keras: `K.stack(x, axis=0)`. Stacks a list of same-shape tensors along a new `axis`.

    A single tensor is first unstacked along its first axis, as `tf.stack` does, so
    `stack(t, axis)` moves axis 0 of `t` to position `axis`."""
    if isinstance(x, Tensor):
        if x.ndim == 0:
            raise ValueError("stack: cannot unstack a 0-d tensor; expected a list or rank >= 1")
        axis = check_axis(axis, x.ndim, "stack")
        pattern = list(range(1, x.ndim))
        pattern.insert(axis, 0)
        return permute_dimensions(x, pattern)
    tensors = _same_device(x, "stack")
    shapes = [t.shape for t in tensors]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"stack: tensors of shapes {shapes}; expected equal shapes")
    axis = check_axis(axis, len(shapes[0]) + 1, "stack")
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


@traced
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


# -- more Keras shape functions, composed of the ops above ---------------------------------------
@traced
def squeeze(x, axis: int) -> Tensor:
    """Keras: `K.squeeze(x, axis)`. Removes the size-1 dimension at `axis`."""
    x = as_tensor(x, "squeeze")
    axis = check_axis(axis, x.ndim, "squeeze")
    if x.shape[axis] != 1:
        raise ValueError(f"squeeze: axis {axis} of shape {x.shape} has size {x.shape[axis]}; "
                         "expected 1")
    return reshape(x, x.shape[:axis] + x.shape[axis + 1:])


@traced
def flatten(x) -> Tensor:
    """Keras: `K.flatten(x)`. A 1-D tensor of all the values."""
    x = as_tensor(x, "flatten")
    return reshape(x, (x.size,))


@traced
def batch_flatten(x) -> Tensor:
    """Keras: `K.batch_flatten(x)`. `(batch, ...)` to `(batch, product of the rest)`."""
    x = as_tensor(x, "batch_flatten")
    if x.ndim == 0:
        return reshape(x, (1, 1))
    # explicit sizes: -1 cannot be inferred for an empty batch, e.g. (0, 3)
    return reshape(x, (x.shape[0], math.prod(x.shape[1:])))


@traced
def reverse(x, axes) -> Tensor:
    """Keras: `K.reverse(x, axes)`. Reverses the order of the values along `axes` (an int or a
    list of ints)."""
    x = as_tensor(x, "reverse")
    if axes is None:  # tf.reverse needs the axes
        raise TypeError("reverse: axes must be an int or a list of ints, got None")
    axes = normalize_axes(axes, x.ndim, "reverse", "axes")
    return x[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))]


@traced
def gather(reference, indices) -> Tensor:
    """Keras: `K.gather(reference, indices)`. The rows `reference[indices]` (along axis 0);
    indices out of range raise an error."""
    reference = as_tensor(reference, "gather")
    indices = as_tensor(indices, "gather", device=reference.device)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"gather: expected integer indices, got {indices.dtype.name}")
    if reference.ndim == 0:
        raise ValueError("gather: expected a reference of rank >= 1, got a scalar")
    bad = (indices.data < 0) | (indices.data >= reference.shape[0])
    if bool(bad.any()):
        raise ValueError(f"gather: indices must be in [0, {reference.shape[0]}) for a reference "
                         f"of shape {reference.shape}")
    return reference[indices]


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


@traced
def one_hot(indices, num_classes: int) -> Tensor:
    """Keras: `K.one_hot(indices, num_classes)`. float32 one-hot vectors along a new last axis;
    an index outside [0, num_classes) gives a row of zeros (as `tf.one_hot`)."""
    indices = as_tensor(indices, "one_hot")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer indices, got {indices.dtype.name}")
    num_classes = check_int(num_classes, "one_hot", "num_classes", 0)
    xp = indices.device.xp
    data = (indices.data[..., None] == xp.arange(num_classes)).astype(np.float32)
    return Tensor(data, indices.device)


@traced
def repeat(x, n: int) -> Tensor:
    """Keras: `K.repeat(x, n)`. `(samples, dim)` to `(samples, n, dim)`."""
    x = as_tensor(x, "repeat")
    if x.ndim != 2:
        raise ValueError(f"repeat: expected a 2-D tensor, got shape {x.shape}")
    return tile(expand_dims(x, 1), (1, check_int(n, "repeat", "n", 0), 1))


def _pad_grad(g, y, needs, widths):
    return (g[tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(widths))],)


@traced
def pad(x, widths, value: float = 0.0) -> Tensor:
    """Constant padding (zeros by default): `widths` is one (before, after) pair per axis."""
    x = as_tensor(x, "pad")
    widths = tuple((int(lo), int(hi)) for lo, hi in widths)
    if len(widths) != x.ndim or any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ValueError(f"pad: expected {x.ndim} non-negative (before, after) pairs for shape "
                         f"{x.shape}, got {widths}")
    data = x.device.xp.pad(x.data, widths, constant_values=value)
    if x._rg:
        return record(data, (x,), _pad_grad, (widths,))
    return Tensor(data, x.device)


def _spatial_padding(x, padding, data_format, rank: int, func: str) -> Tensor:
    x = as_tensor(x, func)
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


@traced
def temporal_padding(x, padding=(1, 1)) -> Tensor:
    """Keras: `K.temporal_padding(x, padding=(1, 1))`. Zero padding of axis 1 of a 3-D tensor."""
    return _spatial_padding(x, [padding], "channels_last", 3, "temporal_padding")


@traced
def spatial_2d_padding(x, padding=((1, 1), (1, 1)), data_format=None) -> Tensor:
    """Keras: `K.spatial_2d_padding(x, padding=((1, 1), (1, 1)), data_format=None)`. Zero
    padding of the two spatial axes of a 4-D tensor."""
    return _spatial_padding(x, padding, data_format, 4, "spatial_2d_padding")


@traced
def spatial_3d_padding(x, padding=((1, 1), (1, 1), (1, 1)), data_format=None) -> Tensor:
    """Keras: `K.spatial_3d_padding(x, padding=((1, 1), (1, 1), (1, 1)), data_format=None)`.
    Zero padding of the three spatial axes of a 5-D tensor."""
    return _spatial_padding(x, padding, data_format, 5, "spatial_3d_padding")


def _bilinear_matrix(size: int, factor: int) -> np.ndarray:
    """Interpolation weights (out, in) for upsampling by `factor` with half-pixel centres, as
    `tf.image.resize(..., 'bilinear')`."""
    out = np.arange(size * factor)
    source = np.clip((out + 0.5) / factor - 0.5, 0, size - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, size - 1)
    weights = np.zeros((size * factor, size))
    np.add.at(weights, (out, low), 1 - (source - low))
    np.add.at(weights, (out, high), source - low)
    return weights


def _resize(x, factors, spatial_axes, interpolation: str, func: str) -> Tensor:
    if x.ndim != len(spatial_axes) + 2:
        raise ValueError(f"{func}: expected a {len(spatial_axes) + 2}-D tensor, got shape "
                         f"{x.shape}")
    factors = [check_int(f, func, "factor", 1) for f in factors]
    if interpolation == "nearest":
        for axis, factor in zip(spatial_axes, factors):
            x = repeat_elements(x, int(factor), axis)
        return x
    if interpolation != "bilinear":
        raise ValueError(f"{func}: interpolation {interpolation!r} is not supported; expected "
                         "'nearest' or 'bilinear'")
    for axis, factor in zip(spatial_axes, factors):
        weights = _bilinear_matrix(x.shape[axis], int(factor)).T.astype(x.dtype)
        moved = list(range(x.ndim))
        moved.append(moved.pop(axis))
        x = permute_dimensions(dot(permute_dimensions(x, moved), weights), np.argsort(moved))
    return x


@traced
def resize_images(x, height_factor: int, width_factor: int, data_format,
                  interpolation: str = "nearest") -> Tensor:
    """Keras: `K.resize_images(x, height_factor, width_factor, data_format,
    interpolation='nearest')`. Upsamples the two spatial axes of a 4-D tensor by integer
    factors. 'nearest' and 'bilinear' (half-pixel centres, as `tf.image.resize`) are
    supported; Keras's other methods raise ValueError."""
    x = as_tensor(x, "resize_images")
    axes = (2, 3) if check_data_format(data_format, "resize_images") == "channels_first" \
        else (1, 2)
    return _resize(x, (height_factor, width_factor), axes, interpolation, "resize_images")


@traced
def resize_volumes(x, depth_factor: int, height_factor: int, width_factor: int,
                   data_format) -> Tensor:
    """Keras: `K.resize_volumes(x, depth_factor, height_factor, width_factor, data_format)`.
    Nearest-neighbour upsampling of the three spatial axes of a 5-D tensor."""
    x = as_tensor(x, "resize_volumes")
    axes = (2, 3, 4) if check_data_format(data_format, "resize_volumes") == "channels_first" \
        else (1, 2, 3)
    return _resize(x, (depth_factor, height_factor, width_factor), axes, "nearest",
                   "resize_volumes")


@traced
def bias_add(x, bias, data_format=None) -> Tensor:
    """Keras: `K.bias_add(x, bias, data_format=None)`. Adds a bias of the channel axis's size
    (or of x's shape without the batch axis, channels last)."""
    x, bias = as_tensor(x, "bias_add"), as_tensor(bias, "bias_add")
    data_format = check_data_format(data_format, "bias_add")
    if x.ndim < 2:  # as tf.nn.bias_add
        raise ValueError(f"bias_add: expected x of rank >= 2, got shape {x.shape}")
    if bias.ndim not in (1, x.ndim - 1):
        raise ValueError(f"bias_add: unexpected bias dimensions {bias.ndim} (shape "
                         f"{bias.shape}); expected 1 or {x.ndim - 1}")
    channels_first = data_format == "channels_first" and x.ndim > 2
    if bias.ndim == 1:
        channels = x.shape[1] if channels_first else x.shape[-1]
        if bias.shape[0] != channels:
            raise ValueError(f"bias_add: bias of shape {bias.shape} for x of shape {x.shape}; "
                             f"expected {channels} values ({data_format})")
        if channels_first:
            return x + reshape(bias, (1, channels) + (1,) * (x.ndim - 2))
        return x + bias
    if channels_first:
        return x + reshape(bias, (1, bias.shape[-1]) + bias.shape[:-1])
    return x + reshape(bias, (1,) + bias.shape)


from .. import devices  # noqa: E402
from ..config import check_data_format  # noqa: E402
from ..dtypes import as_dtype  # noqa: E402
from .linalg import dot  # noqa: E402
