"""NaN and ±inf through every activation with a kernel, on every path (NumPy, the Numba CPU
twins, the CUDA kernels under the simulator), forward and backward: the result is NaN exactly
where the NumPy float64 reference is, and equal elsewhere.

The references are TensorFlow's definitions (the ops Keras 2 calls), written in NumPy. Where a
TensorFlow gradient kernel selects on a comparison (LeakyReluGrad, EluGrad, clip_by_value in
hard_sigmoid), a NaN input fails the comparison and takes the other branch: a finite gradient.
"""
import numpy as np
import pytest

import gpubk as K
from conftest import GPU, SIM
from gpubk.kernels import launch

NAN, INF = np.nan, np.inf
POINTS = [NAN, INF, -INF, 0.0, 1.0, -1.0, 7.0, -30.0]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name: (gpubk function, forward reference, reference gradient of sum(f(x)))
ACTIVATIONS = {
    "relu": (K.relu, lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
    "leaky relu": (lambda x: K.relu(x, alpha=0.1), lambda x: np.where(x > 0, x, 0.1 * x),
                   lambda x: np.where(x > 0, 1.0, 0.1)),
    "relu6": (lambda x: K.relu(x, max_value=6), lambda x: np.clip(x, 0, 6),
              lambda x: ((x > 0) & (x < 6)) * 1.0),
    "relu threshold": (lambda x: K.relu(x, threshold=0.5), lambda x: x * (x > 0.5),
                       lambda x: (x > 0.5) * 1.0),
    "sigmoid": (K.sigmoid, _sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "hard_sigmoid": (K.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1),
                     lambda x: 0.2 * ~((0.2 * x + 0.5 < 0) | (0.2 * x + 0.5 > 1))),
    "tanh": (K.tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "elu": (lambda x: K.elu(x, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)),
            lambda x: np.where(x > 0, 1.0, 0.5 * np.where(x < 0, np.exp(x), 1.0))),
    "softplus": (K.softplus, lambda x: np.logaddexp(0, x), _sigmoid),
    "softsign": (K.softsign, lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2),
}


@pytest.fixture(params=["numpy", "twin", *(GPU or SIM)])
def path(request, monkeypatch):
    if request.param == "twin":  # every size takes the CPU twin where the op has one
        monkeypatch.setattr(launch, "cpu_twin_min_size", 0)
    with K.device(request.param if request.param in ("gpu", "sim") else "cpu"):
        yield request.param


def _assert_same(got, want, dtype):
    want = np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    # float32 gradients from the output (y * (1 - y) near y = 1) lose digits, as in TF
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-12,
                               atol=1e-7 if dtype == "float32" else 1e-30, equal_nan=True)


# relu with a threshold at -inf (-inf * 0) and softsign at ±inf (inf / inf) are NaN, as in TF:
# NumPy says so with a RuntimeWarning, which is right there.
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_nan_and_inf_forward_and_backward(name, dtype, path):
    f, forward, derivative = ACTIVATIONS[name]
    x = np.array(POINTS, dtype=dtype)
    v = K.variable(x, dtype=dtype)
    y = f(v)
    (g,) = K.gradients(K.sum(y), [v])
    with np.errstate(all="ignore"):  # the references overflow on purpose
        want_y, want_g = forward(x.astype(np.float64)), derivative(x.astype(np.float64))
    _assert_same(K.eval(y), want_y, dtype)
    _assert_same(K.eval(g), want_g, dtype)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_no_numpy_warning_where_the_result_is_defined(name, path, recwarn):
    """Large finite inputs overflow intermediate exps, but every result is defined (0, 1, x):
    no RuntimeWarning reaches the user, and the values match the reference."""
    f, forward, derivative = ACTIVATIONS[name]
    x = np.array([-1000.0, -100.0, 100.0, 1000.0])
    v = K.variable(x, dtype="float64")
    y = f(v)
    (g,) = K.gradients(K.sum(y), [v])
    got_y, got_g = K.eval(y), K.eval(g)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    with np.errstate(all="ignore"):
        _assert_same(got_y, forward(x), "float64")
        _assert_same(got_g, derivative(x), "float64")
