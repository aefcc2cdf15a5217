"""Questions about tensors: shapes, ranks, dtypes, parameter counts."""
from __future__ import annotations

import numpy as np

from ..symbolic import Symbol
from ..core.primitive import Primitive, as_input, bind
from ..tensor import Tensor


def _checked(x, func: str):
    if isinstance(x, (Tensor, Symbol)):
        return x
    raise TypeError(f"{func}: expected a gpubk tensor, variable or placeholder, got "
                    f"{type(x).__name__}")


def int_shape(x) -> tuple:
    """Keras: `K.int_shape(x)`. The shape as a tuple of ints, `None` for unknown dimensions."""
    return tuple(_checked(x, "int_shape").shape)


shape_p = Primitive("shape")  # no vjp: an integer result
shape_p.def_impl(lambda device, a: device.put(np.asarray(a.shape, dtype=np.int32)))
shape_p.def_abstract(lambda x: ((len(x.shape),), np.dtype(np.int32)))


def shape(x) -> Tensor:
    """Keras: `K.shape(x)`. The shape as an int32 tensor (on `x`'s device); of a symbolic
    tensor, a node whose value is known when fed."""
    return bind(shape_p, as_input(x, "shape"))


def ndim(x) -> int:
    """Keras: `K.ndim(x)`. The number of axes."""
    return _checked(x, "ndim").ndim


def dtype(x) -> str:
    """Keras: `K.dtype(x)`. The dtype's name, e.g. `'float32'`."""
    return _checked(x, "dtype").dtype.name


def count_params(x) -> np.int64:
    """Keras: `K.count_params(x)`. The number of scalars in `x` (a NumPy integer)."""
    x = _checked(x, "count_params")
    if any(n is None for n in x.shape):
        raise ValueError(f"count_params: shape {x.shape} has unknown dimensions")
    return np.prod(x.shape, dtype=np.int64)


def is_tensor(x) -> bool:
    """Keras: `K.is_tensor(x)`. Whether `x` is a gpubk tensor, variable or symbolic tensor."""
    return isinstance(x, (Tensor, Symbol))
