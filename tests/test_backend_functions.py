"""The rest of the Keras 2 backend (part 1): values against NumPy float64 references with
Keras's edge cases, and finite-difference gradients for the differentiable ones."""
import numpy as np
import pytest

import gpubk as K
from gradcheck import check_gradients


def f64(a):
    return K.constant(a, dtype="float64")


# -- math ----------------------------------------------------------------------------------------
def test_elementwise_math(device, rng):
    a, b = rng.uniform(-2, 2, (3, 4)), rng.uniform(-2, 2, (4,))
    np.testing.assert_allclose(K.eval(K.sin(f64(a))), np.sin(a), rtol=1e-12)
    np.testing.assert_allclose(K.eval(K.cos(f64(a))), np.cos(a), rtol=1e-12)
    np.testing.assert_array_equal(K.eval(K.maximum(f64(a), f64(b))), np.maximum(a, b))
    np.testing.assert_array_equal(K.eval(K.minimum(f64(a), f64(b))), np.minimum(a, b))
    np.testing.assert_array_equal(K.eval(K.round(f64([0.5, 1.5, 2.5, -0.5, 2.4]))),
                                  [0.0, 2.0, 2.0, -0.0, 2.0])  # halves to even, as tf.round
    np.testing.assert_array_equal(K.eval(K.sign(f64([-3.0, 0.0, 2.0]))), [-1, 0, 1])


@pytest.mark.parametrize("fn", [K.sin, K.cos, lambda x: K.maximum(x, 0.3),
                                lambda x: K.minimum(x, K.transpose(x)), lambda x: K.square(x),
                                lambda x: K.pow(x, 3.0), lambda x: K.cumsum(x, axis=1),
                                lambda x: K.cumsum(x), lambda x: K.cumprod(x, axis=1),
                                lambda x: K.logsumexp(x, axis=1), lambda x: K.logsumexp(x),
                                lambda x: K.std(x, axis=0), lambda x: K.var(x, keepdims=True),
                                lambda x: K.l2_normalize(x, axis=1)])
def test_math_gradients(fn, device, rng):
    a = rng.uniform(0.5, 2.0, (4, 4))
    a[np.abs(a - 0.3) < 0.02] += 0.05
    check_gradients(fn, [a])


def test_maximum_gives_ties_to_the_first_operand(device):
    x, y = K.variable([1.0, 2.0], dtype="float64"), K.variable([1.0, 3.0], dtype="float64")
    gx, gy = K.gradients(K.sum(K.maximum(x, y)), [x, y])
    np.testing.assert_array_equal(K.eval(gx), [1, 0])
    np.testing.assert_array_equal(K.eval(gy), [0, 1])


def test_cumulative_and_statistics(device, rng):
    a = rng.standard_normal((3, 5))
    np.testing.assert_allclose(K.eval(K.cumsum(f64(a))), np.cumsum(a, axis=0), rtol=1e-12)
    np.testing.assert_allclose(K.eval(K.cumprod(f64(a), axis=-1)), np.cumprod(a, axis=-1),
                               rtol=1e-12)
    np.testing.assert_allclose(K.eval(K.var(f64(a), axis=1)), a.var(axis=1), rtol=1e-12)
    np.testing.assert_allclose(K.eval(K.std(f64(a))), a.std(), rtol=1e-12)
    flags = K.constant([True, False, True, True], dtype="bool")
    assert K.dtype(K.var(flags)) == "float32"
    np.testing.assert_allclose(float(K.var(flags)), np.var([1, 0, 1, 1]), rtol=1e-6)


def test_logsumexp_is_stable(device):
    a = np.array([[1000.0, 1000.0], [-1000.0, -1001.0], [0.0, np.log(3.0)]])
    got = K.eval(K.logsumexp(f64(a), axis=1))
    np.testing.assert_allclose(got, [1000 + np.log(2), -1000 + np.log1p(np.exp(-1)),
                                     np.log(4.0)], rtol=1e-12)
    assert K.eval(K.logsumexp(f64(a), axis=1, keepdims=True)).shape == (3, 1)


