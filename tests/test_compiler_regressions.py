"""Cases a review of the compiler (raw executor, fusion, in-place updates, one-thread twins)
found wrong, each against a value written down from its definition."""
import numpy as np
import pytest
from conftest import HAS_NUMBA_CUDA

import gpubk as K

Z = np.zeros((64, 64), np.float32)  # large enough to fuse on the CPU


def test_an_update_is_not_written_before_a_later_group_reads_the_old_value():
    x = K.placeholder(shape=(64, 64))
    v = K.variable(np.ones((64, 64), np.float32))
    a = v * 0.5 + x  # v's new value; the output's group reads v after a's group is placed
    f = K.function([x], [v * 3.0 + a], updates=[(v, a)])
    assert f([Z])[0][0, 0] == 3.5  # 3 * 1 + 0.5, from the old v
    assert K.get_value(v)[0, 0] == 0.5
    v = K.variable(np.ones((64, 64), np.float32))
    w = K.variable(np.ones((64, 64), np.float32))
    a = v * 0.5 + x
    f = K.function([x], [K.sum(x)], updates=[(w, v * 3.0 + a), (v, a)])
    f([Z])
    assert K.get_value(w)[0, 0] == 3.5 and K.get_value(v)[0, 0] == 0.5


def test_a_fed_placeholder_can_be_an_output():
    x, y = K.placeholder(shape=(None, 3)), K.placeholder(shape=(None, 3))
    xv = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(K.function([x], [x])([xv])[0], xv)
    np.testing.assert_array_equal(K.function([x], x)([xv]), xv)
    got = K.function([x, y], [x, K.exp(y)])([xv, xv])
    np.testing.assert_array_equal(got[0], xv)
    np.testing.assert_allclose(got[1], np.exp(xv), rtol=1e-6)
    phase = K.function([x, K.learning_phase()], [K.learning_phase()])([xv, 1])
    assert phase[0] == 1


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="the sim device needs numba-cuda")
def test_ops_after_a_condition_run_on_its_result_s_device():
    with K.device("sim"):
        v = K.variable(np.ones(3, np.float32))
    c, z = K.placeholder(shape=()), K.placeholder(shape=(3,))
    new = K.switch(c > 0, lambda: v * 2.0, lambda: v * 3.0) + z
    K.function([c, z], [K.sum(z)], updates=[(v, new)])([1.0, np.zeros(3, np.float32)])
    np.testing.assert_array_equal(K.get_value(v), [2.0, 2.0, 2.0])


def test_small_log_softmax_keeps_precision_at_large_logits():
    z = np.array([[88.0, 89.0, 90.0, 91.0]], np.float32)
    got = K.eval(K.log_softmax(K.constant(z)))
    z64 = z.astype(np.float64)
    want = z64 - z64.max() - np.log(np.exp(z64 - z64.max()).sum())
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=0)


def test_crossentropy_of_probabilities_with_a_subnormal_row_total():
    t = K.constant([[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    p = K.constant([[1e-45, 1e-45, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    got = K.eval(K.categorical_crossentropy(t, p))
    eps = np.float32(K.epsilon())
    np.testing.assert_allclose(got, [-np.log(eps), -np.log(0.2)], rtol=1e-6)
