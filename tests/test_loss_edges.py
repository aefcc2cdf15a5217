"""Crossentropy at the edges of its input: no classes at all, integer outputs."""
import numpy as np
import pytest

import gpubk as K


@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_crossentropy_over_no_classes_is_zero_per_row(from_logits, kernel_device):
    """An empty class axis sums nothing: a loss of 0 per row (as Keras), and an empty
    gradient of the output's shape."""
    target, output = K.constant(np.zeros((3, 0))), K.variable(np.zeros((3, 0)))
    loss = K.categorical_crossentropy(target, output, from_logits=from_logits)
    np.testing.assert_array_equal(K.eval(loss), np.zeros(3))
    assert K.eval(K.gradients(K.sum(loss), [output])[0]).shape == (3, 0)
    axis0 = K.categorical_crossentropy(K.constant(np.zeros((0, 2))), K.constant(np.zeros((0, 2))),
                                       from_logits=from_logits, axis=0)
    np.testing.assert_array_equal(K.eval(axis0), np.zeros(2))


def test_focal_crossentropy_over_no_classes_is_zero_per_row():
    loss = K.categorical_focal_crossentropy(K.constant(np.zeros((2, 0))),
                                            K.constant(np.zeros((2, 0))))
    np.testing.assert_array_equal(K.eval(loss), np.zeros(2))


@pytest.mark.parametrize("func", [K.binary_crossentropy, K.categorical_crossentropy,
                                  K.binary_focal_crossentropy])
@pytest.mark.parametrize("from_logits", [False, True])
def test_crossentropy_of_an_integer_output_names_itself(func, from_logits):
    output = K.variable(np.array([[1, 0]]), dtype="int32")
    with pytest.raises(TypeError, match=rf"^{func.__name__}: expected a float output.*int32"):
        func(K.constant([[1.0, 0.0]]), output, from_logits=from_logits)


def test_sparse_crossentropy_takes_whole_float_targets_and_refuses_fractions():
    """Keras casts float targets to int64: whole values are class indices (labels often come
    as floats); a fraction would be truncated silently, so it is an error here."""
    z = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    want = -np.log(np.exp(z[[0, 1], [0, 2]]) / np.exp(z).sum(-1))
    got = K.eval(K.sparse_categorical_crossentropy(np.array([0.0, 2.0]), K.constant(z, "float64"),
                                                   from_logits=True))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="^sparse_categorical_crossentropy: targets must be whole"):
        K.sparse_categorical_crossentropy(np.array([0.5, 2.0]), K.constant(z))
