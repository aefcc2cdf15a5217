"""NaN and inf through the row kernels (softmax, log-softmax, crossentropy from probabilities and
from logits, forward and backward): every path (NumPy below the CPU-twin threshold, the CPU
twins, the CUDA kernels under the simulator or on the GPU) puts NaN exactly where the plain
float64 NumPy formulas below do, the same inf, and the same finite values. The NumPy path warns
only where the result is undefined."""
import functools
import warnings

import numpy as np
import pytest
from numba import cuda

import gpubk as K
from conftest import HAS_GPU
from gpubk import devices
from gpubk.kernels import crossentropy, launch, softmax

nan, inf = np.nan, np.inf
# The NaN rows warn on the NumPy path (and in the simulator, which computes on NumPy scalars):
# their results are undefined. test_numpy_path_is_quiet_where_defined covers the defined ones.
undefined_results_warn = pytest.mark.filterwarnings("ignore::RuntimeWarning")
WIDTH = 21  # wider than the simulator's block of 8 threads and than one vector register
EPS = 1e-7

# NumPy (small arrays), the CPU twins, the CUDA kernels (under the simulator without a GPU)
PATHS = ["numpy", "twin", pytest.param("gpu", marks=pytest.mark.gpu) if HAS_GPU else "sim"]
DTYPES = [np.float32, np.float64]
# The CUDA kernels compute in the rows' dtype, so float32 and float64 are different code on
# every path (the simulator's float32 API cases add ~15 s).
API_CASES = [(p, d) for p in ["numpy", "twin"] for d in DTYPES] + [
    pytest.param("gpu", d, marks=pytest.mark.gpu) if HAS_GPU else ("sim", d) for d in DTYPES]


def _device_name(path, monkeypatch):
    """The device name for `K.device`; "twin" is the CPU with the twins on at any size."""
    if path == "twin":
        monkeypatch.setattr(launch, "cpu_twin_min_size", 0)
    elif path == "numpy":  # the shapes here are far below the threshold
        assert 12 * WIDTH < launch.cpu_twin_min_size
        monkeypatch.setattr(launch, "one_thread_twins", False)
    return "cpu" if path in ("numpy", "twin") else path


def host(a):
    return devices._to_host(a)


# -- inputs: one edge case per row ---------------------------------------------------------------
def _logit_rows():
    """(z, t, g, dy): logits, soft targets, an upstream gradient per row and per element."""
    rng = np.random.default_rng(7)
    z = rng.standard_normal((12, WIDTH)) * 3
    t = rng.dirichlet(np.ones(WIDTH), size=12)
    g = rng.uniform(0.5, 2.0, 12)
    dy = rng.standard_normal((12, WIDTH))
    z[1, 0] = nan                    # NaN in a row
    z[2, 0] = inf                    # +inf
    z[3, 0], t[3, 0] = -inf, 0.0     # -inf with target 0: a masked class, defined
    z[4] = -inf                      # a row of all -inf
    z[5, 0], t[5, 0] = -inf, 0.5     # -inf where the target is not 0: infinite loss
    z[6, WIDTH - 1] = nan            # NaN in the last element (vector and block remainders)
    t[7, 3] = nan                    # NaN in the target
    g[8], dy[8, 5] = nan, nan        # NaN in the upstream gradient
    z[9, [4, 15]] = inf              # two +inf
    z[10, 12], t[10, 12] = -inf, 0.0  # a masked class mid-row
    z[11, [0, 13]] = [-inf, nan]     # -inf and NaN
    return z, t, g, dy


