"""The declared primitives of the products and convolutions (ops/linalg.py: matmul, dot_general;
ops/conv.py: patches, fold, max_pool) and the Keras functions built on them.

- each abstract evaluation gives the shape and dtype the eager result has, and None exactly
  where a dimension depends on an unknown one;
- the Keras functions on placeholders (unknown batch, and unknown spatial sizes) have the
  static shape the eager result has, and `K.function` of them computes the eager values;
- gradients against finite differences where tests/test_conv_rnn_ctc.py and
  tests/test_backend_functions.py do not check them, and second derivatives.
"""
from __future__ import annotations

import numpy as np
import pytest

import gpubk as K
from gpubk.core.primitive import Aval, bind
from gpubk.ops import conv, linalg
from gradcheck import check_gradients, check_hessian_vector_products


def f64(a):
    return K.constant(a, dtype="float64")


def _concrete(shape, n):
    return tuple(n if d is None else d for d in shape)


# -- primitives: abstract evaluation against eager results ------------------------------------
NB = ((), ())
PRIMITIVES = [  # primitive, input shapes (None: unknown), params
    (linalg.matmul_p, [(4, 3), (3, 5)], {}),
    (linalg.matmul_p, [(None, 1, 4, 3), (5, 3, 2)], {}),
    (linalg.matmul_p, [(2, 4, None), (None, 2)], {}),
    (linalg.dot_general_p, [(None, 3), (3, 5)], dict(contract=((1,), (0,)), batch=NB)),
    (linalg.dot_general_p, [(3, None), (5, 3)], dict(contract=((0,), (1,)), batch=NB)),
    (linalg.dot_general_p, [(None, 3, 4), (2, 4, 5)], dict(contract=((2,), (1,)), batch=NB)),
    (linalg.dot_general_p, [(None, 3, 4, 5), (None, 5, 6, 3)],
     dict(contract=((1, 3), (3, 1)), batch=((0,), (0,)))),
    (linalg.dot_general_p, [(2, None, 4), (None, 2, 4, 5)],
     dict(contract=((2,), (2,)), batch=((0, 1), (1, 0)))),
    (linalg.dot_general_p, [(4,), (4, None)], dict(contract=((0,), (0,)), batch=NB)),
    (conv.patches_p, [(None, 7, 6, 3)], dict(kernel=(3, 2), strides=(2, 1), dilation=(1, 1),
                                            padding="same", value=0.0, copy=False, func="t")),
    (conv.patches_p, [(None, None, 6, 3)], dict(kernel=(2, 2), strides=(1, 2),
                                               dilation=(1, 1), padding="valid", value=0.0,
                                               copy=True, func="t")),
    (conv.patches_p, [(2, None, 3)], dict(kernel=(3,), strides=(1,), dilation=(2,),
                                         padding="causal", value=0.0, copy=False, func="t")),
    (conv.patches_p, [(None, 5, 4, 6, 2)], dict(kernel=(2, 3, 2), strides=(2, 1, 2),
                                               dilation=(1, 1, 1), padding="same",
                                               value=-np.inf, copy=True, func="t")),
    (conv.fold_p, [(None, 4, 6, 3, 2, 3)], dict(spatial=(7, 6), kernel=(3, 2), strides=(2, 1),
                                               dilation=(1, 1), padding="same", func="t")),
    (conv.fold_p, [(None, 3, 2, 2)], dict(spatial=(6,), kernel=(2,), strides=(2,),
                                         dilation=(1,), padding="valid", func="t")),
    (conv.max_pool_p, [(None, 7, 8, 3)], dict(kernel=(3, 2), strides=(2, 3), dilation=(1, 1),
                                             padding="same", func="t")),
    (conv.max_pool_p, [(2, None, 8, None)], dict(kernel=(2, 2), strides=(2, 2),
                                                dilation=(1, 1), padding="valid", func="t")),
    (conv.max_pool_p, [(None, 5, 4, 6, 2)], dict(kernel=(2, 2, 3), strides=(2, 2, 2),
                                                dilation=(1, 1, 1), padding="same", func="t")),
]
IDS = [f"{p.name}-{i}" for i, (p, _, _) in enumerate(PRIMITIVES)]


