"""Fusion end to end (fuse.py, kernels/fused.py, kernels/cuda/fused.py) through K.function on
realistic graph patterns: a DAG with a shared subexpression, a bias row and a per-sample column;
scalars (variables, constants, a fed (1, 1) array); inputs of mixed dtypes; chains ending in a
reduction over the last axis; broadcasts no pattern describes; first- and second-order gradients
of fused graphs; an SGD training step whose updates fuse; float16 groups; the on-disk cache of
generated CPU loops across processes; updates written into a variable's own buffer.

Every value is checked against a NumPy float64 reference written here (never via gpubk), NaN and
infinities included, and the plan (`f._plan` notes) is checked for what fused and what did not.
`_Spy` records each call of `fuse._run_fused` (its pattern, whether the loop runs in parallel,
whether a kernel ran), so that a test also sees that a generated kernel actually ran. On `cpu`
the arrays are large enough to fuse (at least `fuse.MIN_SIZE` elements); on `sim` (Numba's CUDA
simulator: slow) they are tiny. The `dev` fixture builds and runs each graph inside
`with K.device(...)` (variables live on that device)."""
import json
import os
import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest
from conftest import HAS_GPU

import gpubk as K
from gpubk import fuse

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf on purpose

NAN, INF = np.nan, np.inf
# cpu, and the simulator where there is no GPU (the GPU instead where there is one)
DEVICES = ["cpu"] + ([pytest.param("gpu", marks=pytest.mark.gpu)] if HAS_GPU else ["sim"])
# rows x cols: at least fuse.MIN_SIZE elements on cpu (and gpu); tiny on the simulator
SHAPE = {"cpu": (64, 64), "gpu": (64, 64), "sim": (3, 5)}
TOL = {"float16": {"rtol": 3e-3, "atol": 3e-3}, "float32": {"rtol": 2e-5, "atol": 2e-6},
       "float64": {"rtol": 1e-12, "atol": 1e-13}}


@pytest.fixture(params=DEVICES)
def dev(request):
    """Runs the test inside `with K.device(name)`; yields the name."""
    with K.device(request.param):
        yield request.param


class _Spy:
    """Records each `fuse._run_fused` call: (pattern, parallel, whether a kernel ran)."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = fuse._run_fused

        def spy(layout, arrays, device, parallel, *rest):
            out = real(layout, arrays, device, parallel, *rest)
            self.calls.append((layout.pattern, parallel, out is not None))
            return out
        monkeypatch.setattr(fuse, "_run_fused", spy)

    @property
    def ran(self) -> list:
        """The patterns whose kernel ran."""
        return [pattern for pattern, _, ran in self.calls if ran]

    def kinds(self) -> list:
        return [[kind for kind, _ in pattern.inputs] for pattern in self.ran]


def _unfused(f, feeds, monkeypatch):
    """`f(feeds)` with every group's members run one by one (on any device)."""
    with monkeypatch.context() as m:
        m.setattr(fuse, "_run_fused", lambda *args: None)
        return f(feeds)


def _fused_steps(f) -> list:
    return [s for s in f._plan if s.note.startswith("fused: ")]


def _members(step) -> list:
    return step.note[len("fused: "):].split(";")[0].split(", ")


def _assert_close(got, ref, dtype, **tol):
    """`got` (of `dtype`) against a float64 reference: NaN where the reference is, the same
    infinities, finite values within `tol` (default: TOL[dtype])."""
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype), got.dtype
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    g = got.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(ref))
    inf = np.isinf(ref)
    np.testing.assert_array_equal(g[inf], ref[inf])
    finite = np.isfinite(ref)
    np.testing.assert_allclose(g[finite], ref[finite], **(tol or TOL[dtype]))


def _normal(rng, shape, dtype, scale=1.0, low=0.0):
    """Random values of `dtype`, at least `low` away from 0 (kinks stay unhit)."""
    x = rng.standard_normal(shape) * scale
    x = np.where(x >= 0, x + low, x - low)
    return x.astype(dtype)


# -- 1. a DAG: a shared subexpression, a bias row, a per-sample column -------------------------
def _dag_inputs(rng, device, dtype):
    rows, cols = SHAPE[device]
    x = _normal(rng, (rows, cols), dtype, 3.0, 0.01)
    w = _normal(rng, (cols,), dtype, 1.0, 0.05)
    b = _normal(rng, (rows, 1), dtype, 1.0, 0.05)
    x[0, :5] = [NAN, INF, -INF, 0.0, -0.0]
    x[1, 0] = 1e30 if dtype == "float32" else 1e300
    x[2, 1] = -1e30 if dtype == "float32" else -1e300
    w[-1] = NAN                 # a whole column of NaN
    w[-2] = INF                 # +-inf (NaN where x is 0 or NaN)
    b[-1, 0] = -INF             # relu gives 0 on that row where x * w is finite
    if rows > 3:
        b[3, 0] = NAN
    return x, w, b


