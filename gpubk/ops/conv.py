"""Convolution and pooling (Keras 2's conv1d/2d/3d, conv2d_transpose, depthwise, separable and
locally connected convolutions, pool2d/3d), written once for any number of spatial axes.

Everything is one vectorised formulation: a strided view gathers each output position's patch
(`patches`, after padding), and a product over the patch axes contracts it with the kernel
(`dot_general` of ops/linalg.py: one GEMM, cuBLAS on a GPU). The gradient of `patches` adds each
kernel offset's slice back (`fold`, a loop over the few kernel offsets, never over pixels, then
the padding cropped); `fold` and `patches` are each other's gradients, so convolutions can be
differentiated twice. Max pooling (`max_pool`) takes the maximum of each window; its gradient
goes to each window's first maximum, as in TensorFlow.

Declared primitives (core/primitive.py): `patches`, `fold` and `max_pool`; their abstract
evaluations compute the output's spatial size from the padding, strides and dilation (None where
the input's size is unknown). The Keras functions are compositions of these and of other gpubk
functions (`dot_general`, `reshape`, `permute_dimensions`, `sum`...), so they work on symbolic
tensors too.
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ..autodiff import recording
from ..config import check_data_format
from ..core.primitive import Primitive, as_input, bind, device_of, static
from ..tensor import Tensor
from .creation import ones_like
from .linalg import dot, dot_general
from .reduce import sum as reduce_sum
from .shape import expand_dims, permute_dimensions, repeat_elements, reshape, reshape_target
from .validate import check_int


def _tuple(value, n: int, name: str, func: str) -> tuple:
    """A size per spatial axis (one int for all, or n of them), each at least 1."""
    if value.__class__ is tuple and len(value) == n:  # the common case, cheaply
        for v in value:
            if v.__class__ is not int or v < 1:
                break
        else:
            return value
    elif value.__class__ is int and value >= 1:
        return (value,) * n
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


# -- geometry --------------------------------------------------------------------------------
def _check_padding(padding, rank: int, func: str) -> str:
    if padding.__class__ is str:
        if padding == "valid" or padding == "same":
            return padding
        if padding == "causal":
            if rank != 1:
                raise ValueError(f"{func}: 'causal' padding is for 1-D convolutions only")
            return padding
    raise ValueError(f"{func}: unknown padding {padding!r}; expected 'valid' or 'same'"
                     + (" or 'causal'" if rank == 1 else ""))


def _same_padding(n: int, k: int, s: int, d: int) -> tuple:
    """TensorFlow's 'same': output ceil(n / s), the extra padding at the end."""
    total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _widths(n: int, k: int, s: int, d: int, padding: str) -> tuple:
    """The (before, after) padding of a spatial axis of size n."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return _same_padding(n, k, s, d)
    return (k - 1) * d, 0  # causal: all of it before, as Keras


def _geometry(shape: tuple, kernel, strides, dilation, padding: str, func: str) -> tuple:
    """For an input of channels-last `shape` (unknown sizes None): the padding of each spatial
    axis and the number of output positions along it (None where unknown). A kernel that does
    not fit the padded input is an error."""
    widths, out, padded = [], [], [shape[0]]
    for n, k, s, d in zip(shape[1:-1], kernel, strides, dilation):
        if n is None:
            widths.append(None)
            out.append(None)
            padded.append(None)
            continue
        lo, hi = _widths(n, k, s, d, padding)
        m = n + lo + hi
        widths.append((lo, hi))
        out.append((m - (k - 1) * d - 1) // s + 1)
        padded.append(m)
    for m, k, d in zip(padded[1:], kernel, dilation):
        if m is not None and (k - 1) * d + 1 > m:
            raise ValueError(f"{func}: a kernel of {tuple(kernel)} with dilation "
                             f"{tuple(dilation)} does not fit in the (padded) input of shape "
                             f"{(*padded, shape[-1])}")
    return widths, tuple(out)


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


# -- patches and fold: primitives, each the other's gradient ----------------------------------
def _pad(xp, a, widths, value):
    """Channels-last `a` with its spatial axes padded by `widths` with `value` (cheaper than
    xp.pad's general machinery)."""
    spatial = tuple(n + lo + hi for n, (lo, hi) in zip(a.shape[1:-1], widths))
    out = xp.full((a.shape[0], *spatial, a.shape[-1]), value, dtype=a.dtype)
    out[(slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(a.shape[1:-1], widths)))] = a
    return out


