"""The kernels themselves, against NumPy float64 references: the CUDA kernels (under Numba's
simulator without a GPU, on the GPU where there is one) and the Numba CPU twins."""

import numba
import numpy as np
import pytest
from numba.core import sigutils

from conftest import HAS_GPU
import gpubk as K
from gpubk import devices
from gpubk.kernels import crossentropy, elementwise, launch, softmax


@pytest.fixture(params=["twin", pytest.param("gpu", marks=pytest.mark.gpu) if HAS_GPU else "sim"])
def target(request, monkeypatch):
    """A device whose kernel-backed calls run the CPU twins (any size) or the CUDA kernels."""
    if request.param == "twin":
        monkeypatch.setattr(launch, "cpu_twin_min_size", 0)
        return devices.CPU
    return devices.parse(request.param)


def host(a):
    return devices._to_host(a)


def put(target, a):
    return target.put(np.ascontiguousarray(a))


# -- references (float64) ------------------------------------------------------------------------
def ref_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def ref_probs_loss(t, p, axis, eps=1e-7):
    low = np.float32(eps) if p.dtype == np.float32 else eps
    high = (np.float32(1) - low) if p.dtype == np.float32 else 1 - eps
    q = np.clip(p / p.sum(axis=axis, keepdims=True), float(low), float(high))
    return -(t * np.log(q)).sum(axis=axis)


def numeric_rows_grad(f, x, g, axis, h=1e-6):
    """d(sum(g * f(x))) / dx by central differences, for a per-row loss f."""
    x = x.astype(np.float64)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = (g * f(x)).sum()
        x[i] = old - h
        down = (g * f(x)).sum()
        x[i] = old
        out[i] = (up - down) / (2 * h)
    return out


# Rows of 1, 31, 32, 33 and 10,000; one row and several (the simulator runs every thread of
# every block in Python, so "several" is small here; the GPU tests take a million rows).
SHAPES = [((1, 1), 1), ((3, 31), 1), ((2, 32), 1), ((3, 33), 1), ((1, 10_000), 1),
          ((33, 3), 0), ((2, 3, 2), 1)]


def _tolerance(dtype):
    return dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)


# -- softmax -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", SHAPES)
def test_softmax_forward_and_backward(shape, axis, dtype, target, rng):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    tol = _tolerance(dtype)
    y = host(softmax.forward(target, put(target, x), axis))
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_allclose(y, ref_softmax(x.astype(np.float64), axis), **tol)
    log_y = host(softmax.forward(target, put(target, x), axis, True))
    np.testing.assert_allclose(log_y, ref_log_softmax(x.astype(np.float64), axis), **tol)
    dy = rng.standard_normal(shape).astype(dtype)
    y64 = ref_softmax(x.astype(np.float64), axis)
    dx = host(softmax.backward(target, put(target, y64.astype(dtype)), put(target, dy), axis))
    want = y64 * (dy - (dy * y64).sum(axis=axis, keepdims=True))
    np.testing.assert_allclose(dx, want, **tol)
    dx = host(softmax.backward(target, put(target, np.log(y64).astype(dtype)), put(target, dy),
                               axis, True))
    np.testing.assert_allclose(dx, dy - y64 * dy.sum(axis=axis, keepdims=True), **tol)


def test_softmax_extreme_logits_and_layouts(target):
    x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [5.0, 5.0, 5.0]], np.float32)
    y = host(softmax.forward(target, put(target, x), 1))
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3] * 3, [1 / 3] * 3], atol=1e-7)
    np.testing.assert_allclose(host(softmax.forward(target, put(target, x), 1, True))[0],
                               [0.0, -1e4, -2e4], rtol=1e-6)
    wide = np.arange(24, dtype=np.float32).reshape(4, 6) / 7
    strided = put(target, wide)[:, ::2]  # not contiguous
    np.testing.assert_allclose(host(softmax.forward(target, strided, 1)),
                               ref_softmax(wide[:, ::2].astype(np.float64), 1), rtol=1e-6)
    half = host(softmax.forward(target, put(target, wide.astype(np.float16)), 1))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, ref_softmax(wide.astype(np.float64), 1), rtol=2e-3)
    empty = host(softmax.forward(target, put(target, np.zeros((0, 5), np.float32)), 1))
    assert empty.shape == (0, 5)


