"""A K.function whose plan calls BLAS runs the CPU twins on one thread (kernels/launch.py,
`threads.one_thread`): the values are the parallel twins', checked against NumPy float64, and the
setting ends with the call, error or not."""
import numpy as np
import pytest

import gpubk as K
from gpubk.kernels import launch


def _softmax64(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_twins_after_a_matmul_run_on_one_thread_with_the_same_values(monkeypatch):
    rng = np.random.default_rng(3)
    n, m = 128, 320  # 40960 values: above the parallel threshold of the twins
    assert n * m >= launch.cpu_twin_min_size
    w0 = (rng.standard_normal((m, m)) * 0.1).astype(np.float32)
    x, t = K.placeholder(shape=(None, m)), K.placeholder(shape=(None, m))
    z = K.dot(x, K.variable(w0))
    ce = K.categorical_crossentropy(t, K.softmax(z))
    f = K.function([x, t], [K.softmax(z), ce, K.sigmoid(z), K.elu(z), K.softplus(z)])
    seen = []
    original = launch._one_thread

    def spy(kernel):
        seen.append(kernel.py_func.__name__)
        return original(kernel)
    monkeypatch.setattr(launch, "_one_thread", spy)
    xs = rng.standard_normal((n, m)).astype(np.float32)
    ts = np.eye(m, dtype=np.float32)[rng.integers(0, m, n)]
    soft, got_ce, sig, elu, softplus = f([xs, ts])
    assert seen  # the twins were asked for their one-thread compile
    assert launch.threads.one_thread is False  # and the setting ended with the call
    z64 = (xs @ w0).astype(np.float64)  # the activations' float32 input, then float64
    np.testing.assert_allclose(soft, _softmax64(z64), rtol=2e-5, atol=1e-9)
    np.testing.assert_allclose(got_ce, -np.sum(ts * np.log(_softmax64(z64)), -1), rtol=2e-5)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-z64)), rtol=2e-5)
    np.testing.assert_allclose(elu, np.where(z64 > 0, z64, np.expm1(z64)), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(softplus, np.log1p(np.exp(z64)), rtol=2e-5)


def test_the_one_thread_setting_ends_with_a_failing_call():
    x = K.placeholder(shape=(None, 3))
    labels = K.placeholder(shape=(None,), dtype="int32")
    logits = K.dot(x, K.variable(np.ones((3, 3), np.float32)))
    f = K.function([x, labels], [K.sparse_categorical_crossentropy(labels, logits,
                                                                   from_logits=True)])
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        f([np.ones((2, 3), np.float32), np.array([0, 5], np.int32)])
    assert launch.threads.one_thread is False


def test_a_plan_with_a_condition_but_no_product_keeps_the_twins_parallel(monkeypatch):
    seen = []
    original = launch._one_thread
    monkeypatch.setattr(launch, "_one_thread", lambda kernel: seen.append(kernel) or
                        original(kernel))
    x, c = K.placeholder(shape=(128, 320)), K.placeholder(shape=())
    f = K.function([x, c], [K.softmax(K.switch(c > 0, x * 2.0, x * 3.0))])
    xs = np.random.default_rng(4).standard_normal((128, 320)).astype(np.float32)
    (got,) = f([xs, 1.0])
    assert seen == []
    np.testing.assert_allclose(got, _softmax64(2.0 * xs.astype(np.float64)), rtol=2e-5,
                               atol=1e-9)
