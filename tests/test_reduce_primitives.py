"""The reduction family on declared primitives (gpubk/ops/reduce.py): abstract evaluation agrees
with eager results, on known shapes and on placeholders with unknown dims; K.function of the
staged graph equals eager values; Keras's edge cases (empty axes, keepdims, integer dtypes,
empty tensors, non-finite logsumexp rows) staged as eagerly; gradients (and gradients of
gradients) against finite differences."""
import numpy as np
import pytest

import gpubk as K
from gpubk.core.primitive import Aval
from gpubk.ops import math as M
from gpubk.ops import reduce as R
from gpubk.symbolic import Symbol

from gradcheck import check_gradients, check_hessian_vector_products
from shapecheck import check_static_shape


def _f(*shape):
    return ("float32", shape)


def _d(*shape):
    return ("float64", shape)


def _i(*shape):
    return ("int32", shape)


def _b(*shape):
    return ("bool", shape)


# name: (function of the input, input spec, the primitive of the result's node)
CASES = {
    "sum": (K.sum, _f(2, 3, 4), R.sum_p),
    "sum_axis": (lambda x: K.sum(x, axis=1), _f(2, 3, 4), R.sum_p),
    "sum_axes_keepdims": (lambda x: K.sum(x, axis=(0, -1), keepdims=True), _f(2, 3, 4),
                          R.sum_p),
    "sum_all_keepdims": (lambda x: K.sum(x, keepdims=True), _f(2, 3, 4), R.sum_p),
    "sum_no_axes": (lambda x: K.sum(x, axis=[]), _f(2, 3, 4), R.sum_p),
    "sum_int": (lambda x: K.sum(x, axis=0), _i(2, 3, 4), R.sum_p),
    "sum_bool": (lambda x: K.sum(x, axis=-1), _b(2, 3, 4), R.sum_p),
    "sum_float64": (lambda x: K.sum(x, axis=[2, 0]), _d(2, 3, 4), R.sum_p),
    "mean": (lambda x: K.mean(x, axis=1), _f(2, 3, 4), R.mean_p),
    "mean_all": (K.mean, _f(2, 3, 4), R.mean_p),
    "mean_keepdims": (lambda x: K.mean(x, axis=-1, keepdims=True), _f(2, 3, 4), R.mean_p),
    "mean_no_axes": (lambda x: K.mean(x, axis=()), _f(2, 3, 4), R.mean_p),
    "mean_int": (lambda x: K.mean(x, axis=2), _i(2, 3, 4), R.mean_p),
    "mean_bool": (lambda x: K.mean(x, axis=0), _b(2, 3, 4), R.mean_p),
    "max": (lambda x: K.max(x, axis=1), _f(2, 3, 4), R.max_p),
    "max_all": (K.max, _f(2, 3, 4), R.max_p),
    "max_int_keepdims": (lambda x: K.max(x, axis=(0, 2), keepdims=True), _i(2, 3, 4), R.max_p),
    "min": (lambda x: K.min(x, axis=-1), _f(2, 3, 4), R.min_p),
    "min_no_axes": (lambda x: K.min(x, axis=[]), _f(2, 3, 4), R.min_p),
    "prod": (lambda x: K.prod(x, axis=2), _f(2, 3, 4), R.prod_p),
    "prod_all": (K.prod, _d(2, 3, 4), R.prod_p),
    "prod_int": (lambda x: K.prod(x, axis=1, keepdims=True), _i(2, 3, 4), R.prod_p),
    "logsumexp": (lambda x: K.logsumexp(x, axis=1), _f(2, 3, 4), R.logsumexp_p),
    "logsumexp_all": (K.logsumexp, _d(2, 3, 4), R.logsumexp_p),
    "logsumexp_keepdims": (lambda x: K.logsumexp(x, axis=(1, 2), keepdims=True), _f(2, 3, 4),
                           R.logsumexp_p),
    "any": (lambda x: K.any(x, axis=1), _f(2, 3, 4), R.any_p),
    "any_int": (K.any, _i(2, 3, 4), R.any_p),
    "all": (lambda x: K.all(x, axis=-1, keepdims=True), _b(2, 3, 4), R.all_p),
    "all_float": (K.all, _f(2, 3, 4), R.all_p),
    "argmax": (K.argmax, _f(2, 3, 4), R.argmax_p),
    "argmax_none": (lambda x: K.argmax(x, axis=None), _f(2, 3, 4), R.argmax_p),
    "argmin": (lambda x: K.argmin(x, axis=1), _i(2, 3, 4), R.argmin_p),
    "cumsum": (K.cumsum, _f(2, 3, 4), R.cumsum_p),
    "cumsum_int": (lambda x: K.cumsum(x, axis=-1), _i(2, 3, 4), R.cumsum_p),
    "cumsum_bool": (lambda x: K.cumsum(x, axis=1), _b(2, 3, 4), R.cumsum_p),
    "cumprod": (lambda x: K.cumprod(x, axis=2), _f(2, 3, 4), R.cumprod_p),
    "cumprod_int": (K.cumprod, _i(2, 3, 4), R.cumprod_p),
    # compositions: no primitive of their own
    "var": (lambda x: K.var(x, axis=1), _f(2, 3, 4), R.mean_p),
    "var_bool": (K.var, _b(2, 3, 4), R.mean_p),
    "std": (lambda x: K.std(x, axis=(0, 2), keepdims=True), _f(2, 3, 4), M.sqrt_p),
}