def _dag_reference(x, w, b):
    x, w, b = (a.astype(np.float64) for a in (x, w, b))
    xw = x * w
    t = xw + b
    relu = np.where(t > 0, t, np.where(np.isnan(t), NAN, 0.0))  # Keras 2: NaN stays NaN
    return relu - np.exp(-np.abs(xw))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_dag_with_a_shared_product_a_bias_row_and_a_sample_column(dev, dtype, rng,
                                                                    monkeypatch):
    cols = SHAPE[dev][1]
    x = K.placeholder(shape=(None, cols), dtype=dtype)
    w = K.placeholder(shape=(cols,), dtype=dtype)
    b = K.placeholder(shape=(None, 1), dtype=dtype)
    xw = x * w  # read by two members: internal to the group all the same
    f = K.function([x, w, b], [K.relu(xw + b) - K.exp(-K.abs(xw))])
    (step,) = f._plan
    assert step.note.startswith("fused: ") and len(_members(step)) == 7
    spy = _Spy(monkeypatch)
    feeds = list(_dag_inputs(rng, dev, dtype))
    (got,) = f(feeds)
    (unfused,) = _unfused(f, feeds, monkeypatch)
    assert spy.kinds() == [["a", "r", "c"]]  # the kernel ran; the row and column broadcast
    (pattern,) = spy.ran
    assert pattern.dtype == dtype and pattern.reduce is None
    ref = _dag_reference(*feeds)
    _assert_close(got, ref, dtype)
    _assert_close(unfused, ref, dtype)
    (again,) = f(feeds)  # the layout is cached; the kernel runs again
    np.testing.assert_array_equal(again, got)
    assert len(spy.ran) == 2


# -- 2. scalars --------------------------------------------------------------------------------
def test_scalars_from_a_variable_a_constant_and_a_fed_one_by_one_array(dev, rng, monkeypatch):
    rows, cols = SHAPE[dev]
    x = K.placeholder(shape=(None, cols))
    p = K.placeholder(shape=(1, 1))
    s = K.variable(1.5)
    c = K.constant(0.25)
    f = K.function([x, p], [K.exp(x * s - c) * p + s / 2.0])
    (step,) = f._plan
    assert step.note.startswith("fused: ")
    spy = _Spy(monkeypatch)
    xv = _normal(rng, (rows, cols), np.float32)
    xv[0, :3] = [NAN, INF, -INF]
    x64 = xv.astype(np.float64)
    (got,) = f([xv, np.float32([[-0.75]])])
    _assert_close(got, np.exp(x64 * 1.5 - 0.25) * -0.75 + 0.75, "float32")
    K.set_value(s, -0.5)  # a variable is read at each call
    (got,) = f([xv, np.float32([[2.0]])])
    _assert_close(got, np.exp(x64 * -0.5 - 0.25) * 2.0 - 0.25, "float32")
    assert len(spy.ran) == 2
    for kinds in spy.kinds():  # only x is an array: s, c, p and 2.0 are scalars
        assert sorted(kinds) == ["a"] + ["s"] * (len(kinds) - 1) and len(kinds) == 5


# -- 3. mixed input dtypes ---------------------------------------------------------------------
def test_float16_int8_and_float32_inputs_feed_one_float32_group(dev, rng, monkeypatch):
    rows, cols = SHAPE[dev]
    h = K.placeholder(shape=(None, cols), dtype="float16")
    x = K.placeholder(shape=(None, cols), dtype="float32")
    i = K.placeholder(shape=(None, cols), dtype="int8")
    out = (K.exp(h * x) * 0.5 + i) * 2.0
    assert out.dtype == np.float32
    f = K.function([h, x, i], [out])
    (step,) = f._plan
    assert step.note.startswith("fused: ")
    spy = _Spy(monkeypatch)
    hv = _normal(rng, (rows, cols), np.float16)
    xv = _normal(rng, (rows, cols), np.float32)
    iv = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
    hv[0, :2] = [NAN, INF]
    iv[0, 2:4] = [-128, 127]
    (got,) = f([hv, xv, iv])
    _assert_close(got, (np.exp(hv.astype(np.float64) * xv) * 0.5 + iv) * 2.0, "float32")
    (pattern, _, ran), = spy.calls
    assert pattern.dtype == "float32"
    assert sorted(d for k, d in pattern.inputs if k == "a") == ["float16", "float32", "int8"]
    if dev != "cpu":
        assert ran  # (Numba's CPU target has no float16: there, the members run one by one)


