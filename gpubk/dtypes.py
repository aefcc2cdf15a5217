"""Dtype names: the one place that turns user input into a NumPy dtype, with a clear error."""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = frozenset({"float16", "float32", "float64"})
SUPPORTED_DTYPES = FLOAT_DTYPES | {
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"}


def as_dtype(dtype, func: str) -> np.dtype:
    """Returns `dtype` as a NumPy dtype, or raises naming `func` and the accepted names."""
    try:  # np.dtype(None) would mean float64: None is never a valid name here
        result = None if dtype is None else np.dtype(getattr(dtype, "name", dtype))
    except TypeError:
        result = None
    if result is None or result.name not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{func}: unknown dtype {dtype!r}; expected one of {sorted(SUPPORTED_DTYPES)}")
    return result