# Per case, the unknown axis on the placeholders (default 0).
UNKNOWN = {"sum_int": 1, "max": 1, "min_no_axes": 2, "prod": 2, "argmin": 1, "cumsum": 2,
           "logsumexp_keepdims": 1, "std": 2}


def _value(spec, rng, axis=None, size=None):
    dtype, shape = spec
    if axis is not None:
        shape = shape[:axis] + (size,) + shape[axis + 1:]
    if dtype == "int32":
        return rng.integers(-3, 4, shape).astype(np.int32)
    if dtype == "bool":
        return rng.random(shape) < 0.6
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("name", CASES)
def test_abstract_matches_eager_on_known_shapes(name, device, rng):
    fn, spec, primitive = CASES[name]
    value = _value(spec, rng)
    eager = fn(K.constant(value, dtype=value.dtype))
    placeholder = K.placeholder(shape=value.shape, dtype=value.dtype)
    staged = fn(placeholder)
    assert isinstance(staged, Symbol)
    assert staged.op is primitive, staged.op  # a declared primitive, not the traced path
    assert K.int_shape(staged) == eager.shape and staged.dtype == eager.dtype
    got = K.function([placeholder], staged)([value])
    assert got.dtype == eager.dtype
    np.testing.assert_array_equal(got, K.eval(eager))


@pytest.mark.parametrize("name", CASES)
def test_unknown_dims_and_function_match_eager(name, device, rng):
    fn, spec, primitive = CASES[name]
    axis = UNKNOWN.get(name, 0)
    shape = spec[1][:axis] + (None,) + spec[1][axis + 1:]
    placeholder = K.placeholder(shape=shape, dtype=spec[0])
    staged = fn(placeholder)
    assert staged.op is primitive, staged.op
    static = K.int_shape(staged)
    f = K.function([placeholder], staged)
    results = []
    for size in (1, 2, 5):
        value = _value(spec, rng, axis, size)
        eager = K.eval(fn(K.constant(value, dtype=value.dtype)))
        got = f([value])
        assert got.dtype == eager.dtype == staged.dtype
        np.testing.assert_array_equal(got, eager)
        results.append(eager.shape)
    check_static_shape(static, results)


