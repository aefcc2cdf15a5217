"""Image resizing: `resize_images` and `resize_volumes`, compositions of the shape and linear
algebra functions (nearest: `repeat_elements`; bilinear: a product with interpolation
weights, as `tf.image.resize`). Bilinear resizing of spatial sizes known only when fed is a
primitive that builds its weights from the sizes it is given."""
from __future__ import annotations

import functools

import numpy as np

from ..config import check_data_format
from ..core.primitive import Primitive, as_input, bind
from ..tensor import Tensor
from .linalg import dot
from .shape import permute_dimensions, repeat_elements
from .validate import check_int


@functools.lru_cache(maxsize=64)
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
    weights.flags.writeable = False  # cached: shared by every call
    return weights


def _resize(x, factors, spatial_axes, interpolation: str, func: str) -> Tensor:
    if x.ndim != len(spatial_axes) + 2:
        raise ValueError(f"{func}: expected a {len(spatial_axes) + 2}-D tensor, got shape "
                         f"{x.shape}")
    factors = [check_int(f, func, "factor", 1) for f in factors]
    if interpolation == "nearest":
        for axis, factor in zip(spatial_axes, factors):
            x = repeat_elements(x, factor, axis)
        return x
    if interpolation != "bilinear":
        raise ValueError(f"{func}: interpolation {interpolation!r} is not supported; expected "
                         "'nearest' or 'bilinear'")
    if any(x.shape[axis] is None for axis in spatial_axes):  # weights from the fed sizes
        return bind(resize_bilinear_p, x, factors=tuple(factors), axes=tuple(spatial_axes))
    for axis, factor in zip(spatial_axes, factors):
        weights = _bilinear_matrix(x.shape[axis], factor).T.astype(x.dtype)
        moved = list(range(x.ndim))
        moved.append(moved.pop(axis))
        x = permute_dimensions(dot(permute_dimensions(x, moved), weights), np.argsort(moved))
    return x


def _interpolate(device, a, factors, axes, transpose: bool):
    """`a` with each of `axes` multiplied by its interpolation weights (out, in): upsampled, or,
    `transpose`d, the gradient of an upsampling summed back to the input's sizes."""
    xp = device.xp
    for axis, factor in zip(axes, factors):
        if transpose:
            weights = _bilinear_matrix(a.shape[axis] // factor, factor)  # (out, in)
        else:
            weights = _bilinear_matrix(a.shape[axis], factor).T  # (in, out)
        weights = device.put(np.ascontiguousarray(weights, dtype=a.dtype))
        a = xp.moveaxis(xp.tensordot(a, weights, axes=([axis], [0])), -1, axis)
    return a


def _scaled(shape: tuple, factors, axes, scale) -> tuple:
    shape = list(shape)
    for axis, factor in zip(axes, factors):
        if shape[axis] is not None:
            shape[axis] = scale(shape[axis], factor)
    return tuple(shape)


# Bilinear upsampling of sizes known only when fed, and its transpose (each the other's vjp).
resize_bilinear_p = Primitive("resize_bilinear")
resize_bilinear_p.def_impl(lambda device, a, *, factors, axes: _interpolate(
    device, a, factors, axes, transpose=False))
resize_bilinear_p.def_abstract(lambda x, *, factors, axes: (
    _scaled(x.shape, factors, axes, lambda n, f: n * f), x.dtype))
resize_bilinear_p.def_vjp(lambda g, y, needs, x, *, factors, axes: (
    bind(resize_bilinear_grad_p, g, factors=factors, axes=axes),))
resize_bilinear_grad_p = Primitive("resize_bilinear_grad")
resize_bilinear_grad_p.def_impl(lambda device, g, *, factors, axes: _interpolate(
    device, g, factors, axes, transpose=True))
resize_bilinear_grad_p.def_abstract(lambda g, *, factors, axes: (
    _scaled(g.shape, factors, axes, lambda n, f: n // f), g.dtype))
resize_bilinear_grad_p.def_vjp(lambda gg, y, needs, g, *, factors, axes: (
    bind(resize_bilinear_p, gg, factors=factors, axes=axes),))


def resize_images(x, height_factor: int, width_factor: int, data_format,
                  interpolation: str = "nearest") -> Tensor:
    """Keras: `K.resize_images(x, height_factor, width_factor, data_format,
    interpolation='nearest')`. Upsamples the two spatial axes of a 4-D tensor by integer
    factors. 'nearest' and 'bilinear' (half-pixel centres, as `tf.image.resize`) are
    supported; Keras's other methods raise ValueError."""
    x = as_input(x, "resize_images")
    axes = (2, 3) if check_data_format(data_format, "resize_images") == "channels_first" \
        else (1, 2)
    return _resize(x, (height_factor, width_factor), axes, interpolation, "resize_images")


def resize_volumes(x, depth_factor: int, height_factor: int, width_factor: int,
                   data_format) -> Tensor:
    """Keras: `K.resize_volumes(x, depth_factor, height_factor, width_factor, data_format)`.
    Nearest-neighbour upsampling of the three spatial axes of a 5-D tensor."""
    x = as_input(x, "resize_volumes")
    axes = (2, 3, 4) if check_data_format(data_format, "resize_volumes") == "channels_first" \
        else (1, 2, 3)
    return _resize(x, (depth_factor, height_factor, width_factor), axes, "nearest",
                   "resize_volumes")
