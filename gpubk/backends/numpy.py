"""The `cpu` backend: NumPy arrays in host memory; kernel-backed ops run their CPU twins."""
from __future__ import annotations

import contextlib

import numpy as np

KIND = "cpu"
INDEXED = False
CUDA_KERNELS = False

_NO_CONTEXT = contextlib.nullcontext()  # stateless, so one serves every `with`


def open(index: int):  # noqa: A001 (the protocol's name)
    """The host is always there."""
    return np


def put(array, index: int = 0) -> np.ndarray:
    """`array` as a NumPy array: itself if it is one, else a host copy (`.get()` for CuPy)."""
    if isinstance(array, np.ndarray):
        return array
    return to_host(array)


def to_host(array) -> np.ndarray:
    get = getattr(array, "get", None)  # device arrays (CuPy) copy to the host with .get()
    return get() if get is not None else np.asarray(array)


def context(index: int = 0):
    """Nothing to make current: host memory is one place."""
    return _NO_CONTEXT


def stream(index: int = 0) -> None:
    return None


def scatter_add(array, key, values) -> None:
    """`array[key] += values` where repeated indices in `key` accumulate."""
    np.add.at(array, key, values)
