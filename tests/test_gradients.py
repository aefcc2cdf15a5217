"""Every differentiable op's gradient against central finite differences in float64."""
import numpy as np
import pytest

import gpubk as K
from gradcheck import check_gradients

BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((1,), (2, 3)),
                    ((), (2, 2))]


@pytest.mark.parametrize("shapes", BROADCAST_SHAPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "pow", "mod"])
def test_binary_ops_with_broadcasting(op, shapes, device, rng):
    a = rng.uniform(0.5, 2.0, shapes[0])
    b = rng.uniform(0.5, 2.0, shapes[1])
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
          "truediv": lambda x, y: x / y, "pow": lambda x, y: x ** y,
          "mod": lambda x, y: x % y}[op]
    check_gradients(fn, [a, b])


@pytest.mark.parametrize("fn,low", [
    (K.exp, -2.0), (K.log, 0.2), (K.sqrt, 0.2), (K.square, -2.0), (K.abs, -2.0),
    (K.negative, -2.0), (lambda x: K.clip(x, -0.5, 0.7), -2.0),
    (lambda x: K.print_tensor(x, "t"), -2.0)])
def test_unary_ops(fn, low, device, rng, capsys):
    a = rng.uniform(low, 2.0, (3, 4))
    a[np.abs(a) < 0.05] = 0.3  # keep finite differences away from the kinks of abs and clip
    a[np.abs(a + 0.5) < 0.01] = 0.3
    a[np.abs(a - 0.7) < 0.01] = 0.3
    check_gradients(fn, [a], atol=1e-6)


def test_cast_between_floats_passes_the_gradient_in_the_source_dtype(device, rng):
    w = rng.standard_normal(5)
    x = K.variable(rng.standard_normal(5), dtype="float64")
    y = K.cast(x, "float32")
    g = K.gradients(K.sum(y * K.constant(w, dtype="float32")), [x])[0]
    assert K.dtype(g) == "float64"
    np.testing.assert_allclose(K.eval(g), w.astype(np.float32), rtol=1e-7)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, False), ((0, 2), True), (-1, True)])
def test_reductions(name, axis, keepdims, device, rng):
    a = rng.uniform(0.5, 1.5, (2, 3, 4))
    check_gradients(lambda x: getattr(K, name)(x, axis=axis, keepdims=keepdims) * 1.5, [a])


def test_max_splits_the_gradient_among_ties(device):
    x = K.variable([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], dtype="float64")
    g = K.gradients(K.sum(K.max(x, axis=1)), [x])[0]
    np.testing.assert_array_equal(K.eval(g), [[0, 0.5, 0.5], [1, 0, 0]])


@pytest.mark.parametrize("values", [[[2.0, 0.0, 3.0], [0.0, 0.0, 5.0]],
                                    [[2.0, 4.0, 3.0], [1.0, 0.5, 5.0]]])
def test_prod_with_zeros(values, device):
    a = np.array(values)
    check_gradients(lambda x: K.prod(x, axis=1), [a])
    check_gradients(lambda x: K.prod(x), [a])


@pytest.mark.parametrize("xs,ys", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3), (4, 3, 5)),
                                   ((2, 3, 4), (5, 4, 2))])
def test_dot_every_nd_case(xs, ys, device, rng):
    check_gradients(K.dot, [rng.standard_normal(xs), rng.standard_normal(ys)])