@pytest.mark.parametrize("shape,axis,keepdims,want", [
    ((None, 3, None), 1, False, (None, None)),
    ((None, 3, None), [0, 2], False, (3,)),
    ((None, 3, None), -1, True, (None, 3, 1)),
    ((None, 3, None), None, True, (1, 1, 1)),
    ((None, 3, None), None, False, ()),
    ((None, 3, None), [], False, (None, 3, None)),
    ((None, 3, None), [], True, (None, 3, None)),
])
def test_reduction_static_shapes(shape, axis, keepdims, want):
    x = K.placeholder(shape=shape)
    for fn in (K.sum, K.mean, K.max, K.min, K.prod, K.logsumexp, K.any, K.all, K.var, K.std):
        assert K.int_shape(fn(x, axis=axis, keepdims=keepdims)) == want, fn.__name__


def test_abstract_on_avals_with_unknown_dims():
    f32, i8 = np.dtype("float32"), np.dtype("int8")
    x = Aval((None, 4, 5), f32)
    assert R.sum_p.abstract(x, axes=(1,), keepdims=False) == ((None, 5), f32)
    assert R.sum_p.abstract(Aval((None, 2), i8), axes=None, keepdims=True) == ((1, 1), i8)
    assert R.sum_p.abstract(Aval((3,), np.dtype(bool)), axes=None, keepdims=False)[1] == \
        np.sum(np.ones(3, bool)).dtype
    assert R.mean_p.abstract(Aval((None, 2), i8), axes=(0,), keepdims=False) == ((2,), i8)
    assert R.max_p.abstract(x, axes=(0, 2), keepdims=True) == ((1, 4, 1), f32)
    assert R.logsumexp_p.abstract(Aval((2, None), np.dtype("int32")), axes=(1,),
                                  keepdims=False) == ((2,), np.dtype("float64"))
    assert R.any_p.abstract(x, axes=(), keepdims=False) == ((None, 4, 5), np.dtype(bool))
    assert R.argmax_p.abstract(x, axis=2) == ((None, 4), np.dtype("int64"))
    assert R.cumprod_p.abstract(Aval((None, 3), i8), axis=1) == ((None, 3), i8)


# -- Keras's edge cases, eager and staged ----------------------------------------------------
def test_integer_reductions_keep_their_dtype_and_wrap(device):
    big = np.array([2 ** 31 - 1, 1], np.int32)
    for x in (K.constant(big, dtype="int32"), K.placeholder(shape=(None,), dtype="int32")):
        outputs = [K.sum(x), K.cumsum(x), K.prod(x), K.mean(x), K.max(x)]
        assert [o.dtype for o in outputs] == [np.dtype("int32")] * 5
        got = K.function([x], outputs)([big]) if isinstance(x, Symbol) else \
            [K.eval(o) for o in outputs]
        assert got[0] == -2 ** 31  # wraps, as TensorFlow's int32 sum
        np.testing.assert_array_equal(got[1], [2 ** 31 - 1, -2 ** 31])
        assert got[2] == 2 ** 31 - 1 and got[3] == 2 ** 30 and got[4] == 2 ** 31 - 1


def test_keepdims_takes_any_truthy_value(device):
    x = K.constant(np.ones((2, 3)))
    assert K.sum(x, axis=1, keepdims=1).shape == (2, 1)
    assert K.max(x, axis=1, keepdims=np.bool_(True)).shape == (2, 1)
    assert K.int_shape(K.mean(K.placeholder(shape=(None, 3)), 1, 0)) == (None,)


