"""The CUDA side of fused kernels (kernels/cuda/fused.py): every catalogued pattern, broadcast
inputs (rows, columns, scalars) and every reduction run on the `sim` device (Numba's CUDA
simulator; the GPU where there is one), against NumPy float64 references written by hand from
the members' definitions (not from their formulas), NaN and infinities included; and the audit
of the catalogue (PTX and cubin from the real compiler: no float64 arithmetic in float32 and
float16 kernels, no spill, no local memory)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import HAS_GPU
from gpubk import devices
from gpubk.kernels.fused import Pattern, output_size

pytestmark = [pytest.mark.sim,  # needs numba-cuda
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]  # NaN and inf on purpose

NAN, INF = np.nan, np.inf
SPECIAL = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.5]  # -1.5 and 1: roots of the chain's numerator
TOL = {"float16": {"rtol": 2e-3, "atol": 2e-3}, "float32": {"rtol": 2e-6, "atol": 1e-5},
       "float64": {"rtol": 1e-13, "atol": 1e-13}}


@pytest.fixture(scope="module")
def F():
    """The module under test (imported here: the collection of this file needs no numba-cuda),
    with a short thread switch interval: the simulator's barriers poll, ~4x faster so."""
    from gpubk.kernels.cuda import fused
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield fused
    sys.setswitchinterval(interval)


@pytest.fixture(scope="module", params=[
    pytest.param("gpu", marks=pytest.mark.gpu) if HAS_GPU else pytest.param("sim")])
def sim(request):
    """The device the kernels run on: the simulator, or the GPU where there is one (the
    simulator must be chosen before numba.cuda loads)."""
    return devices.parse(request.param)


def _values(rng, n, dtype, special=True):
    """n values of `dtype`, the SPECIAL ones first where they fit."""
    x = rng.standard_normal(n) * 2
    if special:
        x[:min(n, len(SPECIAL))] = SPECIAL[:n]
    return x.astype(dtype)


def _run(F, sim, pattern, rows, cols, inputs):
    out = sim.put(np.full(output_size(pattern, rows, cols), 12345, pattern.dtype))
    inputs = [sim.put(np.full(1, x, dtype) if kind == "s" else x)  # scalars: one-value arrays
              for (kind, dtype), x in zip(pattern.inputs, inputs)]
    F.launch(sim, pattern, out, rows, cols, inputs)
    return sim.to_host(out)


def _assert_close(got, want, dtype):
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got.astype(np.float64), want, **TOL[dtype])


def _chain(x):
    return ((x * 2 + 1) * x - 3) / (x * x + 1)


def _relu(t, alpha=0.0, max_value=None):
    """Keras 2's relu (threshold 0): NaN stays NaN."""
    r = np.where(t <= 0, 0.0, t)
    if max_value is not None:
        r = np.clip(r, 0.0, max_value)
    return r - alpha * np.maximum(-t, 0) if alpha else r


SHAPES = [(1, 1), (1, 33), (3, 5), (33, 1), (33, 33)]


