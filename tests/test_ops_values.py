"""Forward values of the walkthrough ops against NumPy float64 formulas, with Keras's edge cases."""
import numpy as np
import pytest

import gpubk as K


def f64(a):
    return K.constant(a, dtype="float64")


@pytest.mark.parametrize("name", ["sum", "prod", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), [1]])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(name, axis, keepdims, device, rng):
    a = rng.standard_normal((3, 4, 5))
    got = K.eval(getattr(K, name)(f64(a), axis=axis, keepdims=keepdims))
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    want = getattr(np, name)(a, axis=np_axis, keepdims=keepdims)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_reduction_axis_out_of_range_and_bool_mean(device):
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range for a tensor of rank 2"):
        K.sum(K.ones((2, 3)), axis=2)
    m = K.mean(K.constant([True, False, True, True], dtype="bool"))
    assert K.dtype(m) == "float32" and float(m) == 0.75


@pytest.mark.parametrize("xs,ys", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3), (4, 3, 5)),
                                   ((2, 3, 4), (5, 4, 6)), ((1, 1), (1, 2))])
def test_dot_follows_keras_nd_rule(xs, ys, device, rng):
    a, b = rng.standard_normal(xs), rng.standard_normal(ys)
    got = K.eval(K.dot(f64(a), f64(b)))
    want = np.tensordot(a, b, axes=([-1], [-2]))  # x.shape[:-1] + y.shape[:-2] + y.shape[-1:]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_dot_shapes_documented_by_keras(device):
    assert K.int_shape(K.dot(K.ones((2, 3, 4)), K.ones((4, 5)))) == (2, 3, 5)
    assert K.int_shape(K.dot(K.ones((2, 3)), K.ones((4, 3, 5)))) == (2, 4, 5)


def test_dot_errors(device):
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 3\) \(float32\) and \(4, 5\)"):
        K.dot(K.ones((2, 3)), K.ones((4, 5)))
    with pytest.raises(ValueError, match="dot.*rank >= 2"):
        K.dot(K.ones((3,)), K.ones((3, 2)))


def test_matmul_vectors(device, rng):
    a, b = rng.standard_normal(4), rng.standard_normal((3, 4, 2))
    np.testing.assert_allclose(K.eval(K.matmul(f64(a), f64(b))), a @ b, rtol=1e-12)
    np.testing.assert_allclose(K.eval(K.matmul(f64(b[0].T), f64(b[0, :, 0]))),
                               b[0].T @ b[0, :, 0], rtol=1e-12)
    np.testing.assert_allclose(float(K.matmul(f64(a), f64(a))), a @ a, rtol=1e-12)


def test_transpose_permute_reshape(device, rng):
    a = rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(K.eval(K.transpose(f64(a))), a.T)
    np.testing.assert_array_equal(K.eval(K.permute_dimensions(f64(a), (1, 0, 2))),
                                  a.transpose(1, 0, 2))
    np.testing.assert_array_equal(K.eval(K.reshape(f64(a), (4, -1))), a.reshape(4, -1))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3, 4\)"):
        K.reshape(f64(a), (5, 5))
    with pytest.raises(ValueError, match="permute_dimensions"):
        K.permute_dimensions(f64(a), (0, 0, 1))


def test_tile_follows_tf_tile(device):
    np.testing.assert_array_equal(K.eval(K.tile(K.eye(2), (2, 3))), np.tile(np.eye(2), (2, 3)))
    np.testing.assert_array_equal(K.eval(K.tile(K.constant([1.0, 2.0]), 3)),
                                  [1, 2, 1, 2, 1, 2])
    with pytest.raises(ValueError, match="tile: n=2 has 1 entries but x has shape"):
        K.tile(K.eye(2), 2)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_repeat_elements(axis, device, rng):
    a = rng.standard_normal((2, 3))
    np.testing.assert_array_equal(K.eval(K.repeat_elements(f64(a), 3, axis)),
                                  np.repeat(a, 3, axis=axis))


