"""The elementwise kernels generated from the activations' scalar formulas (kernels/formulas.py,
kernels/generate.py): every CUDA kernel (under Numba's simulator without a GPU, on the GPU where
there is one) and every Numba CPU twin, forward and backward, float32 and float64, against
NumPy float64 references written from the activations' definitions (TensorFlow's, as Keras 2
calls them; independent of the formulas), NaN, ±inf and the kinks included. And Numba's on-disk
cache: every generated kernel has its own entries, so that a process loading them from the
cache gets each op's own code.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from numba.core.caching import FunctionCache

from conftest import HAS_GPU
from gpubk import devices
from gpubk.kernels import elementwise as E
from gpubk.kernels import formulas, generate, launch

NAN, INF = np.nan, np.inf
# The kinks (0, ±2.5 for hard_sigmoid, 0.5 and 1 for the thresholds, 4 and 6 for max_value),
# NaN, ±inf, signed zeros, tiny and huge values (exp overflows in an intermediate), then random.
POINTS = [NAN, INF, -INF, 0.0, -0.0, 0.5, 1.0, -1.0, 2.5, -2.5, 4.0, 6.0, 7.0, -30.0, 30.0,
          80.0, -80.0, 100.0, -100.0, 1e-5, -1e-5, 1e-30, -1e-30]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _relu_case(alpha=0.0, max_value=None, threshold=0.0):
    """relu as Keras 2 writes it, and its gradient from the TensorFlow op it picks."""
    low, high = (-INF, INF) if max_value is None else (0.0, max_value)
    top_open = high == 6.0 and threshold == 0.0  # tf.nn.relu6

    def forward(x):
        r = x * (x > threshold) if threshold else np.where(x <= 0, 0.0, x)  # NaN stays NaN
        r = np.clip(r, low, high)
        return r - alpha * np.maximum(threshold - x, 0) if alpha else r

    def derivative(x, y):
        if max_value is None and threshold == 0:  # tf.nn.leaky_relu: alpha at 0 and for NaN
            return np.where(x > 0, 1.0, alpha)
        inside = (x > threshold) & (x >= low) & ((x < high) if top_open else (x <= high))
        return inside + alpha * (x < threshold)
    return E.RELU, (alpha, low, high, threshold, top_open), forward, derivative


def _hard_sigmoid_derivative(x, y):  # clip_by_value: 0.2 at the bounds and for NaN
    h = 0.2 * x + 0.5
    return 0.2 * ~((h < 0) | (h > 1))


# name: (op, launcher parameters, forward reference f(x), derivative reference d(x, y)): the
# gradient is g * d(x, y), where y is the output the kernel is given for the USES_OUTPUT ops.
CASES = {
    "relu": _relu_case(),
    "leaky relu": _relu_case(alpha=0.1),
    "relu6": _relu_case(max_value=6.0),
    "relu max_value=4": _relu_case(max_value=4.0),
    "relu6 alpha": _relu_case(alpha=0.1, max_value=6.0),
    "relu alpha max_value=inf": _relu_case(alpha=0.1, max_value=INF),
    "relu threshold=0.5": _relu_case(threshold=0.5),
    "relu threshold=1 alpha": _relu_case(alpha=0.1, threshold=1.0),
    "sigmoid": (E.SIGMOID, (), _sigmoid, lambda x, y: y * (1 - y)),
    "hard_sigmoid": (E.HARD_SIGMOID, (), lambda x: np.clip(0.2 * x + 0.5, 0, 1),
                     _hard_sigmoid_derivative),
    "tanh": (E.TANH, (), np.tanh, lambda x, y: 1 - y * y),
    "elu": (E.ELU, (1.0,), lambda x: np.where(x > 0, x, np.expm1(x)),
            lambda x, y: np.where(x > 0, 1.0, np.where(x < 0, np.exp(x), 1.0))),
    "elu alpha=0.5": (E.ELU, (0.5,), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)),
                      lambda x, y: np.where(x > 0, 1.0, 0.5 * np.where(x < 0, np.exp(x), 1.0))),
    "softplus": (E.SOFTPLUS, (), lambda x: np.logaddexp(0, x), lambda x, y: _sigmoid(x)),
    "softsign": (E.SOFTSIGN, (), lambda x: x / (1 + np.abs(x)),
                 lambda x, y: 1 / (1 + np.abs(x)) ** 2),
}


def _inputs(dtype):
    rng = np.random.default_rng(7)
    x = np.concatenate([POINTS, rng.uniform(-8, 8, 200)]).astype(dtype)
    g = (rng.uniform(0.5, 2.0, x.size) * rng.choice([-1.0, 1.0], x.size)).astype(dtype)
    return x, g


def _references(name, x, g):
    """(y, v, dx) in float64: the output, what the backward kernel is given (the input, or the
    output in x's dtype for the USES_OUTPUT ops) and the gradient."""
    op, _, forward, derivative = CASES[name]
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):  # the references overflow and make NaN on purpose
        y = forward(x64)
        v = y.astype(x.dtype) if op in E.USES_OUTPUT else x
        dx = g.astype(np.float64) * derivative(x64, v.astype(np.float64))
    return y, v, dx