def test_kernels_write_every_element(target, rng):
    """Outputs filled with NaN first: after one launch none is left."""
    x = rng.standard_normal((5, 37)).astype(np.float32)
    t = rng.dirichlet(np.ones(37), size=5).astype(np.float32)
    g = rng.standard_normal(5).astype(np.float32)
    full, rows = np.full_like(x, np.nan), np.full(5, np.nan, np.float32)
    if target.cuda_kernels:
        blocks, cuda_softmax, cuda_xent, cuda_elementwise = (
            launch.cuda_family(name) for name in ("blocks", "softmax", "crossentropy",
                                                  "elementwise"))
        args, _ = blocks.device_args(target.xp, put(target, x), put(target, t), put(target, g))
        xs, ts, gs = args
        outs = [target.put(full.copy()) for _ in range(4)] + \
            [target.put(rows.copy()) for _ in range(2)]
        grid, threads = 5, blocks.threads_per_row(37)
        low, high = np.float32(1e-7), np.float32(1) - np.float32(1e-7)  # as the launchers pass
        cuda_softmax._forward_cuda[grid, threads](xs, outs[0], False)
        cuda_softmax._backward_cuda[grid, threads](xs, xs, outs[1], False)
        cuda_xent._logits_backward_cuda[grid, threads](ts, xs, gs, outs[2])
        cuda_xent._probs_backward_cuda[grid, threads](ts, np.abs(x) + 0.1, gs, outs[3], low, high)
        cuda_xent._logits_forward_cuda[grid, threads](ts, xs, outs[4])
        cuda_xent._probs_forward_cuda[grid, threads](ts, np.abs(x) + 0.1, outs[5], low, high)
        outs.append(target.put(full.copy()))  # its own buffer: an element it skips stays NaN
        cuda_elementwise.sigmoid_forward[2, 32](
            x.reshape(-1), outs[-1].reshape(-1), elementwise.kernel_params(elementwise.SIGMOID,
                                                                           x.dtype))
    else:
        outs = [full.copy() for _ in range(4)] + [rows.copy() for _ in range(2)]
        softmax._forward_cpu(x, outs[0], False)
        softmax._backward_cpu(x, x, outs[1], False)
        crossentropy._logits_backward_cpu(t, x, g, outs[2])
        crossentropy._probs_backward_cpu(t, np.abs(x) + 0.1, g, outs[3], 1e-7, 1 - 1e-7)
        crossentropy._logits_forward_cpu(t, x, outs[4])
        crossentropy._probs_forward_cpu(t, np.abs(x) + 0.1, outs[5], 1e-7, 1 - 1e-7)
        outs.append(full.copy())  # its own buffer: an element it skips stays NaN
        elementwise.cpu_twin(elementwise.SIGMOID, "forward")(
            x.reshape(-1), outs[-1].reshape(-1), elementwise.kernel_params(elementwise.SIGMOID,
                                                                           x.dtype))
    for out in outs:
        assert not np.isnan(host(out)).any()


class _RecordLaunches:
    """Stands in for a CUDA kernel: records the Numba types of each launch's arguments."""

    def __init__(self, name, seen):
        self.name, self.seen = name, seen

    def __getitem__(self, launch_config):
        def launch(*args):  # inputs wrapped as cuda.In (copied in only) count as arrays
            self.seen.add((self.name, tuple(numba.typeof(getattr(a, "value", a))
                                            for a in args)))
        return launch


@pytest.mark.sim
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # outputs left unwritten
def test_launchers_pass_the_declared_signatures(monkeypatch, rng):
    """What the launchers pass (float16, float32 and float64 inputs) is exactly what their
    family's LAUNCHES declares, so the kernel audit compiles the code that runs: arrays in the
    work dtype and scalar parameters (clip bounds, relu's) in that dtype too, not float64. Every
    generated elementwise kernel is launched (and declared) once per work dtype."""
    device = devices.parse("gpu" if HAS_GPU else "sim")
    seen = set()
    families = [launch.cuda_family(name) for name in ("softmax", "crossentropy", "elementwise")]
    for module in families:
        for name in module.LAUNCHES:
            monkeypatch.setattr(module, name, _RecordLaunches((module, name), seen))
    for dtype in (np.float16, np.float32, np.float64):
        x = put(device, rng.uniform(0.1, 1.0, (3, 5)).astype(dtype))
        g = put(device, rng.uniform(0.1, 1.0, 3).astype(dtype))
        for take_log in (False, True):
            softmax.forward(device, x, 1, take_log)
            softmax.backward(device, x, x, 1, take_log)
        crossentropy.probs_forward(device, x, x, 1, 1e-7)
        crossentropy.probs_backward(device, x, x, g, 1, 1e-7)
        crossentropy.logits_forward(device, x, x, 1)
        crossentropy.logits_backward(device, x, x, g, 1)
        params = (0.1, 0.0, 6.0, 0.0, True)  # (alpha, low, high, threshold, top_open)
        for op in range(len(elementwise.FORMULAS)):  # each kernel takes the ones it needs
            elementwise.forward(device, op, x, *params)
            elementwise.backward(device, op, x, x, *params)
    declared = {((module, name), sigutils.normalize_signature(sig)[0])
                for module in families
                for name, sigs in module.LAUNCHES.items() for sig in sigs}
    assert seen == declared


