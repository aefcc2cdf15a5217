"""kernels/fastmath.py over the whole float range: error bounds from dense sweeps (every 2**k-th
float32 bit pattern, every float32 in the windows where exp overflows or goes subnormal,
subnormal inputs, evenly spaced float64), and the edges exactly: +-0, +-inf, NaN, the overflow
and underflow thresholds. References are NumPy's float64 functions (for float32: rounded to
float32, itself within 0.5 ulp + 2**-29 of the truth), and for float64 NumPy's own exp/log1p/
expm1, so the float64 bounds include NumPy's error.

The functions run inside a loop compiled with the row kernels' flags (REDUCE_FLAGS, which allow
reassociation), as they do in the kernels, and with none."""
import numpy as np
import pytest
from numba import njit

from gpubk.kernels import fastmath

nan, inf = np.nan, np.inf
EXP, LOG, LOG1P, EXPM1, TANH = range(5)
REFERENCE = {EXP: np.exp, LOG: np.log, LOG1P: np.log1p, EXPM1: np.expm1, TANH: np.tanh}


def _apply(flags):
    @njit(fastmath=flags)
    def apply(fn, a, out):
        for i in range(a.size):
            v = a[i]
            if fn == EXP:
                out[i] = fastmath.exp(v)
            elif fn == LOG:
                out[i] = fastmath.log(v)
            elif fn == LOG1P:
                out[i] = fastmath.log1p(v)
            elif fn == EXPM1:
                out[i] = fastmath.expm1(v)
            else:
                out[i] = fastmath.tanh(v)
    return apply


APPLY = {"kernel flags": _apply(fastmath.REDUCE_FLAGS), "no flags": _apply(False)}


@pytest.fixture(params=sorted(APPLY))
def run(request):
    def run(fn, x):
        out = np.empty_like(x)
        APPLY[request.param](fn, x, out)
        return out
    return run


def every_float32(step, low=None, high=None):
    """Every `step`-th float32 bit pattern, both signs, +-0 to the largest finite; or, with
    `low` and `high` (same sign), every float32 in [low, high]."""
    if low is None:
        pos = np.arange(0, 0x7F800000, step, dtype=np.uint32).view(np.float32)
        return np.concatenate([pos, -pos])
    a, b = sorted([abs(np.float32(low)), abs(np.float32(high))])
    bits = np.arange(a.view(np.uint32), b.view(np.uint32) + 1, step, dtype=np.uint32)
    return bits.view(np.float32) * np.float32(np.sign(high or low))


def ulp_error(got, want, dtype):
    """|got - want| in units of the spacing of `want` rounded to `dtype` (the subnormal spacing
    below the normal range); `want` in float64."""
    with np.errstate(over="ignore"):
        spacing = np.spacing(np.abs(want.astype(dtype))).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / spacing


def check_sweep(run, fn, x, bound):
    """Over `x`: NaN and inf exactly where the reference has them, finite results within
    `bound` ulps. Returns the worst error (for the bounds' tightness checks)."""
    dtype = x.dtype.type
    with np.errstate(all="ignore"):
        want = REFERENCE[fn](x.astype(np.float64))
        rounded = want.astype(dtype)
    got = run(fn, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(rounded))
    np.testing.assert_array_equal(got[np.isinf(rounded)], rounded[np.isinf(rounded)])
    finite = np.isfinite(rounded)
    assert np.isfinite(got[finite]).all()
    worst = ulp_error(got[finite], want[finite], dtype).max()
    assert worst <= bound
    return worst


# -- exp -----------------------------------------------------------------------------------------
def test_exp_float32_whole_range(run):
    # 1.03 ulp: an exhaustive run over [-104, 64] found 1.023 at worst (at 26.716946, listed
    # here with other near-worst points), so a result is at most one float from the correctly
    # rounded one. Subnormal results: within 0.75 of the subnormal spacing.
    x = np.concatenate([every_float32(1 << 9),
                        every_float32(1, -104.0, -87.0),   # subnormal results, and 0
                        every_float32(1, 88.0, 89.0),      # the top binade, and inf
                        np.float32([26.716946, 80.80706, -59.923176, -5.855136])])
    assert check_sweep(run, EXP, x, 1.03) > 1.0  # the bound is tight


