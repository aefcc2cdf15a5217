"""Global settings of the Keras 2 backend: default float type and fuzz factor."""
from __future__ import annotations

import numbers

from .dtypes import FLOAT_DTYPES, as_dtype

_floatx = "float32"
_epsilon = 1e-7
_image_data_format = "channels_last"
DATA_FORMATS = ("channels_last", "channels_first")


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
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
        raise (TypeError if not isinstance(value, numbers.Real) else ValueError)(
            f"set_epsilon: expected a number >= 0, got {value!r}")
    _epsilon = float(value)


def image_data_format() -> str:
    """Returns the default image data format: `'channels_last'` or `'channels_first'`."""
    return _image_data_format


def set_image_data_format(data_format: str) -> None:
    """Sets the default image data format (`'channels_last'` or `'channels_first'`)."""
    global _image_data_format
    if data_format is None:  # Keras: a ValueError, not "the default"
        raise ValueError(f"set_image_data_format: expected one of {DATA_FORMATS}, got None")
    _image_data_format = check_data_format(data_format, "set_image_data_format")


def check_data_format(data_format, func: str) -> str:
    """`data_format`, or the default for None; a ValueError naming `func` for anything else."""
    if data_format is None:
        return _image_data_format
    if data_format not in DATA_FORMATS:
        raise ValueError(f"{func}: unknown data_format {data_format!r}; expected one of "
                         f"{DATA_FORMATS}")
    return data_format