# -- crossentropy --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [s for s in SHAPES if s[0] != (1, 10_000)])
def test_crossentropy_from_logits(shape, axis, dtype, target, rng):
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    z.flat[0] = 1e4 if dtype == np.float32 else 500.0  # a huge logit stays finite
    t = np.moveaxis(rng.dirichlet(np.ones(shape[axis]), size=z.size // shape[axis])
                    .reshape(np.moveaxis(z, axis, -1).shape), -1, axis).astype(dtype)
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    loss = host(crossentropy.logits_forward(target, put(target, t), put(target, z), axis))
    want = -(t64 * ref_log_softmax(z64, axis)).sum(axis=axis)
    np.testing.assert_allclose(loss, want, rtol=2e-5 if dtype == np.float32 else 1e-10)
    g = rng.standard_normal(want.shape).astype(dtype)
    dz = host(crossentropy.logits_backward(target, put(target, t), put(target, z),
                                           put(target, g), axis))
    want = np.expand_dims(g, axis) * (ref_softmax(z64, axis) * t64.sum(axis=axis, keepdims=True)
                                      - t64)
    np.testing.assert_allclose(dz, want, **_tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["one-hot", "soft", "zeros in p"])
def test_crossentropy_from_probabilities(kind, dtype, target, rng):
    shape, axis = (6, 9), 1
    p = rng.uniform(0.05, 2.0, shape).astype(dtype)  # unnormalised, as Keras allows
    t = (np.eye(9)[rng.integers(0, 9, 6)] if kind == "one-hot"
         else rng.dirichlet(np.ones(9), size=6)).astype(dtype)
    if kind == "zeros in p":
        p[:, :3] = 0.0  # clipped to epsilon
    loss = host(crossentropy.probs_forward(target, put(target, t), put(target, p), axis, 1e-7))
    np.testing.assert_allclose(loss, ref_probs_loss(t.astype(np.float64), p, axis),
                               rtol=2e-6 if dtype == np.float32 else 1e-12)
    g = rng.standard_normal(6)
    dp = host(crossentropy.probs_backward(target, put(target, t), put(target, p),
                                          put(target, g.astype(dtype)), axis, 1e-7))
    want = numeric_rows_grad(lambda q: ref_probs_loss(t.astype(np.float64), q, axis),
                             p.astype(np.float64), g, axis)
    inside = p > 0  # at p = 0 the clip is exactly at its boundary: no finite difference there
    np.testing.assert_allclose(dp[inside], want[inside], rtol=1e-4, atol=1e-5)
    # A clipped entry gets only the normalisation's share: g * sum(t where unclipped) / sum(p).
    share = g[:, None] * (t * inside).sum(axis=1, keepdims=True) / p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(dp[~inside], np.broadcast_to(share, p.shape)[~inside], rtol=1e-5)


def test_crossentropy_other_axis_and_empty(target, rng):
    t = rng.dirichlet(np.ones(4), size=(2, 3)).astype(np.float32)  # (2, 3, 4)
    t = np.moveaxis(t, -1, 1)  # classes on axis 1
    z = rng.standard_normal(t.shape).astype(np.float32)
    loss = host(crossentropy.logits_forward(target, put(target, t), put(target, z), 1))
    np.testing.assert_allclose(loss, -(t * ref_log_softmax(z.astype(np.float64), 1)).sum(1),
                               rtol=1e-5)
    empty = np.zeros((0, 4), np.float32)
    assert host(crossentropy.logits_forward(target, put(target, empty), put(target, empty),
                                            1)).shape == (0,)


# -- activations ---------------------------------------------------------------------------------
ACTIVATIONS = {
    elementwise.RELU: (lambda x: np.maximum(x, 0), lambda x, y: (x > 0).astype(float)),
    elementwise.SIGMOID: (lambda x: 1 / (1 + np.exp(-x)), lambda x, y: y * (1 - y)),
    elementwise.HARD_SIGMOID: (lambda x: np.clip(0.2 * x + 0.5, 0, 1),
                               lambda x, y: 0.2 * (np.abs(x) <= 2.5)),
    elementwise.TANH: (np.tanh, lambda x, y: 1 - y * y),
    elementwise.ELU: (lambda x: np.where(x > 0, x, np.expm1(x)),
                      lambda x, y: np.where(x > 0, 1, np.exp(x))),
    elementwise.SOFTPLUS: (lambda x: np.logaddexp(0, x), lambda x, y: 1 / (1 + np.exp(-x))),
    elementwise.SOFTSIGN: (lambda x: x / (1 + np.abs(x)), lambda x, y: 1 / (1 + np.abs(x)) ** 2),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", sorted(ACTIVATIONS))
def test_activations(op, dtype, target, rng):
    x = np.concatenate([rng.uniform(-6, 6, 300), [0.5, -1e-5, 1e-5, 30.0, -30.0, 80.0, -80.0]])
    x = x.astype(dtype)
    x64 = x.astype(np.float64)
    forward, derivative = ACTIVATIONS[op]
    y64 = forward(x64)
    tol = dict(rtol=3e-6, atol=1e-30) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-300)
    alpha = 1.0 if op == elementwise.ELU else 0.0
    y = host(elementwise.forward(target, op, put(target, x), alpha))
    assert y.dtype == dtype
    np.testing.assert_allclose(y, y64, **tol)
    g = rng.standard_normal(x.shape).astype(dtype)
    v = y64.astype(dtype) if op in elementwise.USES_OUTPUT else x
    dx = host(elementwise.backward(target, op, put(target, v), put(target, g), alpha))
    want = g * derivative(x64, v.astype(np.float64))
    # float32 gradients from the output (1 - y*y near |y| = 1) lose digits to cancellation
    np.testing.assert_allclose(dx, want, rtol=tol["rtol"] * 3,
                               atol=1e-7 if dtype == np.float32 else 1e-12)


def test_activations_keep_shape_layout_and_half(target, rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    strided = put(target, x)[:, ::2]
    np.testing.assert_allclose(host(elementwise.forward(target, elementwise.SIGMOID, strided)),
                               1 / (1 + np.exp(-x[:, ::2].astype(np.float64))), rtol=1e-6)
    half = host(elementwise.forward(target, elementwise.TANH, put(target, x.astype(np.float16))))
    assert half.dtype == np.float16 and half.shape == (4, 6)
    np.testing.assert_allclose(half, np.tanh(x), rtol=2e-3, atol=1e-3)


def test_compiled_kernels_are_cached_for_the_next_process(tmp_path):
    """The first process compiles the CPU twin and writes it to the cache; the next one loads
    it instead of compiling."""
    import os
    import subprocess
    import sys
    code = ("import numpy as np, gpubk as K\n"
            "from gpubk.kernels import softmax\n"
            "K.softmax(K.constant(np.ones((256, 256))))\n"
            "s = softmax._forward_cpu.stats\n"
            "print(sum(s.cache_hits.values()), sum(s.cache_misses.values()))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "GPUBK_DEVICE": "cpu"}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (tuple(map(int, r.stdout.split())) for r in runs)
    assert first == (0, 1) and second == (1, 0)


@pytest.mark.parametrize("rows", [64, 8])  # on the CPU: the parallel twin; the one-thread one
@pytest.mark.parametrize("offset", [0.0, 90.0, 1000.0])
def test_log_softmax_of_large_logits_rounds_at_the_result_s_scale(kernel_device, offset, rows):
    """(z - max) - log(sum): computing z - (max + log(sum)) instead rounds at the scale of the
    max (ulp(1000) = 6e-5 in float32), far off for results near zero. Each value within 4 ulp
    of itself of float64, plus 6e-7 for log(sum) (the float32 sum's rounding, near sum = 1);
    rows in parallel from 32K values, on one thread below."""
    shape = (4, 64) if kernel_device == "sim" else (rows, 512)
    z = (np.random.default_rng(5).standard_normal(shape) * 3 + offset).astype(np.float32)
    shifted = z.astype(np.float64) - z.max(-1, keepdims=True)
    want = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    got = K.eval(K.log_softmax(K.constant(z)))
    bound = 4 * np.spacing(np.abs(want).astype(np.float32)) + 6e-7
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) / bound)