def test_exp_float64_whole_range(run):
    x = np.concatenate([np.linspace(-760.0, 720.0, 2_000_001),
                        np.linspace(-745.2, -708.0, 300_001),   # subnormal results, and 0
                        np.linspace(709.7, 709.8, 100_001),     # the top binade, and inf
                        -np.geomspace(1e-300, 1e-10, 10_001), np.geomspace(1e-300, 1e-10, 10_001)])
    assert check_sweep(run, EXP, x, 2.0) > 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_edges(run, dtype):
    finfo = np.finfo(dtype)
    below_log_max = np.nextafter(dtype(np.log(float(finfo.max))), dtype(0))
    x = np.array([nan, inf, -inf, 0.0, -0.0, below_log_max, finfo.max, -finfo.max,
                  np.log(float(finfo.smallest_subnormal)), -1000.0, 1000.0], dtype)
    got = run(EXP, x)
    assert np.isnan(got[0]) and got[1] == inf and got[2] == 0.0
    assert got[3] == got[4] == 1.0
    assert np.isfinite(got[5]) and got[5] > finfo.max * 0.99  # just below the top: finite
    assert got[6] == inf and got[7] == 0.0 and got[9] == 0.0 and got[10] == inf
    assert got[8] == finfo.smallest_subnormal  # not flushed to zero
    # The cases: inf just below the top of the range, 0 just above the bottom.
    top = dtype(88.4 if dtype == np.float32 else 709.5)
    bottom = dtype(-100.0 if dtype == np.float32 else -740.0)
    want = np.exp(np.array([top, bottom], np.float64)).astype(dtype)
    assert 0 < want[1] < finfo.smallest_normal  # subnormal
    np.testing.assert_allclose(run(EXP, np.array([top, bottom])), want, rtol=2 * finfo.eps,
                               atol=finfo.smallest_subnormal)


def test_exp_overflow_threshold_float32(run):
    """The largest float32 whose exp is finite and the next one up, found from the reference."""
    x = every_float32(1, 88.72, 88.73)
    with np.errstate(over="ignore"):
        want = np.exp(x.astype(np.float64)).astype(np.float32)
    last = np.flatnonzero(np.isfinite(want))[-1]
    np.testing.assert_array_equal(run(EXP, x[last:last + 2]), want[last:last + 2])
    assert np.isinf(want[last + 1])


# -- log -----------------------------------------------------------------------------------------
def test_log_float32_whole_range(run):
    x = every_float32(1 << 7)
    x = np.concatenate([x[x > 0], every_float32(1, 0.99, 1.01),  # around log(1) = 0
                        every_float32(1, 0.0, 1e-42)])           # subnormals
    assert check_sweep(run, LOG, x, 1.0) > 0.75


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_edges(run, dtype):
    finfo = np.finfo(dtype)
    x = np.array([nan, inf, -inf, 0.0, -0.0, -1.0, -finfo.smallest_subnormal,
                  finfo.smallest_subnormal, finfo.smallest_normal, finfo.max, 1.0], dtype)
    got = run(LOG, x)
    assert np.isnan(got[[0, 2, 5, 6]]).all()
    assert got[1] == inf and got[3] == got[4] == -inf and got[10] == 0.0
    with np.errstate(all="ignore"):
        want = np.log(x[7:10].astype(np.float64))
    np.testing.assert_allclose(got[7:10], want, rtol=np.finfo(dtype).eps)


# -- log1p and expm1 -----------------------------------------------------------------------------
def test_log1p_expm1_float32(run):
    # Built on exp and log with Goldberg's and Kahan's corrections: within 2.5 ulp.
    x = every_float32(1 << 8)
    x = np.concatenate([x[x > -1], every_float32(1 << 4, -1.0, -0.99),
                        every_float32(1 << 4, 1e-3, 0.1)])
    assert check_sweep(run, LOG1P, x, 2.5) > 2.0
    x = every_float32(1 << 8)
    x = np.concatenate([x[(x > -120) & (x < 100)], every_float32(1 << 4, 1e-3, 0.1),
                        every_float32(1 << 4, -0.1, -1e-3)])
    assert check_sweep(run, EXPM1, x, 2.5) > 2.0


def test_log1p_expm1_float64(run):
    tiny = np.geomspace(1e-300, 1.0, 200_001)
    x = np.concatenate([np.linspace(-1, 1e3, 1_000_001)[1:], tiny, -tiny[:-1],
                        np.geomspace(1e3, 1e300, 10_001)])
    assert check_sweep(run, LOG1P, x, 2.0) > 1.0
    x = np.concatenate([np.linspace(-750.0, 710.0, 1_000_001), tiny, -tiny])
    assert check_sweep(run, EXPM1, x, 2.0) > 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log1p_expm1_edges(run, dtype):
    sub = np.finfo(dtype).smallest_subnormal
    x = np.array([nan, inf, -inf, 0.0, -0.0, -1.0, -2.0, sub, -sub, 1e30], dtype)
    got = run(LOG1P, x)
    assert np.isnan(got[[0, 2, 6]]).all() and got[1] == inf and got[5] == -inf
    np.testing.assert_array_equal(got[3:5], x[3:5])
    assert np.signbit(got[4]) and got[7] == sub and got[8] == -sub  # exact for tiny x
    np.testing.assert_allclose(got[9], np.log1p(1e30), rtol=1e-6)
    x = np.array([nan, inf, -inf, 0.0, -0.0, 100.0, 1000.0, -200.0, sub, -sub], dtype)
    got = run(EXPM1, x)
    assert np.isnan(got[0]) and got[1] == inf and got[2] == -1.0 and got[7] == -1.0
    np.testing.assert_array_equal(got[3:5], x[3:5])
    assert np.signbit(got[4]) and got[8] == sub and got[9] == -sub
    assert got[6] == inf  # overflow is inf, not inf / inf = NaN
    assert got[5] == (inf if dtype == np.float32 else np.expm1(100.0))