def _assert_matches(got, want, dtype, g=None):
    """NaN exactly where `want` is; elsewhere a few ulp (the twins' exp, log1p and expm1 are
    within 2.5 ulp), with a floor for subnormal results (sigmoid(-100) in float32) and, for a
    gradient, 2 ulp of 1 times |g|: `1 - y * y` rounds y * y first (tanh near |y| = 1)."""
    want = np.asarray(want, np.float64)
    assert got.dtype == dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    eps = np.finfo(dtype).eps
    atol = (1e-38 if dtype == np.float32 else 1e-300) + (0 if g is None else 2 * eps * np.abs(g))
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf
        close = (got == want) | (np.abs(got - want) <= atol + 8 * eps * np.abs(want))
    bad = ~close & ~np.isnan(want)
    assert not bad.any(), f"got {got[bad][:8]}, want {want[bad][:8]} (of {bad.sum()})"


# -- the registry --------------------------------------------------------------------------------
def test_the_registry_describes_every_op():
    assert [f.name for f in E.FORMULAS] == ["relu", "sigmoid", "hard_sigmoid", "tanh", "elu",
                                            "softplus", "softsign"]
    assert E.USES_OUTPUT == {E.SIGMOID, E.TANH}
    assert E.CPU_TWIN_OPS == {E.SIGMOID, E.ELU, E.SOFTPLUS}
    for f in E.FORMULAS:
        assert formulas.BY_NAME[f.name] is f
        assert set(f.params) <= set(formulas.PARAM_NAMES)
        # the formulas take (v, *params) and (v, g, *params)
        assert f.forward.__code__.co_varnames[1:1 + len(f.params)] == f.params
        assert f.backward.__code__.co_varnames[2:2 + len(f.params)] == f.params
    with pytest.raises(ValueError, match="subsequence"):
        formulas.Formula("bad", formulas.relu_forward, formulas.relu_backward, ("high", "low"))


def test_kernel_params_are_the_formulas_in_the_work_dtype():
    f32 = np.dtype(np.float32)
    relu = E.kernel_params(E.RELU, f32, 0.1, 0.0, 6.0, 0.0, True)
    assert relu == (0.1, 0.0, 6.0, 0.0, True)
    assert [type(p) for p in relu] == [np.float32] * 4 + [bool]
    assert E.kernel_params(E.ELU, f32, 0.5, 0.0, 6.0) == (np.float32(0.5),)
    assert E.kernel_params(E.SIGMOID, f32, 0.5) == ()


def test_identity_follows_the_formula():
    """A generated kernel's identity in Numba's cache follows its formula's code, helpers
    included: the same formula gives the same identity, another formula or target another."""
    same = generate.identity(formulas.sigmoid_forward, "cpu")
    assert same == generate.identity(formulas.sigmoid_forward, "cpu")
    assert same != generate.identity(formulas.sigmoid_forward, "cuda")
    assert same != generate.identity(formulas.softplus_backward, "cpu")
    # an edited helper (sigmoid, called by softplus_backward) changes its callers' fingerprints
    namespace = {**formulas.softplus_backward.__globals__}
    exec("def sigmoid(v):\n    return v\n", namespace)  # a function of formulas' namespace
    changed = type(formulas.softplus_backward)(formulas.softplus_backward.__code__, namespace)
    assert generate.fingerprint(changed) != generate.fingerprint(formulas.softplus_backward)
    assert generate.fingerprint(changed) == generate.fingerprint(changed)


# -- the CUDA kernels ----------------------------------------------------------------------------
@pytest.fixture
def cuda_device():
    return devices.parse("gpu" if HAS_GPU else "sim")


@pytest.mark.sim
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the simulator: -inf * 0
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_kernels_match_the_definitions(name, dtype, cuda_device):
    op, params = CASES[name][:2]
    x, g = _inputs(dtype)
    y, v, dx = _references(name, x, g)
    _assert_matches(devices._to_host(E.forward(cuda_device, op, cuda_device.put(x), *params)),
                    y, dtype)
    _assert_matches(devices._to_host(E.backward(cuda_device, op, cuda_device.put(v),
                                                cuda_device.put(g), *params)), dx, dtype, g)


@pytest.mark.sim
def test_cuda_kernels_are_generated_once_under_stable_names(cuda_device):
    cuda = launch.cuda_family("elementwise")
    assert set(cuda.LAUNCHES) == {f"{f.name}_{d}" for f in E.FORMULAS
                                  for d in ("forward", "backward")}
    x = cuda_device.put(np.linspace(-3, 3, 8, dtype=np.float32))
    E.forward(cuda_device, E.SOFTSIGN, x)
    kernel = cuda.softsign_forward
    assert kernel is cuda.softsign_forward  # generated on first use, then kept
    assert kernel.py_func.__name__ == "softsign_forward"
    assert kernel.py_func.__qualname__.startswith("softsign_forward__")
    with pytest.raises(AttributeError):
        cuda.swish_forward  # noqa: B018


