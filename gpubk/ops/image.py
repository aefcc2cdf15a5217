"""Image resizing: `resize_images` and `resize_volumes`, compositions of the shape and linear
algebra functions (nearest: `repeat_elements`; bilinear: a product with interpolation
weights, as `tf.image.resize`)."""
from __future__ import annotations

import numpy as np

from ..config import check_data_format
from ..core.primitive import as_input
from ..tensor import Tensor, as_tensor
from .linalg import dot
from .shape import fed_variant, permute_dimensions, repeat_elements
from .validate import check_int


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
            x = repeat_elements(x, factor, axis)
        return x
    if interpolation != "bilinear":
        raise ValueError(f"{func}: interpolation {interpolation!r} is not supported; expected "
                         "'nearest' or 'bilinear'")
    if any(x.shape[axis] is None for axis in spatial_axes):  # weights need the sizes
        return _resize_fed(x, factors, spatial_axes, interpolation, func)
    for axis, factor in zip(spatial_axes, factors):
        weights = _bilinear_matrix(x.shape[axis], factor).T.astype(x.dtype)
        moved = list(range(x.ndim))
        moved.append(moved.pop(axis))
        x = permute_dimensions(dot(permute_dimensions(x, moved), weights), np.argsort(moved))
    return x


_resize_fed = fed_variant("resize", lambda x, factors, spatial_axes, interpolation, func: _resize(
    as_tensor(x, func), factors, spatial_axes, interpolation, func))


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