# -- tanh ----------------------------------------------------------------------------------------
def test_tanh_float32_whole_range(run):
    # 1.5 ulp: an exhaustive run over every float32 found 1.33 at worst (at 0.62830955, just
    # above the switch from the polynomial to 1 - 2 / (exp(2|x|) + 1) at 0.625).
    x = every_float32(1 << 9)
    x = np.concatenate([x, every_float32(1 << 2, 0.6, 0.66),      # the switch at 0.625
                        every_float32(1 << 2, -0.6, -0.66),
                        every_float32(1 << 4, 1e-4, 0.6),           # the polynomial
                        every_float32(1 << 4, 8.5, 9.5),            # where tanh rounds to 1
                        every_float32(1 << 4, 0.0, 1e-38),          # subnormals
                        np.float32([0.62830955, -0.62830955])])
    assert check_sweep(run, TANH, x, 1.5) > 1.25


def test_tanh_float64_whole_range(run):
    # Within 1.45 ulp of the long-double tanh here; against NumPy's own tanh, 2 ulp.
    tiny = np.geomspace(1e-300, 30.0, 1_000_001)
    x = np.concatenate([np.linspace(-40.0, 40.0, 2_000_001), tiny, -tiny,
                        np.linspace(0.6, 0.66, 500_001), np.linspace(-0.66, -0.6, 500_001)])
    assert check_sweep(run, TANH, x, 2.0) > 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_edges(run, dtype):
    finfo = np.finfo(dtype)
    sub, tiny = finfo.smallest_subnormal, finfo.smallest_normal
    x = np.array([nan, inf, -inf, 0.0, -0.0, sub, -sub, tiny, -tiny, 1e-10, -1e-10,
                  finfo.max, -finfo.max, 1000.0, -1000.0], dtype)
    got = run(TANH, x)
    assert np.isnan(got[0]) and got[1] == 1.0 and got[2] == -1.0
    np.testing.assert_array_equal(got[3:11], x[3:11])  # tanh(x) = x for tiny x, subnormals too
    assert not np.signbit(got[3]) and np.signbit(got[4])
    np.testing.assert_array_equal(got[11:], [1.0, -1.0, 1.0, -1.0])
    # Exactly +-1 from the first float whose correctly rounded tanh is 1 on (fastmath's
    # threshold: 26 ln2 / 2 in float32, 55 ln2 / 2 in float64), not the float below 1.
    one = dtype(9.010914 if dtype == np.float32 else 19.061547465398498)
    x = (every_float32(1, 8.5, 10.0) if dtype == np.float32
         else np.linspace(18.5, 19.5, 1_000_001))
    x = np.concatenate([[one, np.nextafter(one, dtype(inf))], x[x >= one]]).astype(dtype)
    assert (np.tanh(x.astype(np.float64)).astype(dtype) == 1.0).all()  # the reference agrees
    np.testing.assert_array_equal(run(TANH, x), 1.0)
    np.testing.assert_array_equal(run(TANH, -x), -1.0)
    assert run(TANH, np.array([np.nextafter(one, dtype(0))]))[0] < 1.0  # the one below: not 1


# -- the NaN-aware helpers -----------------------------------------------------------------------
@njit(fastmath=fastmath.REDUCE_FLAGS)
def _row_max(row):
    return fastmath.row_max(row)


@njit
def _clamp(x, low, high, out):
    for i in range(x.size):
        out[i] = fastmath.clamp(x[i], low, high)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 100, 1001])  # the vector loop's body and its remainder
def test_row_max_propagates_nan(dtype, n):
    row = np.linspace(-3, 3, n).astype(dtype)
    assert _row_max(row) == row.max()
    for i in sorted({0, n // 2, n - 1}):
        with_nan = row.copy()
        with_nan[i] = nan
        assert np.isnan(_row_max(with_nan))
        with_inf = row.copy()
        with_inf[i] = inf
        assert _row_max(with_inf) == inf
    assert _row_max(np.full(n, -inf, dtype)) == -inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamp_keeps_nan(dtype):
    x = np.array([nan, -inf, -1.0, 0.25, 2.0, inf, 0.0, 1.0], dtype)
    out = np.empty_like(x)
    _clamp(x, dtype(0.0), dtype(1.0), out)
    np.testing.assert_array_equal(out, np.clip(x, 0.0, 1.0))  # NaN == NaN here