@pytest.mark.sim
def test_every_cuda_kernel_has_its_own_cache_entries():
    """As the twins (below): each generated kernel's index file in Numba's CUDA cache is its
    own. (Loading from that cache needs a GPU; this checks the identity the cache keys on.)"""
    code = ("import json\n"
            "from gpubk.kernels.cuda import elementwise as m\n"
            "print(json.dumps({n: getattr(m, n)._cache._impl.filename_base for n in m.LAUNCHES}))")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}  # the real dispatcher (no GPU needed)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    bases = json.loads(run.stdout.splitlines()[-1])
    assert len(bases) == 2 * len(E.FORMULAS) == len(set(bases.values()))
    for name, base in bases.items():
        assert base.startswith(f"elementwise.{name}__"), base


# -- the CPU twins -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cpu_twins_match_the_definitions(name, dtype):
    """Every formula's twin, called directly (CPU_TWIN_OPS only decides which ones the
    launchers use)."""
    op, params = CASES[name][:2]
    x, g = _inputs(dtype)
    y, v, dx = _references(name, x, g)
    p = E.kernel_params(op, x.dtype, *params)
    out = np.full_like(x, 12345.0)
    E.cpu_twin(op, "forward")(x, out, p)
    _assert_matches(out, y, dtype)
    out = np.full_like(x, 12345.0)
    E.cpu_twin(op, "backward")(v, g, out, p)
    _assert_matches(out, dx, dtype, g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c[0] in E.CPU_TWIN_OPS))
def test_launchers_take_the_twins(name, dtype, monkeypatch):
    """The launchers run the twins for CPU_TWIN_OPS (forced on small arrays here), with the
    same results."""
    monkeypatch.setattr(launch, "cpu_twin_min_size", 0)
    op, params = CASES[name][:2]
    calls = []
    twin = E.cpu_twin

    def spy(*args):
        calls.append(args)
        return twin(*args)
    monkeypatch.setattr(E, "cpu_twin", spy)
    x, g = _inputs(dtype)
    y, v, dx = _references(name, x, g)
    _assert_matches(E.forward(devices.CPU, op, x.reshape(1, -1), *params).reshape(-1), y, dtype)
    _assert_matches(E.backward(devices.CPU, op, v, g, *params), dx, dtype, g)
    assert calls == [(op, "forward"), (op, "backward")]


def test_every_twin_has_its_own_cache_entries():
    """Numba's cache finds entries by file, qualified name and line: each generated twin,
    though built from one template, has its own index file."""
    names = {FunctionCache(E.cpu_twin(op, d).py_func)._impl.filename_base
             for op in range(len(E.FORMULAS)) for d in ("forward", "backward")}
    assert len(names) == 2 * len(E.FORMULAS)


_CACHE_RUN = """
import json, sys
import numpy as np
from gpubk.kernels import elementwise as E
result = {}
for name, op, params, x, v, g in json.loads(sys.stdin.read()):
    x, v, g = (np.array(a, np.float32) for a in (x, v, g))
    p = E.kernel_params(op, x.dtype, *params)
    for direction in ("forward", "backward"):
        twin = E.cpu_twin(op, direction)
        out = np.empty_like(x)
        twin(x, out, p) if direction == "forward" else twin(v, g, out, p)
        result[f"{name} {direction}"] = dict(values=out.tolist(),
                                             hits=sum(twin.stats.cache_hits.values()),
                                             misses=sum(twin.stats.cache_misses.values()))
print(json.dumps(result))
"""


def test_cached_twins_load_their_own_code_in_the_next_process(tmp_path):
    """The first process compiles every op's twins (float32) into an empty cache; the next one,
    asking for them in the opposite order, loads each one from the cache, compiling nothing, and
    gets the same values, each op its own (against the references)."""
    names = ["relu6 alpha", "sigmoid", "hard_sigmoid", "tanh", "elu alpha=0.5", "softplus",
             "softsign"]
    assert sorted(CASES[n][0] for n in names) == list(range(len(E.FORMULAS)))
    x, g = _inputs(np.float32)
    x, g = x[:40], g[:40]
    refs = {name: _references(name, x, g) for name in names}

    def job(order):
        # inf and NaN travel as JSON's Infinity and NaN
        return json.dumps([(n, CASES[n][0], CASES[n][1], x.tolist(), refs[n][1].tolist(),
                            g.tolist()) for n in order])
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = []
    for order in (names, names[::-1]):
        run = subprocess.run([sys.executable, "-c", _CACHE_RUN], input=job(order),
                             capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        runs.append(json.loads(run.stdout.splitlines()[-1]))
    first, second = runs
    assert first.keys() == second.keys() and len(first) == 2 * len(names)
    for name in names:
        y, _, dx = refs[name]
        for direction, want, grad in (("forward", y, None), ("backward", dx, g)):
            key = f"{name} {direction}"
            assert (first[key]["hits"], first[key]["misses"]) == (0, 1), key
            assert (second[key]["hits"], second[key]["misses"]) == (1, 0), key
            got = np.array(second[key]["values"], np.float32)
            np.testing.assert_array_equal(got, np.array(first[key]["values"], np.float32))
            _assert_matches(got, want, np.float32, grad)
