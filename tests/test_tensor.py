"""Tensor and Variable: operators, indexing, metadata, conversions, devices."""
import numpy as np
import pytest

import gpubk as K


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow"])
def test_binary_operators_match_numpy_with_broadcasting(op, device, rng):
    a = rng.uniform(0.5, 2.0, (3, 1, 4))
    b = rng.uniform(0.5, 2.0, (5, 1))
    x, y = K.constant(a, dtype="float64"), K.constant(b, dtype="float64")
    fn = {"add": lambda p, q: p + q, "sub": lambda p, q: p - q, "mul": lambda p, q: p * q,
          "truediv": lambda p, q: p / q, "floordiv": lambda p, q: p // q,
          "mod": lambda p, q: p % q, "pow": lambda p, q: p ** q}[op]
    np.testing.assert_allclose(K.eval(fn(x, y)), fn(a, b), rtol=1e-12)
    np.testing.assert_allclose(K.eval(fn(x, 1.5)), fn(a, 1.5), rtol=1e-12)
    np.testing.assert_allclose(K.eval(fn(1.5, y)), fn(1.5, b), rtol=1e-12)
    np.testing.assert_allclose(K.eval(fn(a, y)), fn(a, b), rtol=1e-12)


def test_matmul_operator_and_unary(device, rng):
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    x, y = K.constant(a, dtype="float64"), K.constant(b, dtype="float64")
    np.testing.assert_allclose(K.eval(x @ y), a @ b, rtol=1e-12)
    np.testing.assert_allclose(K.eval(-x), -a)
    np.testing.assert_allclose(K.eval(abs(x)), np.abs(a))
    np.testing.assert_allclose(K.eval(+x), a)


def test_comparisons_are_boolean(device):
    x = K.constant([1.0, 2.0, 3.0])
    for got, want in ((x < 2, [True, False, False]), (x <= 2, [True, True, False]),
                      (x > 2, [False, False, True]), (x >= 2, [False, True, True]),
                      (x == 2, [False, True, False]), (x != 2, [True, False, True])):
        assert K.dtype(got) == "bool"
        assert K.eval(got).tolist() == want


def test_scalars_keep_the_tensor_dtype(device):
    x = K.constant([1.0, 2.0])
    assert K.dtype(x * 2.5) == "float32" and K.dtype(2 + x) == "float32"
    assert K.dtype(x + np.array([1.0, 1.0])) == "float32"
    i = K.constant([1, 2], dtype="int32")
    assert K.dtype(i + 1) == "int32"
    assert K.dtype(K.constant([1.0], dtype="float64") + x) == "float64"  # NumPy promotion


def test_indexing_and_slicing(device, rng):
    a = rng.standard_normal((4, 5, 6))
    x = K.constant(a, dtype="float64")
    for key in (1, -1, slice(None, None, 2), (slice(1, None), -2),
                (Ellipsis, slice(None, None, -2)), (None, 0), ([0, 2, 2], slice(1, 3)),
                a[:, 0, 0] > 0):
        np.testing.assert_array_equal(K.eval(x[key]), a[key])
    np.testing.assert_array_equal(K.eval(x[K.constant([3, 1], dtype="int32")]), a[[3, 1]])
    with pytest.raises(IndexError, match=r"getitem.*\(4, 5, 6\)"):
        x[7]


def test_metadata_len_array_and_repr(device):
    x = K.variable(np.arange(6.0).reshape(2, 3), name="w")
    assert x.shape == (2, 3) and x.ndim == 2 and x.dtype == np.float32 and len(x) == 2
    arr = np.asarray(x)
    assert isinstance(arr, np.ndarray) and arr.tolist() == [[0, 1, 2], [3, 4, 5]]
    text = repr(x)
    assert "'w'" in text and "shape=(2, 3)" in text and "float32" in text
    assert f"device={K.get_device()}" in text
    assert "shape=()" in repr(K.sum(x))
    with pytest.raises(TypeError, match="len"):
        len(K.sum(x))
    assert [K.eval(row).tolist() for row in x] == [[0, 1, 2], [3, 4, 5]]
    assert float(K.sum(x)) == 15.0


def test_broadcast_error_names_op_shapes_and_dtypes(device):
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) \(float32\) and \(4,\)"):
        K.ones((2, 3)) + K.ones((4,))


def test_variable_assign_checks_shape_and_dtype(device):
    v = K.variable(np.zeros(3))
    v.assign(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="assign.*shape"):
        v.assign(np.zeros(4))
    i = K.variable(np.zeros(2), dtype="int32")
    with pytest.raises(TypeError, match="int32"):
        i.assign(np.array([0.5, 1.5]))
    np.testing.assert_array_equal(K.eval(v), [1, 2, 3])
    v.trainable = False
    assert not v.requires_grad


def test_device_scope_and_default():
    assert K.get_device() in ("cpu", "gpu:0")
    with K.device("cpu"):
        assert K.get_device() == "cpu"
        assert K.ones((1,)).device.name == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        with K.device("tpu"):
            pass


def test_to_device_copies(device):
    x = K.variable(np.ones(3), name="v")
    y = K.to_device(x, "cpu")
    assert isinstance(y, K.Variable) and y.name == "v" and y.device.name == "cpu"
    K.set_value(x, np.zeros(3))
    np.testing.assert_array_equal(K.eval(y), np.ones(3))