def test_integer_and_bool_inputs_that_convert_safely_are_fused(dev, rng, monkeypatch):
    """int8 and bool into a float32 group; int32 (a row, read twice) into a float64 group,
    where NumPy's promotion puts float32 and int32 values (a float32 group cannot take int32:
    np.can_cast says no, and promotion never builds one)."""
    rows, cols = SHAPE[dev]
    x = K.placeholder(shape=(None, cols))
    i = K.placeholder(shape=(None, cols), dtype="int8")
    m = K.placeholder(shape=(None, cols), dtype="bool")
    d = K.placeholder(shape=(None, cols))
    r = K.placeholder(shape=(cols,), dtype="int32")
    second = K.sqrt(K.abs(d * r)) + r
    assert second.dtype == np.float64
    f = K.function([x, i, m, d, r], [K.sigmoid(x * i) * m, second])
    assert len(_fused_steps(f)) == 2
    spy = _Spy(monkeypatch)
    xv = _normal(rng, (rows, cols), np.float32, 0.2)
    iv = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
    mv = rng.random((rows, cols)) < 0.5
    dv = _normal(rng, (rows, cols), np.float32)
    rv = rng.integers(-2**31, 2**31, cols).astype(np.int32)
    a, b = f([xv, iv, mv, dv, rv])
    _assert_close(a, 1 / (1 + np.exp(-(xv.astype(np.float64) * iv))) * mv, "float32")
    _assert_close(b, np.sqrt(np.abs(dv.astype(np.float64) * rv)) + rv, "float64",
                  rtol=1e-12, atol=0)
    assert sorted(spy.kinds()) == [["a", "a", "a"], ["a", "r"]]
    assert sorted(p.dtype for p in spy.ran) == ["float32", "float64"]


# -- 4. chains ending in a reduction over the last axis ----------------------------------------
NUMPY_REDUCE = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}
K_REDUCE = {"sum": K.sum, "mean": K.mean, "max": K.max, "min": K.min}


