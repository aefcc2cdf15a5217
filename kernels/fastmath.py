"""Scalar math for the Numba CPU kernels that LLVM can vectorise.

This machine's llvmlite has no SVML, so `math.exp`/`math.log` inside a Numba loop become scalar
libm calls (3.5-6.5x slower) and stop the loop from vectorising. These are the Cephes
polynomials (range reduction, polynomial, exponent by bit arithmetic), inlined into the loops:
`exp` within 1 ulp in float32 and 2 ulp in float64, `log` within 1 ulp in float32 (float64 log
calls libm), `log1p` and `expm1` built on them; the tests check those bounds. `maxnum` and
`minnum` are `llvm.maxnum`/`llvm.minnum`, which vectorise where Python's `max()`/`min()` (with
their NaN branches) do not.

Nothing here is compiled at import: each function compiles inside the kernel that calls it.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# Flags for kernels that reduce: reassociation lets sums and maxima vectorise; no flag assumes
# the absence of inf or NaN, so those still propagate.
REDUCE_FLAGS = {"reassoc", "contract", "arcp", "nsz"}


@intrinsic
def _f32_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def _bits_from_f32(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def _f64_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


def _llvm_binary(name: str):
    """An intrinsic calling `llvm.<name>` on two floats of one type."""
    @intrinsic
    def call(typingctx, a, b):
        if not (isinstance(a, types.Float) and a == b):
            return None

        def codegen(context, builder, signature, args):
            ty = args[0].type
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ty, [ty, ty]), f"llvm.{name}.f{a.bitwidth}")
            return builder.call(fn, args)
        return a(a, b), codegen
    return call


maxnum = _llvm_binary("maxnum")  # max(a, b), vectorisable in reductions
minnum = _llvm_binary("minnum")


@njit(inline="always", fastmath=REDUCE_FLAGS)
def row_max(row):
    """The largest value of a 1-D row (NaN propagates), as a vectorised reduction."""
    m = row[0]
    for j in range(row.shape[0]):
        m = maxnum(m, row[j])
    return m


@njit(inline="always", fastmath={"contract"})
def _exp32(x):
    low = np.float32(-87.33654)  # below this exp(x) is subnormal: return 0
    xc = min(max(x, low), np.float32(88.72283))
    n = np.floor(xc * np.float32(1.44269504088896341) + np.float32(0.5))
    r = xc - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    scale = _f32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))
    return p * scale if x >= low else np.float32(0.0)


@njit(inline="always", fastmath={"contract"})
def _exp64(x):
    low = -708.39641853226408
    xc = min(max(x, low), 709.78271289338397)
    n = np.floor(xc * 1.4426950408889634073599 + 0.5)
    r = xc - n * 6.93145751953125e-1 - n * 1.42860682030941723212e-6
    rr = r * r
    p = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
             + 9.99999999999999999910e-1)
    q = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
         + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0
    e = 1.0 + 2.0 * (p / (q - p))
    scale = _f64_from_bits((np.int64(n) + np.int64(1023)) << np.int64(52))
    return e * scale if x >= low else 0.0


@njit(inline="always", fastmath={"contract"})
def _log32(x):
    """log of a positive normal float32 (inputs here are clipped probabilities or sums)."""
    bits = _bits_from_f32(x)
    e = np.float32((bits >> np.int32(23)) - np.int32(126))
    m = _f32_from_bits((bits & np.int32(0x007FFFFF)) | np.int32(0x3F000000))  # in [0.5, 1)
    small = m < np.float32(0.707106781186547524)
    e = e - np.float32(1.0) if small else e
    f = (m + m - np.float32(1.0)) if small else (m - np.float32(1.0))
    z = f * f
    y = np.float32(7.0376836292e-2)
    y = y * f - np.float32(1.1514610310e-1)
    y = y * f + np.float32(1.1676998740e-1)
    y = y * f - np.float32(1.2420140846e-1)
    y = y * f + np.float32(1.4249322787e-1)
    y = y * f - np.float32(1.6668057665e-1)
    y = y * f + np.float32(2.0000714765e-1)
    y = y * f - np.float32(2.4999993993e-1)
    y = y * f + np.float32(3.3333331174e-1)
    y = y * f * z
    y = y + np.float32(-2.12194440e-4) * e - np.float32(0.5) * z
    return f + y + np.float32(0.693359375) * e


def log1p(x):
    """log(1 + x) for x > -1 inside Numba kernels, accurate for tiny x (see the module docs)."""
    return math.log1p(x)


def expm1(x):
    """exp(x) - 1 inside Numba kernels, accurate for tiny x (see the module docs)."""
    return math.expm1(x)


def exp(x):
    """exp(x) for float32 or float64 inside Numba kernels (see the module docstring)."""
    return math.exp(x)


def log(x):
    """log(x) of a positive normal float inside Numba kernels (see the module docstring)."""
    return math.log(x)


@overload(exp)
def _exp_overload(x):
    if x == types.float32:
        return lambda x: _exp32(x)
    if x == types.float64:
        return lambda x: _exp64(x)
    return None


@overload(log)
def _log_overload(x):
    if x == types.float32:
        return lambda x: _log32(x)
    if x == types.float64:
        return lambda x: math.log(x)
    return None


def _one(x):
    """The constant 1 of Numba float type `x`, or None for other types."""
    return np.float32(1) if x == types.float32 else 1.0 if x == types.float64 else None


@overload(log1p)
def _log1p_overload(x):
    one = _one(x)
    if one is None:
        return None

    def impl(x):
        # Goldberg's correction: w = 1 + x is rounded, and x / (w - 1) undoes that rounding.
        w = x + one
        return x if w == one else log(w) * (x / (w - one))
    return impl


@overload(expm1)
def _expm1_overload(x):
    one = _one(x)
    if one is None:
        return None

    def impl(x):
        # Kahan: u = exp(x) is rounded, and x / log(u) undoes that rounding in u - 1.
        u = exp(x)
        um1 = u - one
        if u == one:
            return x
        return -one if um1 == -one else um1 * (x / log(u))
    return impl
