"""What every kernel family shares on the host: rows, and the CPU-twin threshold. (The CUDA
side, launch geometry, streams and block reductions, is in `cuda/blocks.py`.)"""
from __future__ import annotations

import functools
import importlib
import threading
import types

import numpy as np

# Below this many elements a parallel Numba call loses on the CPU (~10-20 us to start its
# threads): the twins run on one thread there (`cpu_twin`).
# (A module variable so that tests can run the twins on small shapes.)
cpu_twin_min_size = 1 << 15
# Whether the twins run on one thread below that size (else NumPy's formulas: tests compare them).
one_thread_twins = True

FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _Threads(threading.local):
    """`one_thread`: set (per thread) while a K.function whose plan calls BLAS runs. OpenBLAS's
    threads spin for a while after each product and hold the cores a parallel twin would wake
    its threads on: a 256x512 softmax and crossentropy after a matmul took 9.6 ms a call in
    parallel, 1.4-1.7 ms on one thread (2 cores; the fused loops follow the same rule:
    fuse.BLAS)."""
    one_thread = False


threads = _Threads()


class Rows:
    """An array seen as rows: `axis` moved last, the other axes folded, C-contiguous, in a dtype
    the kernels take (float16 is computed in float32, then cast back)."""

    __slots__ = ("data", "_xp", "_moved_shape", "_axis", "_last", "_dtype")

    def __init__(self, xp, a, axis: int) -> None:
        self._xp, self._axis, self._last, self._dtype = xp, axis, a.ndim - 1, a.dtype
        if axis == 1 and a.ndim == 2 and a.dtype in FLOAT_TYPES and a.flags.c_contiguous:
            self._moved_shape, self.data = a.shape, a  # rows already (the usual small case)
            return
        moved = a if axis == self._last else a.swapaxes(axis, self._last)
        self._moved_shape = moved.shape
        work = np.float32 if a.dtype == np.float16 else a.dtype
        self.data = xp.ascontiguousarray(moved.reshape(-1, moved.shape[-1]), dtype=work)

    def restore(self, out):
        """Rows of results back to the input's layout and dtype."""
        out = out.reshape(self._moved_shape)
        if self._axis != self._last:
            out = out.swapaxes(self._axis, self._last)
        return out.astype(self._dtype, copy=False)

    def restore_reduced(self, values):
        """One result per row, shaped as the input without `axis`."""
        out = values.reshape(self._moved_shape[:-1])
        if self._axis != self._last:  # the input's last axis sits at `axis` now: put it back
            out = self._xp.moveaxis(out, self._axis, -1)
        return out.astype(self._dtype, copy=False)

    def vector_per_row(self, values):
        """The inverse of `restore_reduced`: values shaped as the input without `axis`, as one
        contiguous value per row."""
        if self._axis != self._last:
            values = self._xp.moveaxis(values, -1, self._axis)
        return self._xp.ascontiguousarray(values.reshape(-1), dtype=self.data.dtype)


def cpu_twin_applies(a) -> bool:
    """Whether the CPU twin should run: big enough to beat NumPy, and a dtype it compiles for."""
    return a.size >= cpu_twin_min_size and a.dtype in FLOAT_TYPES


def cpu_twin(kernel, a):
    """The CPU twin to run on `a`, or None where NumPy's formulas run (float16 and integer
    arrays): `kernel` itself, parallel, from `cpu_twin_min_size` elements (on one thread while
    `threads.one_thread` says so); below, its compile on one thread, which still beats NumPy's
    several passes (an 8x4 softmax crossentropy: 1.5 us, against 11 us through NumPy), unless
    `one_thread_twins` is off."""
    if a.dtype not in FLOAT_TYPES:
        return None
    if a.size >= cpu_twin_min_size:
        return _one_thread(kernel) if threads.one_thread else kernel
    return _one_thread(kernel) if one_thread_twins else None


@functools.cache
def _one_thread(kernel):
    """`kernel` (a parallel `njit` twin) compiled without threads, under a name of its own so
    that Numba's cache keeps its entries apart (it tells functions apart by name, not by
    options)."""
    from numba import njit  # noqa: PLC0415

    py_func = kernel.py_func
    twin = types.FunctionType(py_func.__code__, py_func.__globals__, py_func.__name__,
                              py_func.__defaults__, py_func.__closure__)
    twin.__qualname__ = f"{py_func.__qualname__}__one_thread"
    # NumPy's error model, as the parallel loop has (a division by zero is inf, not an error)
    options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}  # njit's own
    return njit(**{**options, "parallel": False, "error_model": "numpy", "cache": True})(twin)


@functools.cache
def cuda_family(name: str):
    """The CUDA kernels of family `name` (`cuda/<name>.py`), imported on first use: only a GPU
    or the simulator needs numba-cuda, so gpubk installs and runs without it (macOS)."""
    return importlib.import_module(f"{__package__}.cuda.{name}")
