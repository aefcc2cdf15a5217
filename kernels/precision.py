"""Typed constants for kernels, so that float32 (and float16, computed in float32) kernels do
float32 math: `like(v, 0.5)` is 0.5 in the type of `v`.

A bare literal (`0.0`, `1.0`) is a float64 in Numba, and one float64 operand turns the whole
expression into float64 (a conversion per element and float64 arithmetic, which consumer GPUs
run at 1/64 of the float32 rate). The CUDA overload folds to a constant of the right type; the
plain function is what the simulator runs (NumPy scalars of the same type), and the Numba CPU
target uses the same overload, so one formula serves every target.
"""
from __future__ import annotations

from numba import types
from numba.extending import overload


def like(v, c):
    """The constant `c` as a number of `v`'s type (inside kernels)."""
    return type(v)(c)


def _like_typed(v, c):
    if not isinstance(v, types.Float):
        return None
    float_type = v

    def impl(v, c):
        return float_type(c)
    return impl


overload(like)(_like_typed)  # the CPU target; cuda/__init__.py registers the CUDA one