def _prob_rows():
    """(p, t, g): unnormalised probabilities, targets and an upstream gradient per row."""
    rng = np.random.default_rng(8)
    p = rng.uniform(0.05, 2.0, (11, WIDTH))
    t = rng.dirichlet(np.ones(WIDTH), size=11)
    g = rng.uniform(0.5, 2.0, 11)
    p[1, 0] = nan                    # NaN in a row
    p[2, 0] = inf                    # +inf
    p[3, :4] = 0.0                   # zeros, clipped to epsilon: defined
    p[4] = 0.0                       # all zero: 0 / 0
    p[5] = 0.0
    p[5, 2] = 1.0                    # exactly one-hot: clipped at both ends
    p[6, WIDTH - 1] = nan            # NaN in the last element
    t[7, 3] = nan                    # NaN in the target where p is inside the clip
    t[3, 1] = nan                    # ... and where p is clipped (the loss is NaN,
    #                                    its gradient drops it: a is 0 there)
    g[8] = nan                       # NaN in the upstream gradient
    p[9, [4, 15]] = inf              # two +inf
    p[10, 6] = -inf                  # -inf
    return p, t, g


# -- references: the plain formulas in float64 (Keras's math) ------------------------------------
def _quiet(fn):
    def wrapped(*args):
        with np.errstate(all="ignore"):
            return fn(*[np.asarray(a, np.float64) for a in args])
    return wrapped


@_quiet
def ref_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@_quiet
def ref_log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


@_quiet
def ref_softmax_grad(y, dy):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


@_quiet
def ref_log_softmax_grad(log_y, dy):
    return dy - np.exp(log_y) * dy.sum(axis=-1, keepdims=True)


@_quiet
def ref_logits_loss(t, z):
    terms = t * ref_log_softmax(z)
    # 0 * log(0) counts 0: a masked class (logit -inf, target 0) adds nothing
    terms[(t == 0) & (ref_log_softmax(z) == -inf)] = 0.0
    return -terms.sum(axis=-1)


@_quiet
def ref_logits_grad(t, z, g):
    return g[:, None] * (ref_softmax(z) * t.sum(axis=-1, keepdims=True) - t)


def _clip_bounds(dtype):
    low = np.dtype(dtype).type(EPS)
    return float(low), float(low.dtype.type(1) - low)  # as Keras: 1 - eps in the dtype


@_quiet
def ref_probs_loss(t, p, low, high):
    q = np.clip(p / p.sum(axis=-1, keepdims=True), low, high)
    return -(t * np.log(q)).sum(axis=-1)


@_quiet
def ref_probs_grad(t, p, g, low, high):
    """d/dp of sum(g * loss): with P = sum(p), q = p / P and a = -t / q inside the clip (0 where
    q is clipped), g * (a - sum(a * q)) / P."""
    total = p.sum(axis=-1, keepdims=True)
    q = p / total
    inside = (q >= low) & (q <= high)
    a = np.where(inside, -t / q, 0.0)
    return g[:, None] * (a - (a * q).sum(axis=-1, keepdims=True)) / total


def assert_like(got, want, dtype):
    """NaN exactly where `want` has it, the same infinities, finite values close."""
    got = np.asarray(got)
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, want, **tol)  # also checks inf positions and signs


def test_the_cases_reach_nan_and_inf():
    """The references themselves: the edge rows give NaN, inf and finite values where these
    tests rely on them (else the tests below could pass vacuously)."""
    z, t, g, dy = _logit_rows()
    nan_rows = np.isnan(ref_softmax(z)).any(axis=1)
    np.testing.assert_array_equal(np.flatnonzero(nan_rows), [1, 2, 4, 6, 9, 11])
    loss = ref_logits_loss(t, z)
    assert np.isfinite(loss[3]) and np.isfinite(loss[10]) and loss[5] == inf
    assert np.isnan(loss[7]) and np.isfinite(loss[8])
    assert np.isfinite(ref_logits_grad(t, z, g)[3]).all()
    p, t, g = _prob_rows()
    low, high = _clip_bounds(np.float64)
    loss = ref_probs_loss(t, p, low, high)
    assert np.isfinite(loss[[0, 5, 8]]).all() and np.isnan(loss[[1, 2, 3, 4, 6, 7, 9]]).all()
    grad = ref_probs_grad(t, p, g, low, high)
    assert np.isfinite(grad[[0, 3, 5]]).all() and np.isnan(grad[[1, 2, 4, 6, 7, 8]]).all()


