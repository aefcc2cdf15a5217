"""Issue 11, items 4 and 5: K.backend, K.learning_phase_scope, K.rnn(return_all_outputs=...),
integer sums keeping their dtype, all-or-nothing batch_set_value, and empty batches."""
from __future__ import annotations

import numpy as np
import pytest

import gpubk as K


def test_backend_is_named():
    assert K.backend() == "gpubk"


def test_learning_phase_scope_sets_and_restores(device):
    assert K.in_train_phase(1.0, 0.0) == 0.0  # the default: test
    with K.learning_phase_scope(1):
        assert K.learning_phase() == 1
        assert K.in_train_phase(1.0, 0.0) == 1.0
        with K.learning_phase_scope(0):
            assert K.learning_phase() == 0
        assert K.learning_phase() == 1
    assert K.learning_phase() is not 1 and K.in_train_phase(1.0, 0.0) == 0.0  # noqa: F632


def test_learning_phase_scope_restores_on_exception_and_a_set_phase(device):
    K.set_learning_phase(0)
    try:
        with pytest.raises(RuntimeError), K.learning_phase_scope(1):
            assert K.learning_phase() == 1
            raise RuntimeError("inside")
        assert K.learning_phase() == 0
    finally:
        K.graph._learning_phase_set = None  # noqa: SLF001 (undo set_learning_phase)


@pytest.mark.parametrize("value", [2, -1, 0.5, "1", None])
def test_learning_phase_scope_rejects_values_other_than_0_and_1(value):
    with pytest.raises(ValueError, match="learning_phase_scope: expected 0 or 1"):
        K.learning_phase_scope(value)


def _rnn_step(x, states):
    h = K.tanh(K.dot(x, W) + K.dot(states[0], U))
    return h, [h]


W = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
U = np.random.default_rng(1).normal(size=(5, 5)).astype(np.float32)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("time_major", [False, True])
def test_rnn_return_all_outputs_false_keeps_only_the_last_step(device, go_backwards, time_major):
    # Keras 2.13's rnn writes only the last step into a TensorArray of size 1 when
    # return_all_outputs=False, so `outputs` has a time axis of size 1.
    x = np.random.default_rng(2).normal(size=(3, 6, 4)).astype(np.float32)
    if time_major:
        x = x.transpose(1, 0, 2)
    h0 = [K.zeros((3, 5))]
    kw = dict(go_backwards=go_backwards, time_major=time_major)
    last_all, outputs_all, states_all = K.rnn(_rnn_step, x, h0, **kw)
    last, outputs, states = K.rnn(_rnn_step, x, h0, return_all_outputs=False, **kw)
    time_axis = 0 if time_major else 1
    assert outputs_all.shape[time_axis] == 6
    assert outputs.shape == ((1, 3, 5) if time_major else (3, 1, 5))
    last_step = np.take(K.eval(outputs_all), [-1], axis=time_axis)
    np.testing.assert_allclose(K.eval(outputs), last_step, rtol=1e-6)
    np.testing.assert_allclose(K.eval(last), K.eval(last_all), rtol=1e-6)
    np.testing.assert_allclose(K.eval(states[0]), K.eval(states_all[0]), rtol=1e-6)


def test_rnn_return_all_outputs_false_with_a_mask(device):
    x = np.random.default_rng(3).normal(size=(2, 4, 4)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    _, outputs_all, _ = K.rnn(_rnn_step, x, [K.zeros((2, 5))], mask=mask)
    _, outputs, _ = K.rnn(_rnn_step, x, [K.zeros((2, 5))], mask=mask,
                          return_all_outputs=False)
    np.testing.assert_allclose(K.eval(outputs)[:, 0], K.eval(outputs_all)[:, -1], rtol=1e-6)
    np.testing.assert_allclose(K.eval(outputs)[0, 0], K.eval(outputs_all)[0, 1], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "uint8", "int64"])
def test_integer_sum_and_prod_keep_their_dtype(device, dtype):
    values = np.array([[1, 2, 3], [4, 5, 6]], dtype)
    for op, ref in ((K.sum, np.sum), (K.prod, np.prod), (K.cumsum, np.cumsum),
                    (K.cumprod, np.cumprod)):
        for axis in ((None, 0, 1) if op in (K.sum, K.prod) else (0, 1)):
            result = op(K.constant(values, dtype=dtype), axis=axis)
            assert K.dtype(result) == dtype, (op.__name__, axis)
            np.testing.assert_array_equal(K.eval(result), ref(values, axis=axis).astype(dtype))


def test_int32_sum_wraps_as_tensorflow():
    values = np.array([2 ** 31 - 1, 1], np.int32)
    assert K.eval(K.sum(K.constant(values, dtype="int32"))) == np.int32(-2 ** 31)


def test_float_and_bool_sums_unchanged(device):
    assert K.dtype(K.sum(K.constant([1.5, 2.5]))) == "float32"
    assert K.eval(K.sum(K.constant([True, True, False], dtype="bool"))) == 2
    assert K.eval(K.mean(K.constant([True, False], dtype="bool"))) == pytest.approx(0.5)