def test_empty_tensors(device):
    empty = K.zeros((0, 3))
    assert K.int_shape(K.sum(empty, axis=1)) == (0,)
    assert K.int_shape(K.max(empty, axis=1)) == (0,)
    assert K.int_shape(K.argmin(empty, axis=1)) == (0,)
    assert K.max(empty, axis=[]).shape == (0, 3)
    for fn, name in ((K.max, "max"), (K.min, "min"), (K.logsumexp, "logsumexp"),
                     (K.argmax, "argmax"), (K.argmin, "argmin")):
        with pytest.raises(ValueError, match=f"{name}: cannot reduce an empty tensor"):
            fn(empty, axis=0)
        # a known empty dim fails at build time, an unknown one when fed
        with pytest.raises(ValueError, match=f"{name}: cannot reduce an empty tensor"):
            fn(K.placeholder(shape=(0, 3)), axis=0)
        x = K.placeholder(shape=(None, 3))
        f = K.function([x], fn(x, axis=0))
        assert f([np.ones((2, 3))]).shape == (3,)
        with pytest.raises(ValueError, match=f"{name}: cannot reduce an empty tensor"):
            f([np.ones((0, 3))])
        assert K.int_shape(fn(K.placeholder(shape=(0, 3)), axis=1)) == (0,)
    x = K.placeholder(shape=(None, 3))
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        got = K.function([x], [K.sum(x, axis=0), K.mean(x)])([np.ones((0, 3), np.float32)])
    np.testing.assert_array_equal(got[0], np.zeros(3))
    assert np.isnan(got[1])


def test_logsumexp_of_infinite_rows_staged(device, recwarn):
    inf = np.inf
    a = np.array([[-inf, -inf], [0.0, -inf], [inf, 1.0], [np.nan, 1.0]])
    x = K.placeholder(shape=(None, 2), dtype="float64")
    got = K.function([x], K.logsumexp(x, axis=1))([a])
    np.testing.assert_array_equal(got, [-inf, 0.0, inf, np.nan])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_nan_propagates(device):
    a = np.array([[np.nan, 1.0, 2.0], [3.0, 4.0, 5.0]])
    x = K.constant(a, dtype="float64")
    for fn in (K.sum, K.mean, K.max, K.min, K.prod, K.logsumexp, K.var):
        got = K.eval(fn(x, axis=1))
        assert np.isnan(got[0]) and np.isfinite(got[1]), fn.__name__
    np.testing.assert_array_equal(K.eval(K.any(x, axis=1)), [True, True])  # NaN is true
    assert K.eval(K.argmax(x, axis=1))[0] == 0  # NumPy's and TF's: NaN is the maximum


def test_variables_stage_in_graph_style(rng):
    v = K.variable(rng.standard_normal((2, 3)))
    x = K.placeholder(shape=(None, 3))  # graph style from here on
    outputs = [K.sum(v, axis=1), K.max(v), K.argmax(v), K.cumsum(v, 1), K.var(v, 0),
               K.sum(x, 0) + K.mean(v, 0)]
    assert all(isinstance(o, Symbol) for o in outputs)
    assert [K.int_shape(o) for o in outputs] == [(2,), (), (2,), (2, 3), (3,), (3,)]
    xv = np.ones((1, 3), np.float32)
    K.function([x], outputs)([xv])
    K.set_value(v, np.zeros((2, 3)))
    second = K.function([x], outputs)([xv])  # the variable's value when evaluated
    np.testing.assert_array_equal(second[0], np.zeros(2))
    np.testing.assert_array_equal(second[5], np.ones(3))


# -- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda x: K.sum(x, axis=(0, 2)),
    lambda x: K.sum(x, axis=1, keepdims=True),
    lambda x: K.sum(x, axis=[]),
    lambda x: K.mean(x, axis=-1),
    lambda x: K.mean(x, axis=(0, 1), keepdims=True),
    lambda x: K.mean(x, axis=[]),
    lambda x: K.mean(x),
    lambda x: K.max(x, axis=1),
    lambda x: K.max(x, axis=(0, 2), keepdims=True),
    lambda x: K.min(x),
    lambda x: K.min(x, axis=[]),
    lambda x: K.prod(x, axis=0),
    lambda x: K.prod(x, axis=(1, 2), keepdims=True),
    lambda x: K.logsumexp(x, axis=(0, 2)),
    lambda x: K.logsumexp(x, axis=1, keepdims=True),
    lambda x: K.cumsum(x, axis=2),
    lambda x: K.cumprod(x, axis=0),
    lambda x: K.var(x, axis=(1, 2)),
    lambda x: K.std(x, axis=-1, keepdims=True),
])
def test_gradients(fn, device, rng):
    a = rng.uniform(0.5, 2.0, (2, 3, 4)) * rng.choice([-1.0, 1.0], (2, 3, 4))
    weights = rng.standard_normal(fn(K.constant(a)).shape)
    check_gradients(lambda x: fn(x) * K.constant(weights, dtype="float64"), [a])


