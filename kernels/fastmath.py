"""Scalar math for the Numba CPU kernels that LLVM can vectorise.

This machine's llvmlite has no SVML, so `math.exp`/`math.log` inside a Numba loop become scalar
libm calls (3.5-6.5x slower) and stop the loop from vectorising. These are the Cephes
polynomials (range reduction, polynomial, exponent by bit arithmetic), inlined into the loops.
They take every float: subnormals, +-0, +-inf and NaN (NaN in, NaN out) give what NumPy gives.
tests/test_fastmath.py checks the bounds over the whole range: `exp` within 1.03 ulp in float32
(at most one float from the correctly rounded result) and 2 ulp in float64, subnormal results
included; `log` within 1 ulp in float32 (float64 log calls libm); `log1p` and `expm1`, built on
them, within 2.5 ulp in float32 and 2 ulp in float64; `tanh` (Cephes' polynomial for small
|x|, else from exp) within 1.5 ulp in float32 (1.33 at worst over every float32) and 2 ulp in
float64, exactly +-1 wherever the correctly rounded tanh is.

`maximum` (NaN propagates) is `llvm.maximum`, which vectorises in reductions where Python's
`max()` does not; `clamp` (the formulas' one, compiled here) keeps NaN where `min(max())` would
lose it.

Nothing here is compiled at import: each function compiles inside the kernel that calls it.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from . import formulas

# Flags for kernels that reduce: reassociation lets sums and maxima vectorise; no flag assumes
# the absence of inf or NaN, so those still propagate.
REDUCE_FLAGS = {"reassoc", "contract", "arcp", "nsz"}

# exp, log, log1p and expm1 compile with these options whatever the calling kernel's: the
# kernel's "reassoc" would let LLVM fold the two-step range reductions below into one product
# (exp in float64 was 200 ulp off inside the kernels), and its "python" error model would put a
# raising branch on each division. LLVM still inlines them into the kernel's loops.
_OWN_OPTIONS = {"fastmath": {"contract"}, "error_model": "numpy"}


# Bit arithmetic as intrinsics, in the float's own integer width (Numba widens int32 arithmetic
# to int64), and without float-to-int conversions (undefined for NaN).
_FORMAT = {32: (23, 127, 0x4B400000), 64: (52, 1023, 0x4338000000000000)}  # mantissa bits,
# exponent bias, and the bits of the shifter 1.5 * 2**(mantissa bits) used by _exp32/_exp64


@intrinsic
def _scale_by_shifter(typingctx, p, shifted):
    """p * 2**n, where `shifted` = n + 1.5 * 2**(mantissa bits) holds the integer n in its low
    mantissa bits. The power goes in two factors, 2**(n >> 1) * 2**(n - (n >> 1)), normal floats
    for any n of exp's clamped range (well inside |n| < 2 * bias): p (about 1) times the first
    is exact, so the result rounds once, into the subnormals too, and overflows to inf only when
    p * 2**n does."""
    if not (isinstance(p, types.Float) and p == shifted):
        return None
    mantissa, bias, magic = _FORMAT[p.bitwidth]

    def codegen(context, builder, signature, args):
        fty = args[0].type
        ity = ir.IntType(p.bitwidth)
        n = builder.sub(builder.bitcast(args[1], ity), ity(magic))
        half = builder.ashr(n, ity(1))
        result = args[0]
        for part in (half, builder.sub(n, half)):
            power = builder.shl(builder.add(part, ity(bias)), ity(mantissa))
            result = builder.fmul(result, builder.bitcast(power, fty))
        return result
    return p(p, shifted), codegen


@intrinsic
def _frexp32(typingctx, x):
    """(m, e) with x = m * 2**e, m in [0.5, 1), for a positive normal float32 x."""
    if x != types.float32:
        return None
    ret = types.UniTuple(types.float32, 2)

    def codegen(context, builder, signature, args):
        i32, f32 = ir.IntType(32), ir.FloatType()
        bits = builder.bitcast(args[0], i32)
        e = builder.sitofp(builder.sub(builder.lshr(bits, i32(23)), i32(126)), f32)
        m = builder.or_(builder.and_(bits, i32(0x007FFFFF)), i32(0x3F000000))
        return context.make_tuple(builder, ret, (builder.bitcast(m, f32), e))
    return ret(x), codegen


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


maximum = _llvm_binary("maximum")  # max(a, b), NaN propagated; vectorises in reductions
copysign = _llvm_binary("copysign")  # |a| with the sign of b (of -0 and NaN too): no branch


@njit(inline="always", fastmath=REDUCE_FLAGS)
def row_max(row):
    """The largest value of a 1-D row (NaN propagates), as a vectorised reduction."""
    m = row[0]
    for j in range(row.shape[0]):
        m = maximum(m, row[j])
    return m


# x clipped to [low, high], NaN staying NaN: one body for the CPU twins, the CUDA kernels
# (cuda/blocks.py) and the generated activations (formulas.py).
clamp = njit(inline="always")(formulas.clamp)


# The range reduction: x = n * ln 2 + r with n = round(x / ln 2), computed as (x / ln 2 + S) - S
# with S = 1.5 * 2**(mantissa bits): the addition rounds to an integer, which then sits in the
# low mantissa bits of the sum, so n comes out of its bits without a float-to-int conversion
# (undefined for NaN). ln 2 is split in two (Cody-Waite) so that n * ln 2 loses no digits.
# Then exp(x) = exp(r) * 2**n by `_scale_by_shifter`, exact to one rounding over the whole range.
@njit(inline="always")
def _exp32(x):
    # Clamped (NaN kept) where exp is already inf or 0 in float32: exp(89) > max,
    # exp(-104) < 2**-150, half the smallest subnormal.
    xc = clamp(x, np.float32(-104.0), np.float32(89.0))
    shifted = xc * np.float32(1.44269504088896341) + np.float32(12582912.0)
    n = shifted - np.float32(12582912.0)
    r = xc - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    return _scale_by_shifter(p, shifted)


@njit(inline="always")
def _exp64(x):
    # exp(710) > max and exp(-746) < 2**-1075, as in _exp32.
    xc = clamp(x, -746.0, 710.0)
    shifted = xc * 1.4426950408889634073599 + 6755399441055744.0
    n = shifted - 6755399441055744.0
    r = xc - n * 6.93145751953125e-1 - n * 1.42860682030941723212e-6
    rr = r * r
    p = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
             + 9.99999999999999999910e-1)
    q = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
         + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0
    e = 1.0 + 2.0 * (p / (q - p))
    return _scale_by_shifter(e, shifted)


@njit(inline="always")
def _log32(x):
    # Subnormals are scaled by 2**23 into the normal range first (exactly): the bit arithmetic
    # below reads the exponent field, which is 0 for them.
    tiny = x < np.float32(1.17549435e-38)
    m, e = _frexp32(x * np.float32(8388608.0) if tiny else x)  # m in [0.5, 1)
    e = e - np.float32(23.0) if tiny else e
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
    r = f + y + np.float32(0.693359375) * e
    # Outside (0, inf) the above is meaningless: log(0) = -inf, log(inf) = inf, else NaN.
    inf = np.float32(np.inf)
    edge = -inf if x == np.float32(0.0) else (x if x > np.float32(0.0) else np.float32(np.nan))
    return r if (x > np.float32(0.0)) & (x < inf) else edge


# tanh by Cephes' tanhf/tanh, on a = |x|, both branches computed and one selected (so that the
# loop vectorises), the sign put back by copysign (tanh(-0) = -0): below 0.625 the odd
# polynomial (float32) or rational function (float64) a + a * a**2 * R(a**2), which is exactly a
# for the tiny and subnormal a whose square is 0; above, 1 - 2 / (exp(2a) + 1) (exp's clamp makes
# exp(2a) inf for large a, and 2 / inf is 0), and exactly 1 from the first float whose correctly
# rounded tanh is 1 on (26 ln2 / 2 in float32, 55 ln2 / 2 in float64: there 1 - tanh = 2**-25,
# 2**-54, half the spacing below 1), where 1 - 2 / (exp(2a) + 1) could still round to the float
# below 1. NaN fails every comparison and stays NaN.
@njit(inline="always")
def _tanh32(x):
    a = abs(x)
    z = a * a
    p = np.float32(-5.70498872745e-3)
    p = p * z + np.float32(2.06390887954e-2)
    p = p * z - np.float32(5.37397155531e-2)
    p = p * z + np.float32(1.33314422036e-1)
    p = p * z - np.float32(3.33332819422e-1)
    small = a + a * (z * p)
    large = np.float32(1.0) - np.float32(2.0) / (_exp32(a + a) + np.float32(1.0))
    large = np.float32(1.0) if a >= np.float32(9.010914) else large
    return copysign(small if a < np.float32(0.625) else large, x)


@njit(inline="always")
def _tanh64(x):
    a = abs(x)
    z = a * a
    p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z \
        - 1.61468768441708447952e3
    q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z \
        + 4.84406305325125486048e3
    small = a + a * (z * (p / q))
    large = 1.0 - 2.0 / (_exp64(a + a) + 1.0)
    large = 1.0 if a >= 19.061547465398498 else large
    return copysign(small if a < 0.625 else large, x)


def tanh(x):
    """tanh(x) for float32 or float64 inside Numba kernels (see the module docstring)."""
    return math.tanh(x)


def log1p(x):
    """log(1 + x) inside Numba kernels, accurate for tiny x (see the module docs)."""
    return math.log1p(x)


def expm1(x):
    """exp(x) - 1 inside Numba kernels, accurate for tiny x (see the module docs)."""
    return math.expm1(x)


def exp(x):
    """exp(x) for float32 or float64 inside Numba kernels (see the module docstring)."""
    return math.exp(x)


def log(x):
    """log(x) for float32 or float64 inside Numba kernels (see the module docstring)."""
    return math.log(x)


def _per_float(f32, f64):
    """An overload's typing function: `f32(x)` for a float32 `x`, `f64(x)` for a float64."""
    def typing(x):
        if x == types.float32:
            return lambda x: f32(x)
        if x == types.float64:
            return lambda x: f64(x)
        return None
    return typing


