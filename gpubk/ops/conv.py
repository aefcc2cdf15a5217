"""Convolution and pooling (Keras 2's conv1d/2d/3d, conv2d_transpose, depthwise, separable and
locally connected convolutions, pool2d/3d), written once for any number of spatial axes.

Everything is one vectorised formulation: a strided view gathers each output position's patch
(`patches`, no copy), and a matrix product contracts it with the kernel (cuBLAS on a GPU). The
gradient of `patches` adds each kernel offset's slice back (`fold`, a loop over the few kernel
offsets, never over pixels); `fold` and `patches` are each other's gradients, so convolutions
can be differentiated twice.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..autodiff import record
from ..config import check_data_format
from ..symbolic import traced
from ..tensor import Tensor, as_tensor
from .validate import check_int


def _tuple(value, n: int, name: str, func: str) -> tuple:
    """A size per spatial axis (one int for all, or n of them), each at least 1."""
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,) * n
    if len(values) != n:
        raise ValueError(f"{func}: {name} must be {n} positive integer(s), got {value!r}")
    return tuple(check_int(v, func, name, minimum=1) for v in values)


def _output_shape(value, n: int, func: str, batch: bool) -> tuple:
    """`output_shape`: n sizes (a list, tuple or concrete tensor); with `batch`, the first may be
    None, as Keras allows."""
    if isinstance(value, Tensor):
        value = value.numpy().tolist()
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise TypeError(f"{func}: output_shape must be a list or tuple of {n} sizes, got "
                        f"{value!r}")
    return tuple(v if batch and i == 0 and v is None else
                 check_int(v, func, "output_shape", minimum=0) for i, v in enumerate(value))


def _windows(xp, data, kernel, strides, dilation):
    """View (B, *out, *kernel, C) of channels-last `data` (B, *spatial, C)."""
    spatial = data.shape[1:-1]
    out = tuple((n - (k - 1) * d - 1) // s + 1
                for n, k, s, d in zip(spatial, kernel, strides, dilation))
    st = data.strides
    shape = (data.shape[0], *out, *kernel, data.shape[-1])
    strides_ = (st[0], *(st[1 + i] * s for i, s in enumerate(strides)),
                *(st[1 + i] * d for i, d in enumerate(dilation)), st[-1])
    return xp.lib.stride_tricks.as_strided(data, shape=shape, strides=strides_)


def _offsets(kernel) -> list:
    return list(itertools.product(*(range(k) for k in kernel)))


def _fold_data(xp, g, spatial, kernel, strides, dilation):
    """The adjoint of `_windows`: patch values (B, *out, *kernel, C) added back to their places
    in a (B, *spatial, C) array."""
    out = g.shape[1:1 + len(kernel)]
    result = xp.zeros((g.shape[0], *spatial, g.shape[-1]), dtype=g.dtype)
    for offset in _offsets(kernel):
        where = tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                      for o, d, n, s in zip(offset, dilation, out, strides))
        result[(slice(None), *where)] += g[(slice(None), *(slice(None),) * len(out), *offset)]
    return result


def _patches_grad(g, y, needs, spatial, kernel, strides, dilation):
    return (fold(g, spatial, kernel, strides, dilation),)


def patches(x: Tensor, kernel, strides, dilation) -> Tensor:
    """(B, *out, *kernel, C) patches of channels-last `x`: patch [b, p, k, c] is
    x[b, p * strides + k * dilation, c]."""
    data = _windows(x.device.xp, x.data, kernel, strides, dilation)
    if x._rg:
        return record(data, (x,), _patches_grad, (x.shape[1:-1], kernel, strides, dilation))
    return Tensor(data, x.device)


def _fold_grad(g, y, needs, kernel, strides, dilation):
    return (patches(g, kernel, strides, dilation),)


def fold(g: Tensor, spatial, kernel, strides, dilation) -> Tensor:
    """Patch values added back into a (B, *spatial, C) tensor (the gradient of `patches`)."""
    data = _fold_data(g.device.xp, g.data, spatial, kernel, strides, dilation)
    if g._rg:
        return record(data, (g,), _fold_grad, (kernel, strides, dilation))
    return Tensor(data, g.device)


def _same_padding(n: int, k: int, s: int, d: int) -> tuple:
    """TensorFlow's 'same': output ceil(n / s), the extra padding at the end."""
    total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _padding(spatial, kernel, strides, dilation, padding: str, func: str) -> list:
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    if padding == "same":
        return [_same_padding(n, k, s, d) for n, k, s, d in zip(spatial, kernel, strides,
                                                                 dilation)]
    if padding == "causal":
        if len(spatial) != 1:
            raise ValueError(f"{func}: 'causal' padding is for 1-D convolutions only")
        return [((kernel[0] - 1) * dilation[0], 0)]
    raise ValueError(f"{func}: unknown padding {padding!r}; expected 'valid' or 'same'"
                     + (" or 'causal'" if len(spatial) == 1 else ""))