def _patches_impl(device, a, *, kernel, strides, dilation, padding, value, copy, func):
    xp = device.xp
    widths, _ = _geometry(a.shape, kernel, strides, dilation, padding, func)
    if padding != "valid" and any(w != (0, 0) for w in widths):
        a = _pad(xp, a, widths, value)
    windows = _windows(xp, a, kernel, strides, dilation)
    return xp.ascontiguousarray(windows) if copy else windows


def _patches_abstract(x, *, kernel, strides, dilation, padding, value, copy, func):
    _, out = _geometry(x.shape, kernel, strides, dilation, padding, func)
    return (x.shape[0], *out, *kernel, x.shape[-1]), x.dtype


def _patches_vjp(g, y, needs, x, *, kernel, strides, dilation, padding, value, copy, func):
    return (fold(g, static(x.shape[1:-1]), kernel, strides, dilation, padding, func),)


patches_p = Primitive("patches")
patches_p.def_impl(_patches_impl)
patches_p.def_abstract(_patches_abstract)
patches_p.def_vjp(_patches_vjp)


def patches(x, kernel, strides, dilation, padding: str = "valid", value: float = 0.0,
            func: str = "patches", copy: bool = False):
    """(B, *out, *kernel, C) patches of channels-last `x` padded as `padding` says (with
    `value`): patch [b, p, k, c] is padded_x[b, p * strides + k * dilation, c]. A view of the
    (padded) input, or with `copy` a contiguous array (which a product over the patch axes, and
    its gradient, then read without copying again); errors name `func`."""
    return bind(patches_p, x, kernel=kernel, strides=strides, dilation=dilation,
                padding=padding, value=value, copy=copy, func=func)


def _fold_impl(device, g, *, spatial, kernel, strides, dilation, padding, func):
    widths, out = _geometry((None, *spatial, None), kernel, strides, dilation, padding, func)
    if g.shape[1:1 + len(spatial)] != out:  # a graph fed an input of the wrong size
        raise ValueError(f"{func}: an input of spatial shape {g.shape[1:1 + len(spatial)]} "
                         f"cannot produce the spatial shape {tuple(spatial)} with strides "
                         f"{strides} and padding {padding!r} (expected {out})")
    if padding == "valid":
        return _fold_data(device.xp, g, spatial, kernel, strides, dilation)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, widths))
    data = _fold_data(device.xp, g, padded, kernel, strides, dilation)
    return data[(slice(None), *(slice(lo, lo + n) for (lo, _), n in zip(widths, spatial)))]


def _fold_abstract(g, *, spatial, kernel, strides, dilation, padding, func):
    return (g.shape[0], *spatial, g.shape[-1]), g.dtype


def _fold_vjp(g, y, needs, x, *, spatial, kernel, strides, dilation, padding, func):
    return (patches(g, kernel, strides, dilation, padding, 0.0, func),)


fold_p = Primitive("fold")
fold_p.def_impl(_fold_impl)
fold_p.def_abstract(_fold_abstract)
fold_p.def_vjp(_fold_vjp)


def fold(g, spatial, kernel, strides, dilation, padding: str = "valid",
         func: str = "fold"):
    """Patch values (B, *out, *kernel, C) added back into a (B, *spatial, C) tensor, the
    padding `padding` gives `spatial` cropped off (the gradient of `patches`); errors name
    `func`."""
    return bind(fold_p, g, spatial=tuple(spatial), kernel=kernel, strides=strides,
                dilation=dilation, padding=padding, func=func)


# -- the Keras functions -----------------------------------------------------------------------
def _channels_last(x, data_format: str):
    if data_format == "channels_first":
        return permute_dimensions(x, (0, *range(2, x.ndim), 1))
    return x


def _restore_format(y, data_format: str):
    if data_format == "channels_first":
        return permute_dimensions(y, (0, y.ndim - 1, *range(1, y.ndim - 1)))
    return y


def _prepared(x, rank: int, kernel_size, strides, padding, data_format, dilation_rate,
              func: str):
    """x as channels-last; the kernel size, strides and dilation as tuples; the padding and
    data format checked."""
    x = as_input(x, func)
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
    padding = _check_padding(padding, rank, func)
    return x, kernel, strides, dilation, data_format, padding


def _differ(a, b) -> bool:
    """Whether two sizes are known to differ (an unknown size matches any)."""
    return a != b and a is not None and b is not None