overload(exp, jit_options=_OWN_OPTIONS)(_per_float(_exp32, _exp64))
overload(log, jit_options=_OWN_OPTIONS)(_per_float(_log32, math.log))  # float64: libm's
overload(tanh, jit_options=_OWN_OPTIONS)(_per_float(_tanh32, _tanh64))


def _one(x):
    """The constant 1 of Numba float type `x`, or None for other types."""
    return np.float32(1) if x == types.float32 else 1.0 if x == types.float64 else None


@overload(log1p, jit_options=_OWN_OPTIONS)
def _log1p_overload(x):
    one = _one(x)
    if one is None:
        return None
    inf = one * np.inf

    def impl(x):
        # Goldberg's correction: w = 1 + x is rounded, and x / (w - 1) undoes that rounding.
        # Where w is 1 (tiny x) or x is inf, x itself is the answer (inf / inf would be NaN).
        w = x + one
        corrected = log(w) * (x / (w - one))
        return x if (w == one) | (x == inf) else corrected
    return impl


@overload(expm1, jit_options=_OWN_OPTIONS)
def _expm1_overload(x):
    one = _one(x)
    if one is None:
        return None
    inf = one * np.inf

    def impl(x):
        # Kahan: u = exp(x) is rounded, and x / log(u) undoes that rounding in u - 1. Where u is
        # 1 (tiny x) x itself is the answer; where u is 0 or inf there is nothing to correct
        # (inf / inf would be NaN).
        u = exp(x)
        um1 = u - one
        corrected = um1 * (x / log(u))
        plain = (um1 == -one) | (u == inf)
        return x if u == one else (um1 if plain else corrected)
    return impl
