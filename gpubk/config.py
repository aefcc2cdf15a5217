"""Global settings of the Keras 2 backend: default float type and fuzz factor."""
from __future__ import annotations

from .dtypes import FLOAT_DTYPES, as_dtype

_floatx = "float32"
_epsilon = 1e-7


def floatx() -> str:
    """Returns the default float type, as a string (e.g. `'float32'`)."""
    return _floatx


def set_floatx(value: str) -> None:
    """Sets the default float type.

    Arguments:
        value: one of `'float16'`, `'float32'`, `'float64'`.

    Raises:
        ValueError: for any other value.
    """
    global _floatx
    name = as_dtype(value, "set_floatx").name
    if name not in FLOAT_DTYPES:
        raise ValueError(
            f"set_floatx: expected one of {sorted(FLOAT_DTYPES)}, got {value!r}")
    _floatx = name


def epsilon() -> float:
    """Returns the fuzz factor used in numeric expressions (default 1e-7)."""
    return _epsilon


def set_epsilon(value: float) -> None:
    """Sets the fuzz factor used in numeric expressions."""
    global _epsilon
    _epsilon = float(value)
