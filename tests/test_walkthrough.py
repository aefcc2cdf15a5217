"""The user's walkthrough runs end to end with Keras 2's values."""
import numpy as np

from gpubk.examples import walkthrough


def test_walkthrough_values(capsys):
    seen = walkthrough.main()
    assert seen["placeholder_shapes"] == [(2, 4, 5), (None, 4, 5), (None, None, None)]
    b, c, d, a = seen["b"], seen["c"], seen["d"], seen["a"]
    assert b.shape == (3, 4) and b.dtype == np.float32
    assert np.all((b >= 0) & (b < 1))
    np.testing.assert_allclose(a, b.astype(np.float64) + c * np.abs(d), rtol=1e-6)
    np.testing.assert_allclose(seen["dot_a_bT"], a.astype(np.float64) @ b.T, rtol=1e-5)
    np.testing.assert_array_equal(seen["cqq"], [[1.0, 1.0]])
    np.testing.assert_allclose(seen["sum_b"], b.astype(np.float64).sum(axis=1), rtol=1e-6)
    e = np.exp(b - b.max(axis=1, keepdims=True))
    np.testing.assert_allclose(seen["softmax_b"], e / e.sum(axis=1, keepdims=True), rtol=1e-6)
    assert seen["concat"].shape == (3, 7)
    assert seen["cast_to_floatx"].dtype == np.float32
    np.testing.assert_array_equal(seen["dot_example"], [[36, 36], [60, 60]])
    assert seen["dot_example"].dtype == np.float64
    np.testing.assert_allclose(seen["constant"], np.float32([1.2, 1.3]))
    assert seen["count_params"] == 210
    np.testing.assert_array_equal(seen["tile"], np.tile(np.eye(2), (2, 2)))
    np.testing.assert_array_equal(seen["stack"], np.ones((3, 3, 3)))
    np.testing.assert_array_equal(seen["repeat_elements"], np.repeat(np.eye(3), 3, axis=1))
    assert seen["get_value_type"] is np.ndarray
    eps = 1e-7  # Keras 2: clip eye(3) to [eps, 1 - eps], then -sum(1 * log(p)) per row
    want = -(np.log(np.float32(1 - eps)) + 2 * np.log(np.float32(eps)))
    np.testing.assert_allclose(seen["crossentropy"], [want] * 3, rtol=1e-6)
    assert seen["gradients"] == [None]
    assert "[None]" in capsys.readouterr().out
