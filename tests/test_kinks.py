"""Gradients exactly at the kinks, where training sits (zero-initialised logits, relu at 0,
clipped outputs), against values written down from TensorFlow's gradient definitions (the ops
Keras 2 calls). Random points never land on a kink; every point here is on one on purpose, with
a neighbour on each side.

Where each convention comes from (TensorFlow's `math_grad.py`, `nn_grad.py` and kernels):
- `sigmoid_cross_entropy_with_logits` writes relu(z) and -|z| as selects on `z >= 0`: the
  gradient is sigmoid(z) - t everywhere, 0.5 - t at z = 0.
- `ReluGrad` is `g * (x > 0)`; `LeakyReluGrad` selects `x > 0 ? g : alpha * g`; `Relu6Grad` is
  `g * (x > 0 & x < 6)`; `clip_by_value`'s gradient is zero only strictly outside the bounds.
  Keras 2's relu picks leaky_relu (alpha only), relu6 (max_value 6, no threshold), or relu with
  clip_by_value; a threshold multiplies x by `cast(x > threshold)`; the negative part is
  `alpha * relu(threshold - x)`.
- `EluGrad` is `g * (y + 1)` where y < 0 else `g`, and Keras 2 scales by alpha where `x > 0`
  fails: alpha at 0.
- `hard_sigmoid` is `clip_by_value(0.2 * x + 0.5, 0, 1)`: 0.2 at ±2.5.
- `Maximum`/`Minimum` send a tie to the first operand (`greater_equal` / `less_equal`);
  `Max`/`Min` reductions share a tie equally; `MaxPoolGrad` gives a window's gradient to its
  first maximum; `Abs` is `g * sign(x)`: 0 at 0.
- `l2_normalize` is `x * rsqrt(maximum(sum(x^2), 1e-12))`: 1e6 on a zero row.
"""
import math

import numpy as np
import pytest

import gpubk as K
from conftest import GPU, SIM
from gpubk.kernels import launch

LN2 = math.log(2.0)
E1 = math.exp(-1.0)


def _const(values):
    return K.constant(np.array(values, dtype=K.floatx()))


