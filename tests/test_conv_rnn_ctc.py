"""Convolution, pooling, normalisation, recurrence and CTC against direct, slow, obviously
correct NumPy float64 loops, and finite-difference gradients on small shapes."""
import itertools

import numpy as np
import pytest

import gpubk as K
from gradcheck import check_gradients


def f64(a):
    return K.constant(a, dtype="float64")


def same_pad(n, k, s, d):
    total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def conv_reference(x, w, strides, padding, dilation):
    """Channels-last N-D convolution by direct loops over every output position."""
    rank = x.ndim - 2
    ks = w.shape[:rank]
    if padding == "same":
        pads = [same_pad(n, k, s, d) for n, k, s, d in zip(x.shape[1:-1], ks, strides, dilation)]
    elif padding == "causal":
        pads = [((ks[0] - 1) * dilation[0], 0)]
    else:
        pads = [(0, 0)] * rank
    x = np.pad(x, [(0, 0), *pads, (0, 0)])
    out = [(n - (k - 1) * d - 1) // s + 1 for n, k, s, d in zip(x.shape[1:-1], ks, strides,
                                                                 dilation)]
    y = np.zeros((x.shape[0], *out, w.shape[-1]))
    for pos in itertools.product(*(range(o) for o in out)):
        for off in itertools.product(*(range(k) for k in ks)):
            idx = tuple(p * s + o * d for p, s, o, d in zip(pos, strides, off, dilation))
            y[(slice(None), *pos)] += x[(slice(None), *idx)] @ w[off]
    return y


CONV_CASES = [  # rank, input spatial, kernel spatial, strides, padding, dilation
    (1, (9,), (3,), (1,), "valid", (1,)), (1, (9,), (3,), (2,), "same", (1,)),
    (1, (8,), (3,), (1,), "causal", (2,)), (2, (7, 6), (3, 2), (1, 1), "valid", (1, 1)),
    (2, (7, 6), (3, 3), (2, 2), "same", (1, 1)), (2, (9, 8), (3, 2), (1, 1), "same", (2, 3)),
    (3, (5, 4, 6), (2, 3, 2), (2, 1, 2), "same", (1, 1, 1))]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank,spatial,ks,strides,padding,dilation", CONV_CASES)
