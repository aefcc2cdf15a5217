"""Shapes known only when fed, as inputs of declared primitives (gpubk/ops/dims.py): reshape,
broadcast_to, permute_dimensions and tile to `K.shape(...)`-built shapes, indexing with arrays,
bilinear resizing over unknown sizes, `K.constant` of symbolic values, `K.zeros`/`K.ones`/
`K.eye` and the random ops of fed shapes, and dropout of a placeholder.

For each: the node's static shape (unknown, or folded where `K.shape(y)[i]` is known), values
through `K.function` at two batch sizes against NumPy, gradients through `K.gradients` against
finite differences of a NumPy float64 function (staged: a graph of declared primitives only),
and errors for bad fed values raised when the function is called, naming the op.
"""
import numpy as np
import pytest

import gpubk as K
from gpubk.core.primitive import Primitive
from gpubk.ops import shape as S
from gpubk.symbolic import Placeholder, Symbol, topological_symbols

from gradcheck import numeric_gradient

BATCHES = (1, 4)


def _nodes(outputs) -> list:
    return [s for s in topological_symbols([o for o in outputs if isinstance(o, Symbol)])
            if not isinstance(s, Placeholder)]


def _staged(outputs) -> bool:
    """Whether the outputs' graph holds declared primitives only (no traced op, no tape)."""
    return all(isinstance(s.op, Primitive) for s in _nodes(outputs))


def _op_names(outputs) -> set:
    return {s.op.name for s in _nodes(outputs) if isinstance(s.op, Primitive)}