# name: (function of x, points, expected first-order gradient of sum(f(x)))
KINKS = {
    "binary_crossentropy from logits at 0": (
        lambda x: K.binary_crossentropy(_const([1.0, 0.0, 0.3]), x, from_logits=True),
        [0.0, 0.0, 0.0], [-0.5, 0.5, 0.2]),
    "binary_crossentropy of a sigmoid at 0": (
        lambda x: K.binary_crossentropy(_const([1.0, 0.0, 0.3]), K.sigmoid(x)),
        [0.0, 0.0, 0.0], [-0.5, 0.5, 0.2]),
    "binary_focal_crossentropy from logits at 0": (
        # (1 - p_t)^2 * bce: d/dz = -/+ (0.25 ln 2 + 0.125) at z = 0
        lambda x: K.binary_focal_crossentropy(_const([1.0, 0.0]), x, from_logits=True),
        [0.0, 0.0], [-(0.25 * LN2 + 0.125), 0.25 * LN2 + 0.125]),
    "binary_focal_crossentropy balanced, of a sigmoid": (
        lambda x: K.binary_focal_crossentropy(_const([1.0, 0.0]), K.sigmoid(x),
                                              apply_class_balancing=True),
        [0.0, 0.0], [-0.25 * (0.25 * LN2 + 0.125), 0.75 * (0.25 * LN2 + 0.125)]),
    "relu at 0": (K.relu, [-1.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    "leaky relu at 0": (lambda x: K.relu(x, alpha=0.1), [-1.0, 0.0, 2.0], [0.1, 0.1, 1.0]),
    "relu6 at 0 and 6": (lambda x: K.relu(x, max_value=6), [0.0, 3.0, 6.0, 7.0],
                         [0.0, 1.0, 0.0, 0.0]),
    "relu max_value=4 at 0 and 4": (lambda x: K.relu(x, max_value=4.0), [0.0, 3.0, 4.0, 5.0],
                                    [0.0, 1.0, 1.0, 0.0]),
    "relu alpha with max_value=inf at 0": (  # relu + clip_by_value, not leaky_relu
        lambda x: K.relu(x, alpha=0.1, max_value=float("inf")), [-1.0, 0.0, 2.0],
        [0.1, 0.0, 1.0]),
    "relu6 with alpha at 0": (lambda x: K.relu(x, alpha=0.1, max_value=6), [-1.0, 0.0, 6.0],
                              [0.1, 0.0, 0.0]),
    "relu threshold at 1": (lambda x: K.relu(x, threshold=1.0), [0.0, 1.0, 2.0],
                            [0.0, 0.0, 1.0]),
    "relu threshold and alpha at 1": (lambda x: K.relu(x, alpha=0.1, threshold=1.0),
                                      [0.0, 1.0, 2.0], [0.1, 0.0, 1.0]),
    "hard_sigmoid at -2.5 and 2.5": (K.hard_sigmoid, [-3.0, -2.5, 0.0, 2.5, 3.0],
                                     [0.0, 0.2, 0.2, 0.2, 0.0]),
    "elu at 0": (K.elu, [-1.0, 0.0, 1.0], [E1, 1.0, 1.0]),
    "elu alpha=0.5 at 0": (lambda x: K.elu(x, 0.5), [-1.0, 0.0, 1.0], [0.5 * E1, 0.5, 1.0]),
    "softplus at 0": (K.softplus, [0.0], [0.5]),
    "abs at 0": (K.abs, [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]),
    "clip at its bounds": (lambda x: K.clip(x, 0.0, 1.0), [-1.0, 0.0, 0.5, 1.0, 2.0],
                           [0.0, 1.0, 1.0, 1.0, 0.0]),
    "clip at array bounds": (lambda x: K.clip(x, np.array([0.0, 0.0, 0.0]),
                                              np.array([1.0, 2.0, 2.0])),
                             [-1.0, 2.0, 3.0], [0.0, 1.0, 0.0]),
    "maximum tie goes to x": (lambda x: K.maximum(x, _const([1.0, 1.0, 1.0])),
                              [1.0, 0.0, 2.0], [1.0, 0.0, 1.0]),
    "maximum tie leaves y": (lambda x: K.maximum(_const([1.0, 1.0, 1.0]), x),
                             [1.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    "minimum tie goes to x": (lambda x: K.minimum(x, _const([1.0, 1.0, 1.0])),
                              [1.0, 2.0, 0.0], [1.0, 0.0, 1.0]),
    "max reduction shares ties": (lambda x: K.max(x), [3.0, 1.0, 3.0], [0.5, 0.0, 0.5]),
    "min reduction shares ties": (lambda x: K.min(x, axis=-1), [[1.0, 2.0, 1.0], [0.0, 5.0, 6.0]],
                                  [[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]]),
    "max pooling tie goes to the first": (
        lambda x: K.pool2d(x, (2, 2)),
        np.array([[1.0, 1.0], [0.0, 1.0]]).reshape(1, 2, 2, 1),
        np.array([[1.0, 0.0], [0.0, 0.0]]).reshape(1, 2, 2, 1)),
    "max pooling overlapping windows": (
        # windows [[2,2],[2,2]] and [[2,1],[2,0]] (stride 1): each sends 1 to its first max
        lambda x: K.pool2d(x, (2, 2), strides=(1, 1)),
        np.array([[2.0, 2.0, 1.0], [2.0, 2.0, 0.0]]).reshape(1, 2, 3, 1),
        np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]).reshape(1, 2, 3, 1)),
    "l2_normalize of a zero row": (lambda x: K.l2_normalize(x, axis=-1), [[0.0, 0.0]],
                                   [[1e6, 1e6]]),
}

# Second order (the diagonal of the Hessian, for elementwise functions) where the function is
# twice differentiable at the point.
SECOND_ORDER = {
    "binary_crossentropy from logits at 0": (
        lambda x: K.binary_crossentropy(_const([1.0, 0.0]), x, from_logits=True),
        [0.0, 0.0], [0.25, 0.25]),
    "softplus at 0": (K.softplus, [0.0], [0.25]),
    "sigmoid at 0": (K.sigmoid, [0.0, 1.0],
                     [0.0, (1 / (1 + E1)) * (E1 / (1 + E1)) * (1 - 2 / (1 + E1))]),
    "leaky relu is piecewise linear": (lambda x: K.relu(x, alpha=0.1), [-1.0, 0.0, 2.0],
                                       [0.0, 0.0, 0.0]),
}

# The CUDA kernels run on the GPU where there is one (marked `gpu`: bench/gpu_check.sh runs
# them there, where the real compiler may contract multiply-adds), else under the simulator.
PATHS = ["numpy", "twin", *(GPU or SIM)]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """The NumPy path (small arrays), the Numba CPU twins (threshold lowered to 0), and the
    CUDA kernels (on the GPU, or under the simulator)."""
    if request.param == "twin":
        monkeypatch.setattr(launch, "cpu_twin_min_size", 0)
    with K.device(request.param if request.param in ("gpu", "sim") else "cpu"):
        yield request.param


def _first_order(f, x, graph: bool):
    if graph:
        p = K.placeholder(shape=x.shape, dtype=x.dtype)
        return K.function([p], K.gradients(K.sum(f(p)), [p]))([x])[0]
    v = K.variable(x, dtype=x.dtype)
    return K.eval(K.gradients(K.sum(f(v)), [v])[0])


def _second_order(f, x, graph: bool):
    source = K.placeholder(shape=x.shape, dtype=x.dtype) if graph else K.variable(x)
    (g,) = K.gradients(K.sum(f(source)), [source])
    (h,) = K.gradients(K.sum(g), [source])
    return K.function([source], [h])([x])[0] if graph else K.eval(h)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(KINKS))
def test_first_order_gradient_at_the_kink(name, dtype, graph, path):
    f, points, want = KINKS[name]
    K.set_floatx(dtype)  # targets and constants in the same dtype
    got = _first_order(f, np.asarray(points, dtype=dtype), graph)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, np.asarray(want, dtype=np.float64),
                               rtol=1e-6 if dtype == "float32" else 1e-12, atol=1e-7)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_order_gradient_at_the_kink(name, dtype, graph, path):
    f, points, want = SECOND_ORDER[name]
    K.set_floatx(dtype)
    got = _second_order(f, np.asarray(points, dtype=dtype), graph)
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-12,
                               atol=1e-7)