@pytest.mark.parametrize("p,shapes,params", PRIMITIVES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_abstract_evaluation_matches_the_eager_result(p, shapes, params, dtype, device, rng):
    for n in (2, 3):  # what the unknown dimensions are
        arrays = [rng.standard_normal(_concrete(s, n)).astype(dtype) for s in shapes]
        eager = bind(p, *[K.constant(a, dtype=dtype) for a in arrays], **params)
        shape, out_dtype = p.abstract(*[Aval(a.shape, a.dtype) for a in arrays], **params)
        assert tuple(shape) == eager.shape
        assert np.dtype(out_dtype) == eager.dtype == np.dtype(dtype)


@pytest.mark.parametrize("p,shapes,params", PRIMITIVES, ids=IDS)
def test_abstract_evaluation_with_unknown_dimensions(p, shapes, params, rng):
    """None exactly where the result's size depends on the unknown sizes; a node evaluated by
    K.function gives the eager values."""
    arrays = {n: [rng.standard_normal(_concrete(s, n)) for s in shapes] for n in (3, 7)}
    eager = {n: bind(p, *[f64(a) for a in arrays[n]], **params) for n in (3, 7)}
    want = tuple(a if a == b else None for a, b in zip(eager[3].shape, eager[7].shape))
    placeholders = [K.placeholder(shape=s, dtype="float64") for s in shapes]
    node = bind(p, *placeholders, **params)
    assert K.int_shape(node) == want
    assert K.dtype(node) == "float64"
    got = K.function(placeholders, [node])(arrays[7])[0]
    np.testing.assert_allclose(got, K.eval(eager[7]), rtol=1e-12)


def test_mixed_and_integer_dtypes(device):
    a = K.constant(np.arange(6).reshape(2, 3), dtype="int32")
    b = K.constant(np.arange(12).reshape(3, 4), dtype="int32")
    for f in (K.dot, K.matmul):
        out = f(a, b)
        assert out.dtype == np.int32
        np.testing.assert_array_equal(K.eval(out), np.arange(6).reshape(2, 3) @
                                      np.arange(12).reshape(3, 4))
    mixed = K.dot(K.ones((2, 3)), K.constant(np.ones((3, 4)), dtype="float64"))
    assert mixed.dtype == np.float64
    x = K.placeholder(shape=(None, 3))
    assert K.dtype(K.dot(x, K.constant(np.ones((3, 4)), dtype="float64"))) == "float64"


# -- Keras functions on placeholders ---------------------------------------------------------
def _kernel(*shape):
    return np.random.default_rng(7).standard_normal(shape)


SYMBOLIC = [  # name, function of the inputs, placeholder shapes, concrete shapes
    ("dot_2d", lambda x: K.dot(x, f64(_kernel(3, 4))), [(None, 3)], [(5, 3)]),
    ("dot_3d", lambda x: K.dot(x, f64(_kernel(3, 4))), [(None, None, 3)], [(2, 5, 3)]),
    ("dot_y3", lambda x, y: K.dot(x, y), [(None, 3), (2, 3, None)], [(4, 3), (2, 3, 5)]),
    ("matmul", lambda x, y: K.matmul(x, y), [(None, 2, 3), (3, None)], [(4, 2, 3), (3, 5)]),
    ("matmul_vectors", lambda x, y: K.matmul(x, y), [(None, 2, 3), (3,)],
     [(4, 2, 3), (3,)]),
    ("matmul_row", lambda x, y: K.matmul(x, y), [(3,), (None, 3, 2)], [(3,), (4, 3, 2)]),
    ("batch_dot_attention", lambda x, y: K.batch_dot(x, y, axes=(2, 2)),
     [(None, None, 4), (None, None, 4)], [(2, 5, 4), (2, 6, 4)]),
    ("batch_dot_2d", lambda x, y: K.batch_dot(x, y), [(None, 4), (None, 4)],
     [(3, 4), (3, 4)]),
    ("batch_dot_mixed", lambda x, y: K.batch_dot(x, y, (1, 2)),
     [(None, 3, 2), (None, 6, 3, 7)], [(4, 3, 2), (4, 6, 3, 7)]),
    ("conv1d_causal", lambda x: K.conv1d(x, f64(_kernel(3, 2, 4)), padding="causal",
                                         dilation_rate=2), [(None, None, 2)], [(2, 9, 2)]),
    ("conv2d_same", lambda x: K.conv2d(x, f64(_kernel(3, 3, 3, 4)), (2, 2), "same"),
     [(None, None, None, 3)], [(2, 7, 6, 3)]),
    ("conv2d_first", lambda x: K.conv2d(x, f64(_kernel(3, 2, 3, 4)), (1, 1), "valid",
                                        "channels_first", (2, 1)),
     [(None, 3, 9, None)], [(2, 3, 9, 5)]),
    ("conv3d", lambda x: K.conv3d(x, f64(_kernel(2, 3, 2, 2, 3)), (2, 1, 2), "same"),
     [(None, 5, None, 6, 2)], [(2, 5, 4, 6, 2)]),
    ("conv2d_transpose", lambda x: K.conv2d_transpose(
        x, f64(_kernel(3, 2, 4, 3)), (None, 7, 8, 4), (2, 2), "same"),
     [(None, 4, 4, 3)], [(2, 4, 4, 3)]),
    ("depthwise", lambda x: K.depthwise_conv2d(x, f64(_kernel(3, 2, 3, 1)), padding="same"),
     [(None, None, None, 3)], [(2, 6, 5, 3)]),
    ("depthwise_multiplier", lambda x: K.depthwise_conv2d(x, f64(_kernel(3, 2, 3, 2))),
     [(None, 6, 5, 3)], [(2, 6, 5, 3)]),
    ("depthwise_multiplier_unknown", lambda x: K.depthwise_conv2d(
        x, f64(_kernel(3, 2, 3, 2)), (2, 1), "same"), [(None, None, None, 3)], [(2, 6, 5, 3)]),
    ("separable", lambda x: K.separable_conv2d(
        x, f64(_kernel(3, 2, 3, 2)), f64(_kernel(1, 1, 6, 4)), padding="same",
        data_format="channels_first"), [(None, 3, None, None)], [(2, 3, 6, 5)]),
    ("local_conv1d", lambda x: K.local_conv1d(x, f64(_kernel(3, 9, 2)), (3,), (2,)),
     [(None, 7, 3)], [(2, 7, 3)]),
    ("local_conv2d", lambda x: K.local_conv2d(x, f64(_kernel(12, 8, 2)), (2, 2), (1, 1),
                                              (4, 3), "channels_first"),
     [(None, 2, 5, 4)], [(2, 2, 5, 4)]),
    ("max_pool2d", lambda x: K.pool2d(x, (3, 2), (2, 3), "same"), [(None, None, None, 3)],
     [(2, 7, 8, 3)]),
    ("avg_pool2d_same", lambda x: K.pool2d(x, (3, 2), (2, 3), "same", pool_mode="avg"),
     [(None, 7, 8, 3)], [(2, 7, 8, 3)]),
    ("avg_pool2d_same_unknown", lambda x: K.pool2d(x, (3, 2), (2, 3), "same",
                                                   "channels_first", "avg"),
     [(None, 3, None, None)], [(2, 3, 7, 8)]),
    ("avg_pool2d_valid", lambda x: K.pool2d(x, (2, 2), (2, 2), pool_mode="avg"),
     [(None, None, 8, 3)], [(2, 7, 8, 3)]),
    ("pool3d", lambda x: K.pool3d(x, (2, 2, 3), (2, 2, 2), "same"), [(None, 5, None, 6, 2)],
     [(1, 5, 4, 6, 2)]),
]


@pytest.mark.parametrize("name,fn,shapes,concrete", SYMBOLIC, ids=[c[0] for c in SYMBOLIC])
def test_keras_functions_on_placeholders(name, fn, shapes, concrete, rng):
    arrays = [rng.standard_normal(s) for s in concrete]
    eager = K.eval(fn(*[f64(a) for a in arrays]))
    placeholders = [K.placeholder(shape=s, dtype="float64") for s in shapes]
    node = fn(*placeholders)
    static = K.int_shape(node)
    assert len(static) == eager.ndim
    assert all(d is None or d == e for d, e in zip(static, eager.shape)), (static, eager.shape)
    np.testing.assert_allclose(K.function(placeholders, [node])(arrays)[0], eager, rtol=1e-12)


def test_static_shapes_on_placeholders():
    x = K.placeholder(shape=(None, None, None, 3))
    assert K.int_shape(K.conv2d(x, K.ones((3, 3, 3, 4)), padding="same")) == \
        (None, None, None, 4)
    assert K.int_shape(K.pool2d(x, (2, 2), (2, 2))) == (None, None, None, 3)
    assert K.int_shape(K.depthwise_conv2d(x, K.ones((3, 3, 3, 2)))) == (None, None, None, 6)
    assert K.int_shape(K.pool2d(K.placeholder(shape=(None, 5, 5, 3)), (2, 2), (2, 2),
                                padding="same", pool_mode="avg")) == (None, 3, 3, 3)
    assert K.int_shape(K.conv2d_transpose(x, K.ones((3, 3, 5, 3)), (None, 8, 8, 5), (2, 2),
                                          "same")) == (None, 8, 8, 5)
    assert K.int_shape(K.dot(K.placeholder(shape=(None, None, 4)), K.ones((4, 5)))) == \
        (None, None, 5)
    assert K.int_shape(K.batch_dot(K.placeholder(shape=(None, None, 4)),
                                   K.placeholder(shape=(None, None, 4)), axes=(2, 2))) == \
        (None, None, None)
    assert K.int_shape(K.batch_dot(K.placeholder(shape=(None, 4)),
                                   K.placeholder(shape=(None, 4)))) == (None, 1)


def test_errors_on_placeholders_name_the_function_and_shapes():
    x = K.placeholder(shape=(None, 3), name="x")
    with pytest.raises(ValueError, match=r"dot: shapes \(None, 3\) \(float32\) and \(4, 5\) "
                                         r"\(float32\) do not match.*symbolic input 'x'"):
        K.dot(x, K.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul: batch dimensions of \(2, 3, 4\) and "
                                         r"\(5, 4, 2\) do not broadcast"):
        K.matmul(K.placeholder(shape=(2, 3, 4)), K.ones((5, 4, 2)))
    with pytest.raises(ValueError, match=r"batch_dot: cannot contract axis 1"):
        K.batch_dot(x, K.placeholder(shape=(None, 4)))
    with pytest.raises(ValueError, match=r"conv2d: a kernel of \(3, 3\) .* does not fit"):
        K.conv2d(K.placeholder(shape=(None, 2, 2, 3)), K.ones((3, 3, 3, 4)))
    with pytest.raises(ValueError, match="conv2d: the input has 2 channels"):
        K.conv2d(K.placeholder(shape=(None, None, None, 2)), K.ones((3, 3, 3, 4)))
    small = K.placeholder(shape=(None, None, None, 3))
    f = K.function([small], [K.conv2d(small, K.ones((3, 3, 3, 4)))])
    with pytest.raises(ValueError, match=r"conv2d: a kernel of \(3, 3\) .* does not fit"):
        f([np.ones((1, 2, 2, 3))])
    up = K.function([small], [K.conv2d_transpose(small, K.ones((3, 3, 5, 3)), (None, 8, 8, 5),
                                                 (2, 2), "same")])
    assert up([np.ones((1, 4, 4, 3))])[0].shape == (1, 8, 8, 5)
    with pytest.raises(ValueError, match=r"conv2d_transpose: an input of spatial shape "
                                         r"\(5, 4\) cannot produce"):
        up([np.ones((1, 5, 4, 3))])


def test_eager_errors(device):
    with pytest.raises(ValueError, match=r"matmul: batch dimensions of \(2, 3, 4\) and "
                                         r"\(5, 4, 2\) do not broadcast"):
        K.matmul(K.ones((2, 3, 4)), K.ones((5, 4, 2)))
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 3\) \(float32\) and \(4, 5\) "
                                         r"\(float32\) do not match; expected x.shape\[-1\] == "
                                         r"y.shape\[-2\] \(3 != 4\)$"):
        K.dot(K.ones((2, 3)), K.ones((4, 5)))