@pytest.mark.parametrize("rows, cols", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_the_seven_op_chain(F, sim, rng, dtype, rows, cols):
    pattern = F._chain(dtype)
    assert pattern in F.CATALOGUE
    x = _values(rng, rows * cols, dtype)
    scalars = [np.dtype(dtype).type(2), np.dtype(dtype).type(1), 3.0]  # a Python float too
    got = _run(F, sim, pattern, rows, cols, [x, *scalars])
    _assert_close(got, _chain(x.astype(np.float64)), dtype)


@pytest.mark.parametrize("rows, cols", SHAPES)
def test_relu_of_x_times_a_row_plus_a_column(F, sim, rng, rows, cols):
    pattern = F.CATALOGUE[3]
    assert [kind for kind, _ in pattern.inputs] == ["a", "r", "c"]
    x, row, col = (_values(rng, n, np.float32) for n in (rows * cols, cols, rows))
    got = _run(F, sim, pattern, rows, cols, [x, row, col])
    t = x.reshape(rows, cols).astype(np.float64) * row.astype(np.float64) + col[:, None]
    _assert_close(got, _relu(t).reshape(-1), "float32")


@pytest.mark.parametrize("index, reference", [
    (4, lambda t: np.where(t > 0, t, 0.5 * np.expm1(t))),  # elu, alpha 0.5
    (5, lambda t: _relu(t, alpha=0.1, max_value=6.0)),     # relu, alpha 0.1, max_value 6
])
def test_activations_with_parameters(F, sim, rng, index, reference):
    pattern = F.CATALOGUE[index]
    x = np.concatenate([_values(rng, 33, np.float32), np.float32([3.5, 7.0, -80.0])])
    got = _run(F, sim, pattern, 3, 12, [x, np.float32(2)])
    _assert_close(got, reference(x.astype(np.float64) * 2), "float32")


@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 5), (33, 5)])
def test_mixed_input_dtypes_broadcast_into_a_float16_pattern(F, sim, rng, rows, cols):
    """(x - column) * row + s, x float16, the row int32, s a float32 scalar; float16 out."""
    pattern = Pattern("float16", (("a", "float16"), ("c", "float16"), ("r", "int32"),
                                  ("s", "float32")),
                      (("subtract", ("x0", "x1"), ()), ("multiply", ("t0", "x2"), ()),
                       ("add", ("t1", "x3"), ())))
    x, col = _values(rng, rows * cols, np.float16), _values(rng, rows, np.float16, False)
    row = rng.integers(-3, 4, cols).astype(np.int32)
    got = _run(F, sim, pattern, rows, cols, [x, col, row, np.float32(0.25)])
    want = (x.reshape(rows, cols).astype(np.float64) - col[:, None]) * row + 0.25
    _assert_close(got, want.reshape(-1), "float16")