def test_convolutions(rank, spatial, ks, strides, padding, dilation, data_format, device, rng):
    x = rng.standard_normal((2, *spatial, 3))
    w = rng.standard_normal((*ks, 3, 4))
    want = conv_reference(x, w, strides, padding, dilation)
    fn = {1: K.conv1d, 2: K.conv2d, 3: K.conv3d}[rank]
    to_first = (0, rank + 1, *range(1, rank + 1))
    xin = x if data_format == "channels_last" else x.transpose(to_first)
    got = K.eval(fn(f64(xin), f64(w), strides, padding, data_format, dilation))
    if data_format == "channels_first":
        got = got.transpose(0, *range(2, rank + 2), 1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if rank < 3:
        check_gradients(lambda a, k: fn(a, k, strides, padding, data_format, dilation),
                        [xin[:1], w])


@pytest.mark.parametrize("strides,padding", [((1, 1), "valid"), ((2, 2), "same"),
                                             ((2, 1), "valid")])
def test_conv2d_transpose_is_the_adjoint_of_conv2d(strides, padding, device, rng):
    w = rng.standard_normal((3, 2, 4, 3))  # (rows, cols, out, in) for the transpose
    z = rng.standard_normal((2, 7, 8, 4))
    forward = K.eval(K.conv2d(f64(z), f64(w), strides, padding))  # (.., 3) channels
    x = rng.standard_normal(forward.shape)
    y = K.eval(K.conv2d_transpose(f64(x), f64(w), z.shape, strides, padding))
    assert y.shape == z.shape
    np.testing.assert_allclose(np.sum(forward * x), np.sum(z * y), rtol=1e-10)
    first = K.eval(K.conv2d_transpose(f64(x.transpose(0, 3, 1, 2)), f64(w),
                                      (2, 4, 7, 8), strides, padding, "channels_first"))
    np.testing.assert_allclose(first, y.transpose(0, 3, 1, 2), rtol=1e-10)
    check_gradients(lambda a, k: K.conv2d_transpose(a, k, (1, 7, 8, 4), strides, padding),
                    [x[:1], w])


def test_depthwise_and_separable(device, rng):
    x = rng.standard_normal((2, 6, 5, 3))
    dw = rng.standard_normal((3, 2, 3, 2))  # multiplier 2
    pw = rng.standard_normal((1, 1, 6, 4))
    want = np.concatenate([conv_reference(x[..., c:c + 1], dw[:, :, c:c + 1, :], (1, 1),
                                          "same", (1, 1))[..., None, :] for c in range(3)],
                          axis=-2).reshape(2, 6, 5, 6)  # channel-major, as TensorFlow
    got = K.eval(K.depthwise_conv2d(f64(x), f64(dw), padding="same"))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    sep = K.eval(K.separable_conv2d(f64(x), f64(dw), f64(pw), padding="same"))
    np.testing.assert_allclose(sep, want @ pw[0, 0], rtol=1e-10)
    check_gradients(lambda a, d, p: K.separable_conv2d(a, d, p, (2, 2), "same"),
                    [x[:1], dw, pw])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_locally_connected(data_format, device, rng):
    x = rng.standard_normal((2, 5, 4, 3))  # channels last
    kh, kw, out = 2, 2, (4, 3)
    kernel = rng.standard_normal((12, kh * kw * 3, 2))
    want = np.zeros((2, *out, 2))
    for i, j in itertools.product(range(4), range(3)):
        patch = x[:, i:i + kh, j:j + kw, :]
        if data_format == "channels_first":
            patch = patch.transpose(0, 3, 1, 2)  # Keras flattens these channel-major
        want[:, i, j] = patch.reshape(2, -1) @ kernel[i * 3 + j]
    xin = x if data_format == "channels_last" else x.transpose(0, 3, 1, 2)
    got = K.eval(K.local_conv2d(f64(xin), f64(kernel), (kh, kw), (1, 1), out, data_format))
    if data_format == "channels_first":
        got = got.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    x1 = rng.standard_normal((2, 7, 3))
    k1 = rng.standard_normal((3, 3 * 3, 2))  # kernel 3, stride 2: 3 positions
    want1 = np.stack([x1[:, 2 * i:2 * i + 3].reshape(2, -1) @ k1[i] for i in range(3)], 1)
    np.testing.assert_allclose(K.eval(K.local_conv1d(f64(x1), f64(k1), (3,), (2,))), want1,
                               rtol=1e-10)
    check_gradients(lambda a, k: K.local_conv1d(a, k, (3,), (2,)), [x1, k1])


def pool_reference(x, size, strides, padding, mode):
    rank = x.ndim - 2
    if padding == "same":
        pads = [same_pad(n, k, s, 1) for n, k, s in zip(x.shape[1:-1], size, strides)]
    else:
        pads = [(0, 0)] * rank
    real = np.pad(np.ones(x.shape), [(0, 0), *pads, (0, 0)]).astype(bool)
    x = np.pad(x, [(0, 0), *pads, (0, 0)])
    out = [(n - k) // s + 1 for n, k, s in zip(x.shape[1:-1], size, strides)]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for pos in itertools.product(*(range(o) for o in out)):
        window = tuple(slice(p * s, p * s + k) for p, s, k in zip(pos, strides, size))
        values = x[(slice(None), *window)].reshape(x.shape[0], -1, x.shape[-1])
        mask = real[(slice(None), *window)].reshape(x.shape[0], -1, x.shape[-1])
        y[(slice(None), *pos)] = (np.where(mask, values, -np.inf).max(1) if mode == "max"
                                  else (values * mask).sum(1) / mask.sum(1))
    return y


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("padding,strides", [("valid", (1, 1)), ("same", (2, 2)),
                                             ("same", (2, 3))])
def test_pool2d(mode, padding, strides, device, rng):
    x = rng.standard_normal((2, 7, 8, 3))
    want = pool_reference(x, (3, 2), strides, padding, mode)
    got = K.eval(K.pool2d(f64(x), (3, 2), strides, padding, "channels_last", mode))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    first = K.eval(K.pool2d(f64(x.transpose(0, 3, 1, 2)), (3, 2), strides, padding,
                            "channels_first", mode))
    np.testing.assert_allclose(first, want.transpose(0, 3, 1, 2), rtol=1e-12)
    check_gradients(lambda a: K.pool2d(a, (3, 2), strides, padding, pool_mode=mode), [x[:1]])


def test_pool3d(device, rng):
    x = rng.standard_normal((1, 5, 4, 6, 2))
    for mode in ("max", "avg"):
        np.testing.assert_allclose(
            K.eval(K.pool3d(f64(x), (2, 2, 3), (2, 2, 2), "same", pool_mode=mode)),
            pool_reference(x, (2, 2, 3), (2, 2, 2), "same", mode), rtol=1e-12)


def test_batch_normalization(device, rng):
    x = rng.standard_normal((4, 3, 5))
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    beta, gamma = rng.standard_normal(3), rng.standard_normal(3)
    got = K.eval(K.batch_normalization(f64(x), f64(mean), f64(var), f64(beta), f64(gamma),
                                       axis=1))
    b = (slice(None), None)
    want = (x - mean[b]) / np.sqrt(var[b] + 1e-3) * gamma[b] + beta[b]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    last = K.eval(K.batch_normalization(f64(x), f64(mean[:1] * 0 + 1.0), f64(var[:1]), None,
                                        None, epsilon=0.1))
    np.testing.assert_allclose(last, (x - 1.0) / np.sqrt(var[0] + 0.1), rtol=1e-12)
    check_gradients(lambda a, m, v, bt, g: K.batch_normalization(a, m, v, bt, g, axis=1),
                    [x, mean, var, beta, gamma])


def test_normalize_batch_in_training(device, rng):
    x = rng.standard_normal((6, 4, 3))
    beta, gamma = rng.standard_normal(3), rng.standard_normal(3)
    normed, mean, var = K.normalize_batch_in_training(f64(x), f64(gamma), f64(beta), [0, 1])
    np.testing.assert_allclose(K.eval(mean), x.mean((0, 1)), rtol=1e-12)
    np.testing.assert_allclose(K.eval(var), x.var((0, 1)), rtol=1e-12)
    want = (x - x.mean((0, 1))) / np.sqrt(x.var((0, 1)) + 1e-3) * gamma + beta
    np.testing.assert_allclose(K.eval(normed), want, rtol=1e-10)
    check_gradients(lambda a: K.normalize_batch_in_training(a, f64(gamma), f64(beta),
                                                            [0, 1])[0], [x])


def _simple_rnn(x, w, u, h0, mask=None, backwards=False, zero_output=False):
    steps = range(x.shape[1] - 1, -1, -1) if backwards else range(x.shape[1])
    h, outputs, previous = h0, [], np.zeros((x.shape[0], w.shape[1]))
    for t in steps:
        new = np.tanh(x[:, t] @ w + h @ u)
        if mask is not None:
            keep = mask[:, t][:, None]
            h = np.where(keep, new, h)
            new = np.where(keep, new, 0.0 if zero_output else previous)
        else:
            h = new
        outputs.append(new)
        previous = new
    return outputs[-1], np.stack(outputs, 1), h


@pytest.mark.parametrize("backwards,masked,zero_output", [(False, False, False),
                                                          (True, False, False),
                                                          (False, True, False),
                                                          (True, True, True)])
def test_rnn(backwards, masked, zero_output, device, rng):
    x = rng.standard_normal((3, 6, 2))
    w, u = rng.standard_normal((2, 4)) * 0.5, rng.standard_normal((4, 4)) * 0.5
    h0 = rng.standard_normal((3, 4))
    mask = rng.uniform(size=(3, 6)) > 0.3 if masked else None

    def run(xs, ws, us, h):
        def step(inp, states):
            out = K.tanh(K.dot(inp, ws) + K.dot(states[0], us))
            return out, [out]
        return K.rnn(step, xs, [h], go_backwards=backwards,
                     mask=None if mask is None else K.constant(mask, "bool"),
                     zero_output_for_mask=zero_output)
    last, outputs, states = run(f64(x), f64(w), f64(u), f64(h0))
    want = _simple_rnn(x, w, u, h0, mask, backwards, zero_output)
    for got, ref in zip((last, outputs, states[0]), want):
        np.testing.assert_allclose(K.eval(got), ref, rtol=1e-12)
    check_gradients(lambda xs, ws, us, h: run(xs, ws, us, h)[1], [x, w, u, h0])


def test_rnn_gradient_through_20_steps(device, rng):
    x = rng.standard_normal((2, 20, 3))
    w, u = rng.standard_normal((3, 4)) * 0.4, rng.standard_normal((4, 4)) * 0.4

    def last_output(xs, ws, us):
        def step(inp, states):
            out = K.tanh(K.dot(inp, ws) + K.dot(states[0], us))
            return out, [out]
        return K.rnn(step, xs, [K.zeros((2, 4), "float64")])[0]
    check_gradients(last_output, [x, w, u])


def _ctc_brute_force(p, labels, steps):
    """-log of the summed probability of every path that collapses to `labels`."""
    blank = p.shape[1] - 1
    q = np.log(p + 1e-7)
    q = np.exp(q - np.log(np.exp(q).sum(-1, keepdims=True)))  # TensorFlow's softmax
    total = 0.0
    for path in itertools.product(range(p.shape[1]), repeat=steps):
        merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        if [c for c in merged if c != blank] == list(labels):
            total += np.prod([q[t, c] for t, c in enumerate(path)])
    return -np.log(total)


def test_ctc_batch_cost_and_its_gradient(device, rng):
    z = rng.standard_normal((3, 5, 4))
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    labels = np.array([[0, 1, 0], [2, 2, 0], [1, 0, 2]])
    label_length, input_length = np.array([[2], [2], [3]]), np.array([[5], [4], [5]])
    args = [K.constant(a, "int32") for a in (labels, input_length, label_length)]
    got = K.eval(K.ctc_batch_cost(args[0], f64(p), args[1], args[2]))
    assert got.shape == (3, 1)
    for b in range(3):
        np.testing.assert_allclose(got[b, 0], _ctc_brute_force(
            p[b, :input_length[b, 0]], labels[b, :label_length[b, 0]], input_length[b, 0]),
            rtol=1e-10)
    check_gradients(lambda q: K.ctc_batch_cost(*[K.constant(a, "int32") for a in (
        labels, )], q, *[K.constant(a, "int32") for a in (input_length, label_length)]),
        [p], rtol=1e-4, atol=1e-6)


def test_ctc_label_dense_to_sparse_and_greedy_decode(device):
    sparse = K.ctc_label_dense_to_sparse(K.constant([[1, 2, 0], [3, 0, 0]], "int32"),
                                         K.constant([2, 1], "int32"))
    np.testing.assert_array_equal(sparse.indices, [[0, 0], [0, 1], [1, 0]])
    np.testing.assert_array_equal(sparse.values, [1, 2, 3])
    np.testing.assert_array_equal(sparse.dense_shape, [2, 3])
    p = np.full((2, 6, 4), 0.05)
    best = [[0, 0, 3, 0, 1, 1], [2, 3, 3, 2, 0, 0]]  # blank is class 3
    for b, row in enumerate(best):
        p[b, np.arange(6), row] = 0.85
    decoded, log_prob = K.ctc_decode(f64(p), K.constant([6, 4], "int32"))
    np.testing.assert_array_equal(K.eval(decoded[0]), [[0, 0, 1], [2, 2, -1]])
    np.testing.assert_allclose(K.eval(log_prob)[:, 0], [-6 * np.log(0.85 + 1e-7),
                                                        -4 * np.log(0.85 + 1e-7)], rtol=1e-12)
    with pytest.raises(NotImplementedError, match="beam search"):
        K.ctc_decode(f64(p), K.constant([6, 4], "int32"), greedy=False)
