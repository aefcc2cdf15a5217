"""The shape family on declared primitives (gpubk/ops/shape.py): abstract evaluation agrees with
eager results, on known shapes and on placeholders with unknown dims; K.function of the staged
graph equals eager values; gradients (and gradients of gradients) against finite differences;
shape arguments known only when fed; errors of staged ops."""
import numpy as np
import pytest
from gradcheck import check_gradients, check_hessian_vector_products
from shapecheck import check_static_shape

import gpubk as K
from gpubk.core.primitive import Aval
from gpubk.ops import shape as S
from gpubk.symbolic import Symbol


def _f(*shape):
    return ("float32", shape)


def _i(high, *shape):
    return ("int32", shape, high)


# name: (function of the inputs, input specs, the primitive of the result's node)
CASES = {
    "reshape": (lambda x: K.reshape(x, (4, -1)), [_f(2, 3, 4)], S.reshape_p),
    "reshape_flat": (lambda x: K.reshape(x, (-1,)), [_f(2, 3, 4)], S.reshape_p),
    "broadcast_to": (lambda x: S.broadcast_to(x, (3, 2, 4)), [_f(2, 1)], S.broadcast_to_p),
    "permute": (lambda x: K.permute_dimensions(x, (2, 0, 1)), [_f(2, 3, 4)], S.transpose_p),
    "transpose": (K.transpose, [_f(2, 3, 4)], S.transpose_p),
    "stack_single": (lambda x: K.stack(x, axis=1), [_f(2, 3, 4)], S.transpose_p),
    "expand_dims": (lambda x: K.expand_dims(x, 1), [_f(2, 3)], S.expand_dims_p),
    "expand_dims_last": (lambda x: K.expand_dims(x), [_f(2, 3)], S.expand_dims_p),
    "squeeze": (lambda x: K.squeeze(x, 1), [_f(2, 1, 3)], S.squeeze_p),
    "flatten": (K.flatten, [_f(2, 3, 4)], S.reshape_p),
    "batch_flatten": (K.batch_flatten, [_f(2, 3, 4)], S.batch_flatten_p),
    "tile": (lambda x: K.tile(x, (2, 1, 3)), [_f(2, 3, 4)], S.tile_p),
    "repeat_elements": (lambda x: K.repeat_elements(x, 3, 1), [_f(2, 3, 4)],
                        S.repeat_elements_p),
    "repeat": (lambda x: K.repeat(x, 3), [_f(2, 4)], S.tile_p),
    "concatenate": (lambda x, y, z: K.concatenate([x, y, z], axis=1),
                    [_f(2, 3, 4), _f(2, 1, 4), ("float64", (2, 2, 4))], S.concatenate_p),
    "concatenate_last": (lambda x, y: K.concatenate([x, y]), [_f(2, 3), _f(2, 5)],
                         S.concatenate_p),
    "stack": (lambda x, y: K.stack([x, y], axis=2), [_f(2, 3, 4), _f(2, 3, 4)], S.stack_p),
    "getitem": (lambda x: x[1:, ::-2, None, 0], [_f(3, 4, 5)], S.getitem_p),
    "getitem_ellipsis": (lambda x: x[..., 1], [_f(3, 4, 5)], S.getitem_p),
    "getitem_int": (lambda x: x[0], [_f(3, 4, 5)], S.getitem_p),
    "getitem_neg": (lambda x: x[:, -1, 1:-1], [_f(3, 4, 5)], S.getitem_p),
    "reverse": (lambda x: K.reverse(x, [0, 2]), [_f(2, 3, 4)], S.getitem_p),
    "gather": (K.gather, [_f(5, 3), _i(5, 2, 4)], S.gather_p),
    "one_hot": (lambda x: K.one_hot(x, 6), [_i(6, 2, 3)], S.one_hot_p),
    "pad": (lambda x: S.pad(x, [(1, 0), (0, 2), (3, 1)], 7.0), [_f(2, 3, 4)], S.pad_p),
    "temporal_padding": (lambda x: K.temporal_padding(x, (2, 1)), [_f(2, 3, 4)], S.pad_p),
    "spatial_2d_padding": (lambda x: K.spatial_2d_padding(x, data_format="channels_first"),
                           [_f(2, 3, 4, 5)], S.pad_p),
    "spatial_3d_padding": (K.spatial_3d_padding, [_f(1, 2, 3, 2, 2)], S.pad_p),
    "resize_nearest": (lambda x: K.resize_images(x, 2, 3, "channels_last"), [_f(2, 3, 4, 2)],
                       S.repeat_elements_p),
    "resize_volumes": (lambda x: K.resize_volumes(x, 2, 1, 2, "channels_first"),
                       [_f(1, 2, 2, 3, 2)], S.repeat_elements_p),
    "bias_add": (K.bias_add, [_f(2, 3, 4), _f(4)], None),
    "bias_add_cf": (lambda x, b: K.bias_add(x, b, "channels_first"), [_f(2, 3, 4), _f(3)], None),
    "bias_add_full": (lambda x, b: K.bias_add(x, b, "channels_first"), [_f(2, 3, 4), _f(4, 3)],
                      None),
}