def test_logsumexp_of_infinite_rows_is_tensorflows(device, recwarn):
    """tf.reduce_logsumexp takes out only a finite maximum: a row of -inf gives -inf, +inf
    gives inf, NaN gives NaN (never inf - inf), with no warning."""
    inf = np.inf
    a = np.array([[-inf, -inf], [0.0, -inf], [inf, 1.0], [np.nan, 1.0]])
    np.testing.assert_array_equal(K.eval(K.logsumexp(f64(a), axis=1)), [-inf, 0.0, inf, np.nan])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_logical_and_arg_reductions(device, rng):
    a = rng.standard_normal((3, 4))
    x = f64(a)
    np.testing.assert_array_equal(K.eval(K.all(x > -5, axis=1)), [True] * 3)
    np.testing.assert_array_equal(K.eval(K.any(x > 10)), False)
    np.testing.assert_array_equal(K.eval(K.any(f64([[0.0, 2.0], [0.0, 0.0]]), axis=1)),
                                  [True, False])
    assert K.dtype(K.argmax(x)) == "int64"
    np.testing.assert_array_equal(K.eval(K.argmax(x)), a.argmax(-1))
    np.testing.assert_array_equal(K.eval(K.argmin(x, axis=0)), a.argmin(0))
    assert K.gradients(K.sum(K.cast(K.argmax(K.variable(a)), "float32")),
                       [K.variable(a)]) == [None]


# -- comparison and selection --------------------------------------------------------------------
def test_switch_scalar_condition_is_lazy(device):
    called = []
    then = K.switch(K.constant(True, dtype="bool"), lambda: K.constant(1.0),
                    lambda: called.append("else"))
    assert float(then) == 1.0 and called == []
    assert float(K.switch(False, K.constant(1.0), K.constant(2.0))) == 2.0