def test_zero_initialised_logistic_regression_takes_the_keras_first_step():
    """The whole point: with w = 0, the first gradient of the mean binary crossentropy is
    X^T (sigmoid(0) - y) / n = X^T (0.5 - y) / n, not -X^T y / n."""
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    y = np.array([[1.0], [0.0], [1.0]])
    w = K.variable(np.zeros((2, 1)), dtype="float64")
    logits = K.dot(K.constant(x, "float64"), w)
    loss = K.mean(K.binary_crossentropy(K.constant(y, "float64"), logits, from_logits=True))
    np.testing.assert_allclose(K.eval(K.gradients(loss, [w])[0]), x.T @ (0.5 - y) / 3,
                               rtol=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
@pytest.mark.parametrize("large", [False, True])  # on the CPU: NumPy's formula; the CPU twin
def test_elu_keeps_the_sign_of_zero(kernel_device, large, alpha):
    """tf.nn.elu is `x < 0 ? expm1(x) : x`, so elu(-0.0) is -0.0 and elu(+0.0) is +0.0; Keras 2
    scales by alpha where `x > 0` fails: alpha * -0.0 is still -0.0."""
    size = (1 << 16 if kernel_device != "sim" else 64) if large else 3  # the simulator is slow
    x = np.zeros(size, np.float32)
    x[::2] = -0.0
    got = K.eval(K.elu(K.constant(x), alpha))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(x))
    np.testing.assert_array_equal(got, 0.0)
    p = K.placeholder(shape=(size,))
    fused = K.function([p], [K.elu(p * 1.0, alpha)])([x])[0]  # fused from 2K elements
    np.testing.assert_array_equal(np.signbit(fused), np.signbit(x))