# -- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,shapes", [
    (lambda a, b: K.dot(a, b), [(2, 3, 4), (3, 4, 2)]),
    (lambda a, b: K.matmul(a, b), [(2, 1, 3, 4), (5, 4, 2)]),
    (lambda a, b: K.matmul(a, b), [(4,), (2, 4, 3)]),
    (lambda a, b: K.matmul(a, b), [(2, 3, 4), (4,)]),
    (lambda a, b: a @ b, [(3, 4), (4, 2)]),
    (lambda a, b: linalg.dot_general(a, b, ((1, 3), (3, 1)), ((0,), (0,))),
     [(2, 3, 4, 5), (2, 5, 2, 3)]),
    (lambda a, b: linalg.dot_general(a, b, ((2,), (2,)), ((0, 1), (1, 0))),
     [(2, 3, 4), (3, 2, 4, 2)]),
    (lambda a, b: linalg.dot_general(a, b, ((0,), (1,))), [(3, 4), (2, 3)]),
])
def test_product_gradients(fn, shapes, device, rng):
    check_gradients(fn, [rng.standard_normal(s) for s in shapes])


@pytest.mark.parametrize("fn,shapes", [
    (lambda a, k: K.conv3d(a, k, (2, 1, 1), "same"), [(1, 3, 3, 4, 2), (2, 2, 2, 2, 2)]),
    (lambda a, k: K.depthwise_conv2d(a, k, (1, 2), "same"), [(1, 4, 5, 2), (2, 3, 2, 1)]),
    (lambda a, k: K.depthwise_conv2d(a, k, data_format="channels_first"),
     [(1, 2, 4, 4), (2, 2, 2, 3)]),
    (lambda a, k: K.local_conv2d(a, k, (2, 2), (2, 1), (2, 3), "channels_first"),
     [(2, 2, 4, 4), (6, 8, 2)]),
    (lambda a: K.pool3d(a, (2, 2, 3), (2, 2, 2), "same"), [(1, 3, 4, 5, 2)]),
    (lambda a: K.pool3d(a, (2, 2, 2), (1, 1, 1), pool_mode="avg"), [(1, 3, 3, 3, 2)]),
])
def test_convolution_gradients(fn, shapes, device, rng):
    check_gradients(fn, [rng.standard_normal(s) for s in shapes])