# contract the patch axes (*kernel, C) of the patches with the kernel's (*kernel, C)
_CONV_AXES = {rank: ((tuple(range(rank + 1, 2 * rank + 2)), tuple(range(rank + 1))), ((), ()))
              for rank in (1, 2, 3)}


def _conv(x, kernel, strides, padding, data_format, dilation_rate, rank: int, func: str):
    kernel = as_input(kernel, func)
    if kernel.ndim != rank + 2:
        raise ValueError(f"{func}: expected a {rank + 2}-D kernel (*kernel_size, in, out), got "
                         f"shape {kernel.shape}")
    x, size, strides, dilation, data_format, padding = _prepared(
        x, rank, kernel.shape[:rank], strides, padding, data_format, dilation_rate, func)
    if _differ(x.shape[-1], kernel.shape[-2]):
        raise ValueError(f"{func}: the input has {x.shape[-1]} channels but the kernel of shape "
                         f"{kernel.shape} expects {kernel.shape[-2]}")
    p = patches(x, size, strides, dilation, padding, 0.0, func, copy=True)
    contract, batch = _CONV_AXES[rank]
    return _restore_format(dot_general(p, kernel, contract, batch), data_format)


def conv1d(x, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Keras: `K.conv1d(x, kernel, strides=1, padding='valid', data_format=None,
    dilation_rate=1)`. 1-D convolution; kernel (width, in, out); padding 'valid', 'same' or
    'causal' (left padding only, as Keras)."""
    return _conv(x, kernel, strides, padding, data_format, dilation_rate, 1, "conv1d")


def conv2d(x, kernel, strides=(1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1)):
    """Keras: `K.conv2d(x, kernel, strides=(1, 1), padding='valid', data_format=None,
    dilation_rate=(1, 1))`. 2-D convolution; kernel (rows, cols, in, out)."""
    return _conv(x, kernel, strides, padding, data_format, dilation_rate, 2, "conv2d")


def conv3d(x, kernel, strides=(1, 1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1, 1)):
    """Keras: `K.conv3d(x, kernel, strides=(1, 1, 1), padding='valid', data_format=None,
    dilation_rate=(1, 1, 1))`. 3-D convolution; kernel (depth, rows, cols, in, out)."""
    return _conv(x, kernel, strides, padding, data_format, dilation_rate, 3, "conv3d")


def conv2d_transpose(x, kernel, output_shape, strides=(1, 1), padding="valid",
                     data_format=None, dilation_rate=(1, 1)):
    """Keras: `K.conv2d_transpose(x, kernel, output_shape, strides=(1, 1), padding='valid',
    data_format=None, dilation_rate=(1, 1))`. The transpose (gradient) of `conv2d`; kernel
    (rows, cols, out, in), `output_shape` (batch, rows, cols, out) in `data_format`'s order
    (the batch may be None)."""
    func = "conv2d_transpose"
    kernel = as_input(kernel, func)
    x = as_input(x, func)
    data_format = check_data_format(data_format, func)
    if x.ndim != 4:
        raise ValueError(f"{func}: expected a 4-D input, got shape {x.shape}")
    x = _channels_last(x, data_format)
    out = output_shape = _output_shape(output_shape, 4, func, batch=True)
    if data_format == "channels_first":
        out = (out[0], out[2], out[3], out[1])
    size = tuple(kernel.shape[:2])
    strides = _tuple(strides, 2, "strides", func)
    dilation = _tuple(dilation_rate, 2, "dilation_rate", func)
    if kernel.ndim != 4 or _differ(kernel.shape[3], x.shape[-1]) or kernel.shape[2] != out[3]:
        raise ValueError(f"{func}: kernel of shape {kernel.shape} for an input of "
                         f"shape {x.shape} and output_shape {tuple(output_shape)}; expected "
                         "(rows, cols, output channels, input channels)")
    padding = _check_padding(padding, 2, func)
    expected = tuple((n + sum(_widths(n, k, s, d, padding)) - (k - 1) * d - 1) // s + 1
                     for n, k, s, d in zip(out[1:3], size, strides, dilation))
    if any(_differ(e, n) for e, n in zip(expected, x.shape[1:3])):
        raise ValueError(f"{func}: an input of spatial shape {x.shape[1:3]} cannot "
                         f"produce output_shape {tuple(output_shape)} with strides {strides} "
                         f"and padding {padding!r} (a conv2d of that output gives {expected})")
    # (B, h, w, rows, cols, out): each input pixel times the kernel; then each added into place
    cols = dot_general(x, kernel, ((3,), (3,)))
    y = fold(cols, out[1:3], size, strides, dilation, padding, func)
    return _restore_format(y, data_format)


def _depthwise(x, depthwise_kernel, strides, padding, data_format, dilation_rate, func):
    """(B, oh, ow, in * multiplier) channels-last, and the data format."""
    kernel = as_input(depthwise_kernel, func)
    if kernel.ndim != 4:
        raise ValueError(f"{func}: expected a depthwise kernel (rows, cols, in, multiplier), "
                         f"got shape {kernel.shape}")
    x, size, strides, dilation, data_format, padding = _prepared(
        x, 2, kernel.shape[:2], strides, padding, data_format, dilation_rate, func)
    channels, multiplier = x.shape[-1], kernel.shape[3]
    if _differ(kernel.shape[2], channels):
        raise ValueError(f"{func}: the input has {channels} channels but the depthwise kernel "
                         f"of shape {kernel.shape} expects {kernel.shape[2]}")
    # one product per channel (a batch axis of the product): (in[, multiplier], B, oh, ow)
    axes = ((3, 4), (0, 1)), ((5,), (2,))
    if multiplier == 1 or sum(n is None for n in x.shape) > 1:
        if multiplier != 1:  # the channels repeated: no reshape of unknown dims needed after
            x = repeat_elements(x, multiplier, axis=-1)
        kernel = reshape(kernel, (*size, kernel.shape[2] * multiplier))
        y = dot_general(patches(x, size, strides, dilation, padding, 0.0, func), kernel, *axes)
        return permute_dimensions(y, (1, 2, 3, 0)), data_format
    y = dot_general(patches(x, size, strides, dilation, padding, 0.0, func), kernel, *axes)
    y = permute_dimensions(y, (1, 2, 3, 0, 4))  # channel-major output channels, as TensorFlow
    return reshape(y, reshape_target((*y.shape[:3], channels * multiplier))), data_format


def depthwise_conv2d(x, depthwise_kernel, strides=(1, 1), padding="valid", data_format=None,
                     dilation_rate=(1, 1)):
    """Keras: `K.depthwise_conv2d(x, depthwise_kernel, strides=(1, 1), padding='valid',
    data_format=None, dilation_rate=(1, 1))`. Each input channel convolved with its own
    `multiplier` filters; kernel (rows, cols, in, multiplier); output channels in * multiplier,
    channel-major as in TensorFlow."""
    y, data_format = _depthwise(x, depthwise_kernel, strides, padding, data_format,
                                dilation_rate, "depthwise_conv2d")
    return _restore_format(y, data_format)


def separable_conv2d(x, depthwise_kernel, pointwise_kernel, strides=(1, 1), padding="valid",
                     data_format=None, dilation_rate=(1, 1)):
    """Keras: `K.separable_conv2d(x, depthwise_kernel, pointwise_kernel, strides=(1, 1),
    padding='valid', data_format=None, dilation_rate=(1, 1))`. A depthwise convolution, then
    a 1x1 convolution with `pointwise_kernel` (1, 1, in * multiplier, out)."""
    pointwise = as_input(pointwise_kernel, "separable_conv2d")
    y, data_format = _depthwise(x, depthwise_kernel, strides, padding, data_format,
                                dilation_rate, "separable_conv2d")
    if pointwise.ndim != 4 or pointwise.shape[:2] != (1, 1) or \
            _differ(pointwise.shape[2], y.shape[-1]):
        raise ValueError(f"separable_conv2d: expected a pointwise kernel (1, 1, {y.shape[-1]}, "
                         f"out), got shape {pointwise.shape}")
    return _restore_format(dot(y, reshape(pointwise, pointwise.shape[2:])), data_format)


def _local_conv(inputs, kernel, kernel_size, strides, output_shape, data_format, rank, func):
    kernel = as_input(kernel, func)
    x, size, strides, dilation, fmt, _ = _prepared(inputs, rank, kernel_size, strides, "valid",
                                                   data_format, 1, func)
    p = patches(x, size, strides, dilation, "valid", 0.0, func)  # (B, *out, *size, C)
    out = p.shape[1:1 + rank]
    if tuple(output_shape) != out:
        raise ValueError(f"{func}: output_shape {tuple(output_shape)} does not match the "
                         f"{out} positions of kernel size {size} and strides {strides}")
    if fmt == "channels_first":  # Keras flattens channels-first patches channel-major
        p = permute_dimensions(p, (*range(1 + rank), p.ndim - 1, *range(1 + rank, p.ndim - 1)))
    positions = math.prod(out)
    features = None if x.shape[-1] is None else math.prod(size) * x.shape[-1]
    if kernel.ndim != 3 or _differ(kernel.shape[0], positions) or \
            _differ(kernel.shape[1], features):
        raise ValueError(f"{func}: expected a kernel of shape ({positions}, {features}, "
                         f"filters), got {kernel.shape}")
    batch = -1 if p.shape[0] is None else p.shape[0]
    rows = reshape(p, (batch, positions, kernel.shape[1]))
    y = dot_general(rows, kernel, ((2,), (1,)), ((1,), (0,)))  # (positions, B, filters)
    y = permute_dimensions(y, (1, 0, 2))
    return _restore_format(reshape(y, (batch, *out, kernel.shape[-1])), fmt)


def local_conv1d(inputs, kernel, kernel_size, strides, data_format=None):
    """Keras: `K.local_conv1d(inputs, kernel, kernel_size, strides, data_format=None)`. A 1-D
    convolution with separate weights at each output position; kernel
    (output_length, kernel_size * in, filters)."""
    kernel = as_input(kernel, "local_conv1d")
    return _local_conv(inputs, kernel, kernel_size, strides, (kernel.shape[0],), data_format,
                       1, "local_conv1d")


def local_conv2d(inputs, kernel, kernel_size, strides, output_shape, data_format=None):
    """Keras: `K.local_conv2d(inputs, kernel, kernel_size, strides, output_shape,
    data_format=None)`. A 2-D convolution with separate weights at each output position;
    kernel (rows * cols of the output, kernel rows * cols * in, filters)."""
    return _local_conv(inputs, kernel, kernel_size, strides,
                       _output_shape(output_shape, 2, "local_conv2d", batch=False), data_format,
                       2, "local_conv2d")


# -- pooling ---------------------------------------------------------------------------------
def _first_max_mask(xp, data, window_axes: tuple, dtype):
    """1 at each window's first maximum (row-major window order), else 0: patches' shape."""
    lead, size = data.shape[:window_axes[0]], math.prod(data.shape[window_axes[0]:-1])
    first = data.reshape(*lead, size, data.shape[-1]).argmax(axis=-2)[..., None, :]
    hits = xp.arange(size).reshape(size, 1) == first
    return hits.reshape(data.shape).astype(dtype)


first_max_mask_p = Primitive("first_max_mask")  # no vjp: a constant (piecewise)
first_max_mask_p.def_impl(lambda device, a, *, window_axes, dtype: _first_max_mask(
    device.xp, a, window_axes, dtype))
first_max_mask_p.def_abstract(lambda x, *, window_axes, dtype: (x.shape, dtype))


def _first_max_grad(g, y, needs, p, *, window_axes):
    """TensorFlow's max-pooling gradient: each window's gradient goes whole to its first
    maximum in row-major window order (tied maxima are not shared, unlike `K.max`)."""
    mask = bind(first_max_mask_p, p, window_axes=window_axes, dtype=g.dtype)
    for _ in window_axes:  # a size-1 window axis before the channels, per window axis
        g = expand_dims(g, g.ndim - 1)
    return (g * mask,)


_WINDOW_AXES = {rank: tuple(range(1 + rank, 1 + 2 * rank)) for rank in (1, 2, 3)}


def _max_pool_impl(device, a, *, kernel, strides, dilation, padding, func):
    windows = _patches_impl(device, a, kernel=kernel, strides=strides, dilation=dilation,
                            padding=padding, value=-np.inf, copy=False, func=func)
    return windows.max(axis=_WINDOW_AXES[len(kernel)])


def _max_pool_abstract(x, *, kernel, strides, dilation, padding, func):
    _, out = _geometry(x.shape, kernel, strides, dilation, padding, func)
    return (x.shape[0], *out, x.shape[-1]), x.dtype


def _max_pool_vjp(g, y, needs, x, *, kernel, strides, dilation, padding, func):
    """The windows again (a view), each window's gradient to its first maximum, then added
    back into place: on arrays for a first-order gradient, else with gpubk functions (which
    record, for gradients of gradients)."""
    if g.__class__ is Tensor and not recording():
        device, window_axes = g.device, _WINDOW_AXES[len(kernel)]
        with device.context():
            windows = _patches_impl(device, x.data, kernel=kernel, strides=strides,
                                    dilation=dilation, padding=padding, value=-np.inf,
                                    copy=False, func=func)
            per_window = g.data.reshape(g.shape[:-1] + (1,) * len(kernel) + g.shape[-1:]) * \
                _first_max_mask(device.xp, windows, window_axes, g.dtype)
            data = _fold_impl(device, per_window, spatial=x.shape[1:-1], kernel=kernel,
                              strides=strides, dilation=dilation, padding=padding, func=func)
        return (Tensor(data, device),)
    p = patches(x, kernel, strides, dilation, padding, -np.inf, func)
    (per_window,) = _first_max_grad(g, y, needs, p, window_axes=_WINDOW_AXES[len(kernel)])
    return (fold(per_window, static(x.shape[1:-1]), kernel, strides, dilation, padding, func),)


# The maximum of each window of channels-last x (padded with -inf): the windows of `patches`,
# reduced in the same primitive (max pooling is hot; the patches are never a tensor).
max_pool_p = Primitive("max_pool")
max_pool_p.def_impl(_max_pool_impl)
max_pool_p.def_abstract(_max_pool_abstract)
max_pool_p.def_vjp(_max_pool_vjp, saves=(0,))


@functools.lru_cache(maxsize=64)
def _same_counts(spatial: tuple, size: tuple, strides: tuple, dilation: tuple,
                 dtype: np.dtype) -> np.ndarray:
    """(1, *out, 1): how many real (unpadded) elements each 'same'-padded window holds."""
    ones = np.ones((1, *spatial, 1), dtype=dtype)
    widths, _ = _geometry(ones.shape, size, strides, dilation, "same", "pool")
    windows = _windows(np, _pad(np, ones, widths, 0), size, strides, dilation)
    counts = windows.sum(axis=_WINDOW_AXES[len(size)])
    counts.setflags(write=False)
    return counts


def _pool(x, pool_size, strides, padding, data_format, pool_mode, rank, func):
    if pool_mode not in ("max", "avg"):
        raise ValueError(f"{func}: unknown pool_mode {pool_mode!r}; expected 'max' or 'avg'")
    x, size, strides, dilation, fmt, padding = _prepared(x, rank, pool_size, strides, padding,
                                                         data_format, 1, func)
    if pool_mode == "max":
        return _restore_format(bind(max_pool_p, x, kernel=size, strides=strides,
                                    dilation=dilation, padding=padding, func=func), fmt)
    window_axes = _WINDOW_AXES[rank]
    p = patches(x, size, strides, dilation, padding, 0.0, func)
    total = reduce_sum(p, axis=window_axes)
    if padding == "same":  # count only the real elements, as Keras (TensorFlow) does
        spatial = x.shape[1:-1]
        if None in spatial:
            ones = patches(ones_like(x[..., :1]), size, strides, dilation, padding, 0.0, func)
            count = reduce_sum(ones, axis=window_axes)
        else:
            device = device_of(x)
            count = Tensor(device.put(_same_counts(spatial, size, strides, dilation,
                                                   np.dtype(x.dtype))), device)
        return _restore_format(total / count, fmt)
    return _restore_format(total / float(np.prod(size)), fmt)


def pool2d(x, pool_size, strides=(1, 1), padding="valid", data_format=None, pool_mode="max"):
    """Keras: `K.pool2d(x, pool_size, strides=(1, 1), padding='valid', data_format=None,
    pool_mode='max')`. Max or average pooling; 'same' averages count only real elements.
    Max pooling sends each window's gradient to its first maximum, as TensorFlow does."""
    return _pool(x, pool_size, strides, padding, data_format, pool_mode, 2, "pool2d")


def pool3d(x, pool_size, strides=(1, 1, 1), padding="valid", data_format=None,
           pool_mode="max"):
    """Keras: `K.pool3d(x, pool_size, strides=(1, 1, 1), padding='valid', data_format=None,
    pool_mode='max')`. As `pool2d`, over three spatial axes."""
    return _pool(x, pool_size, strides, padding, data_format, pool_mode, 3, "pool3d")