def _channels_last(x: Tensor, data_format: str) -> Tensor:
    if data_format == "channels_first":
        return permute_dimensions(x, (0, *range(2, x.ndim), 1))
    return x


def _restore_format(y: Tensor, data_format: str) -> Tensor:
    if data_format == "channels_first":
        return permute_dimensions(y, (0, y.ndim - 1, *range(1, y.ndim - 1)))
    return y


def _prepared(x, rank: int, kernel_size, strides, padding, data_format, dilation_rate,
              func: str, pad_value: float = 0.0):
    """x as channels-last, padded; and the kernel size, strides and dilation as tuples."""
    x = as_tensor(x, func)
    if x.ndim != rank + 2:
        raise ValueError(f"{func}: expected a {rank + 2}-D input, got shape {x.shape}")
    data_format = check_data_format(data_format, func)
    x = _channels_last(x, data_format)
    kernel = _tuple(kernel_size, rank, "kernel size", func)
    strides = _tuple(strides, rank, "strides", func)
    dilation = _tuple(dilation_rate, rank, "dilation_rate", func)
    if max(strides) > 1 and max(dilation) > 1:
        raise ValueError(f"{func}: strides {strides} and dilation_rate {dilation} cannot both "
                         "exceed 1 (as in TensorFlow)")
    widths = _padding(x.shape[1:-1], kernel, strides, dilation, padding, func)
    if any(w != (0, 0) for w in widths):
        x = pad(x, [(0, 0), *widths, (0, 0)], pad_value)
    for n, k, d in zip(x.shape[1:-1], kernel, dilation):
        if (k - 1) * d + 1 > n:
            raise ValueError(f"{func}: a kernel of {kernel} with dilation {dilation} does not "
                             f"fit in the (padded) input of shape {x.shape}")
    return x, kernel, strides, dilation, data_format


def _conv(x, kernel, strides, padding, data_format, dilation_rate, rank: int, func: str):
    kernel = as_tensor(kernel, func)
    if kernel.ndim != rank + 2:
        raise ValueError(f"{func}: expected a {rank + 2}-D kernel (*kernel_size, in, out), got "
                         f"shape {kernel.shape}")
    x, size, strides, dilation, data_format = _prepared(
        x, rank, kernel.shape[:rank], strides, padding, data_format, dilation_rate, func)
    if x.shape[-1] != kernel.shape[-2]:
        raise ValueError(f"{func}: the input has {x.shape[-1]} channels but the kernel of shape "
                         f"{kernel.shape} expects {kernel.shape[-2]}")
    p = patches(x, size, strides, dilation)
    out_shape = p.shape[:1 + rank]
    rows = reshape(p, (-1, int(np.prod(size)) * x.shape[-1]))
    y = matmul(rows, reshape(kernel, (-1, kernel.shape[-1])))
    return _restore_format(reshape(y, (*out_shape, kernel.shape[-1])), data_format)