@pytest.mark.parametrize("fn,shapes", [
    (lambda a, b: K.sum(K.square(K.batch_dot(a, b, (2, 1)))), [(2, 3, 4), (2, 4, 2)]),
    (lambda a, b: K.sum(K.tanh(linalg.dot_general(a, b, ((1, 3), (3, 1)), ((0,), (0,))))),
     [(2, 3, 2, 2), (2, 2, 2, 3)]),
    (lambda a, k: K.sum(K.square(K.conv2d(a, k, (2, 1), "same"))), [(1, 4, 3, 2), (2, 2, 2, 2)]),
    (lambda a, k: K.sum(K.square(K.conv2d_transpose(a, k, (1, 5, 4, 2), (2, 1), "same"))),
     [(1, 3, 4, 2), (3, 2, 2, 2)]),
    (lambda a, k: K.sum(K.square(K.pool2d(K.conv2d(a, k), (2, 2), (1, 1), "same"))),
     [(1, 4, 4, 1), (2, 2, 1, 2)]),
])
def test_second_derivatives(fn, shapes, device, rng):
    """Hessian-vector products of products, convolutions and max pooling (differentiating the
    vjps) against finite differences of the first derivative."""
    check_hessian_vector_products(fn, [rng.standard_normal(s) for s in shapes],
                                  [rng.standard_normal(s) for s in shapes])