# Per case, which axis of each input is unknown on the placeholders (None: all known); the
# default is axis 0 of every input.
UNKNOWN = {"broadcast_to": [None], "gather": [None, 0], "bias_add": [0, None],
           "bias_add_cf": [0, None], "bias_add_full": [0, None], "squeeze": [2],
           "concatenate": [1, 1, 1]}


def _unknown_axes(name, specs):
    return UNKNOWN.get(name, [0] * len(specs))


def _values(specs, rng, axes=None, size=None):
    """Random inputs for `specs`, with dim `axes[i]` of input i (if given) of `size`."""
    values = []
    for i, spec in enumerate(specs):
        dtype, shape = spec[0], spec[1]
        if axes is not None and axes[i] is not None:
            shape = shape[:axes[i]] + (size,) + shape[axes[i] + 1:]
        if dtype == "int32":
            values.append(rng.integers(0, spec[2], shape).astype(np.int32))
        else:
            values.append(rng.standard_normal(shape).astype(dtype))
    return values


@pytest.mark.parametrize("name", CASES)
def test_abstract_matches_eager_on_known_shapes(name, device, rng):
    fn, specs, primitive = CASES[name]
    values = _values(specs, rng)
    eager = fn(*[K.constant(v, dtype=v.dtype) for v in values])
    placeholders = [K.placeholder(shape=v.shape, dtype=v.dtype) for v in values]
    staged = fn(*placeholders)
    assert isinstance(staged, Symbol)
    if primitive is not None:
        assert staged.op is primitive, staged.op  # a declared primitive, not the traced path
    assert K.int_shape(staged) == eager.shape and staged.dtype == eager.dtype
    got = K.function(placeholders, staged)(values)
    np.testing.assert_array_equal(got, K.eval(eager))


@pytest.mark.parametrize("name", CASES)
def test_unknown_dims_and_function_match_eager(name, device, rng):
    fn, specs, primitive = CASES[name]
    axes = _unknown_axes(name, specs)
    placeholders = [K.placeholder(shape=spec[1] if axis is None else
                                  spec[1][:axis] + (None,) + spec[1][axis + 1:], dtype=spec[0])
                    for spec, axis in zip(specs, axes)]
    staged = fn(*placeholders)
    if primitive is not None:
        assert staged.op is primitive, staged.op
    static = K.int_shape(staged)
    f = K.function(placeholders, staged)
    results = []
    for size in (1, 2, 5):
        values = _values(specs, rng, axes, size)
        eager = K.eval(fn(*[K.constant(v, dtype=v.dtype) for v in values]))
        got = f(values)
        assert got.dtype == eager.dtype == staged.dtype
        np.testing.assert_array_equal(got, eager)
        results.append(eager.shape)
    check_static_shape(static, results)


@pytest.mark.parametrize("shape,target,want", [
    ((None, 4, 5), (-1, 20), (None, 20)),
    ((None, 3), (5, -1), (5, None)),
    ((None, 3), (-1,), (None,)),
    ((None, 3), (2, 3, -1), (2, 3, None)),
    ((None, 4), (2, 6), (2, 6)),
    ((None, 0), (-1, 3), (0, 3)),
    ((2, None), (4, -1), (4, None)),
    ((2, 3), (3, -1), (3, 2)),
])
def test_reshape_static_shapes(shape, target, want):
    assert K.int_shape(K.reshape(K.placeholder(shape=shape), target)) == want