def _reduction_rows(rng, shape, dtype):
    """Random values; row 1 (of the last axis) holds a NaN inside, row 2 +inf and -inf at its
    ends."""
    x = _normal(rng, shape, dtype, 2.0)
    rows = x.reshape(-1, shape[-1])
    rows[1, shape[-1] // 2] = NAN
    rows[2, 0], rows[2, -1] = INF, -INF
    return x


def _terms(x, col, row):
    x = x.astype(np.float64)
    return (x - col) * row + np.exp(-np.square(x))


def _check_reduction(got, terms, reduce, keepdims, dtype, rtol):
    want = NUMPY_REDUCE[reduce](terms, axis=-1, keepdims=keepdims)
    assert got.shape == want.shape and got.dtype == np.dtype(dtype)
    g = got.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(want))
    assert np.isnan(g.reshape(-1)[1])  # the row with a NaN, whatever the reduction
    ok = np.isfinite(want)
    np.testing.assert_array_equal(g[~ok], want[~ok])
    # sums round term by term: bound their error by the terms' size
    scale = np.abs(terms).sum(axis=-1, keepdims=keepdims) / (
        terms.shape[-1] if reduce == "mean" else 1)
    bound = rtol * (np.abs(want) + (scale if reduce in ("sum", "mean") else 0))
    assert np.all(np.abs(g[ok] - want[ok]) <= bound[ok]), (g, want)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_a_chain_ending_in_a_reduction_of_the_last_axis(dev, reduce, keepdims, rng,
                                                        monkeypatch):
    rows, cols = SHAPE[dev]
    x = K.placeholder(shape=(None, cols))
    col = K.placeholder(shape=(None, 1))
    row = K.placeholder(shape=(cols,))
    terms = (x - col) * row + K.exp(-K.square(x))
    f = K.function([x, col, row], [K_REDUCE[reduce](terms, axis=-1, keepdims=keepdims)])
    (step,) = f._plan
    assert step.note.startswith("fused: ") and _members(step)[-1] == step.node.name
    assert step.node.name.startswith(reduce)
    spy = _Spy(monkeypatch)
    xv = _reduction_rows(rng, (rows, cols), np.float32)
    cv, rv = _normal(rng, (rows, 1), np.float32), _normal(rng, (cols,), np.float32)
    (got,) = f([xv, cv, rv])
    (unfused,) = _unfused(f, [xv, cv, rv], monkeypatch)
    (pattern,) = spy.ran
    assert pattern.reduce == reduce and [k for k, _ in pattern.inputs] == ["a", "c", "r"]
    t = _terms(xv, cv, rv)
    _check_reduction(got, t, reduce, keepdims, "float32", 2e-6)
    _check_reduction(unfused, t, reduce, keepdims, "float32", 2e-6)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_a_reduction_of_the_last_of_three_axes_in_float64(dev, reduce, rng, monkeypatch):
    """(batch, 4, cols) reduced over axis 2 (named positively), keepdims: batch * 4 rows; the
    column input is (batch, 4, 1), the row (1, 1, cols)."""
    rows, cols = SHAPE[dev]
    x = K.placeholder(shape=(None, 4, cols), dtype="float64")
    col = K.placeholder(shape=(None, 4, 1), dtype="float64")
    row = K.placeholder(shape=(1, 1, cols), dtype="float64")
    terms = (x - col) * row + K.exp(-K.square(x))
    f = K.function([x, col, row], [K_REDUCE[reduce](terms, axis=2, keepdims=True)])
    (step,) = f._plan
    assert step.note.startswith("fused: ")
    spy = _Spy(monkeypatch)
    n = max(rows // 4, 1)
    xv = _reduction_rows(rng, (n, 4, cols), np.float64)
    cv, rv = _normal(rng, (n, 4, 1), np.float64), _normal(rng, (1, 1, cols), np.float64)
    (got,) = f([xv, cv, rv])
    assert spy.kinds() == [["a", "c", "r"]]
    assert got.shape == (n, 4, 1)
    _check_reduction(got, _terms(xv, cv, rv), reduce, True, "float64", 1e-13)


def test_one_dimensional_chains_reduced_to_a_scalar_and_to_one_value(rng, monkeypatch):
    x = K.placeholder(shape=(None,))
    f = K.function([x], [K.mean(K.square(x - 0.5), axis=0),
                         K.max(K.abs(x) * 2.0, axis=-1, keepdims=True)])
    assert [s.note.startswith("fused: ") for s in f._plan] == [True, True]
    spy = _Spy(monkeypatch)
    xv = _normal(rng, 3 * fuse.MIN_SIZE, np.float32)
    mean, top = f([xv])
    assert sorted(p.reduce for p in spy.ran) == ["max", "mean"]
    assert mean.shape == () and top.shape == (1,)
    x64 = xv.astype(np.float64)
    _assert_close(mean, np.mean((x64 - 0.5) ** 2), "float32", rtol=1e-6)
    _assert_close(top, [np.max(np.abs(x64)) * 2], "float32", rtol=1e-7)


@pytest.mark.parametrize("reduce", ["sum", "max"])
def test_a_reduction_over_axis_0_stays_outside_the_group(dev, reduce, rng, monkeypatch):
    rows, cols = SHAPE[dev]
    x = K.placeholder(shape=(None, cols))
    row = K.placeholder(shape=(cols,))
    f = K.function([x, row], [K_REDUCE[reduce](K.exp(x) * row - 1.0, axis=0)])
    group, last = f._plan
    assert group.note.startswith("fused: ") and not last.note.startswith("fused")
    assert last.node.name.startswith(reduce) and last.node.args[0] is group.node
    spy = _Spy(monkeypatch)
    xv, rv = _normal(rng, (rows, cols), np.float32), _normal(rng, (cols,), np.float32)
    xv[1, 2] = NAN
    (got,) = f([xv, rv])
    assert len(spy.ran) == 1 and spy.ran[0].reduce is None
    terms = np.exp(xv.astype(np.float64)) * rv - 1.0
    want = NUMPY_REDUCE[reduce](terms, axis=0)
    assert got.shape == (cols,) and got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    bound = 2e-6 * (np.abs(want) + np.abs(terms).sum(axis=0))
    ok = ~np.isnan(want)
    assert np.all(np.abs(got[ok] - want[ok]) <= bound[ok])


def test_a_reduction_whose_input_is_also_an_output_is_not_fused_into_it(rng):
    x = K.placeholder(shape=(None, 64))
    terms = K.exp(x) * 2.0
    f = K.function([x], [terms, K.sum(terms, axis=-1)])
    group, last = f._plan
    assert group.note.startswith("fused: ") and last.note == ""
    xv = _normal(rng, (64, 64), np.float32)
    t, s = f([xv])
    ref = np.exp(xv.astype(np.float64)) * 2
    _assert_close(t, ref, "float32")
    _assert_close(s, ref.sum(axis=-1), "float32", rtol=1e-6)


# -- 5. broadcasts no pattern describes -------------------------------------------------------
def test_broadcasts_no_pattern_describes_run_unfused_and_right(dev, rng, monkeypatch):
    n, m, k = (40, 30, 60) if dev != "sim" else (2, 4, 3)
    x = K.placeholder(shape=(None, None, None))
    b = K.placeholder(shape=(None, None, None))
    f = K.function([x, b], [K.exp(x) * 2.0 - K.square(b)])
    (step,) = f._plan
    assert step.note.startswith("fused: ")
    spy = _Spy(monkeypatch)
    full = _normal(rng, (n, m, k), np.float32)
    cases = {  # the other input's shape -> its kind, or None: no pattern (unfused)
        (1, m, 1): None, (n, 1, k): None, (n, m, 1): "c", (n, 1, 1): "c", (1, 1, k): "r",
        (1, m, k): "r", (1, 1, 1): "s", (n, m, k): "a"}
    for shape, kind in cases.items():
        other = _normal(rng, shape, np.float32)
        for xv, bv, kinds in [(full, other, ["a", "s", kind]), (other, full, [kind, "s", "a"])]:
            spy.calls.clear()
            (got,) = f([xv, bv])
            _assert_close(got, np.exp(xv.astype(np.float64)) * 2 - np.square(
                bv.astype(np.float64)), "float32")
            if kind is None:
                assert spy.calls == [], shape  # no layout: nothing tried
            elif dev != "cpu" or xv is full:  # (the cpu fuses by the size of x here)
                assert spy.kinds() == [kinds], shape


# -- 6. gradients of a fused graph -------------------------------------------------------------
def _loss_graph(cols):
    """L = sum(sigmoid(x * w + b) * x + (x - w) ** 2); x fed, w a row variable, b a scalar."""
    x = K.placeholder(shape=(None, cols), dtype="float64")
    w = K.variable(np.linspace(0.5, 1.5, cols), dtype="float64")
    b = K.variable(0.3, dtype="float64")
    loss = K.sum(K.sigmoid(x * w + b) * x + K.square(x - w))
    return x, w, b, loss


def _sigmoid_parts(xv, cols):
    w = np.linspace(0.5, 1.5, cols)
    s = 1 / (1 + np.exp(-(xv * w + 0.3)))
    return w, s, s * (1 - s)


def test_first_order_gradients_of_a_fused_graph(dev, rng, monkeypatch):
    rows, cols = SHAPE[dev]
    x, w, b, loss = _loss_graph(cols)
    f = K.function([x], K.gradients(loss, [x, w, b]) + [loss])
    assert any(_members(s)[-1].startswith("sigmoid") for s in _fused_steps(f))  # x * w + b
    spy = _Spy(monkeypatch)
    xv = _normal(rng, (rows, cols), np.float64)
    gx, gw, gb, value = f([xv])
    unfused = _unfused(f, [xv], monkeypatch)
    assert spy.ran
    wv, s, ds = _sigmoid_parts(xv, cols)
    want = [ds * wv * xv + s + 2 * (xv - wv), (ds * xv * xv - 2 * (xv - wv)).sum(axis=0),
            (ds * xv).sum(), (s * xv + (xv - wv) ** 2).sum()]
    for got, alone, ref in zip([gx, gw, gb, value], unfused, want):
        _assert_close(got, ref, "float64", rtol=1e-11, atol=1e-12)
        _assert_close(alone, ref, "float64", rtol=1e-11, atol=1e-12)
    # and against central differences of the loss itself, in x and in w
    step = 1e-6
    few = dev == "sim"  # (each call simulates its kernels: slow)
    for i, j in [(0, 0), (rows - 1, cols - 1), (1, 2)][:1 if few else 3]:
        d = np.zeros_like(xv)
        d[i, j] = step
        up, down = f([xv + d])[3], f([xv - d])[3]
        np.testing.assert_allclose((up - down) / (2 * step), gx[i, j], rtol=1e-6, atol=1e-8)
    base = K.get_value(w).copy()
    for j in (0, cols - 1)[:1 if few else 2]:
        d = np.zeros(cols)
        d[j] = step
        K.set_value(w, base + d)
        up = f([xv])[3]
        K.set_value(w, base - d)
        down = f([xv])[3]
        np.testing.assert_allclose((up - down) / (2 * step), gw[j], rtol=1e-6, atol=1e-8)
    K.set_value(w, base)


@pytest.mark.parametrize("dev", [
    "cpu", pytest.param("gpu", marks=pytest.mark.gpu) if HAS_GPU else "sim"], indirect=True)
def test_second_order_gradients_of_a_fused_graph(dev, rng, monkeypatch):
    rows, cols = SHAPE[dev]
    x, w, _, loss = _loss_graph(cols)
    (gx,) = K.gradients(loss, [x])
    f = K.function([x], K.gradients(K.sum(gx), [x, w]))
    assert any(s.note.startswith("fused: ") and "sigmoid_grad" in s.note for s in f._plan)
    spy = _Spy(monkeypatch)
    xv = _normal(rng, (rows, cols), np.float64)
    hx, hw = f([xv])
    unfused = _unfused(f, [xv], monkeypatch)
    assert spy.ran
    wv, s, ds = _sigmoid_parts(xv, cols)
    # d/dx and d/dw of sum(ds * w * x + s + 2 (x - w)), where d(ds)/dz = ds (1 - 2 s)
    dds = ds * (1 - 2 * s)
    want = [dds * wv * wv * xv + 2 * ds * wv + 2, (dds * wv * xv * xv + 2 * ds * xv - 2).sum(0)]
    for got, alone, ref in zip([hx, hw], unfused, want):
        _assert_close(got, ref, "float64", rtol=1e-11, atol=1e-12)
        _assert_close(alone, got, "float64", rtol=1e-12, atol=1e-13)


# -- 7. a training step: updates fused, outputs before the updates ----------------------------
def _mlp_reference(params, xv, tv, lr, decay):
    """One SGD step (with weight decay) of relu(x W1 + b1) W2 + b2 under a mean squared error,
    in float64: (loss, prediction, new params)."""
    w1, b1, w2, b2 = params
    x = xv.astype(np.float64)
    z = x @ w1 + b1
    h = np.maximum(z, 0)
    y = h @ w2 + b2
    loss = np.mean((y - tv) ** 2)
    dy = 2 * (y - tv) / y.size
    dz = (dy @ w2.T) * (z > 0)
    grads = [x.T @ dz, dz.sum(0), h.T @ dy, dy.sum(0)]
    return loss, y, [p - lr * (g + decay * p) for p, g in zip(params, grads)]


@pytest.mark.parametrize("dev", [
    "cpu", pytest.param("gpu", marks=pytest.mark.gpu) if HAS_GPU else "sim"], indirect=True)
def test_an_sgd_training_step_fuses_its_updates(dev, rng, monkeypatch):
    n, d, hidden = (32, 64, 64) if dev != "sim" else (4, 5, 3)
    lr, decay = 0.1, 1e-3
    init = [_normal(rng, (d, hidden), np.float32, 0.2), _normal(rng, (hidden,), np.float32, 0.1),
            _normal(rng, (hidden, 1), np.float32, 0.2), np.float32([0.1])]
    params = [K.variable(v) for v in init]
    w1, b1, w2, b2 = params
    x = K.placeholder(shape=(None, d))
    t = K.placeholder(shape=(None, 1))
    y = K.dot(K.relu(K.dot(x, w1) + b1), w2) + b2
    loss = K.mean(K.square(y - t))
    new = [p - lr * (g + decay * p) for p, g in zip(params, K.gradients(loss, params))]
    f = K.function([x, t], [loss, y], updates=list(zip(params, new)))
    fused = {id(s.node): s for s in _fused_steps(f)}
    for value in new:  # each update's whole expression: one group ending in its value
        assert id(value) in fused and len(_members(fused[id(value)])) == 4
    spy = _Spy(monkeypatch)
    ref = [v.astype(np.float64) for v in init]
    for _ in range(3):
        xv = rng.standard_normal((n, d)).astype(np.float32)
        tv = rng.standard_normal((n, 1)).astype(np.float32)
        got_loss, got_y = f([xv, tv])  # before this call's updates
        want_loss, want_y, ref = _mlp_reference(ref, xv, tv, lr, decay)
        _assert_close(got_loss, want_loss, "float32", rtol=1e-5)
        _assert_close(got_y, want_y, "float32", rtol=1e-5, atol=1e-6)
        for p, want in zip(params, ref):  # after them
            got = K.get_value(p)
            assert got.dtype == np.float32 and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert spy.ran  # (on the cpu: W1's update, 64 x 64, at least)
    assert all(not parallel for _, parallel, _ in spy.calls)  # a plan with matmul: one thread


# -- 8. float16 groups -------------------------------------------------------------------------
@pytest.mark.parametrize("reduce", [None, "sum", "max"])
def test_a_float16_group(dev, reduce, rng, monkeypatch):
    """Fused on devices with CUDA kernels (computed in float32, stored as float16); on the
    cpu, where Numba has no float16, its members run one by one."""
    rows, cols = SHAPE[dev]
    a = K.placeholder(shape=(None, cols), dtype="float16")
    c = K.placeholder(shape=(None, cols), dtype="float16")
    row = K.placeholder(shape=(cols,), dtype="float16")
    out = K.sigmoid(a * row) * c - K.square(c) * 0.25
    if reduce:
        out = K_REDUCE[reduce](out, axis=-1)
    f = K.function([a, c, row], [out])
    (step,) = f._plan
    assert step.note.startswith("fused: ")
    spy = _Spy(monkeypatch)
    av = _normal(rng, (rows, cols), np.float16, 2.0)
    cv = _normal(rng, (rows, cols), np.float16)
    rv = _normal(rng, (cols,), np.float16)
    av[0, 0], cv[1, 1] = NAN, INF
    (got,) = f([av, cv, rv])
    (pattern, _, ran), = spy.calls
    assert pattern.dtype == "float16" and pattern.reduce == reduce
    assert ran == (dev != "cpu")
    a64, c64, r64 = (v.astype(np.float64) for v in (av, cv, rv))
    terms = 1 / (1 + np.exp(-a64 * r64)) * c64 - c64 ** 2 * 0.25
    if reduce is None:
        _assert_close(got, terms, "float16")
    else:
        want = NUMPY_REDUCE[reduce](terms, axis=-1)
        assert got.dtype == np.float16 and got.shape == (rows,)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = np.isfinite(want)
        bound = 3e-3 * (np.abs(want) + np.abs(terms).sum(-1))
        assert np.all(np.abs(got[ok] - want[ok]) <= bound[ok]), (got, want)


# -- 9. the on-disk cache of generated CPU loops, across processes -----------------------------
_CACHED = """
import json
import numpy as np
import gpubk as K
from gpubk import fuse
from gpubk.kernels import fused
seen = []
real = fuse._run_fused
def spy(layout, arrays, device, parallel, *rest):
    out = real(layout, arrays, device, parallel, *rest)
    seen.append((layout.pattern, parallel, out is not None))
    return out
fuse._run_fused = spy
x = K.placeholder(shape=(None, 64))
row = K.placeholder(shape=(64,))
f = K.function([x, row], [K.softplus(x * row) - K.exp(-K.abs(x)) * 0.5])
xv = np.linspace(-3, 3, 64 * 64, dtype=np.float32).reshape(64, 64)
rv = np.linspace(0.5, 1.5, 64, dtype=np.float32)
(out,) = f([xv, rv])
x64 = xv.astype(np.float64)
want = np.log1p(np.exp(x64 * rv)) - np.exp(-np.abs(x64)) * 0.5
((pattern, parallel, ran),) = seen
stats = fused.cpu_kernel(pattern, parallel and xv.size >= fuse.PARALLEL_MIN_SIZE).stats
print(json.dumps({"name": pattern.name, "ran": ran, "cache_dir": fused.cache_dir(),
                  "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()),
                  "error": float(np.max(np.abs(out - want) / (1 + np.abs(want))))}))
"""


def test_generated_loops_are_cached_on_disk_across_processes(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_ENABLE_CUDASIM", "NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
    env["GPUBK_CACHE_DIR"] = str(tmp_path)

    def run():
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(_CACHED)], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = run()
    folder = tmp_path / "fused"
    assert first["cache_dir"] == str(folder) and first["ran"]
    assert first["error"] < 1e-6
    assert first["misses"] >= 1 and first["hits"] == 0  # compiled, and saved
    (source,) = folder.glob(f"{first['name']}*.py")  # the loop's variant: parallel or one thread
    assert source.read_text().startswith("# generated by gpubk")
    cached = [p.name for p in (folder / "__pycache__").iterdir()]
    assert any(n.startswith(first["name"]) and n.endswith(".nbi") for n in cached), cached
    assert any(n.startswith(first["name"]) and n.endswith(".nbc") for n in cached), cached
    second = run()
    assert second["name"] == first["name"] and second["ran"]
    assert second["hits"] >= 1 and second["misses"] == 0  # loaded, not compiled
    assert second["error"] < 1e-6


def test_a_loop_whose_file_cannot_be_written_compiles_uncached(tmp_path, monkeypatch):
    """A generated loop's file that cannot be written (a full disk) costs the cache, not the
    call."""
    from gpubk.kernels import fused

    monkeypatch.setenv("GPUBK_CACHE_DIR", str(tmp_path))

    def full(path, text):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(fused, "_write_once", full)
    # a pattern of its own (a constant no other test uses), so that it compiles here
    pattern = fused.Pattern("float64", (("a", "float64"),),
                            (("multiply", ("x0", "x0"), ()), ("add", ("t0", "x0"), ()),
                             ("clip", ("t1",), (-0.123456, 7.654321))))
    x = np.linspace(-3, 3, 64)
    out = np.empty_like(x)
    fused.cpu_kernel(pattern, False)(out, 1, 64, x)
    np.testing.assert_allclose(out, np.clip(x * x + x, -0.123456, 7.654321), rtol=1e-15)
    assert not list((tmp_path / "fused").glob("*.py"))


# -- 10. updates written into a variable's own buffer (fuse.py `into`) -------------------------
@pytest.mark.parametrize("form", ["pair", "K.update"])
def test_an_update_written_in_place_keeps_the_buffer_and_outputs_see_old_values(form, rng):
    """The documented case: nothing else holds the buffer, so the new value goes into it;
    the outputs computed from the variable still see the value from before the call."""
    v0 = _normal(rng, (64, 64), np.float32)
    v = K.variable(v0)
    x = K.placeholder(shape=(None, 64))
    update = (v, v * 0.5 + x) if form == "pair" else K.update(v, v * 0.5 + x)
    f = K.function([x], [K.sum(v * x, axis=-1)], updates=[update])
    (group,) = [s for s in _fused_steps(f) if s.node.shape == (64, 64)]
    assert "into variable" in group.note
    want = v0.astype(np.float64)
    for _ in range(3):
        xv = _normal(rng, (64, 64), np.float32)
        buffer = weakref.ref(v.data)  # (a reference would hold the buffer)
        (got,) = f([xv])
        _assert_close(got, (want * xv).sum(-1), "float32", rtol=1e-5, atol=1e-5)
        want = want * 0.5 + xv
        np.testing.assert_allclose(K.get_value(v), want, rtol=1e-6, atol=1e-6)
        assert v.data is buffer()


@pytest.mark.parametrize("case", ["transposed output", "set_value of a reshaped array",
                                  "slice of get_value"])
def test_an_update_never_writes_into_memory_something_else_sees(case, rng):
    x = K.placeholder(shape=(64, 64))
    xv = np.zeros((64, 64), np.float32)
    v = K.variable(np.ones((64, 64)))
    if case == "transposed output":
        # call 1 cannot write in place (the transposed view holds the buffer): v's new buffer
        # is then a reshaped view of the kernel's flat output, and call 2 writes into it while
        # its transposed output (fetched after the steps) still views it
        f = K.function([x], [K.transpose(v)], updates=[(v, v * 0.5 + x)])
        outs = [f([xv])[0][0, 0] for _ in range(3)]
        assert outs == [1.0, 0.5, 0.25]
        return
    f = K.function([x], [K.sum(x)], updates=[(v, v * 0.5 + x)])
    if case == "set_value of a reshaped array":
        flat = np.ones(64 * 64, np.float32)  # e.g. weights loaded as one flat vector
        K.set_value(v, flat.reshape(64, 64))
        f([xv])
        assert flat[0] == 1.0 and K.get_value(v)[0, 0] == 0.5
        return
    held = K.get_value(v)
    f([xv])              # `held` holds the buffer: a new one is installed (a reshaped view)
    del held
    row = K.get_value(v)[0]  # 0.5: a view of the kernel's flat output
    f([xv])
    assert row[0] == 0.5 and K.get_value(v)[0, 0] == 0.25


def test_an_update_of_a_variable_holding_a_read_only_array(rng):
    x = K.placeholder(shape=(64, 64))
    v = K.variable(np.zeros((64, 64)))
    blob = np.full(64 * 64, 2.0, np.float32).tobytes()  # e.g. weights read from a file
    K.set_value(v, np.frombuffer(blob, np.float32).reshape(64, 64))
    f = K.function([x], [K.sum(x)], updates=[(v, v * 0.5 + x)])
    f([np.ones((64, 64), np.float32)])
    np.testing.assert_array_equal(K.get_value(v), np.full((64, 64), 2.0))


def test_a_reduction_update_that_reads_its_variable_as_a_row(rng):
    a = K.placeholder(shape=(64, 64))
    av = _normal(rng, (64, 64), np.float32)
    v0 = _normal(rng, (64,), np.float32)
    v = K.variable(v0)
    f = K.function([a], [K.sum(a)], updates=[(v, K.sum(a * v, axis=-1))])  # v <- A v
    f([av])
    np.testing.assert_allclose(K.get_value(v), av.astype(np.float64) @ v0, rtol=1e-5,
                               atol=1e-4)


@pytest.mark.skipif(HAS_GPU, reason="the simulator only")
@pytest.mark.parametrize("dev", ["sim"], indirect=True)
def test_an_update_written_in_place_on_sim(dev):
    x = K.placeholder(shape=(3, 5))
    v = K.variable(np.ones((3, 5)))
    f = K.function([x], [K.sum(x)], updates=[(v, v * 0.5 + x)])
    f([np.zeros((3, 5), np.float32)])
    np.testing.assert_array_equal(K.get_value(v), np.full((3, 5), 0.5))


@pytest.mark.skipif(HAS_GPU, reason="the simulator only (the GPU copies what it is fed)")
@pytest.mark.parametrize("dev", ["sim"], indirect=True)
def test_a_read_only_fed_array_on_sim(dev, rng):
    x = K.placeholder(shape=(None, 5))
    f = K.function([x], [K.exp(x) * 2.0 + 1.0])
    xv = _normal(rng, (3, 5), np.float32)
    xv.flags.writeable = False  # e.g. np.frombuffer, a read-only memmap
    (got,) = f([xv])
    _assert_close(got, np.exp(xv.astype(np.float64)) * 2 + 1, "float32")