def test_patches_and_fold_are_adjoint(device, rng):
    """<patches(x), g> == <x, fold(g)> for every padding (fold crops what patches padded)."""
    for padding, strides, dilation in (("same", (2, 1), (1, 1)), ("valid", (1, 2), (1, 1)),
                                       ("same", (1, 1), (2, 1))):
        x = rng.standard_normal((2, 5, 6, 3))
        p = conv.patches(f64(x), (3, 2), strides, dilation, padding)
        g = rng.standard_normal(p.shape)
        folded = conv.fold(f64(g), (5, 6), (3, 2), strides, dilation, padding)
        np.testing.assert_allclose(np.sum(K.eval(p) * g), np.sum(x * K.eval(folded)),
                                   rtol=1e-12)
    y = rng.standard_normal((2, 7, 3))
    causal = conv.patches(f64(y), (3,), (1,), (2,), "causal", copy=True)
    g = rng.standard_normal(causal.shape)
    np.testing.assert_allclose(
        np.sum(K.eval(causal) * g),
        np.sum(y * K.eval(conv.fold(f64(g), (7,), (3,), (1,), (2,), "causal"))), rtol=1e-12)


def test_symbolic_gradients_through_the_primitives(rng):
    """K.gradients of a loss built on a placeholder: K.function gives the eager gradients."""
    x_value = rng.standard_normal((2, 6, 5, 3))
    k_value, w_value = rng.standard_normal((3, 3, 3, 4)), rng.standard_normal((4, 2))

    def loss(x, k, w):
        h = K.pool2d(K.relu(K.conv2d(x, k, padding="same")), (2, 2), (2, 2), "same")
        return K.sum(K.square(K.dot(h, w))) + K.sum(K.batch_dot(h, h, axes=(3, 3)))

    k, w = K.variable(k_value, dtype="float64"), K.variable(w_value, dtype="float64")
    want = [K.eval(g) for g in K.gradients(loss(f64(x_value), k, w), [k, w])]
    x = K.placeholder(shape=(None, None, None, 3), dtype="float64")
    grads = K.gradients(loss(x, k, w), [k, w])
    got = K.function([x], grads)([x_value])
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-10)