@traced
def conv1d(x, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Keras: `K.conv1d(x, kernel, strides=1, padding='valid', data_format=None,
    dilation_rate=1)`. 1-D convolution; kernel (width, in, out); padding 'valid', 'same' or
    'causal' (left padding only, as Keras)."""
    return _conv(x, kernel, strides, padding, data_format, dilation_rate, 1, "conv1d")


@traced
def conv2d(x, kernel, strides=(1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1)):
    """Keras: `K.conv2d(x, kernel, strides=(1, 1), padding='valid', data_format=None,
    dilation_rate=(1, 1))`. 2-D convolution; kernel (rows, cols, in, out)."""
    return _conv(x, kernel, strides, padding, data_format, dilation_rate, 2, "conv2d")


@traced
def conv3d(x, kernel, strides=(1, 1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1, 1)):
    """Keras: `K.conv3d(x, kernel, strides=(1, 1, 1), padding='valid', data_format=None,
    dilation_rate=(1, 1, 1))`. 3-D convolution; kernel (depth, rows, cols, in, out)."""
    return _conv(x, kernel, strides, padding, data_format, dilation_rate, 3, "conv3d")


@traced
def conv2d_transpose(x, kernel, output_shape, strides=(1, 1), padding="valid",
                     data_format=None, dilation_rate=(1, 1)):
    """Keras: `K.conv2d_transpose(x, kernel, output_shape, strides=(1, 1), padding='valid',
    data_format=None, dilation_rate=(1, 1))`. The transpose (gradient) of `conv2d`; kernel
    (rows, cols, out, in), `output_shape` (batch, rows, cols, out) in `data_format`'s order
    (the batch may be None)."""
    kernel = as_tensor(kernel, "conv2d_transpose")
    x = as_tensor(x, "conv2d_transpose")
    data_format = check_data_format(data_format, "conv2d_transpose")
    x = _channels_last(x, data_format)
    out = output_shape = _output_shape(output_shape, 4, "conv2d_transpose", batch=True)
    if data_format == "channels_first":
        out = (out[0], out[2], out[3], out[1])
    size = kernel.shape[:2]
    strides = _tuple(strides, 2, "strides", "conv2d_transpose")
    dilation = _tuple(dilation_rate, 2, "dilation_rate", "conv2d_transpose")
    if kernel.ndim != 4 or kernel.shape[3] != x.shape[-1] or kernel.shape[2] != out[3]:
        raise ValueError(f"conv2d_transpose: kernel of shape {kernel.shape} for an input of "
                         f"shape {x.shape} and output_shape {tuple(output_shape)}; expected "
                         "(rows, cols, output channels, input channels)")
    widths = _padding(out[1:3], size, strides, dilation, padding, "conv2d_transpose")
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(out[1:3], widths))
    expected = tuple((n - (k - 1) * d - 1) // s + 1
                     for n, k, s, d in zip(padded, size, strides, dilation))
    if expected != x.shape[1:3]:
        raise ValueError(f"conv2d_transpose: an input of spatial shape {x.shape[1:3]} cannot "
                         f"produce output_shape {tuple(output_shape)} with strides {strides} "
                         f"and padding {padding!r} (a conv2d of that output gives {expected})")
    flat = permute_dimensions(reshape(kernel, (-1, kernel.shape[2], kernel.shape[3])),
                              (2, 0, 1))  # (in, rows * cols, out)
    cols = dot(x, reshape(flat, (x.shape[-1], -1)))  # (B, h, w, rows * cols * out)
    cols = reshape(cols, (*x.shape[:3], *size, out[3]))
    y = fold(cols, padded, size, strides, dilation)
    y = y[(slice(None), *(slice(lo, lo + n) for (lo, _), n in zip(widths, out[1:3])))]
    return _restore_format(y, data_format)


def _depthwise(x, depthwise_kernel, strides, padding, data_format, dilation_rate, func):
    kernel = as_tensor(depthwise_kernel, func)
    if kernel.ndim != 4:
        raise ValueError(f"{func}: expected a depthwise kernel (rows, cols, in, multiplier), "
                         f"got shape {kernel.shape}")
    x, size, strides, dilation, data_format = _prepared(
        x, 2, kernel.shape[:2], strides, padding, data_format, dilation_rate, func)
    channels = x.shape[-1]
    if kernel.shape[2] != channels:
        raise ValueError(f"{func}: the input has {channels} channels but the depthwise kernel "
                         f"of shape {kernel.shape} expects {kernel.shape[2]}")
    p = patches(x, size, strides, dilation)  # (B, oh, ow, rows, cols, C)
    out_shape = p.shape[:3]
    per_channel = permute_dimensions(reshape(p, (-1, size[0] * size[1], channels)), (2, 0, 1))
    weights = permute_dimensions(reshape(kernel, (size[0] * size[1], channels, -1)), (1, 0, 2))
    y = matmul(per_channel, weights)  # (C, positions, multiplier): one product per channel
    y = reshape(permute_dimensions(y, (1, 0, 2)), (*out_shape, -1))
    return y, data_format


@traced
def depthwise_conv2d(x, depthwise_kernel, strides=(1, 1), padding="valid", data_format=None,
                     dilation_rate=(1, 1)):
    """Keras: `K.depthwise_conv2d(x, depthwise_kernel, strides=(1, 1), padding='valid',
    data_format=None, dilation_rate=(1, 1))`. Each input channel convolved with its own
    `multiplier` filters; kernel (rows, cols, in, multiplier); output channels in * multiplier,
    channel-major as in TensorFlow."""
    y, data_format = _depthwise(x, depthwise_kernel, strides, padding, data_format,
                                dilation_rate, "depthwise_conv2d")
    return _restore_format(y, data_format)


@traced
def separable_conv2d(x, depthwise_kernel, pointwise_kernel, strides=(1, 1), padding="valid",
                     data_format=None, dilation_rate=(1, 1)):
    """Keras: `K.separable_conv2d(x, depthwise_kernel, pointwise_kernel, strides=(1, 1),
    padding='valid', data_format=None, dilation_rate=(1, 1))`. A depthwise convolution, then
    a 1x1 convolution with `pointwise_kernel` (1, 1, in * multiplier, out)."""
    pointwise = as_tensor(pointwise_kernel, "separable_conv2d")
    y, data_format = _depthwise(x, depthwise_kernel, strides, padding, data_format,
                                dilation_rate, "separable_conv2d")
    if pointwise.ndim != 4 or pointwise.shape[:2] != (1, 1) or pointwise.shape[2] != y.shape[-1]:
        raise ValueError(f"separable_conv2d: expected a pointwise kernel (1, 1, {y.shape[-1]}, "
                         f"out), got shape {pointwise.shape}")
    return _restore_format(dot(y, reshape(pointwise, pointwise.shape[2:])), data_format)


def _local_conv(inputs, kernel, kernel_size, strides, output_shape, data_format, rank, func):
    kernel = as_tensor(kernel, func)
    x, size, strides, dilation, fmt = _prepared(inputs, rank, kernel_size, strides, "valid",
                                                data_format, 1, func)
    p = patches(x, size, strides, dilation)  # (B, *out, *size, C)
    out = p.shape[1:1 + rank]
    if tuple(output_shape) != out:
        raise ValueError(f"{func}: output_shape {tuple(output_shape)} does not match the "
                         f"{out} positions of kernel size {size} and strides {strides}")
    if fmt == "channels_first":  # Keras flattens channels-first patches channel-major
        p = permute_dimensions(p, (*range(1 + rank), p.ndim - 1, *range(1 + rank, p.ndim - 1)))
    positions = int(np.prod(out))
    rows = permute_dimensions(reshape(p, (p.shape[0], positions, -1)), (1, 0, 2))
    if kernel.shape[:2] != (positions, rows.shape[-1]) or kernel.ndim != 3:
        raise ValueError(f"{func}: expected a kernel of shape ({positions}, {rows.shape[-1]}, "
                         f"filters), got {kernel.shape}")
    y = permute_dimensions(matmul(rows, kernel), (1, 0, 2))  # (B, positions, filters)
    return _restore_format(reshape(y, (p.shape[0], *out, kernel.shape[-1])), fmt)


@traced
def local_conv1d(inputs, kernel, kernel_size, strides, data_format=None):
    """Keras: `K.local_conv1d(inputs, kernel, kernel_size, strides, data_format=None)`. A 1-D
    convolution with separate weights at each output position; kernel
    (output_length, kernel_size * in, filters)."""
    kernel = as_tensor(kernel, "local_conv1d")
    return _local_conv(inputs, kernel, kernel_size, strides, (kernel.shape[0],), data_format,
                       1, "local_conv1d")


@traced
def local_conv2d(inputs, kernel, kernel_size, strides, output_shape, data_format=None):
    """Keras: `K.local_conv2d(inputs, kernel, kernel_size, strides, output_shape,
    data_format=None)`. A 2-D convolution with separate weights at each output position;
    kernel (rows * cols of the output, kernel rows * cols * in, filters)."""
    return _local_conv(inputs, kernel, kernel_size, strides,
                       _output_shape(output_shape, 2, "local_conv2d", batch=False), data_format,
                       2, "local_conv2d")


def _first_max_grad(g, y, needs, p, window_axes):
    """TensorFlow's max-pooling gradient: each window's gradient goes whole to its first
    maximum in row-major window order (tied maxima are not shared, unlike `K.max`)."""
    xp, data = p.device.xp, p.data
    lead, size = data.shape[:window_axes[0]], int(np.prod(data.shape[window_axes[0]:-1]))
    flat = data.reshape(*lead, size, data.shape[-1])
    first = flat.argmax(axis=-2)[..., None, :]
    hits = xp.arange(size).reshape(size, 1) == first
    mask = Tensor(hits.reshape(data.shape).astype(g.dtype), p.device)
    return (reshape(g, lead + (1,) * len(window_axes) + g.shape[-1:]) * mask,)


def _window_max(p: Tensor, window_axes: tuple) -> Tensor:
    """The maximum of each window of patches `p` (B, *out, *window, C)."""
    data = p.data.max(axis=window_axes)
    if p._rg:
        return record(data, (p,), _first_max_grad, (p, window_axes))
    return Tensor(data, p.device)


def _pool(x, pool_size, strides, padding, data_format, pool_mode, rank, func):
    if pool_mode not in ("max", "avg"):
        raise ValueError(f"{func}: unknown pool_mode {pool_mode!r}; expected 'max' or 'avg'")
    fill = -np.inf if pool_mode == "max" else 0.0
    xp, size, strides, dilation, fmt = _prepared(x, rank, pool_size, strides, padding,
                                                 data_format, 1, func, pad_value=fill)
    window_axes = tuple(range(1 + rank, 1 + 2 * rank))
    p = patches(xp, size, strides, dilation)
    if pool_mode == "max":
        return _restore_format(_window_max(p, window_axes), fmt)
    total = reduce_sum(p, axis=window_axes)
    if padding == "same":  # count only the real elements, as Keras (TensorFlow) does
        x_last = _channels_last(as_tensor(x, func), fmt)
        ones = ones_like(x_last[..., :1])
        count_in, _, _, _, _ = _prepared(ones, rank, pool_size, strides, padding,
                                         "channels_last", 1, func)
        count = reduce_sum(patches(count_in, size, strides, dilation), axis=window_axes)
        return _restore_format(total / count, fmt)
    return _restore_format(total / float(np.prod(size)), fmt)


@traced
def pool2d(x, pool_size, strides=(1, 1), padding="valid", data_format=None, pool_mode="max"):
    """Keras: `K.pool2d(x, pool_size, strides=(1, 1), padding='valid', data_format=None,
    pool_mode='max')`. Max or average pooling; 'same' averages count only real elements.
    Max pooling sends each window's gradient to its first maximum, as TensorFlow does."""
    return _pool(x, pool_size, strides, padding, data_format, pool_mode, 2, "pool2d")


@traced
def pool3d(x, pool_size, strides=(1, 1, 1), padding="valid", data_format=None,
           pool_mode="max"):
    """Keras: `K.pool3d(x, pool_size, strides=(1, 1, 1), padding='valid', data_format=None,
    pool_mode='max')`. As `pool2d`, over three spatial axes."""
    return _pool(x, pool_size, strides, padding, data_format, pool_mode, 3, "pool3d")


from .creation import ones_like  # noqa: E402
from .linalg import dot, matmul  # noqa: E402
from .reduce import sum as reduce_sum  # noqa: E402
from .shape import pad, permute_dimensions, reshape  # noqa: E402