def test_argmax_axis_none_is_axis_0(device):
    values = np.array([[1.0, 9.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    np.testing.assert_array_equal(K.eval(K.argmax(values, None)), np.argmax(values, axis=0))
    np.testing.assert_array_equal(K.eval(K.argmin(values, axis=None)), np.argmin(values, axis=0))


def test_batch_set_value_is_all_or_nothing(device):
    a, b, c = K.variable(np.zeros(2)), K.variable(np.zeros(3)), K.variable(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"batch_set_value: .*\(2, 2\).*\(3, 3\)"):
        K.batch_set_value([(a, np.ones(2)), (b, np.ones(3)), (c, np.ones((3, 3)))])
    for v in (a, b, c):
        np.testing.assert_array_equal(K.eval(v), np.zeros(v.shape))
    with pytest.raises(TypeError, match="batch_set_value: expected a variable"):
        K.batch_set_value([(a, np.ones(2)), (np.zeros(2), np.ones(2))])
    np.testing.assert_array_equal(K.eval(a), np.zeros(2))
    K.batch_set_value([(a, np.ones(2)), (b, [1, 2, 3])])
    np.testing.assert_array_equal(K.eval(b), [1, 2, 3])
    np.testing.assert_array_equal(K.eval(a), [1, 1])


def test_assignments_do_not_apply_the_constraint(device):
    """As in Keras 2 (TensorFlow's assign): optimizers apply `p.constraint` themselves."""
    def halve(w):
        return w * 0.5
    v = K.variable(np.zeros(2), constraint=halve)
    K.set_value(v, np.ones(2))
    K.batch_set_value([(v, np.full(2, 4.0))])
    np.testing.assert_array_equal(K.eval(v), [4.0, 4.0])
    K.update_add(v, np.ones(2))
    np.testing.assert_array_equal(K.eval(v), [5.0, 5.0])
    assert v.constraint is halve


def test_variable_none_and_function_outputs_are_rejected():
    with pytest.raises(TypeError, match="variable: cannot convert NoneType"):
        K.variable(None)
    x = K.placeholder(shape=(2,))
    with pytest.raises(TypeError, match="function: outputs must be tensors.*got str"):
        K.function([x], ["not a tensor"])


def test_huge_random_variable_fails_before_allocating():
    with pytest.raises(ValueError, match="random_normal_variable: shape .* GiB"):
        K.random_normal_variable((10 ** 6, 10 ** 6), 0.0, 1.0)
    with pytest.raises(ValueError, match="zeros: shape .* GiB"):
        K.zeros((10 ** 7, 10 ** 7))


def test_shapes_given_as_tensors_or_arrays(device):
    shape = K.constant([2, 3], dtype="int32")
    assert K.int_shape(K.zeros(shape)) == (2, 3)
    assert K.int_shape(K.ones(np.array([4]))) == (4,)
    assert K.int_shape(K.reshape(K.zeros((2, 3)), K.shape(K.zeros((3, 2))))) == (3, 2)
    with pytest.raises(TypeError, match="zeros: shape must be a 1-D integer tensor"):
        K.zeros(K.constant([2.0, 3.0]))


def test_in_top_k_target_out_of_range_is_false(device):
    # as TF's in_top_k: a target outside [0, classes) is reported False, not an error
    predictions = np.array([[0.1, 0.9, 0.0], [0.5, 0.2, 0.3]], np.float32)
    result = K.in_top_k(predictions, np.array([5, 0]), 1)
    np.testing.assert_array_equal(K.eval(result), [False, True])


# -- empty batches (the last batch of an epoch can be empty) --------------------------------------
def test_batch_flatten_of_an_empty_batch(device):
    assert K.int_shape(K.batch_flatten(K.zeros((0, 3)))) == (0, 3)
    assert K.int_shape(K.batch_flatten(K.zeros((0, 2, 4)))) == (0, 8)
    assert K.int_shape(K.batch_flatten(K.zeros((2, 0)))) == (2, 0)
    np.testing.assert_array_equal(K.eval(K.batch_flatten(np.arange(6.0).reshape(2, 1, 3))),
                                  np.arange(6.0).reshape(2, 3))


def test_other_ops_on_an_empty_batch(device):
    empty = K.zeros((0, 3))
    assert K.int_shape(K.flatten(empty)) == (0,)
    assert K.int_shape(K.reshape(empty, (0, 3, 1))) == (0, 3, 1)
    assert K.int_shape(K.concatenate([empty, K.zeros((2, 3))], axis=0)) == (2, 3)
    assert K.int_shape(K.dot(empty, K.ones((3, 4)))) == (0, 4)
    assert K.int_shape(K.batch_dot(K.zeros((0, 3)), K.zeros((0, 3)))) == (0, 1)
    assert K.int_shape(K.sum(empty, axis=1)) == (0,)
    assert K.eval(K.sum(empty)) == 0.0
    with np.errstate(invalid="ignore"):
        assert np.all(np.isnan(K.eval(K.mean(empty, axis=0))))  # NaN, as NumPy and TF
        assert np.isnan(K.eval(K.mean(empty)))
    assert K.int_shape(K.mean(empty, axis=1)) == (0,)
    assert K.int_shape(K.softmax(empty)) == (0, 3)
    assert K.int_shape(K.bias_add(empty, K.ones(3))) == (0, 3)
    assert K.int_shape(K.max(empty, axis=1)) == (0,)
    assert K.int_shape(K.argmax(empty, axis=1)) == (0,)
    with pytest.raises(ValueError, match="max: cannot reduce an empty"):
        K.max(empty, axis=0)