def test_ops_on_variables_stage_in_graph_style(rng):
    """In graph style an op on variables builds a node, which reads the variables' values when
    evaluated."""
    K.placeholder(shape=(None, 2))  # graph style from here on
    a = K.variable(rng.standard_normal((2, 4, 4, 1)), dtype="float64")
    k = K.variable(rng.standard_normal((2, 2, 1, 2)), dtype="float64")
    node = K.conv2d(a, k)
    prod = K.dot(K.batch_flatten(node), K.variable(np.ones((18, 1)), dtype="float64"))
    assert not isinstance(node, K.Tensor) and K.int_shape(node) == (2, 3, 3, 2)
    first = K.eval(prod)
    K.set_value(k, 2 * K.get_value(k))
    np.testing.assert_allclose(K.eval(prod), 2 * first, rtol=1e-12)


def test_max_pool_gradient_goes_to_the_first_maximum_either_way(device):
    """First-order gradients take the array path, recorded ones (an outer tape) the gpubk
    functions: both send a window's gradient whole to its first maximum."""
    x = K.variable(np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0], [2.0, 2.0, 2.0]]).reshape(
        1, 3, 3, 1), dtype="float64")
    # 'same', stride 1: nine windows (the last row and column padded with -inf)
    want = np.array([[0.0, 2.0, 1.0], [1.0, 0.0, 2.0], [1.0, 1.0, 1.0]])

    def loss():
        return K.sum(K.pool2d(x, (2, 2), (1, 1), "same"))

    first = K.gradients(loss(), [x])[0]
    with K.GradientTape() as outer:
        with K.GradientTape() as inner:
            value = loss()
        recorded = inner.gradient(value, x)
        total = K.sum(recorded * x)
    np.testing.assert_array_equal(K.eval(first)[0, ..., 0], want)
    np.testing.assert_array_equal(K.eval(recorded)[0, ..., 0], want)
    np.testing.assert_array_equal(K.eval(outer.gradient(total, x))[0, ..., 0], want)