def test_concatenate(device, rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 5))
    np.testing.assert_array_equal(K.eval(K.concatenate([f64(a), f64(b)])),
                                  np.concatenate([a, b], axis=-1))
    np.testing.assert_array_equal(K.eval(K.concatenate([f64(a), f64(a)], axis=0)),
                                  np.concatenate([a, a], axis=0))
    with pytest.raises(ValueError, match=r"concatenate: shapes \[\(2, 3\), \(2, 5\)\] differ"):
        K.concatenate([f64(a), f64(b)], axis=0)
    with pytest.raises(ValueError, match="concatenate: axis 2 is out of range"):
        K.concatenate([f64(a), f64(a)], axis=2)


def test_stack_list_and_single_tensor(device, rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    np.testing.assert_array_equal(K.eval(K.stack([f64(a), f64(b)], axis=1)),
                                  np.stack([a, b], axis=1))
    c = rng.standard_normal((3, 4, 5))
    np.testing.assert_array_equal(K.eval(K.stack(f64(c))), c)  # tf.stack unstacks first
    np.testing.assert_array_equal(K.eval(K.stack(f64(c), axis=1)), np.stack(list(c), axis=1))
    np.testing.assert_array_equal(K.eval(K.stack(f64(c), axis=-1)), np.stack(list(c), axis=-1))
    with pytest.raises(ValueError, match="stack: tensors of shapes"):
        K.stack([f64(a), f64(c)])


def _softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax(axis, kernel_device, rng):
    a = rng.standard_normal((3, 4, 5))
    got = K.eval(K.softmax(f64(a), axis=axis))
    np.testing.assert_allclose(got, _softmax(a, axis), rtol=1e-12)


def test_softmax_huge_logits_and_rank1(kernel_device):
    a = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0]], dtype=np.float32)
    got = K.eval(K.softmax(K.constant(a)))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
    with pytest.raises(ValueError, match=r"softmax.*shape \(3,\)"):
        K.softmax(K.constant([1.0, 2.0, 3.0]))


def _cce_probabilities(t, p, axis=-1, eps=1e-7):
    p = p / p.sum(axis=axis, keepdims=True)
    p = np.clip(p, eps, 1 - eps)
    return -(t * np.log(p)).sum(axis=axis)


