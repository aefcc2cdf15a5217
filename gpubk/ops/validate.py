"""Argument checks shared by the public functions: each returns the argument in canonical form
or raises a one-line TypeError (wrong kind of value) or ValueError (right kind, bad value) that
names the function, the argument and what was expected. Each checks the common valid case first,
so the ops that call them on every step pay a class comparison or two."""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

from ..tensor import Tensor


def type_name(value) -> str:
    return "None" if value is None else type(value).__name__


def _is_int(value) -> bool:
    """Python and NumPy integers, not bools (TensorFlow rejects a bool axis or size too)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value, func: str, name: str, minimum: int | None = None) -> int:
    """`value` as a Python int (an int, a NumPy integer or a 0-d integer tensor), at least
    `minimum` if given."""
    if value.__class__ is not int:
        if isinstance(value, Tensor) and value.ndim == 0 and value.dtype.kind in "iu":
            value = int(value)
        elif _is_int(value):
            value = int(value)
        else:
            raise TypeError(f"{func}: {name} must be an int, got {type_name(value)}"
                            + (f" {value!r}" if isinstance(value, (float, str)) else ""))
    if minimum is not None and value < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {value}")
    return value


def check_number(value, func: str, name: str, low: float | None = None,
                 high: float | None = None) -> float:
    """A real, non-NaN number (Python, NumPy, or a 0-d tensor) in [low, high] where given."""
    if value.__class__ is float or value.__class__ is int:  # the common case, cheaply
        if value != value:
            raise ValueError(f"{func}: {name} must be a number, got nan")
        if low is None and high is None:
            return value
    if isinstance(value, Tensor) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.numpy().item()
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name} must be a number, got {type_name(value)}")
    if math.isnan(value):
        raise ValueError(f"{func}: {name} must be a number, got nan")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{func}: {name} must be in [{low}, {high}], got {value}")
    return value


def check_rate(value, func: str, name: str) -> float:
    """A rate such as a dropout level: a number in [0, 1)."""
    value = check_number(value, func, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{func}: {name} must be in [0, 1), got {value}")
    return value


def check_probability(value, func: str, name: str) -> float:
    """A probability: a number in [0, 1]."""
    return check_number(value, func, name, 0.0, 1.0)


def check_callable(fn, func: str, name: str):
    if not callable(fn):
        raise TypeError(f"{func}: {name} must be callable, got {type_name(fn)}")
    return fn


def check_sequence(value, func: str, name: str) -> list:
    """A list or tuple (of tensors, pairs, ...) as a list."""
    if value.__class__ is list:
        return value
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{func}: {name} must be a list or tuple, got {type_name(value)}")
    return list(value)


def _fed_error(func: str, name: str) -> TypeError:
    """A shape known only when fed, given to an argument that needs it when the graph is built
    (ops that take fed shapes read them with ops/dims.py first)."""
    return TypeError(f"{func}: {name} must be known when the graph is built (ints), got a "
                     "symbolic tensor")


def _concrete_ints(value, func: str, name: str) -> list | None:
    """The values of a shape given as a tensor or NumPy array (Keras accepts shape tensors);
    None if `value` is neither."""
    if isinstance(value, Tensor):
        value = value.numpy()
    elif getattr(value, "_symbolic", False):
        raise _fed_error(func, name)
    if not isinstance(value, np.ndarray):
        return None
    if value.ndim > 1 or value.dtype.kind not in "iu":
        raise TypeError(f"{func}: {name} must be a 1-D integer tensor or a tuple of ints, got "
                        f"{value.dtype.name} of shape {value.shape}")
    return value.reshape(-1).tolist()


def check_dims(shape, func: str, name: str = "shape", minimum: int = 0) -> tuple:
    """A shape (an int, a list or tuple of ints, or a 1-D integer tensor) as a tuple of Python
    ints, each at least `minimum` (-1 for a reshape target)."""
    if shape.__class__ is tuple:  # the common case, on every reshape: a loop, no generator
        for n in shape:
            if n.__class__ is not int or n < minimum:
                break
        else:
            return shape
    dims = _concrete_ints(shape, func, name)
    if dims is None:
        if isinstance(shape, (list, tuple)):
            dims = shape
        elif _is_int(shape):
            dims = (shape,)
        else:
            raise TypeError(f"{func}: {name} must be a tuple of ints, got {type_name(shape)}")
    result = []
    for n in dims:
        if isinstance(n, Tensor) and n.ndim == 0 and n.dtype.kind in "iu":
            n = int(n)  # an entry of a shape tensor, such as K.shape(x)[0]
        elif getattr(n, "_symbolic", False):
            raise _fed_error(func, name)
        if not _is_int(n):
            raise TypeError(f"{func}: {name} must be a tuple of ints, got {shape!r} (an entry "
                            f"of type {type_name(n)})")
        if n < minimum:
            raise ValueError(f"{func}: {name} entries must be >= {minimum}, got {tuple(dims)}")
        result.append(int(n))
    return tuple(result)


def check_shape(shape, func: str, name: str = "shape") -> tuple:
    """The shape of a tensor to create: non-negative ints."""
    return check_dims(shape, func, name)


def _memory_bytes(device) -> int:
    """The memory of `device` (a gpubk Device): its GPU's, or the host's RAM."""
    try:
        if device.xp is np:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return device.xp.cuda.Device(device.index).mem_info[1]
    except (AttributeError, OSError, ValueError):
        return 2 ** 62  # unknown: let the allocator decide


def check_size(shape: tuple, itemsize: int, func: str, device) -> None:
    """Refuses, before allocating, a buffer larger than the device's memory (a shape typo
    should fail at once, not after swapping)."""
    needed = math.prod(shape) * itemsize
    if needed > 2 ** 20 and needed > (available := _memory_bytes(device)):
        raise ValueError(f"{func}: shape {shape} needs {needed / 2 ** 30:.3g} GiB, more than "
                         f"{device.name}'s {available / 2 ** 30:.3g} GiB of memory")


def _axis_error(a, ndim: int, func: str, name: str) -> ValueError:
    return ValueError(f"{func}: {name} {a} is out of range for a tensor of rank {ndim}; "
                      f"expected an {name} in [{-ndim}, {ndim - 1}]")


def check_axis(axis, ndim: int, func: str, name: str = "axis") -> int:
    """One axis (an int, negatives counting from the end) as a non-negative int."""
    if axis.__class__ is int and -ndim <= axis < ndim:  # the common case
        return axis % ndim
    a = check_int(axis, func, name)
    if not -ndim <= a < ndim:
        raise _axis_error(a, ndim, func, name)
    return a % ndim


def normalize_axes(axis, ndim: int, func: str, name: str = "axis") -> tuple | None:
    """`axis` (None, an int, or a list/tuple of ints, negatives allowed) as a sorted tuple of
    non-negative axes, or None for all."""
    if axis is None:
        return None
    if axis.__class__ is int and -ndim <= axis < ndim:  # the common case, without the loop
        return (axis % ndim,)
    if isinstance(axis, Tensor) and axis.ndim == 1:
        axis = axis.numpy().tolist()
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    for a in axes:
        if not _is_int(a) and not (isinstance(a, Tensor) and a.ndim == 0):
            raise TypeError(f"{func}: {name} must be an int, a list of ints or None, got "
                            f"{type_name(axis) if a is axis else repr(axis)}")
    return tuple(sorted({check_axis(a, ndim, func, name) for a in axes}))