@pytest.mark.parametrize("xs,ys", [((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)),
                                   ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_broadcast_and_vectors(xs, ys, device, rng):
    check_gradients(K.matmul, [rng.standard_normal(xs), rng.standard_normal(ys)])


@pytest.mark.parametrize("fn", [
    K.transpose,
    lambda x: K.permute_dimensions(x, (2, 0, 1)),
    lambda x: K.reshape(x, (4, -1)) * K.constant(np.arange(6.0), dtype="float64"),
    lambda x: K.tile(x, (2, 1, 3)),
    lambda x: K.repeat_elements(x, 2, axis=1),
    lambda x: K.repeat_elements(x, 3, axis=0),
    lambda x: K.concatenate([x, x * 2.0, K.ones_like(x)], axis=1),
    lambda x: K.stack([x, x * x], axis=1),
    lambda x: K.stack(x, axis=2),
    lambda x: K.expand_dims(x, 1) * 2.0,
    lambda x: x[1:, ::-2] * x[:1, 1:],
    lambda x: x[[0, 1, 0], :, [2, 2, 2]],   # repeated indices accumulate
    lambda x: x[x > 0.0],
])
def test_shape_ops(fn, device, rng):
    a = rng.standard_normal((2, 3, 4))
    check_gradients(lambda x: fn(x) * K.constant(
        np.random.default_rng(0).standard_normal(K.int_shape(fn(x))), dtype="float64"), [a])


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax(axis, kernel_device, rng):
    weights = rng.standard_normal((2, 3, 4))
    check_gradients(lambda x: K.softmax(x, axis=axis) * K.constant(weights, dtype="float64"),
                    [rng.standard_normal((2, 3, 4))])


def test_log_softmax(kernel_device, rng):
    weights = rng.standard_normal((3, 5))
    check_gradients(lambda x: K.log_softmax(x) * K.constant(weights, dtype="float64"),
                    [rng.standard_normal((3, 5))])


@pytest.mark.parametrize("axis", [-1, 0])
def test_crossentropy_from_probabilities(axis, kernel_device, rng):
    t = rng.dirichlet(np.ones(4), size=3)
    p = rng.uniform(0.1, 1.0, (3, 4))
    t, p = (t.T, p.T) if axis == 0 else (t, p)
    check_gradients(lambda t, p: K.categorical_crossentropy(t, p, axis=axis), [t, p])


@pytest.mark.parametrize("axis", [-1, 0])
def test_crossentropy_from_logits(axis, kernel_device, rng):
    t = rng.dirichlet(np.ones(4), size=3) * 1.3  # soft, and not summing to 1
    z = rng.standard_normal((3, 4)) * 3
    t, z = (t.T, z.T) if axis == 0 else (t, z)
    check_gradients(lambda t, z: K.categorical_crossentropy(t, z, True, axis=axis), [t, z])


def test_crossentropy_logits_gradient_is_softmax_minus_target(kernel_device, rng):
    t = np.eye(5)[[1, 4, 0]]
    z = rng.standard_normal((3, 5))
    logits = K.variable(z, dtype="float64")
    loss = K.categorical_crossentropy(K.constant(t, dtype="float64"), K.softmax(logits))
    g = K.gradients(K.sum(loss), [logits])[0]
    e = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(K.eval(g), e / e.sum(1, keepdims=True) - t, rtol=1e-12)


def test_clipped_crossentropy_passes_no_gradient_where_clipped(kernel_device):
    p = K.variable([[1.0, 0.0, 0.0]], dtype="float64")
    t = K.constant([[0.0, 1.0, 0.0]], dtype="float64")
    g = K.eval(K.gradients(K.sum(K.categorical_crossentropy(t, p)), [p])[0])
    assert np.all(np.isfinite(g))
    assert g[0, 1] == 0.0  # p[1] = 0 was clipped up to epsilon: no gradient through the clip


def test_non_differentiable_ops_pass_no_gradient(device):
    x = K.variable([1.5, -2.0, 0.5], dtype="float64")
    for out in (K.cast(x > 0, "float64"), K.cast(x, "int32"), x // 1.0, K.sign(x)):
        assert not out.requires_grad
        assert K.gradients(K.sum(K.cast(out, "float64")), [x]) == [None]


ACTIVATIONS = [
    (K.relu, {}), (K.relu, {"alpha": 0.2}), (K.relu, {"max_value": 0.8}),
    (K.relu, {"threshold": 0.3}), (K.relu, {"alpha": 0.1, "max_value": 1.2, "threshold": -0.4}),
    (K.sigmoid, {}), (K.hard_sigmoid, {}), (K.tanh, {}), (K.elu, {}), (K.elu, {"alpha": 0.5}),
    (K.softplus, {}), (K.softsign, {}),
]


@pytest.mark.parametrize("fn,kwargs", ACTIVATIONS)
def test_activations(fn, kwargs, kernel_device, rng):
    a = rng.uniform(-3.0, 3.0, (3, 5))
    for kink in (0.0, 0.3, -0.4, 0.8, 1.2, -2.5, 2.5):  # keep finite differences off the kinks
        a[np.abs(a - kink) < 0.02] += 0.05
    check_gradients(lambda x: fn(x, **kwargs) * K.constant(np.linspace(-1, 2, 5), "float64"),
                    [a], atol=1e-6)
