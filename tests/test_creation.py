"""Creating tensors and variables, reading and writing their values."""
import numpy as np
import pytest

import gpubk as K


def test_variable_copies_value_and_defaults_to_floatx(device):
    value = np.arange(6.0).reshape(2, 3)
    v = K.variable(value, name="w")
    value[0, 0] = 100.0
    assert isinstance(v, K.Variable) and v.name == "w" and v.trainable
    assert K.dtype(v) == "float32" and K.get_device() == v.device.name
    np.testing.assert_array_equal(K.eval(v), np.arange(6.0).reshape(2, 3))
    assert K.dtype(K.variable([[1, 2]], dtype="int32")) == "int32"


def test_fills_are_variables_with_keras_values(device):
    for fn, want in ((K.zeros, np.zeros((2, 3))), (K.ones, np.ones((2, 3)))):
        v = fn((2, 3))
        assert isinstance(v, K.Variable)
        np.testing.assert_array_equal(K.eval(v), want)
    e = K.eye(3, dtype="float64")
    assert isinstance(e, K.Variable) and K.dtype(e) == "float64"
    np.testing.assert_array_equal(K.eval(e), np.eye(3))
    np.testing.assert_array_equal(K.eval(K.eye((2, 4))), np.eye(2, 4))


def test_like_and_constant(device):
    x = K.variable(np.ones((2, 2)), dtype="float64")
    z = K.zeros_like(x)
    assert not isinstance(z, K.Variable) and K.dtype(z) == "float64"
    np.testing.assert_array_equal(K.eval(K.ones_like(x, dtype="int32")), np.ones((2, 2)))
    assert K.dtype(K.ones_like(x, dtype="int32")) == "int32"
    np.testing.assert_array_equal(K.eval(K.constant(2.5, shape=(2, 3))), np.full((2, 3), 2.5))
    np.testing.assert_array_equal(K.eval(K.constant([1, 2, 3, 4], shape=(2, 2))),
                                  [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="constant"):
        K.constant([1, 2, 3], shape=(2, 2))


def test_random_variables_are_seeded(device):
    u1 = K.eval(K.random_uniform_variable((200, 50), low=-2, high=3, seed=7))
    u2 = K.eval(K.random_uniform_variable((200, 50), low=-2, high=3, seed=7))
    np.testing.assert_array_equal(u1, u2)
    assert u1.dtype == np.float32 and u1.min() >= -2 and u1.max() < 3
    assert abs(u1.mean() - 0.5) < 0.05  # mean of U(-2, 3), 10,000 draws
    n = K.eval(K.random_normal_variable((200, 50), mean=1.0, scale=2.0, seed=3))
    assert abs(n.mean() - 1.0) < 0.1 and abs(n.std() - 2.0) < 0.1
    assert not np.array_equal(n, K.eval(K.random_normal_variable((200, 50), 1.0, 2.0, seed=4)))


def test_set_value_and_failed_set_value_changes_nothing(device):
    v = K.variable(np.zeros((2, 2)))
    K.set_value(v, np.array([[1, 2], [3, 4]]))
    np.testing.assert_array_equal(K.get_value(v), [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"set_value.*\(2, 2\).*\(3,\)"):
        K.set_value(v, np.ones(3))
    with pytest.raises(TypeError, match="set_value"):
        K.set_value(v, np.array([["a", "b"], ["c", "d"]]))
    np.testing.assert_array_equal(K.get_value(v), [[1, 2], [3, 4]])
    K.batch_set_value([(v, np.full((2, 2), 5.0))])
    assert [a.tolist() for a in K.batch_get_value([v])] == [[[5.0, 5.0], [5.0, 5.0]]]


def test_bad_values_and_dtypes_name_the_function():
    with pytest.raises(TypeError, match="variable: cannot convert str"):
        K.variable("abc")
    with pytest.raises(TypeError, match="sqrt: expected a numeric value"):
        K.sqrt(np.array(["a"]))
    with pytest.raises(TypeError, match="variable: unknown dtype 'floaty'"):
        K.variable(1.0, dtype="floaty")
    with pytest.raises(TypeError, match="set_floatx"):
        K.set_floatx("nope")
    with pytest.raises(ValueError, match="set_floatx"):
        K.set_floatx("int32")


def test_floatx_and_epsilon_settings():
    assert K.floatx() == "float32" and K.epsilon() == 1e-7
    K.set_floatx("float64")
    assert K.dtype(K.variable(1.0)) == "float64"
    K.set_epsilon(1e-5)
    assert K.epsilon() == 1e-5
    arr = K.cast_to_floatx(np.array([1.0, 2.0], dtype="float32"))
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64


def test_cast_to_floatx_returns_numpy_for_host_values():
    out = K.cast_to_floatx(np.array([1.0, 2.0]))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [1.0, 2.0])
    t = K.cast_to_floatx(K.constant([1, 2], dtype="int32"))
    assert isinstance(t, K.Tensor) and K.dtype(t) == "float32"


def test_placeholders_report_shape_and_refuse_values():
    p = K.placeholder(shape=(None, 4, 5), name="x")
    assert K.int_shape(p) == (None, 4, 5) and K.ndim(p) == 3 and K.dtype(p) == "float32"
    assert "x" in repr(p) and "(None, 4, 5)" in repr(p)
    assert K.int_shape(K.placeholder(ndim=2, dtype="int32")) == (None, None)
    assert K.is_tensor(p)
    with pytest.raises(TypeError, match=r"eval: 'x' depends on placeholder 'x' \(shape "
                                         r"\(None, 4, 5\)\).*K.function"):
        K.eval(p)
    with pytest.raises(ValueError, match="placeholder"):
        K.placeholder()


def test_queries(device):
    x = K.zeros((21, 10))
    assert K.count_params(x) == 210 and isinstance(K.count_params(x), np.integer)
    assert K.int_shape(x) == (21, 10) and K.ndim(x) == 2
    s = K.shape(x)
    assert K.dtype(s) == "int32" and K.eval(s).tolist() == [21, 10]
    assert K.is_tensor(x) and not K.is_tensor(np.zeros(2))
    with pytest.raises(TypeError, match="int_shape"):
        K.int_shape([1, 2])


def test_print_tensor_prints_and_returns_equal_tensor(capsys, device):
    x = K.eye(2)
    y = K.print_tensor(x, message="x is")
    out = capsys.readouterr().out
    assert out.startswith("x is [[1. 0.]")
    np.testing.assert_array_equal(K.eval(y), np.eye(2))
    assert K.gradients(K.sum(y * 3.0), [x])[0] is not None