def _check_gradient(loss_np, value, got):
    want = numeric_gradient(lambda a: float(loss_np(a)), [value], 0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


# -- reshape, broadcast_to, permute_dimensions, tile ----------------------------------------------
W = np.array([[1.0, -2.0, 0.5]])

# name: (the op on x (None, 2, 3) float64 and the variable w = W, its static shape, a NumPy
# float64 function of (x, w) giving the same values)
FED = {
    "reshape-rows": (lambda x, w: K.reshape(x, (K.shape(x)[0], -1)), (None, 6),
                     lambda x, w: x.reshape(len(x), -1)),
    "reshape-whole": (lambda x, w: K.reshape(K.reshape(x, (-1,)), K.shape(x)), (None, 2, 3),
                      lambda x, w: x),
    "reshape-computed": (lambda x, w: K.reshape(x, (K.shape(x)[0] * 2, 3)), (None, 3),
                         lambda x, w: x.reshape(-1, 3)),
    "reshape-stack": (lambda x, w: K.reshape(x, K.stack([K.shape(x)[0], -1])), (None, 6),
                      lambda x, w: x.reshape(len(x), -1)),
    "reshape-slice": (lambda x, w: K.reshape(x, K.concatenate([K.shape(x)[:1], [6]])),
                      (None, 6), lambda x, w: x.reshape(len(x), -1)),
    "broadcast_to": (lambda x, w: S.broadcast_to(w, (K.shape(x)[0], 3)) * x[:, 0],
                     (None, 3), lambda x, w: np.broadcast_to(w, (len(x), 3)) * x[:, 0]),
    "broadcast_to-whole": (lambda x, w: S.broadcast_to(w, K.shape(x)) * x, (None, 2, 3),
                           lambda x, w: np.broadcast_to(w, x.shape) * x),
    "tile-variable": (lambda x, w: K.tile(w, (K.shape(x)[0], 1)) * x[:, 1], (None, 3),
                      lambda x, w: np.tile(w, (len(x), 1)) * x[:, 1]),
    "tile-stack": (lambda x, w: K.tile(w, K.stack([K.shape(x)[0], 2])), (None, 6),
                   lambda x, w: np.tile(w, (len(x), 2))),
    "tile-unknown-input": (lambda x, w: K.tile(K.expand_dims(x, 1), (1, K.shape(x)[0], 1, 1)),
                           (None, None, 2, 3),
                           lambda x, w: np.tile(x[:, None], (1, len(x), 1, 1))),
}


@pytest.mark.parametrize("name", list(FED))
def test_fed_shape_ops_match_numpy_and_their_gradients_are_staged(name, rng, device):
    op, static, reference = FED[name]
    x = K.placeholder(shape=(None, 2, 3), dtype="float64")
    w = K.variable(W, dtype="float64")
    y = op(x, w)
    assert K.int_shape(y) == static
    weights = K.placeholder(ndim=len(static), dtype="float64")
    grads = [(i, g) for i, g in enumerate(K.gradients(K.sum(y * weights), [x, w]))
             if g is not None]  # w's is None where y does not read w
    assert _staged([g for _, g in grads]), _op_names([g for _, g in grads])
    f = K.function([x, weights], [y] + [g for _, g in grads])
    for batch in BATCHES:
        xv = rng.standard_normal((batch, 2, 3))
        want = reference(xv, W)
        wv = rng.standard_normal(want.shape)
        got = f([xv, wv])
        assert got[0].shape == want.shape
        np.testing.assert_allclose(got[0], want, rtol=1e-12)
        for (i, _), value in zip(grads, got[1:]):
            def loss(a, i=i, xv=xv, wv=wv):
                arrays = [xv, W]
                arrays[i] = a
                return np.sum(reference(*arrays) * wv)
            _check_gradient(loss, [xv, W][i], value)


def test_shapes_folded_from_known_dims_are_static():
    x = K.placeholder(shape=(None, 4, 5))
    y = K.placeholder(shape=(2, 20))
    folded = [K.reshape(x, (-1, K.shape(x)[2])), K.reshape(x, K.shape(y)),
              K.tile(x, (1, K.shape(y)[0], 1)), K.zeros((K.shape(x)[1], 3))]
    assert [K.int_shape(t) for t in folded] == [(None, 5), (2, 20), (None, 8, 5), (4, 3)]
    # the shapes are plain ints: the static primitives, and a variable for K.zeros
    assert [t.op for t in folded[:3]] == [S.reshape_p, S.reshape_p, S.tile_p]
    assert isinstance(folded[3], K.Variable)
    partly = [K.reshape(x, (K.shape(x)[0], K.shape(x)[1], -1)),
              K.reshape(x, (K.shape(x)[0], -1, 2)), K.reshape(x, (K.shape(y)[0] + 1, -1))]
    assert [K.int_shape(t) for t in partly] == [(None, 4, 5), (None, 10, 2), (None, None)]
    f = K.function([x, y], partly)
    got = f([np.ones((3, 4, 5), "float32"), np.ones((2, 20), "float32")])
    assert [g.shape for g in got] == [(3, 4, 5), (3, 10, 2), (3, 20)]


def test_permute_dimensions_by_a_fed_pattern_and_its_gradient(rng, device):
    x = K.placeholder(shape=(None, 2, 3), dtype="float64")
    pattern = K.placeholder(shape=(3,), dtype="int32")
    y = K.permute_dimensions(x, pattern)
    partly = K.permute_dimensions(x, K.stack([pattern[0] * 0, 2, 1]))  # (0, 2, 1)
    assert K.int_shape(y) == (None, None, None) and K.int_shape(partly) == (None, 3, 2)
    weights = K.placeholder(ndim=3, dtype="float64")
    (g,) = K.gradients(K.sum(y * weights), [x])
    assert _staged([g]) and "permute_fed" in _op_names([g])
    f = K.function([x, pattern, weights], [y, partly, g])
    for perm in ((0, 2, 1), (2, 0, 1)):
        xv = rng.standard_normal((4, 2, 3))
        wv = rng.standard_normal(xv.transpose(perm).shape)
        got, got_partly, grad = f([xv, np.array(perm, "int32"), wv])
        np.testing.assert_array_equal(got, xv.transpose(perm))
        np.testing.assert_array_equal(got_partly, xv.transpose(0, 2, 1))
        _check_gradient(lambda a: np.sum(a.transpose(perm) * wv), xv, grad)


@pytest.mark.parametrize("tiled", [False, True])
def test_second_derivatives_through_fed_shapes(tiled, rng):
    # sum(y ** 3) for y = x reshaped (or tiled n times): its Hessian-vector product with v is
    # 6 x v (n times that). A tile's repeats known only when fed are read from its gradient's
    # shape: where the graph leaves that unknown, the second derivative is taken on the tape.
    x = K.placeholder(shape=(None, 3), dtype="float64")
    v = K.placeholder(shape=(None, 3), dtype="float64")
    y = K.tile(x, (K.shape(x)[0], 1)) if tiled else K.reshape(x, (-1, K.shape(x)[0]))
    (g,) = K.gradients(K.sum(y ** 3), [x])
    (hv,) = K.gradients(K.sum(g * v), [x])
    assert _staged([g])
    assert _staged([hv]) != tiled
    for batch in (3, 5):
        n = batch if tiled else 1
        xv, vv = rng.standard_normal((batch, 3)), rng.standard_normal((batch, 3))
        got_g, got_hv = K.function([x, v], [g, hv])([xv, vv])
        np.testing.assert_allclose(got_g, 3 * n * xv ** 2, rtol=1e-12)
        np.testing.assert_allclose(got_hv, 6 * n * xv * vv, rtol=1e-12)


def test_gradients_through_a_loop_and_fed_primitives(rng):
    # map_fn's loop gets a recomputed gradient (its body's vjps run on the tape when the
    # function runs); the fed primitives around it stage theirs.
    x = K.placeholder(shape=(None, 3), dtype="float64")
    w = K.variable(W, dtype="float64")
    y = K.tile(w, (K.shape(x)[0], 1)) * K.reshape(x, (K.shape(x)[0], -1))
    loss = K.sum(K.map_fn(lambda r: K.sum(r * r), y * x[[0, 0]][:1]))
    (gx, gw) = K.gradients(loss, [x, w])
    assert not _staged([gx])
    f = K.function([x], [gx, gw])
    for batch in BATCHES:
        xv = rng.standard_normal((batch, 3))

        def loss_np(xa, wa):
            return np.sum((np.tile(wa, (len(xa), 1)) * xa * xa[[0, 0]][:1]) ** 2)
        got_x, got_w = f([xv])
        _check_gradient(lambda a: loss_np(a, W), xv, got_x)
        _check_gradient(lambda a: loss_np(xv, a), W, got_w)


# -- indexing with arrays --------------------------------------------------------------------------
IDX = np.array([2, 0, 2], "int32")
MASK = np.array([True, False, True])

# name: (key (i: the fed int index, m: the fed mask), static shape for x (None, 4))
KEYS = {
    "fed-rows": (lambda i, m: i, (None, 4)),
    "list-repeated": (lambda i, m: [0, 2, 0], (3, 4)),
    "list-columns": (lambda i, m: (slice(None), [3, 1, 3]), (None, 3)),
    "mask": (lambda i, m: m, (None, 4)),
    "rows-and-slice": (lambda i, m: (i, slice(1, None)), (None, 3)),
    "pairs": (lambda i, m: (i, np.array([1, 1, 3])), (3,)),  # i must broadcast to (3,)
    "int-and-array": (lambda i, m: (slice(None), np.array([[0, 1], [3, 3]])), (None, 2, 2)),
    "separated": (lambda i, m: (None, i, None, 2), (None, 1, 1)),
    "ellipsis": (lambda i, m: (Ellipsis, np.array([0, 0])), (None, 2)),
}


@pytest.mark.parametrize("name", list(KEYS))
def test_indexing_with_arrays_matches_numpy_and_scatters_back(name, rng, device):
    make_key, static = KEYS[name]
    x = K.placeholder(shape=(None, 4), dtype="float64")
    i = K.placeholder(shape=(None,), dtype="int32")
    m = K.placeholder(shape=(None,), dtype="bool")
    y = x[make_key(i, m)]
    assert K.int_shape(y) == static
    weights = K.placeholder(ndim=len(static), dtype="float64")
    (g,) = K.gradients(K.sum(y * weights), [x])
    assert _staged([g]) and "index_add_like" in _op_names([g])
    f = K.function([x, i, m, weights], [y, g])
    for rows in (3, 5):
        xv = rng.standard_normal((rows, 4))
        mv = np.resize(MASK, rows)
        key = make_key(IDX, mv)
        want = xv[key]
        wv = rng.standard_normal(want.shape)
        got, grad = f([xv, IDX, mv, wv])
        np.testing.assert_array_equal(got, want)
        _check_gradient(lambda a: np.sum(a[key] * wv), xv, grad)  # repeats accumulate


def test_eager_indexing_with_arrays_records_and_differentiates_twice(rng, device):
    xv = rng.standard_normal((3, 4))
    x = K.variable(xv, dtype="float64")
    with K.GradientTape() as outer:
        with K.GradientTape() as inner:
            y = K.sum(x[[0, 2, 0], 1:] ** 3)
        g = inner.gradient(y, x)
        z = K.sum(g * g)
    np.testing.assert_allclose(K.eval(g), _scatter_cubes(xv), rtol=1e-12)
    _check_gradient(lambda a: np.sum(_scatter_cubes(a) ** 2), xv, K.eval(outer.gradient(z, x)))


def _scatter_cubes(a):
    """The gradient of sum(a[[0, 2, 0], 1:] ** 3): the repeated row's twice."""
    out = np.zeros_like(a)
    np.add.at(out, ([0, 2, 0], slice(1, None)), 3 * a[[0, 2, 0], 1:] ** 2)
    return out


def test_indexing_errors_name_getitem():
    x = K.placeholder(shape=(None, 4))
    with pytest.raises(IndexError, match="getitem: .*integer \\(or boolean\\) type"):
        x[K.placeholder(shape=(2,))]
    with pytest.raises(IndexError, match="getitem: .*boolean index did not match"):
        x[:, np.array([True, False])]
    with pytest.raises(IndexError, match="getitem: .*too many indices"):
        x[np.array([0]), 0, 1]
    with pytest.raises(TypeError, match="getitem: .*list holding symbolic"):
        x[[K.shape(x)[0], 0]]
    i = K.placeholder(shape=(None,), dtype="int32")
    f = K.function([x, i], [x[i]])
    with pytest.raises(IndexError, match="getitem: index .* out of bounds"):
        f([np.ones((2, 4), "float32"), np.array([5], "int32")])


# -- bilinear resizing over unknown sizes ----------------------------------------------------------
def _bilinear_np(x, factors, axes):
    """tf.image.resize(..., 'bilinear') upsampling by integer factors, half-pixel centres, one
    output pixel at a time (float64)."""
    for axis, factor in zip(axes, factors):
        size = x.shape[axis]
        moved = np.moveaxis(x, axis, 0)
        out = np.empty((size * factor,) + moved.shape[1:])
        for o in range(size * factor):
            source = min(max((o + 0.5) / factor - 0.5, 0.0), size - 1.0)
            low = int(np.floor(source))
            high = min(low + 1, size - 1)
            out[o] = (1 - (source - low)) * moved[low] + (source - low) * moved[high]
        x = np.moveaxis(out, 0, axis)
    return x


@pytest.mark.parametrize("data_format,shape,static", [
    ("channels_last", (None, None, None, 2), (None, None, None, 2)),
    ("channels_last", (None, 3, None, 1), (None, 6, None, 1)),  # factors (2, 3)
    ("channels_first", (None, 2, None, None), (None, 2, None, None)),
])
def test_bilinear_resize_over_unknown_sizes(data_format, shape, static, rng, device):
    axes = (1, 2) if data_format == "channels_last" else (2, 3)
    x = K.placeholder(shape=shape, dtype="float64")
    y = K.resize_images(x, 2, 3, data_format, interpolation="bilinear")
    assert K.int_shape(y) == static
    weights = K.placeholder(ndim=4, dtype="float64")
    (g,) = K.gradients(K.sum(y * weights), [x])
    assert _staged([g]) and "resize_bilinear_grad" in _op_names([g])
    f = K.function([x, weights], [y, g])
    for h, w in ((3, 2), (1, 4)):
        sizes = (2, h, w, 2) if data_format == "channels_last" else (2, 2, h, w)
        xv = rng.standard_normal([s if n is None else n for n, s in zip(shape, sizes)])
        want = _bilinear_np(xv, (2, 3), axes)
        wv = rng.standard_normal(want.shape)
        got, grad = f([xv, wv])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        _check_gradient(lambda a: np.sum(_bilinear_np(a, (2, 3), axes) * wv), xv, grad)
    # float32: as the known-size path computes it
    x32 = K.placeholder(shape=(None, None, None, 1))
    xv = rng.standard_normal((1, 3, 2, 1)).astype("float32")
    got = K.function([x32], [K.resize_images(x32, 2, 2, "channels_last", "bilinear")])([xv])[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _bilinear_np(xv.astype(float), (2, 2), (1, 2)), rtol=1e-6)


# -- constants and fills ---------------------------------------------------------------------------
def test_constant_of_a_symbolic_value_casts_reshapes_and_stops_gradients(device, rng):
    x = K.placeholder(shape=(None, 3), dtype="float64")
    s = K.placeholder(shape=(), dtype="int32")
    outs = [K.constant(x), K.constant(x, dtype="float16"),
            K.constant(x, shape=K.shape(x)[::-1]), K.constant(s, shape=(2, K.shape(x)[0])),
            K.constant(1.5, shape=K.shape(x))]
    assert [K.int_shape(o) for o in outs] == [(None, 3), (None, 3), (3, None), (2, None),
                                              (None, 3)]
    assert [K.dtype(o) for o in outs] == ["float32", "float16", "float32", "float32", "float32"]
    (g,) = K.gradients(K.sum(K.constant(x, dtype="float64") * x), [x])
    assert _staged([g] + outs)
    f = K.function([x, s], outs + [g])
    for batch in BATCHES:
        xv = rng.standard_normal((batch, 3))
        got = f([xv, 7])
        want = [xv, xv, xv.reshape(3, batch), np.full((2, batch), 7.0), np.full((batch, 3), 1.5)]
        for a, b, o in zip(got, want, outs):
            assert a.dtype == np.dtype(K.dtype(o))
            np.testing.assert_allclose(a, b, rtol=1e-3 if a.dtype == np.float16 else 1e-6)
        np.testing.assert_array_equal(got[-1], xv)  # only the factor that is not a constant
    fixed = K.placeholder(shape=(4, 3))
    assert K.int_shape(K.constant(fixed, shape=(2, 6))) == (2, 6)
    with pytest.raises(ValueError, match="constant: a value of shape \\(4, 3\\) cannot take"):
        K.constant(fixed, shape=(5, 2))
    with pytest.raises(TypeError, match="constant: got a list holding symbolic"):
        K.constant([s, 1])


@pytest.mark.parametrize("fill,value", [(K.zeros, 0.0), (K.ones, 1.0)])
def test_zeros_and_ones_of_fed_shapes(fill, value, device):
    x = K.placeholder(shape=(None, 3))
    y = K.placeholder(shape=(None, None))
    outs = [fill((K.shape(x)[0], 2)), fill(K.shape(y), dtype="int32"),
            fill((K.shape(y)[1], K.shape(x)[1])), fill(K.shape(x)[0])]
    assert not any(isinstance(o, K.Variable) for o in outs)  # as in Keras 2: tensors
    assert [K.int_shape(o) for o in outs] == [(None, 2), (None, None), (None, 3), (None,)]
    assert _staged(outs) and _op_names(outs) >= {"fill"}
    f = K.function([x, y], outs)
    for batch in BATCHES:
        got = f([np.ones((batch, 3)), np.ones((batch + 1, batch + 2))])
        want = [(batch, 2), (batch + 1, batch + 2), (batch + 2, 3), (batch,)]
        for g, shape, o in zip(got, want, outs):
            assert g.dtype == np.dtype(K.dtype(o))
            np.testing.assert_array_equal(g, np.full(shape, value))


def test_eye_of_fed_sizes(device):
    x = K.placeholder(shape=(None, 3))
    square, wide = K.eye(K.shape(x)[0]), K.eye((K.shape(x)[0], 5), dtype="float64")
    assert K.int_shape(square) == (None, None) and K.int_shape(wide) == (None, 5)
    f = K.function([x], [square, wide])
    for batch in BATCHES:
        a, b = f([np.ones((batch, 3))])
        np.testing.assert_array_equal(a, np.eye(batch))
        np.testing.assert_array_equal(b, np.eye(batch, 5))
        assert b.dtype == np.float64
    with pytest.raises(ValueError, match="eye: size must be n or"):
        K.eye(K.shape(K.placeholder(ndim=3)))


# -- random ops and dropout ------------------------------------------------------------------------
RANDOM = {
    "random_uniform": lambda shape, seed: K.random_uniform(shape, -1.0, 2.0, seed=seed),
    "random_normal": lambda shape, seed: K.random_normal(shape, 1.0, 0.5, seed=seed),
    "truncated_normal": lambda shape, seed: K.truncated_normal(shape, seed=seed),
    "random_bernoulli": lambda shape, seed: K.random_bernoulli(shape, 0.5, seed=seed),
    "random_binomial": lambda shape, seed: K.random_binomial(shape, 0.5, seed=seed),
}


def _random_function(op):
    x = K.placeholder(shape=(None, 5))
    outs = [op((K.shape(x)[0], 7), 11), op(K.shape(x), 12), op((K.shape(x)[1], 3), 13),
            op((2, 3), None)]
    return outs, K.function([x], outs)


@pytest.mark.parametrize("name", list(RANDOM))
def test_random_ops_of_fed_shapes_draw_anew_reproducibly(name, device):
    np.random.seed(5)  # the unseeded op's seed comes from NumPy's generator
    outs, f = _random_function(RANDOM[name])
    assert [K.int_shape(o) for o in outs] == [(None, 7), (None, 5), (5, 3), (2, 3)]
    assert _op_names(outs) >= {name}
    runs = [f([np.zeros((batch, 5), "float32")]) for batch in (3, 6, 6)]
    for run, batch in zip(runs, (3, 6, 6)):
        assert [r.shape for r in run] == [(batch, 7), (batch, 5), (5, 3), (2, 3)]
        assert all(r.dtype == np.float32 for r in run)
    for a, b in zip(runs[1], runs[2]):
        assert not np.array_equal(a, b)  # a new draw per call
    K.clear_session()  # a new graph, the same seeds: the same sequence of draws
    np.random.seed(5)
    _, g = _random_function(RANDOM[name])
    for run, batch in zip(runs, (3, 6, 6)):
        for a, b in zip(run, g([np.zeros((batch, 5), "float32")])):
            np.testing.assert_array_equal(a, b)


def test_random_values_follow_their_distributions():
    x = K.placeholder(shape=(None, 100))
    outs = [K.random_uniform(K.shape(x), -1.0, 2.0, dtype="float64", seed=1),
            K.random_normal(K.shape(x), 1.0, 0.5, seed=2),
            K.truncated_normal(K.shape(x), 0.0, 2.0, seed=3),
            K.random_bernoulli(K.shape(x), 0.25, seed=4)]
    u, n, t, b = K.function([x], outs)([np.zeros((200, 100), "float32")])
    assert u.dtype == np.float64 and -1.0 <= u.min() and u.max() < 2.0
    assert abs(u.mean() - 0.5) < 0.05 and abs(n.mean() - 1.0) < 0.02
    assert abs(n.std() - 0.5) < 0.02 and np.abs(t).max() <= 4.0
    assert set(np.unique(b)) == {0.0, 1.0} and abs(b.mean() - 0.25) < 0.02


def test_eager_random_ops_are_unchanged():
    # eager style: a seeded draw is RandomState(seed) on the device, whatever the shape's form
    want = np.random.RandomState(3).uniform(0.0, 1.0, size=(2, 3)).astype("float32")
    for shape in ((2, 3), [2, 3], K.shape(K.ones((2, 3))), (K.shape(K.ones((2, 3)))[0], 3)):
        np.testing.assert_array_equal(K.eval(K.random_uniform(shape, seed=3)), want)


def test_dropout_of_a_placeholder_and_its_gradient(device):
    x = K.placeholder(shape=(None, 50), dtype="float64")
    y = K.dropout(x, 0.4, seed=3)
    shared = K.dropout(x, 0.5, noise_shape=(K.shape(x)[0], 1), seed=4)
    assert K.int_shape(y) == (None, 50) and K.int_shape(shared) == (None, 50)
    (g,) = K.gradients(K.sum(y * 3.0), [x])
    assert _staged([g])
    f = K.function([x], [y, shared, g])
    xv = np.random.default_rng(0).uniform(1.0, 2.0, (40, 50))
    first, second = f([xv]), f([xv])
    for out, kept_shared, grad in (first, second):
        kept = out != 0
        np.testing.assert_allclose(out[kept], xv[kept] / 0.6, rtol=1e-12)
        assert 0.5 < kept.mean() < 0.7
        np.testing.assert_allclose(grad, 3.0 * kept / 0.6, rtol=1e-12)  # the same draw
        rows = kept_shared.any(axis=1)
        assert (kept_shared != 0).sum(axis=1).tolist() == [50 * r for r in rows]
    assert not np.array_equal(first[0], second[0])
    with pytest.raises(ValueError, match="dropout: noise_shape"):
        K.dropout(x, 0.5, noise_shape=(K.shape(x)[0], 3))
    assert K.dropout(x, 0.0) is x


# -- bad fed shapes: clear errors ------------------------------------------------------------------
def test_bad_fed_shapes_raise_when_called_naming_the_op():
    x = K.placeholder(shape=(None, 6))
    y = K.placeholder(shape=(None, None))
    shape = K.placeholder(shape=(2,), dtype="int32")
    negative, misfit = np.array([-2, 3], "int32"), np.array([2, 5], "int32")
    cases = [  # (output, the value fed to `shape`, message); y is fed a (4, 4) value
        (K.reshape(x, K.shape(y)), misfit, "reshape: cannot reshape a tensor of shape \\(2, 6\\)"),
        (K.reshape(x, shape), negative, "reshape: shape entries must be >= -1"),
        (K.tile(x, shape), negative, "tile: n entries must be >= 0"),
        (S.broadcast_to(x, shape), misfit, "broadcast_to: cannot broadcast shape \\(2, 6\\)"),
        (K.permute_dimensions(x, shape), misfit,
         "permute_dimensions: pattern \\(2, 5\\) is not a permutation"),
        (K.zeros(shape), negative, "zeros: shape entries must be >= 0"),
        (K.random_normal(shape), negative, "random_normal: shape entries must be >= 0"),
    ]
    for out, fed, message in cases:
        f = K.function([x, y, shape], [out])
        with pytest.raises(ValueError, match=message):
            f([np.ones((2, 6), "float32"), np.ones((4, 4), "float32"), fed])


def test_bad_symbolic_shapes_are_refused_when_built():
    x = K.placeholder(shape=(None, 6))
    with pytest.raises(TypeError, match="reshape: shape must be a 1-D integer tensor"):
        K.reshape(x, K.placeholder(shape=(2,)))
    with pytest.raises(TypeError, match="tile: n must be a tuple of ints, .*float32"):
        K.tile(x, (K.placeholder(shape=()), 1))
    with pytest.raises(ValueError, match="zeros: shape is a 1-D tensor of unknown length"):
        K.zeros(K.placeholder(shape=(None,), dtype="int32"))
    with pytest.raises(ValueError, match="tile: n=.* has 1 entries but x has shape"):
        K.tile(x, K.shape(x)[:1])
    with pytest.raises(ValueError, match="reshape: cannot reshape"):
        K.reshape(K.placeholder(shape=(2, 3)), (K.shape(x)[0], -1, -1))
    with pytest.raises(ValueError, match="permute_dimensions: pattern .* not a permutation"):
        K.permute_dimensions(x, (K.shape(x)[0], 2))
    with pytest.raises(ValueError, match="reshape: shape entries must be >= -1"):
        K.reshape(x, (K.shape(x)[0], -3))