def _cce_logits(t, z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return -(t * logp).sum(axis=axis)


def test_crossentropy_unnormalised_and_clipped(kernel_device, rng):
    t = np.eye(4)[[0, 2, 3]]
    p = rng.uniform(0, 3, (3, 4))
    p[0, 0] = 0.0  # clipped to epsilon
    got = K.eval(K.categorical_crossentropy(f64(t), f64(p)))
    np.testing.assert_allclose(got, _cce_probabilities(t, p), rtol=1e-12)


def test_crossentropy_from_logits_and_axis0(kernel_device, rng):
    t = rng.dirichlet(np.ones(5), size=3)
    z = rng.standard_normal((3, 5)) * 10
    np.testing.assert_allclose(K.eval(K.categorical_crossentropy(f64(t), f64(z), True)),
                               _cce_logits(t, z), rtol=1e-10)
    np.testing.assert_allclose(K.eval(K.categorical_crossentropy(f64(t.T), f64(z.T), axis=0)),
                               _cce_probabilities(t.T, z.T, axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        K.eval(K.categorical_crossentropy(f64(t.T), f64(z.T), from_logits=True, axis=0)),
        _cce_logits(t.T, z.T, axis=0), rtol=1e-10)


def test_crossentropy_of_softmax_takes_the_logits_path(kernel_device):
    z = np.array([[40.0, 0.0, -40.0]])  # softmax underflows to 0, which the clip would hide
    t = np.array([[0.0, 0.0, 1.0]])
    got = K.eval(K.categorical_crossentropy(f64(t), K.softmax(f64(z))))
    np.testing.assert_allclose(got, _cce_logits(t, z), rtol=1e-12)  # 80, not -log(1e-7) = 16
    with pytest.warns(UserWarning, match="softmax"):
        K.categorical_crossentropy(f64(t), K.softmax(f64(z)), from_logits=True)


def test_crossentropy_list_target_is_stacked(device):
    target = [K.zeros((3, 3)), K.ones((3, 3)), K.ones((3, 3))]
    got = K.eval(K.categorical_crossentropy(target, K.eye(3)))
    t = np.stack([np.zeros((3, 3)), np.ones((3, 3)), np.ones((3, 3))])
    np.testing.assert_allclose(got, _cce_probabilities(t, np.eye(3, dtype=np.float32)),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="categorical_crossentropy: target shape"):
        K.categorical_crossentropy(K.ones((2, 3)), K.ones((4, 5)))


@pytest.mark.parametrize("dtype", ["float32", "int32", "float64"])
def test_cast(dtype, device):
    x = K.constant([1.7, -2.2])
    y = K.cast(x, dtype)
    assert K.dtype(y) == dtype
    np.testing.assert_array_equal(K.eval(y), np.array([1.7, -2.2], np.float32).astype(dtype))
    with pytest.raises(TypeError, match="cast: unknown dtype"):
        K.cast(x, "complex256")


@pytest.mark.parametrize("fn,ref,low", [
    (K.exp, np.exp, -3.0), (K.log, np.log, 0.1), (K.sqrt, np.sqrt, 0.1),
    (K.square, np.square, -3.0), (K.abs, np.abs, -3.0), (K.sign, np.sign, -3.0),
    (K.negative, np.negative, -3.0)])
def test_unary_math(fn, ref, low, device, rng):
    a = rng.uniform(low, 3.0, (4, 3))
    np.testing.assert_allclose(K.eval(fn(f64(a))), ref(a), rtol=1e-12)


def test_pow_and_clip(device, rng):
    a = rng.uniform(0.1, 3.0, (4, 3))
    np.testing.assert_allclose(K.eval(K.pow(f64(a), 2.5)), a ** 2.5, rtol=1e-12)
    np.testing.assert_allclose(K.eval(K.clip(f64(a), 0.5, 2.0)), np.clip(a, 0.5, 2.0))
    np.testing.assert_allclose(K.eval(K.clip(f64(a), 2.0, 0.5)), np.full_like(a, 2.0))
    np.testing.assert_allclose(K.eval(K.clip(f64(a), None, 1.0)), np.minimum(a, 1.0))


def _relu_reference(x, alpha=0.0, max_value=None, threshold=0.0):
    """Keras 2's definition, piece by piece."""
    y = np.where(x > threshold, x, 0.0)
    if max_value is not None:
        y = np.clip(y, 0.0, max_value)
    return y - alpha * np.maximum(threshold - x, 0.0)


ACTIVATION_REFERENCES = [
    (K.relu, {}, _relu_reference),
    (K.relu, {"alpha": 0.2}, lambda x: np.where(x > 0, x, 0.2 * x)),
    (K.relu, {"max_value": 6.0}, lambda x: np.clip(x, 0, 6)),
    (K.relu, {"alpha": 0.1, "max_value": 2.0, "threshold": -1.0},
     lambda x: _relu_reference(x, 0.1, 2.0, -1.0)),
    (K.relu, {"threshold": 0.5}, lambda x: np.where(x > 0.5, x, 0.0)),
    (K.sigmoid, {}, lambda x: 1 / (1 + np.exp(-x))),
    (K.hard_sigmoid, {}, lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    (K.tanh, {}, np.tanh),
    (K.elu, {}, lambda x: np.where(x > 0, x, np.expm1(x))),
    (K.elu, {"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (K.softplus, {}, lambda x: np.logaddexp(0, x)),
    (K.softsign, {}, lambda x: x / (1 + np.abs(x))),
]


@pytest.mark.parametrize("fn,kwargs,ref", ACTIVATION_REFERENCES)
def test_activations(fn, kwargs, ref, kernel_device, rng):
    a = np.concatenate([rng.uniform(-8, 8, 20), [0.0, -1e-4, 1e-4, 40.0, -40.0, 100.0]])
    np.testing.assert_allclose(K.eval(fn(f64(a), **kwargs)), ref(a), rtol=1e-12, atol=1e-300)
    got32 = K.eval(fn(K.constant(a), **kwargs))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, ref(a.astype(np.float32).astype(np.float64)),
                               rtol=2e-6, atol=1e-7)