# -- the kernel launchers ------------------------------------------------------------------------
@undefined_results_warn
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", PATHS)
def test_softmax_launchers(path, dtype, monkeypatch):
    device = devices.parse(_device_name(path, monkeypatch))
    z, _, _, dy = (a.astype(dtype) for a in _logit_rows())
    put = device.put
    assert_like(host(softmax.forward(device, put(z), 1)), ref_softmax(z), dtype)
    assert_like(host(softmax.forward(device, put(z), 1, True)), ref_log_softmax(z), dtype)
    # Backward from the output as the tape saves it (rounded to the dtype).
    y = ref_softmax(z).astype(dtype)
    assert_like(host(softmax.backward(device, put(y), put(dy), 1)), ref_softmax_grad(y, dy),
                dtype)
    log_y = ref_log_softmax(z).astype(dtype)
    assert_like(host(softmax.backward(device, put(log_y), put(dy), 1, True)),
                ref_log_softmax_grad(log_y, dy), dtype)
    # The same along axis 0 (the rows transposed on the way in).
    assert_like(host(softmax.forward(device, put(np.ascontiguousarray(z.T)), 0)),
                ref_softmax(z).T, dtype)


@undefined_results_warn
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", PATHS)
def test_crossentropy_launchers(path, dtype, monkeypatch):
    device = devices.parse(_device_name(path, monkeypatch))
    put = device.put
    z, t, g, _ = (a.astype(dtype) for a in _logit_rows())
    assert_like(host(crossentropy.logits_forward(device, put(t), put(z), 1)),
                ref_logits_loss(t, z), dtype)
    assert_like(host(crossentropy.logits_backward(device, put(t), put(z), put(g), 1)),
                ref_logits_grad(t, z, g), dtype)
    p, t, g = (a.astype(dtype) for a in _prob_rows())
    low, high = _clip_bounds(dtype)
    assert_like(host(crossentropy.probs_forward(device, put(t), put(p), 1, EPS)),
                ref_probs_loss(t, p, low, high), dtype)
    assert_like(host(crossentropy.probs_backward(device, put(t), put(p), put(g), 1, EPS)),
                ref_probs_grad(t, p, g, low, high), dtype)


@functools.cache
def _block_max_kernel():
    blocks = launch.cuda_family("blocks")

    @cuda.jit
    def kernel(x, out):
        buf = cuda.shared.array(blocks.MAX_THREADS, x.dtype)  # as the row kernels
        m = blocks.block_row_max(buf, x, cuda.blockIdx.x)
        if cuda.threadIdx.x == 0:
            out[cuda.blockIdx.x] = m
    return kernel


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", PATHS[2:])
def test_block_row_max_propagates_nan(path, dtype):
    """The CUDA row maximum is NaN wherever the NaN sits: in any thread's stride, on either side
    of each step of the shared-memory tree (Python's max() and CUDA's fmax() both drop it)."""
    device = devices.parse(path)
    x = np.tile(np.linspace(-2.0, 2.0, WIDTH), (WIDTH + 3, 1)).astype(dtype)
    for j in range(WIDTH):
        x[j, j] = nan
    x[WIDTH, 3] = inf
    x[WIDTH + 1] = -inf
    out = device.put(np.zeros(len(x), dtype))
    threads = launch.cuda_family("blocks").threads_per_row(WIDTH)
    _block_max_kernel()[len(x), threads](device.put(x), out)
    np.testing.assert_array_equal(host(out), x.max(axis=1))  # NaN, inf, -inf and 2


# -- the public API, forward and backward --------------------------------------------------------
def _value_and_grad(fn, x, upstream):
    x = K.constant(x, dtype=x.dtype.name)
    with K.GradientTape() as tape:
        tape.watch(x)
        out = fn(x)
    grad = tape.gradient(out, x, output_gradients=K.constant(upstream, dtype=x.dtype.name))
    return K.eval(out), K.eval(grad)