@pytest.mark.parametrize("shape,target", [((None, 3), (5, 2)), ((None, 3), (-1, -1)),
                                          ((2, 3), (4, -1)), ((None, 3), (0, -1))])
def test_reshape_impossible_at_build_time(shape, target):
    with pytest.raises(ValueError, match="reshape: cannot reshape a tensor of shape"):
        K.reshape(K.placeholder(shape=shape), target)


@pytest.mark.parametrize("key,want", [
    ((slice(None), slice(1, None), slice(None, None, 2)), (None, 3, 3)),
    ((0,), (4, 5)),
    ((Ellipsis, None), (None, 4, 5, 1)),
    ((slice(None, 1),), (None, 4, 5)),
    ((slice(None), -1, Ellipsis), (None, 5)),
    ((None, Ellipsis, 2, slice(3, 0, -1)), (1, None, 3)),
])
def test_getitem_static_shapes(key, want):
    x = K.placeholder(shape=(None, 4, 5))
    assert K.int_shape(x[key]) == want


def test_getitem_errors_at_build_and_eval(device):
    x = K.placeholder(shape=(None, 4))
    with pytest.raises(IndexError, match=r"getitem: index .* is invalid for shape \(None, 4\)"):
        x[:, 4]
    with pytest.raises(IndexError, match="getitem: index .* too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="getitem: index"):
        K.constant(np.ones((2, 3)))[2]
    with pytest.raises(TypeError, match="getitem: slice bounds must be ints or None"):
        x[:K.shape(x)[0]]
    f = K.function([x], x[3])
    with pytest.raises(IndexError, match=r"getitem: index 3 is invalid for shape \(2, 4\)"):
        f([np.ones((2, 4))])


def test_unknown_dim_checks_run_at_evaluation(device):
    x = K.placeholder(shape=(None, 3))
    y = K.placeholder(shape=(None, 3))
    with pytest.raises(ValueError, match="squeeze: axis 0 of shape"):
        K.function([x], K.squeeze(x, 0))([np.ones((2, 3))])
    np.testing.assert_array_equal(K.function([x], K.squeeze(x, 0))([np.ones((1, 3))]),
                                  np.ones(3))
    with pytest.raises(ValueError, match="squeeze: axis 1 of shape"):
        K.squeeze(x, 1)
    with pytest.raises(ValueError, match=r"concatenate: shapes \[\(2, 3\), \(4, 3\)\] differ"):
        K.function([x, y], K.concatenate([x, y], axis=1))([np.ones((2, 3)), np.ones((4, 3))])
    with pytest.raises(ValueError, match=r"stack: tensors of shapes \[\(2, 3\), \(4, 3\)\]"):
        K.function([x, y], K.stack([x, y]))([np.ones((2, 3)), np.ones((4, 3))])
    with pytest.raises(ValueError, match="reshape: cannot reshape a tensor of shape"):
        K.function([x], K.reshape(x, (4, -1)))([np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"concatenate: shapes \[\(None, 3\), \(2, 4\)\]"):
        K.concatenate([x, K.ones((2, 4))], axis=0)
    with pytest.raises(ValueError, match="stack: tensors of shapes"):
        K.stack([x, K.ones((2, 4))])
    with pytest.raises(ValueError, match="broadcast_to: cannot broadcast"):
        S.broadcast_to(x, (2, 4))
    indices = K.placeholder(shape=(None,), dtype="int32")
    with pytest.raises(ValueError, match=r"gather: indices must be in \[0, 5\)"):
        K.function([indices], K.gather(K.ones((5, 2)), indices))([np.array([5], np.int32)])


def test_shapes_known_only_when_fed(device, rng):
    x = K.placeholder(shape=(None, 4, 5))
    y = K.placeholder(shape=(None, 20))
    outputs = [K.reshape(x, K.shape(y)), K.reshape(x, (K.shape(x)[0], -1)),
               K.tile(y, (1, K.shape(x)[1])), S.broadcast_to(K.ones((1, 20)), K.shape(y)),
               K.permute_dimensions(x, K.constant([0, 2, 1], dtype="int32"))]
    assert [K.int_shape(o) for o in outputs] == [(None, 20), (None, 20), (None, 80),
                                                 (None, 20), (None, 5, 4)]
    xv, yv = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 20))
    got = K.function([x, y], outputs)([xv, yv])
    want = [xv.reshape(3, 20), xv.reshape(3, 20), np.tile(yv, (1, 4)), np.ones((3, 20)),
            xv.transpose(0, 2, 1)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    # eager: shape tensors and their entries are concrete
    t = K.constant(xv)
    assert K.reshape(t, (K.shape(t)[0], -1)).shape == (3, 20)
    assert K.reshape(t, K.shape(K.constant(yv))).shape == (3, 20)


def test_advanced_indexing_and_bilinear_resize_on_unknown_dims(device, rng):
    x = K.placeholder(shape=(None, 4))
    idx = K.placeholder(shape=(None,), dtype="int32")
    images = K.placeholder(shape=(None, None, None, 2))
    outputs = [x[[0, 1, 0]], x[idx], x[:, [3, 1]],
               K.resize_images(images, 2, 2, "channels_last", interpolation="bilinear")]
    assert K.int_shape(outputs[0]) == (3, 4) and K.int_shape(outputs[2]) == (None, 2)
    assert K.int_shape(outputs[3]) == (None, None, None, 2)
    xv, iv = rng.standard_normal((3, 4)).astype(np.float32), np.array([2, 0], np.int32)
    iv_images = rng.standard_normal((1, 3, 2, 2)).astype(np.float32)
    got = K.function([x, idx, images], outputs)([xv, iv, iv_images])
    np.testing.assert_array_equal(got[0], xv[[0, 1, 0]])
    np.testing.assert_array_equal(got[1], xv[iv])
    np.testing.assert_array_equal(got[2], xv[:, [3, 1]])
    want = K.eval(K.resize_images(K.constant(iv_images), 2, 2, "channels_last",
                                  interpolation="bilinear"))
    np.testing.assert_allclose(got[3], want, rtol=1e-6)


def test_variables_stage_in_graph_style(rng):
    v = K.variable(rng.standard_normal((2, 3)))
    x = K.placeholder(shape=(None, 3))  # graph style from here on
    outputs = [K.reshape(v, (3, 2)), v[1], K.concatenate([v, x], axis=0), K.transpose(v)]
    assert all(isinstance(o, Symbol) for o in outputs)
    assert [K.int_shape(o) for o in outputs] == [(3, 2), (3,), (None, 3), (3, 2)]
    xv = np.ones((1, 3), np.float32)
    first = K.function([x], outputs)([xv])
    K.set_value(v, np.zeros((2, 3)))
    second = K.function([x], outputs)([xv])  # the variable's value when evaluated
    np.testing.assert_array_equal(second[0], np.zeros((3, 2)))
    assert not np.array_equal(first[0], second[0])


def test_direct_abstract_of_the_transposes(device, rng):
    g = K.constant(rng.standard_normal((2, 1, 5)))
    key = (slice(1, None), None, 0)
    out = S.bind(S.index_scatter_p, g, key=key, shape=(3, 4, 5))
    assert S.index_scatter_p.abstract(Aval((2, 1, 5), g.dtype), key=key, shape=(3, 4, 5)) == (
        out.shape, out.dtype)
    want = np.zeros((3, 4, 5), np.float32)
    want[key] = K.eval(g)
    np.testing.assert_array_equal(K.eval(out), want)
    rows = K.constant([1, 1, 0], dtype="int32")
    out = S.bind(S.gather_grad_p, K.constant(np.ones((3, 2))), rows, shape=(4, 2))
    np.testing.assert_array_equal(K.eval(out), [[1, 1], [2, 2], [0, 0], [0, 0]])
    assert S.gather_grad_p.abstract(Aval((3, 2), np.dtype("float32")), Aval((3,), rows.dtype),
                                    shape=(4, 2)) == ((4, 2), out.dtype)


# -- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,shapes", [
    (lambda x: S.broadcast_to(x, (2, 3, 4)), [(3, 1)]),
    (lambda x: K.squeeze(x, 1), [(2, 1, 3)]),
    (K.flatten, [(2, 3, 4)]),
    (K.batch_flatten, [(2, 3, 4)]),
    (lambda x: K.gather(x, K.constant([2, 0, 2, 2], dtype="int32")), [(3, 4)]),
    (lambda x: K.gather(x, K.constant([[1, 1], [0, 2]], dtype="int32")), [(3, 2)]),
    (lambda x: S.pad(x, [(1, 2), (0, 1)], 3.0), [(2, 3)]),
    (lambda x: K.spatial_2d_padding(x, ((1, 0), (2, 1))), [(1, 2, 3, 2)]),
    (lambda x: K.reverse(x, [0, 2]), [(2, 3, 4)]),
    (lambda x: x[None, ..., 1:3, None], [(2, 3, 4)]),
    (lambda x: x[-1, ::2], [(2, 3, 4)]),
    (lambda x, y: K.concatenate([x, y, x], axis=0), [(2, 3), (1, 3)]),
    (lambda x, y: K.stack([x, y, x], axis=-1), [(2, 3), (2, 3)]),
    (lambda x, b: K.bias_add(x, b, "channels_first"), [(2, 3, 4), (3,)]),
    (lambda x, b: K.bias_add(x, b), [(2, 3, 4), (3, 4)]),
    (lambda x: K.repeat(x, 3), [(2, 3)]),
    (lambda x: K.resize_images(x, 2, 2, "channels_last", interpolation="bilinear"),
     [(1, 2, 3, 1)]),
])
def test_gradients(fn, shapes, device, rng):
    arrays = [rng.standard_normal(s) for s in shapes]
    weights = np.random.default_rng(0).standard_normal(
        fn(*[K.constant(a) for a in arrays]).shape)
    check_gradients(lambda *xs: fn(*xs) * K.constant(weights, dtype="float64"), arrays)


