"""What only a real GPU shows: CuPy buffers, no host round trips, kernels on CuPy's stream.
Skipped where there is no GPU (bench/gpu_check.sh runs them on a lent one)."""
import numpy as np
import pytest

import gpubk as K
from conftest import HAS_GPU

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not HAS_GPU, reason="needs CuPy and a CUDA GPU")]
# CuPy is gpubk's GPU array module, not a peer: these tests are about it. Without it (or without
# a GPU) the whole module skips, saying why; the CPU suite does not need it.
cp = pytest.importorskip("cupy", reason="needs CuPy and a CUDA GPU") if HAS_GPU else None


def test_tensors_hold_cupy_arrays_and_copy_back_on_request():
    with K.device("gpu"):
        x = K.variable(np.arange(6.0).reshape(2, 3))
        y = K.dot(x, K.transpose(x))
        assert isinstance(y.data, cp.ndarray) and y.device.name == "gpu:0"
        np.testing.assert_allclose(np.asarray(y), np.arange(6.0).reshape(2, 3) @
                                   np.arange(6.0).reshape(3, 2), rtol=1e-6)
        g = K.gradients(K.sum(K.softmax(y)), [x])[0]
        assert isinstance(g.data, cp.ndarray)


def test_cupy_arrays_become_tensors_without_leaving_the_gpu():
    with K.device("gpu"):
        a = cp.arange(4, dtype=cp.float32)
        c = K.constant(a)
        assert isinstance(c.data, cp.ndarray) and c.data.data.ptr != a.data.ptr  # a copy
        s = K.softmax(K.reshape(a, (2, 2)))  # an operand: used in place
        assert isinstance(s.data, cp.ndarray)


def test_kernels_run_on_cupys_current_stream(rng):
    x = rng.standard_normal((512, 1000)).astype(np.float32)
    e = np.exp(x - x.max(1, keepdims=True))
    want = e / e.sum(1, keepdims=True)
    with K.device("gpu"), cp.cuda.Stream(non_blocking=True) as stream:
        y = K.softmax(K.constant(x))
        stream.synchronize()
    np.testing.assert_allclose(K.eval(y), want, rtol=1e-5, atol=1e-7)


def test_a_million_rows(rng):
    x = rng.standard_normal((1_000_000, 10)).astype(np.float32)
    t = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 1_000_000)]
    with K.device("gpu"):
        loss = K.eval(K.categorical_crossentropy(K.constant(t), K.constant(x), True))
    z = x.astype(np.float64)
    z = z - z.max(1, keepdims=True)
    want = -(t * (z - np.log(np.exp(z).sum(1, keepdims=True)))).sum(1)
    np.testing.assert_allclose(loss, want, rtol=1e-5, atol=1e-6)