@undefined_results_warn
@pytest.mark.parametrize("path,dtype", API_CASES)
def test_softmax_api(path, dtype, monkeypatch):
    name = _device_name(path, monkeypatch)
    z, _, _, dy = (a.astype(dtype) for a in _logit_rows())
    with K.device(name):
        y, dz = _value_and_grad(K.softmax, z, dy)
        assert_like(y, ref_softmax(z), dtype)
        assert_like(dz, ref_softmax_grad(ref_softmax(z), dy), dtype)
        log_y, dz = _value_and_grad(K.log_softmax, z, dy)
        assert_like(log_y, ref_log_softmax(z), dtype)
        assert_like(dz, ref_log_softmax_grad(ref_log_softmax(z), dy), dtype)


@undefined_results_warn
@pytest.mark.parametrize("path,dtype", API_CASES)
def test_crossentropy_api(path, dtype, monkeypatch):
    name = _device_name(path, monkeypatch)
    z, t, g, _ = (a.astype(dtype) for a in _logit_rows())
    with K.device(name):
        target = K.constant(t, dtype=t.dtype.name)
        loss, dz = _value_and_grad(lambda x: K.categorical_crossentropy(target, x, True), z, g)
        assert_like(loss, ref_logits_loss(t, z), dtype)
        assert_like(dz, ref_logits_grad(t, z, g), dtype)
        # softmax then crossentropy from "probabilities" takes the logits path (Keras 2)
        loss, dz = _value_and_grad(
            lambda x: K.categorical_crossentropy(target, K.softmax(x)), z, g)
        assert_like(loss, ref_logits_loss(t, z), dtype)
        assert_like(dz, ref_logits_grad(t, z, g), dtype)
    p, t, g = (a.astype(dtype) for a in _prob_rows())
    low, high = _clip_bounds(dtype)
    with K.device(name):
        target = K.constant(t, dtype=t.dtype.name)
        loss, dp = _value_and_grad(lambda x: K.categorical_crossentropy(target, x), p, g)
        assert_like(loss, ref_probs_loss(t, p, low, high), dtype)
        assert_like(dp, ref_probs_grad(t, p, g, low, high), dtype)


# -- no RuntimeWarning from the NumPy path where the result is defined ---------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_path_is_quiet_where_defined(dtype, monkeypatch):
    """Masked logits (-inf; target 0 for the loss), probabilities with zeros or exactly one-hot:
    defined results, no warnings, the reference values."""
    monkeypatch.setattr(launch, "one_thread_twins", False)
    device = devices.CPU
    z = np.array([[-inf, 1.0, 2.0, -inf], [0.5, -inf, -1.0, 3.0]], dtype)
    t = np.array([[0.0, 0.25, 0.75, 0.0], [0.5, 0.0, 0.5, 0.0]], dtype)
    g = np.array([1.5, -2.0], dtype)
    p = np.array([[0.0, 0.3, 0.7, 0.0], [0.0, 1.0, 0.0, 0.0]], dtype)
    low, high = _clip_bounds(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = [softmax.forward(device, z, 1), softmax.forward(device, z, 1, True),
               softmax.backward(device, softmax.forward(device, z, 1), t, 1),
               softmax.backward(device, softmax.forward(device, z, 1, True), t, 1, True),
               crossentropy.logits_forward(device, t, z, 1),
               crossentropy.logits_backward(device, t, z, g, 1),
               crossentropy.probs_forward(device, t, p, 1, EPS),
               crossentropy.probs_backward(device, t, p, g, 1, EPS)]
    want = [ref_softmax(z), ref_log_softmax(z), ref_softmax_grad(ref_softmax(z), t),
            ref_log_softmax_grad(ref_log_softmax(z), t), ref_logits_loss(t, z),
            ref_logits_grad(t, z, g), ref_probs_loss(t, p, low, high),
            ref_probs_grad(t, p, g, low, high)]
    for a, b in zip(got, want):
        assert not np.isnan(b).any()  # defined (log-softmax is -inf at a masked class)
        assert_like(a, b, dtype)