@pytest.mark.parametrize("fn", [
    lambda x: x[1:, ::-1],
    lambda x: x[[0, 2, 0]],
    lambda x: K.gather(x, K.constant([2, 0, 2], dtype="int32")),
    lambda x: K.concatenate([x, x[:1]], axis=0),
    lambda x: K.tile(K.expand_dims(x, 0), (2, 1, 1)),
    lambda x: K.permute_dimensions(K.reshape(x, (3, 2, 2)), (1, 2, 0)),
])
def test_gradients_of_gradients(fn, device, rng):
    """The vjps bind primitives too: a Hessian-vector product against finite differences."""
    check_hessian_vector_products(lambda x: K.sum(fn(x) ** 3), [rng.standard_normal((3, 4))],
                                  [rng.standard_normal((3, 4))])


def test_symbolic_gradients_through_the_family(rng):
    w = K.variable(rng.standard_normal((5, 3)))
    idx = K.placeholder(shape=(None,), dtype="int32")
    x = K.placeholder(shape=(None, 2, 3))
    h = K.concatenate([K.gather(w, idx), K.batch_flatten(x)[:, ::2]], axis=1)
    loss = K.sum(K.square(K.reshape(K.transpose(h), (-1,))))
    (g,) = K.gradients(loss, [w])
    iv, xv = np.array([4, 1, 4], np.int32), rng.standard_normal((3, 2, 3)).astype(np.float32)
    got = K.function([idx, x], g)([iv, xv])
    want = np.zeros((5, 3), np.float32)
    np.add.at(want, iv, 2 * K.eval(w)[iv])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_no_tape_for_integer_results_and_views_stay_cheap(rng):
    x = K.variable(rng.standard_normal((2, 3)))
    assert K.one_hot(K.constant([0, 2], dtype="int32"), 3)._node is None
    assert K.reshape(x, (3, 2))._node is not None
    assert K.reshape(x, (2, 3)) is x  # nothing to do
    assert K.flatten(K.constant([1.0, 2.0])).shape == (2,)
    assert K.batch_flatten(x) is x