def _reduction_input(rng, rows, cols, dtype):
    """Rows of random values; row 1 (where there is one) holds a NaN inside, row 2 +inf and
    -inf at the ends: NaN must win in every partial and in the combining of partials."""
    x = (rng.standard_normal((rows, cols)) * 3).astype(dtype)
    if rows > 1:
        x[1, cols // 2] = NAN
    if rows > 2:
        x[2, 0], x[2, -1] = INF, -INF
    return x


NUMPY = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("dtype, rows, cols", [
    ("float32", 1, 1), ("float32", 4, 33), ("float32", 33, 5),
    ("float16", 4, 33), ("float64", 4, 33)])
def test_reductions_of_a_broadcast_chain(F, sim, rng, reduce, dtype, rows, cols):
    """reduce((x - column) * row) along each row."""
    pattern = Pattern(dtype, (("a", dtype), ("c", dtype), ("r", dtype)),
                      (("subtract", ("x0", "x1"), ()), ("multiply", ("t0", "x2"), ())), reduce)
    x = _reduction_input(rng, rows, cols, dtype)
    col, row = (rng.standard_normal(n).astype(dtype) for n in (rows, cols))
    got = _run(F, sim, pattern, rows, cols, [x.reshape(-1), col, row])
    terms = (x.astype(np.float64) - col[:, None]) * row
    want = NUMPY[reduce](terms, axis=1)
    if reduce in ("max", "min") and rows > 1:
        assert np.isnan(got[1])
    if reduce in ("sum", "mean"):  # the terms' rounding adds up: bound it by their size
        assert got.dtype == np.dtype(dtype)
        rtol = TOL[dtype]["rtol"]
        bound = rtol * (np.abs(want) + 4 * np.abs(terms).sum(axis=1) / (cols if reduce ==
                                                                        "mean" else 1))
        ok = np.isfinite(want)
        np.testing.assert_array_equal(got[~ok], want[~ok])
        assert np.all(np.abs(got[ok] - want[ok]) <= bound[ok]), (got, want)
    else:
        _assert_close(got, want, dtype)


@pytest.mark.parametrize("index, rows, cols", [(6, 1, 1), (6, 33, 33), (7, 3, 33), (7, 33, 5)])
def test_the_catalogued_reductions(F, sim, rng, index, rows, cols):
    pattern = F.CATALOGUE[index]  # sum((x - column) ** 2), max(abs(x * row))
    x = _reduction_input(rng, rows, cols, np.float32)
    other = rng.standard_normal(rows if pattern.reduce == "sum" else cols).astype(np.float32)
    got = _run(F, sim, pattern, rows, cols, [x.reshape(-1), other])
    x = x.astype(np.float64)
    want = (((x - other[:, None]) ** 2).sum(axis=1) if pattern.reduce == "sum"
            else np.abs(x * other).max(axis=1))
    _assert_close(got, want, "float32")


def test_a_comparison_member_stores_and_sums_as_numbers(F, sim):
    pattern = Pattern("float32", (("a", "float32"), ("s", "float32")),
                      (("greater", ("x0", "x1"), ()),), "sum")
    x = np.float32([[0.5, 2.0, NAN, 3.0], [1.0, 1.5, -INF, INF]])
    got = _run(F, sim, pattern, 2, 4, [x.reshape(-1), np.float32(1)])
    np.testing.assert_array_equal(got, [2.0, 2.0])


@pytest.mark.parametrize("reduce, want", [("sum", 0.0), ("mean", NAN), ("max", -INF),
                                           ("min", INF)])
def test_empty_rows_reduce_as_the_cpu_loop_does(F, sim, reduce, want):
    pattern = Pattern("float32", (("a", "float32"),), (("abs", ("x0",), ()),), reduce)
    got = _run(F, sim, pattern, 2, 0, [np.zeros(0, np.float32)])
    np.testing.assert_array_equal(got, [want, want])


def test_nothing_to_compute_launches_nothing(F, sim):
    out = np.zeros(0, np.float32)
    F.launch(sim, F.CATALOGUE[0], out, 0, 5, [out, 2.0, 1.0, 3.0])
    F.launch(sim, F.CATALOGUE[0], out, 3, 0, [out, 2.0, 1.0, 3.0])
    F.launch(sim, F.CATALOGUE[6], out, 0, 3, [out, out])


def test_catalogue_names_signatures_and_registration(F):
    for pattern in F.CATALOGUE:
        assert F.LAUNCHES[pattern.name] == [F.signature(pattern)]
        assert getattr(F, pattern.name) is F.kernel(pattern)
    assert F.signature(F._chain("float16")) == (
        "void(float16[::1], int64, int64, float16[::1], float16[::1], float16[::1], "
        "float16[::1])")
    assert F.signature(Pattern("float32", (("a", "bool"), ("r", "int32")),
                               (("where", ("x0", "x1", "x1"), ()),))) == (
        "void(float32[::1], int64, int64, boolean[::1], int32[::1])")
    with pytest.raises(AttributeError):
        F.fused_000000000000  # noqa: B018


_AUDIT = """
import json, pathlib, sys
from numba.cuda.cudadrv import nvvm
if not nvvm.is_available():
    sys.exit("the audit needs libNVVM (numba-cuda[cu13])")
from gpubk.kernels import audit
from gpubk.kernels.cuda import fused
from gpubk.kernels.fused import Pattern
audit.FAMILIES = ("fused",)  # this module's kernels only
extra = Pattern("float16", (("a", "float16"), ("c", "float16")),
                (("subtract", ("x0", "x1"), ()), ("exp", ("t0",), ())), "min")
fused.register(extra)
fused.register(extra)  # once
fused.register(fused.CATALOGUE[0])  # catalogued already
rows = audit.audit(["sm_90"])
pathlib.Path(sys.argv[1]).write_text(json.dumps({"extra": extra.name, "rows": [dict(
    module=r.module, name=r.name, signature=r.signature, registers=r.registers,
    spills=r.spill_stores + r.spill_loads, f64=r.f64_math, problems=audit.problems(r))
    for r in rows]}))
"""


def test_the_catalogue_and_registered_patterns_pass_the_audit(F, tmp_path):
    path = tmp_path / "audit.json"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}  # the real compiler, not the simulator
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(_AUDIT), str(path)],
                         check=False, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    if run.returncode and "libNVVM" in run.stderr:  # the compiler is an extra
        pytest.skip(run.stderr.strip()[-300:])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    found = json.loads(path.read_text())
    rows = found["rows"]
    names = [r["name"] for r in rows]
    assert names == [p.name for p in F.CATALOGUE] + [found["extra"]]
    assert all(r["module"] == "gpubk.kernels.cuda.fused" for r in rows)
    for r in rows:
        assert not r["problems"] and r["registers"] > 0 and r["spills"] == 0, r
        assert (r["f64"] > 0) == ("float64[" in r["signature"]), r