def test_gradients_at_ties_zeros_and_empty_axes(device):
    x = K.variable([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]], dtype="float64")
    for fn, want in ((K.max, [[0.5, 0, 0.5], [1 / 3] * 3]),
                     (K.min, [[0, 1, 0], [1 / 3] * 3])):
        np.testing.assert_allclose(K.eval(K.gradients(K.sum(fn(x, axis=1)), [x])[0]), want)
    z = K.variable([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0]], dtype="float64")
    (g,) = K.gradients(K.sum(K.prod(z, axis=1)), [z])
    np.testing.assert_array_equal(K.eval(g), [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    (g,) = K.gradients(K.sum(K.mean(x, axis=[]) * 2.0), [x])  # a mean over no axes is x
    np.testing.assert_array_equal(K.eval(g), np.full((2, 3), 2.0))


@pytest.mark.parametrize("fn", [
    lambda x: K.sum(x ** 3, axis=1),
    lambda x: K.mean(K.square(x), axis=0, keepdims=True),
    lambda x: K.max(x * x, axis=1),
    lambda x: K.min(K.sin(x), axis=0),
    lambda x: K.logsumexp(x * x, axis=1),
    lambda x: K.logsumexp(x),
    lambda x: K.cumsum(x ** 2, axis=1),
    lambda x: K.cumprod(x, axis=1),
    lambda x: K.std(x, axis=1),
])
def test_gradients_of_gradients(fn, device, rng):
    """The vjps bind primitives too: a Hessian-vector product against finite differences."""
    check_hessian_vector_products(lambda x: K.sum(fn(x) ** 2), [rng.uniform(0.5, 2.0, (3, 4))],
                                  [rng.standard_normal((3, 4))], atol=1e-6)


def test_prod_is_differentiable_once(device):
    x = K.variable([[1.0, 2.0, 3.0]], dtype="float64")
    (g,) = K.gradients(K.sum(K.prod(x, axis=1)), [x])
    np.testing.assert_array_equal(K.eval(g), [[6.0, 3.0, 2.0]])
    with pytest.raises(NotImplementedError, match="prod: second and higher derivatives"):
        K.gradients(K.sum(g), [x])


def test_symbolic_gradients_through_the_family(rng):
    w = K.variable(rng.standard_normal((3, 4)))
    x = K.placeholder(shape=(None, 3))
    h = K.dot(x, w)
    loss = K.sum(K.logsumexp(h, axis=1)) + K.mean(K.max(h, axis=0)) + K.sum(K.var(h, axis=1))
    (g,) = K.gradients(loss, [w])
    xv = rng.standard_normal((5, 3)).astype(np.float32)
    got = K.function([x], g)([xv])
    wv = K.variable(K.eval(w))
    hv = K.dot(K.constant(xv), wv)
    eager = K.sum(K.logsumexp(hv, axis=1)) + K.mean(K.max(hv, axis=0)) + \
        K.sum(K.var(hv, axis=1))
    np.testing.assert_allclose(got, K.eval(K.gradients(eager, [wv])[0]), rtol=1e-5, atol=1e-6)


def test_no_tape_for_integer_and_boolean_results(rng):
    x = K.variable(rng.standard_normal((2, 3)))
    assert K.argmax(x)._node is None and K.any(x)._node is None
    assert K.sum(K.constant([1, 2], dtype="int32"))._node is None
    assert K.sum(x)._node is not None
    assert K.sum(K.constant(np.ones((2, 3))))._node is None  # nothing needs a gradient
