"""Fusion (fuse.py): groups of elementwise primitives in a K.function's plan run as one loop
generated from their formulas. Fused and unfused results agree to float rounding, NaN and
infinities included, for chains, DAGs with shared values, scalars, float32 and float64, and a
staged gradient; what a group cannot take (other shapes, small arrays) runs unfused."""
import numpy as np
import pytest

import gpubk as K
from gpubk import fuse
from gpubk.kernels import fused

N = fuse.MIN_SIZE  # large enough to fuse


def _fused_and_unfused(f, feeds, monkeypatch):
    fused = f(feeds)
    monkeypatch.setattr(fuse, "MIN_SIZE", 1 << 60)
    with np.errstate(all="ignore"):
        unfused = f(feeds)
    monkeypatch.undo()
    return fused, unfused


def _values(dtype, rng):
    v = (rng.standard_normal(N) * 3).astype(dtype)
    v[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30]
    return v


def _close(got, want, dtype):
    assert np.array_equal(np.isnan(got), np.isnan(want))
    scale = np.finfo(dtype).eps * 8
    np.testing.assert_allclose(got, want, rtol=scale, atol=scale * np.nanmax(np.abs(
        want[np.isfinite(want)])))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_dag_of_elementwise_ops_is_one_step_and_agrees(dtype, rng, monkeypatch):
    x = K.placeholder(shape=(None,), dtype=dtype)
    y = K.placeholder(shape=(None,), dtype=dtype)
    shared = K.exp(-K.abs(x)) * y  # read twice below: inside the group
    out = K.relu(shared - 0.5) + K.sigmoid(shared) / (1.0 + K.square(y)) + K.maximum(x, y)
    f = K.function([x, y], [out])
    assert len(f._plan) == 1 and f._plan[0].note.startswith("fused: ")
    xv, yv = _values(dtype, rng), rng.standard_normal(N).astype(dtype)
    (got,), (want,) = _fused_and_unfused(f, [xv, yv], monkeypatch)
    _close(got, want, dtype)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(xv.astype(np.float64))) * yv
        ref = np.maximum(e - 0.5, 0) + 1 / (1 + np.exp(-e)) / (1 + yv.astype(np.float64) ** 2) \
            + np.where(xv >= yv, xv, yv)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-5 if dtype == "float32"
                               else 1e-12, atol=1e-6)


def test_values_read_outside_a_group_stay_outside_and_outputs_are_kept(rng, monkeypatch):
    x = K.placeholder(shape=(None,))
    a = K.exp(x) * 2.0       # an output itself: not internal to a group
    b = K.log(K.abs(a) + 1.0)
    f = K.function([x], [a, b * b])
    notes = [s.note for s in f._plan]
    assert sum(n.startswith("fused") for n in notes) == 2  # exp*2, and log(|a|+1)^2
    xv = _values("float32", rng)
    fused, unfused = _fused_and_unfused(f, [xv], monkeypatch)
    for got, want in zip(fused, unfused):
        _close(got, want, "float32")
    with np.errstate(all="ignore"):
        a_ref = np.exp(xv.astype(np.float64)) * 2
        b_ref = np.log(np.abs(a_ref) + 1) ** 2
    for got, ref in zip(fused, (a_ref, b_ref)):
        finite = np.isfinite(ref)
        assert np.array_equal(np.isnan(got), np.isnan(ref))
        # float32 rounds |a| + 1 where a is tiny: an absolute error of float32's eps there
        np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-5, atol=1e-7)


def test_broadcasts_no_pattern_describes_and_small_arrays_run_unfused(rng, monkeypatch):
    def no_loop(*args):
        raise AssertionError("a loop was generated")
    monkeypatch.setattr(fused, "cpu_kernel", no_loop)
    x = K.placeholder(shape=(None, None, None))
    b = K.placeholder(shape=(None, None, None))
    f = K.function([x, b], [K.exp(x) * 2.0 + b])
    # (40, 1, 60) against (1, 30, 1): neither a row nor a column of the (40, 30, 60) output
    xv, bv = rng.standard_normal((40, 1, 60)).astype(np.float32), \
        rng.standard_normal((1, 30, 1)).astype(np.float32)
    np.testing.assert_allclose(f([xv, bv])[0], np.exp(xv) * 2 + bv, rtol=1e-6)
    small = rng.standard_normal((2, 3, 1)).astype(np.float32)
    np.testing.assert_allclose(f([small, small])[0], np.exp(small) * 2 + small, rtol=1e-6)


def test_a_staged_gradient_fuses_and_agrees(rng, monkeypatch):
    x = K.placeholder(shape=(None,), dtype="float64")
    w = K.variable(0.7, dtype="float64")
    loss = K.sum(K.softplus(x * w) + K.square(x - w))
    (gx, gw) = K.gradients(loss, [x, w])
    f = K.function([x], [gx, gw])
    assert any(s.note.startswith("fused") for s in f._plan)
    xv = rng.standard_normal(N)
    fused, unfused = _fused_and_unfused(f, [xv], monkeypatch)
    for got, want in zip(fused, unfused):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused[0], 0.7 / (1 + np.exp(-0.7 * xv)) + 2 * (xv - 0.7),
                               rtol=1e-12, atol=1e-12)


def test_tanh_and_its_gradient_fuse_and_agree(rng, monkeypatch):
    """fastmath's vectorisable tanh (within 1.5 ulp in float32) in a fused forward and its
    staged backward, g * (1 - y * y)."""
    x = K.placeholder(shape=(None,))
    y = K.tanh(x * 0.5 + 0.25)
    (g,) = K.gradients(K.sum(y * y), [x])
    f = K.function([x], [y, g])
    assert any(s.note.startswith("fused") and "tanh_" in s.note for s in f._plan)
    xv = _values(np.float32, rng)
    (yf, gf), (yu, gu) = _fused_and_unfused(f, [xv], monkeypatch)
    _close(yf, yu, np.float32)
    _close(gf, gu, np.float32)
    t = np.tanh(xv.astype(np.float64) * 0.5 + 0.25)
    finite = np.isfinite(xv)
    np.testing.assert_allclose(yf[finite], t[finite], rtol=3e-7, atol=1e-7)
    np.testing.assert_allclose(gf[finite], (2 * t * (1 - t * t) * 0.5)[finite], rtol=2e-6,
                               atol=1e-7)
