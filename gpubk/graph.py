"""Placeholders: symbolic inputs of a known dtype and partly known shape.

They carry what `K.int_shape`, `K.ndim`, `K.dtype` and `repr` need. Evaluating graphs built on
them (`K.function`) is not part of gpubk yet; using one where a value is needed raises an error
that says so.
"""
from __future__ import annotations

import itertools

from .config import floatx
from .dtypes import as_dtype

_placeholder_ids = itertools.count(1)


class Placeholder:
    """A symbolic input: a dtype, a shape with `None` for unknown dimensions, and a name."""

    __slots__ = ("shape", "dtype", "name")

    def __init__(self, shape: tuple, dtype, name: str) -> None:
        self.shape = shape
        self.dtype = dtype
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<gpubk.Placeholder '{self.name}' shape={self.shape} dtype={self.dtype.name}>"

    def no_value_error(self, func: str) -> TypeError:
        return TypeError(
            f"{func}: placeholder '{self.name}' (shape {self.shape}) has no value; feeding "
            "placeholders through K.function is not available in this version of gpubk")


def placeholder(shape=None, ndim: int | None = None, dtype=None, sparse: bool = False,
                name: str | None = None, ragged: bool = False) -> Placeholder:
    """Keras: `K.placeholder(shape=None, ndim=None, dtype=None, sparse=False, name=None)`.

    Instantiates a placeholder of `shape` (`None` for unknown dimensions) or, if no shape is
    given, of rank `ndim` with all dimensions unknown.

    Example:
    ```python
    x = K.placeholder(shape=(None, 4, 5))
    K.int_shape(x)  # (None, 4, 5)
    ```
    """
    if sparse or ragged:
        raise ValueError("placeholder: sparse and ragged placeholders are not supported")
    if shape is None:
        if ndim is None:
            raise ValueError("placeholder: expected `shape` or `ndim`, got neither")
        shape = (None,) * int(ndim)
    shape = tuple(None if n is None else int(n) for n in shape)
    if any(n is not None and n < 0 for n in shape):
        raise ValueError(f"placeholder: dimensions must be >= 0 or None, got {shape}")
    return Placeholder(shape, as_dtype(dtype or floatx(), "placeholder"),
                       name or f"Placeholder_{next(_placeholder_ids)}")