def test_switch_tensor_condition(device, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    cond = a > 0
    np.testing.assert_array_equal(K.eval(K.switch(K.constant(cond, dtype="bool"), f64(a),
                                                  f64(b))), np.where(cond, a, b))
    rows = np.array([True, False, True])
    np.testing.assert_array_equal(K.eval(K.switch(K.constant(rows, dtype="bool"), f64(a),
                                                  lambda: f64(b))),
                                  np.where(rows[:, None], a, b))
    with pytest.raises(ValueError, match="switch: condition of rank 2"):
        K.switch(K.constant(cond, dtype="bool"), f64(a[0]), f64(b[0]))
    x = K.variable(a, dtype="float64")
    g = K.gradients(K.sum(K.switch(K.constant(rows, dtype="bool"), x * 2.0, x * 3.0)), [x])[0]
    np.testing.assert_array_equal(K.eval(g), np.where(rows[:, None], 2.0, 3.0) + 0 * a)


def test_in_top_k(device):
    p = f64([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [0.9, 0.05, 0.05]])
    t = K.constant([2, 0, 1], dtype="int32")
    np.testing.assert_array_equal(K.eval(K.in_top_k(p, t, 1)), [False, False, False])
    np.testing.assert_array_equal(K.eval(K.in_top_k(p, t, 2)), [True, True, True])  # ties


def test_comparisons_against_numpy(device, rng):
    a, b = rng.integers(0, 3, (4, 5)).astype(float), rng.integers(0, 3, (5,)).astype(float)
    for fn, ref in ((K.equal, np.equal), (K.not_equal, np.not_equal), (K.greater, np.greater),
                    (K.greater_equal, np.greater_equal), (K.less, np.less),
                    (K.less_equal, np.less_equal)):
        np.testing.assert_array_equal(K.eval(fn(f64(a), f64(b))), ref(a, b))


# -- shapes --------------------------------------------------------------------------------------
def test_shape_functions(device, rng):
    a = rng.standard_normal((2, 1, 3))
    np.testing.assert_array_equal(K.eval(K.squeeze(f64(a), 1)), a[:, 0])
    with pytest.raises(ValueError, match="squeeze: axis 2 of shape"):
        K.squeeze(f64(a), 2)
    np.testing.assert_array_equal(K.eval(K.expand_dims(f64(a), 0)), a[None])
    np.testing.assert_array_equal(K.eval(K.flatten(f64(a))), a.ravel())
    np.testing.assert_array_equal(K.eval(K.batch_flatten(f64(a))), a.reshape(2, -1))
    np.testing.assert_array_equal(K.eval(K.reverse(f64(a), 2)), a[:, :, ::-1])
    np.testing.assert_array_equal(K.eval(K.reverse(f64(a), [0, -1])), a[::-1, :, ::-1])
    np.testing.assert_array_equal(K.eval(K.repeat(f64(a[:, 0]), 4)),
                                  np.repeat(a[:, 0][:, None], 4, axis=1))
    np.testing.assert_array_equal(K.eval(K.gather(f64(a), K.constant([1, 0, 1], "int32"))),
                                  a[[1, 0, 1]])
    with pytest.raises(ValueError, match="gather"):
        K.gather(f64(a), K.constant([2], "int32"))


def test_arange_and_one_hot(device):
    assert K.dtype(K.arange(5)) == "int32"
    np.testing.assert_array_equal(K.eval(K.arange(5)), np.arange(5))
    np.testing.assert_array_equal(K.eval(K.arange(-3)), [])
    np.testing.assert_array_equal(K.eval(K.arange(1, 8, 3, dtype="float32")), [1.0, 4.0, 7.0])
    oh = K.one_hot(K.constant([[0, 2], [3, 1]], "int32"), 3)
    assert K.dtype(oh) == "float32" and K.int_shape(oh) == (2, 2, 3)
    np.testing.assert_array_equal(K.eval(oh), [[[1, 0, 0], [0, 0, 1]], [[0, 0, 0], [0, 1, 0]]])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_padding(data_format, device, rng):
    a = rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(K.eval(K.temporal_padding(f64(a), (1, 2))),
                                  np.pad(a, ((0, 0), (1, 2), (0, 0))))
    b = rng.standard_normal((2, 3, 4, 5))
    spatial = ((1, 0), (2, 1))
    want = np.pad(b, ((0, 0), (0, 0), *spatial) if data_format == "channels_first"
                  else ((0, 0), *spatial, (0, 0)))
    np.testing.assert_array_equal(K.eval(K.spatial_2d_padding(f64(b), spatial, data_format)),
                                  want)
    c = rng.standard_normal((1, 2, 3, 2, 2))
    pads = ((1, 1), (0, 1), (2, 0))
    want = np.pad(c, ((0, 0), (0, 0), *pads) if data_format == "channels_first"
                  else ((0, 0), *pads, (0, 0)))
    np.testing.assert_array_equal(K.eval(K.spatial_3d_padding(f64(c), pads, data_format)), want)


def _bilinear_reference(image, fh, fw):
    """tf.image.resize(bilinear, half-pixel centres) of one (H, W) image, pixel by pixel."""
    h, w = image.shape
    out = np.zeros((h * fh, w * fw))
    for i in range(h * fh):
        for j in range(w * fw):
            y = min(max((i + 0.5) / fh - 0.5, 0), h - 1)
            x = min(max((j + 0.5) / fw - 0.5, 0), w - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = (image[y0, x0] * (1 - dy) * (1 - dx) + image[y0, x1] * (1 - dy) * dx
                         + image[y1, x0] * dy * (1 - dx) + image[y1, x1] * dy * dx)
    return out


def test_resize_images_and_volumes(device, rng):
    a = rng.standard_normal((2, 3, 4, 2))  # channels last
    near = K.eval(K.resize_images(f64(a), 2, 3, "channels_last"))
    np.testing.assert_array_equal(near, a.repeat(2, axis=1).repeat(3, axis=2))
    first = K.eval(K.resize_images(f64(a.transpose(0, 3, 1, 2)), 2, 3, "channels_first"))
    np.testing.assert_array_equal(first, near.transpose(0, 3, 1, 2))
    bilinear = K.eval(K.resize_images(f64(a), 2, 3, "channels_last", "bilinear"))
    np.testing.assert_allclose(bilinear[1, :, :, 0], _bilinear_reference(a[1, :, :, 0], 2, 3),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="interpolation 'area'"):
        K.resize_images(f64(a), 2, 2, "channels_last", "area")
    v = rng.standard_normal((1, 2, 2, 3, 1))
    np.testing.assert_array_equal(K.eval(K.resize_volumes(f64(v), 2, 1, 2, "channels_last")),
                                  v.repeat(2, 1).repeat(2, 3))


@pytest.mark.parametrize("xs,ys,axes", [
    ((4, 3), (4, 3), None), ((4, 3), (4, 3), 1), ((4, 2, 3), (4, 3, 5), None),
    ((4, 2, 3), (4, 3), None), ((4, 3), (4, 3, 5), None), ((4, 2, 3), (4, 5, 3), (2, 2)),
    ((4, 20, 1), (4, 30, 20), (1, 2)), ((4, 2, 3, 5), (4, 5, 6), None),
    ((4, 3, 2), (4, 6, 3, 7), (1, 2))])
def test_batch_dot_matches_per_sample_tensordot(xs, ys, axes, device, rng):
    a, b = rng.standard_normal(xs), rng.standard_normal(ys)
    got = K.eval(K.batch_dot(f64(a), f64(b), axes))
    if axes is None:
        axes = (len(xs) - 1, len(ys) - 1 if len(ys) == 2 else len(ys) - 2)
    elif isinstance(axes, int):
        axes = (axes, axes)
    want = np.stack([np.tensordot(a[i], b[i], axes=(axes[0] - 1, axes[1] - 1))
                     for i in range(xs[0])])
    if len(xs) == 2 and len(ys) == 2:
        want = want[:, None]  # Keras: (B, D) . (B, D) -> (B, 1)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12)
    check_gradients(lambda x, y: K.batch_dot(x, y, axes), [a, b])


def test_batch_dot_documented_shape_and_errors(device):
    assert K.int_shape(K.batch_dot(K.ones((32, 20, 1)), K.ones((32, 30, 20)), (1, 2))) == \
        (32, 1, 30)
    with pytest.raises(ValueError, match="axis 0"):
        K.batch_dot(K.ones((2, 3)), K.ones((2, 3)), 0)
    with pytest.raises(ValueError, match="batch sizes differ"):
        K.batch_dot(K.ones((2, 3)), K.ones((4, 3)))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_bias_add(data_format, device, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    channels = 3 if data_format == "channels_first" else 5
    b = rng.standard_normal(channels)
    want = x + (b[None, :, None, None] if data_format == "channels_first" else b)
    np.testing.assert_allclose(K.eval(K.bias_add(f64(x), f64(b), data_format)), want)
    full = rng.standard_normal((3, 4, 5) if data_format == "channels_last" else (4, 5, 3))
    want = x + (full.reshape(1, 3, 4, 5) if data_format == "channels_first" else full)
    np.testing.assert_allclose(K.eval(K.bias_add(f64(x), f64(full), data_format)), want)
    with pytest.raises(ValueError, match="bias_add"):
        K.bias_add(f64(x), f64(np.ones(7)), data_format)
    check_gradients(lambda x, b: K.bias_add(x, b, data_format), [x, b])


def test_map_fn_and_folds(device, rng):
    a = rng.standard_normal((4, 3))
    np.testing.assert_allclose(K.eval(K.map_fn(lambda r: K.sum(r * r), f64(a))),
                               (a * a).sum(1), rtol=1e-12)
    np.testing.assert_allclose(float(K.foldl(lambda acc, r: acc + K.sum(r), f64(a),
                                             f64(0.0))), a.sum(), rtol=1e-12)
    np.testing.assert_allclose(K.eval(K.foldr(lambda acc, r: acc * 2.0 + r, f64(a))),
                               ((a[3] * 2 + a[2]) * 2 + a[1]) * 2 + a[0], rtol=1e-12)
    check_gradients(lambda x: K.map_fn(lambda r: K.exp(r), x), [a])
    check_gradients(lambda x: K.foldl(lambda acc, r: acc * r, x), [a])


@pytest.mark.parametrize("fn", [
    lambda x: K.squeeze(K.expand_dims(x, 1), 1), K.flatten, K.batch_flatten,
    lambda x: K.reverse(x, [0, 1]), lambda x: K.gather(x, K.constant([2, 0, 2], "int32")),
    lambda x: K.repeat(x, 3), lambda x: K.temporal_padding(K.expand_dims(x, -1), (2, 1)),
    lambda x: K.spatial_2d_padding(K.reshape(x, (1, 3, 4, 1)), ((1, 1), (0, 2))),
    lambda x: K.resize_images(K.reshape(x, (1, 3, 4, 1)), 2, 2, "channels_last", "bilinear"),
    lambda x: K.resize_images(K.reshape(x, (1, 3, 4, 1)), 3, 1, "channels_last")])
def test_shape_gradients(fn, device, rng):
    a = rng.standard_normal((3, 4))
    check_gradients(lambda x: fn(x) * K.constant(np.random.default_rng(1).standard_normal(
        K.int_shape(fn(x))), "float64"), [a])


# -- losses --------------------------------------------------------------------------------------
EPS = 1e-7


def _bce_reference(t, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -(t * np.log(p + EPS) + (1 - t) * np.log(1 - p + EPS))


def test_binary_crossentropy(kernel_device, rng):
    t = rng.integers(0, 2, (4, 3)).astype(float)
    p = rng.uniform(0, 1, (4, 3))
    p[0, 0], p[1, 1] = 0.0, 1.0
    np.testing.assert_allclose(K.eval(K.binary_crossentropy(f64(t), f64(p))),
                               _bce_reference(t, p), rtol=1e-12)
    z = rng.standard_normal((4, 3)) * 30
    want = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    np.testing.assert_allclose(K.eval(K.binary_crossentropy(f64(t), f64(z), True)), want,
                               rtol=1e-12)
    np.testing.assert_allclose(K.eval(K.binary_crossentropy(f64(t), K.sigmoid(f64(z)))), want,
                               rtol=1e-12)  # the sigmoid's logits, not its clipped output
    check_gradients(lambda t, z: K.binary_crossentropy(t, z, from_logits=True), [t, z / 10])
    check_gradients(lambda p: K.binary_crossentropy(f64(t), p), [np.clip(p, 0.05, 0.95)])


def _log_softmax(z, axis=-1):
    s = z - z.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("target_shape", [(5,), (5, 1)])
def test_sparse_categorical_crossentropy(target_shape, kernel_device, rng):
    labels = rng.integers(0, 4, 5)
    z = rng.standard_normal((5, 4))
    p = np.exp(_log_softmax(z)) * rng.uniform(0.5, 2.0, (5, 1))  # unnormalised probabilities
    p[0, labels[0]] = 0.0  # clipped to epsilon
    t = K.constant(labels.reshape(target_shape), "int32")
    logp = _log_softmax(np.log(np.clip(p, EPS, 1 - EPS)))  # clip, log, renormalise
    np.testing.assert_allclose(K.eval(K.sparse_categorical_crossentropy(t, f64(p))),
                               -logp[np.arange(5), labels], rtol=1e-10)
    np.testing.assert_allclose(K.eval(K.sparse_categorical_crossentropy(t, f64(z), True)),
                               -_log_softmax(z)[np.arange(5), labels], rtol=1e-10)
    check_gradients(lambda z: K.sparse_categorical_crossentropy(
        K.constant(labels.reshape(target_shape), "int32"), z, True), [z])


def test_sparse_categorical_crossentropy_axis_ignore_class_and_errors(kernel_device, rng):
    z = rng.standard_normal((2, 4, 3))  # classes on axis 1
    labels = rng.integers(0, 4, (2, 3))
    got = K.eval(K.sparse_categorical_crossentropy(K.constant(labels, "int32"), f64(z), True,
                                                   axis=1))
    want = -np.take_along_axis(_log_softmax(z, 1), labels[:, None, :], 1)[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    labels[0, 0] = -1
    got = K.eval(K.sparse_categorical_crossentropy(K.constant(labels, "int32"), f64(z), True,
                                                   axis=1, ignore_class=-1))
    assert got[0, 0] == 0.0
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10)
    with pytest.raises(ValueError, match=r"targets must be whole class indices in \[0, 4\)"):
        K.sparse_categorical_crossentropy(K.constant(labels, "int32"), f64(z), True, axis=1)


def test_focal_crossentropies(kernel_device, rng):
    t = rng.integers(0, 2, (4, 3)).astype(float)
    p = rng.uniform(0.05, 0.95, (4, 3))
    p_t = t * p + (1 - t) * (1 - p)
    want = (1 - p_t) ** 2 * _bce_reference(t, p)
    np.testing.assert_allclose(K.eval(K.binary_focal_crossentropy(f64(t), f64(p))), want,
                               rtol=1e-12)
    balanced = (t * 0.25 + (1 - t) * 0.75) * want
    np.testing.assert_allclose(K.eval(K.binary_focal_crossentropy(f64(t), f64(p), True)),
                               balanced, rtol=1e-12)
    z = rng.standard_normal((4, 3))
    s = 1 / (1 + np.exp(-z))
    want = (1 - (t * s + (1 - t) * (1 - s))) ** 2 * (np.maximum(z, 0) - z * t +
                                                     np.log1p(np.exp(-np.abs(z))))
    np.testing.assert_allclose(K.eval(K.binary_focal_crossentropy(f64(t), f64(z),
                                                                  from_logits=True)),
                               want, rtol=1e-10)
    onehot = np.eye(3)[[0, 2, 1, 1]]
    q = p / p.sum(-1, keepdims=True)
    want = (0.25 * (1 - q) ** 2 * -onehot * np.log(np.clip(q, EPS, 1 - EPS))).sum(-1)
    np.testing.assert_allclose(K.eval(K.categorical_focal_crossentropy(f64(onehot), f64(p))),
                               want, rtol=1e-12)
    q = np.exp(_log_softmax(z))
    want = (0.25 * (1 - q) ** 2 * -onehot * np.log(q)).sum(-1)
    np.testing.assert_allclose(K.eval(K.categorical_focal_crossentropy(
        f64(onehot), f64(z), from_logits=True)), want, rtol=1e-10)
    check_gradients(lambda p: K.categorical_focal_crossentropy(f64(onehot), p), [p])
    check_gradients(lambda p: K.binary_focal_crossentropy(f64(t), p, True), [p])


# -- random --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,kwargs", [
    (K.random_uniform, {"minval": -1.0, "maxval": 3.0}), (K.random_normal, {"stddev": 2.0}),
    (K.truncated_normal, {"mean": 1.0, "stddev": 0.5}), (K.random_bernoulli, {"p": 0.3}),
    (K.random_binomial, {"p": 0.3})])
def test_random_is_seeded_and_has_the_right_distribution(fn, kwargs, device):
    a = K.eval(fn((100, 100), seed=11, **kwargs))
    np.testing.assert_array_equal(a, K.eval(fn((100, 100), seed=11, **kwargs)))
    assert not np.array_equal(a, K.eval(fn((100, 100), seed=12, **kwargs)))
    assert a.dtype == np.float32 and a.shape == (100, 100)
    if fn is K.random_uniform:
        assert a.min() >= -1 and a.max() < 3 and abs(a.mean() - 1.0) < 0.05
    elif fn is K.random_normal:
        assert abs(a.mean()) < 0.06 and abs(a.std() - 2.0) < 0.06
    elif fn is K.truncated_normal:
        assert a.min() >= 0.0 and a.max() <= 2.0 and abs(a.mean() - 1.0) < 0.02
    else:
        assert set(np.unique(a)) <= {0.0, 1.0} and abs(a.mean() - 0.3) < 0.02


def test_dropout(device, rng):
    x = K.variable(np.ones((200, 50)))
    y = K.eval(K.dropout(x, 0.25, seed=3))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(y, K.eval(K.dropout(x, 0.25, seed=3)))
    shared = K.eval(K.dropout(x, 0.5, noise_shape=(200, 1), seed=4))
    assert np.all(shared == shared[:, :1])  # one decision per row
    g = K.eval(K.gradients(K.sum(K.dropout(x, 0.25, seed=3)), [x])[0])
    np.testing.assert_array_equal(g, y)  # the mask, scaled: the gradient of x * mask
    assert K.dropout(x, 0.0) is x


# -- utilities -----------------------------------------------------------------------------------
def test_utilities():
    K.reset_uids()
    assert [K.get_uid("dense"), K.get_uid("dense"), K.get_uid("conv")] == [1, 2, 1]
    K.clear_session()
    assert K.get_uid("dense") == 1
    with K.name_scope("block") as scope:
        assert scope == "block/"
    assert K.image_data_format() == "channels_last"
    K.set_image_data_format("channels_first")
    try:
        assert K.image_data_format() == "channels_first"
    finally:
        K.set_image_data_format("channels_last")
    with pytest.raises(ValueError, match="set_image_data_format"):
        K.set_image_data_format("nchw")
    v = K.variable([1.0])
    assert K.is_keras_tensor(K.placeholder(shape=(2, 3))) and not K.is_keras_tensor(v)
    with pytest.raises(ValueError, match="is_keras_tensor"):
        K.is_keras_tensor(np.ones(2))
    assert not K.is_sparse(v) and K.to_dense(v) is v
    K.manual_variable_initialization(True)
    session = K.get_session()
    np.testing.assert_array_equal(session.run(v), [1.0])
    assert [a.tolist() for a in session.run([v, v])] == [[1.0], [1.0]]
    K.set_session(session)
    assert K.get_session() is session
    stopped = K.stop_gradient([v, v * 2.0])  # graph style (a placeholder exists): nodes
    assert all(K.is_keras_tensor(t) for t in stopped)
    assert [K.eval(t).tolist() for t in stopped] == [[1.0], [2.0]]
    K.clear_session()
    assert [t.requires_grad for t in K.stop_gradient([v, v * 2.0])] == [False, False]
