"""`K.gradients` of a symbolic loss stages its backward into the graph (staged_backprop.py).

The gradients are nodes of declared primitives (the graph can be read; `K.function` evaluates
them without the tape), right when a placeholder's unknown dimensions are fed sizes that
broadcast (TensorFlow's BroadcastGradientArgs), and differentiable again. References: finite
differences of a NumPy float64 function, and NumPy formulas.
"""
import numpy as np
import pytest

import gpubk as K
from gpubk.core.primitive import Primitive
from gpubk.symbolic import Placeholder, Symbol, topological_symbols

from gradcheck import numeric_gradient


def _ops(outputs) -> set:
    """The names of the ops the outputs' graph holds."""
    nodes = topological_symbols([o for o in outputs if isinstance(o, Symbol)])
    return {getattr(s.op, "__name__", s.op) for s in nodes if not isinstance(s, Placeholder)}


def _staged(grads) -> bool:
    """Whether the gradients are nodes of primitives' vjps only (no recomputed gradient, no
    gradient taken at call time)."""
    nodes = topological_symbols([g for g in grads if isinstance(g, Symbol)])
    return all(isinstance(s.op, Primitive) and s.op.name != "recomputed_grad"
               for s in nodes if not isinstance(s, Placeholder))


def _feed_gradients(loss_fn, arrays, shapes, rng):
    """Gradients of loss_fn(*placeholders) with respect to its placeholders, fed `arrays`."""
    xs = [K.placeholder(shape=s, dtype="float64") for s in shapes]
    grads = K.gradients(loss_fn(*xs), xs)
    assert _staged(grads), _ops(grads)
    return K.function(xs, grads)(arrays)


def _numpy_check(loss_np, arrays, got):
    for i, g in enumerate(got):
        want = numeric_gradient(lambda *a: float(loss_np(*a)), arrays, i)
        assert g.shape == arrays[i].shape
        np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)


def test_a_dense_layer_gradient_is_a_graph_of_primitives(rng):
    x = K.placeholder(shape=(None, 3))
    w = K.variable(rng.standard_normal((3, 2)))
    b = K.variable(rng.standard_normal(2))
    loss = K.mean(K.square(K.relu(K.dot(x, w) + b)))
    grads = K.gradients(loss, [w, b])
    assert _staged(grads)
    assert {"matmul", "relu_grad", "sum_to"} <= _ops(grads)
    f = K.function([x], grads)
    xv = rng.standard_normal((5, 3)).astype(np.float32)
    h = xv @ K.eval(w) + K.eval(b)
    gh = 2 * np.maximum(h, 0) * (h > 0) / h.size
    gw, gb = f([xv])
    np.testing.assert_allclose(gw, xv.T @ gh, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gb, gh.sum(0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("rows", [(1, 4), (4, 1), (3, 3)])
def test_unknown_dimensions_that_broadcast_at_runtime(rows, rng):
    # (None, 3) * (None, 3): fed batches of 1 and 4 broadcast, the gradient of the size-1 side
    # sums over the batch; its static shape could not say so.
    a, b = (rng.standard_normal((n, 3)) for n in rows)
    got = _feed_gradients(lambda x, y: K.sum(K.exp(x) * y), [a, b], [(None, 3), (None, 3)],
                          rng)
    _numpy_check(lambda x, y: np.sum(np.exp(x) * y), [a, b], got)


@pytest.mark.parametrize("axis", [None, 0, 1, [0, 2]])
def test_mean_over_unknown_dimensions(axis, rng):
    a = rng.standard_normal((2, 3, 4))
    got = _feed_gradients(lambda x: K.sum(K.square(K.mean(x, axis=axis))), [a],
                          [(None, None, 4)], rng)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    _numpy_check(lambda x: np.sum(np.mean(x, axis=np_axis) ** 2), [a], got)


def test_reductions_and_shapes_over_unknown_dimensions(rng):
    a = rng.standard_normal((2, 3, 4))

    def loss(x):
        flat = K.reshape(x, (-1,))  # its vjp reshapes back to two unknown dims
        top = K.max(x, axis=1)  # the gradient goes back over an unknown batch
        return K.sum(flat * flat) + K.sum(K.exp(top)) + K.sum(K.logsumexp(x, axis=2)) + \
            K.sum(K.square(x[:, 1:, ::2]))  # indexing scatters into the runtime shape

    def loss_np(x):
        top = x.max(axis=1)
        lse = np.log(np.exp(x).sum(axis=2))
        return np.sum(x * x) + np.sum(np.exp(top)) + np.sum(lse) + np.sum(x[:, 1:, ::2] ** 2)
    _numpy_check(loss_np, [a], _feed_gradients(loss, [a], [(None, None, 4)], rng))


def test_gradients_of_staged_gradients(rng):
    # A Hessian-vector product through a softmax crossentropy: staged twice.
    xv, tv = rng.standard_normal((4, 5)), np.eye(5)[[0, 2, 4, 1]]
    vv = rng.standard_normal((5, 3))
    w = K.variable(rng.standard_normal((5, 3)), dtype="float64")
    x = K.placeholder(shape=(None, 5), dtype="float64")
    t = K.placeholder(shape=(None, 3), dtype="float64")
    t_val = tv[:, :3]
    loss = K.sum(K.categorical_crossentropy(t, K.softmax(K.dot(x, w))))
    (g,) = K.gradients(loss, [w])
    (hv,) = K.gradients(K.sum(g * K.constant(vv, dtype="float64")), [w])
    assert _staged([g, hv])
    got = K.function([x, t], [hv])([xv, t_val])[0]

    def grad_np(wv):
        z = xv @ wv
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return xv.T @ (p * t_val.sum(1, keepdims=True) - t_val)
    want = numeric_gradient(lambda wv: float(np.sum(grad_np(wv) * vv)), [K.eval(w)], 0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_a_vjp_needing_unknown_sizes_is_recomputed_when_evaluated(rng):
    # Max pooling's vjp needs the spatial sizes: over unknown ones the gradient is a node that
    # reruns the pooling with recording on when the function runs, and is still right.
    xv = rng.standard_normal((2, 4, 4, 1))
    x = K.placeholder(shape=(None, None, None, 1), dtype="float64")
    (g,) = K.gradients(K.sum(K.square(K.pool2d(x, (2, 2), strides=(2, 2)))), [x])
    assert "recomputed_grad" in _ops([g])
    f = K.function([x], [g])
    got = f([xv])[0]
    windows = xv.reshape(2, 2, 2, 2, 2, 1).transpose(0, 1, 3, 2, 4, 5).reshape(2, 2, 2, 4, 1)
    first = windows.argmax(axis=3)
    want = np.zeros((2, 2, 2, 4, 1))
    np.put_along_axis(want, first[:, :, :, None], 2 * windows.max(axis=3)[:, :, :, None], 3)
    want = want.reshape(2, 2, 2, 2, 2, 1).transpose(0, 1, 3, 2, 4, 5).reshape(2, 4, 4, 1)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _tanh_rnn(wv):
    """A placeholder (batch, time, 2), a weight, and the last output of h = tanh(x_t w + h)."""
    x = K.placeholder(shape=(None, None, 2), dtype="float64")
    w = K.variable(wv, dtype="float64")

    def step(x_t, states):
        h = K.tanh(K.dot(x_t, w) + states[0])
        return h, [h]
    last, _, _ = K.rnn(step, x, [K.zeros((K.shape(x)[0], 2), dtype="float64")])
    return x, w, last


def _bptt(xv, w_):
    """Backpropagation through time by hand, of sum(last ** 2): (d/dw, d/dx)."""
    hs = [np.zeros((xv.shape[0], 2))]
    for t in range(xv.shape[1]):
        hs.append(np.tanh(xv[:, t] @ w_ + hs[-1]))
    dh, dw, dx = 2 * hs[-1], np.zeros_like(w_), np.zeros_like(xv)
    for t in range(xv.shape[1] - 1, -1, -1):
        da = dh * (1 - hs[t + 1] ** 2)
        dw += xv[:, t].T @ da
        dx[:, t] = da @ w_.T
        dh = da
    return dw, dx


def test_a_loop_gradient_is_recomputed_and_differentiable_again(rng):
    xv, wv, vv = rng.standard_normal((3, 4, 2)), rng.standard_normal((2, 2)) * 0.5, \
        rng.standard_normal((2, 2))
    x, w, last = _tanh_rnn(wv)
    (g,) = K.gradients(K.sum(K.square(last)), [w])
    (hv,) = K.gradients(K.sum(g * K.constant(vv, dtype="float64")), [w])
    assert "recomputed_grad" in _ops([g, hv])
    got_g, got_hv = K.function([x], [g, hv])([xv])
    np.testing.assert_allclose(got_g, _bptt(xv, wv)[0], rtol=1e-10)
    want_hv = numeric_gradient(lambda w_: float(np.sum(_bptt(xv, w_)[0] * vv)), [wv], 0)
    np.testing.assert_allclose(got_hv, want_hv, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("taken", [True, False])
def test_a_condition_known_when_fed_runs_one_branch_and_its_gradient(taken, rng, capsys):
    # tf.cond: only the branch taken runs (a print in the other stays silent; a reshape that
    # would fail there is never evaluated), and the gradient is that branch's.
    xv, wv = rng.standard_normal((4, 3)), rng.standard_normal(3)
    x = K.placeholder(shape=(None, 3), dtype="float64")
    flag = K.placeholder(shape=(), dtype="bool")
    w = K.variable(wv, dtype="float64")
    y = K.switch(flag, lambda: K.print_tensor(K.sum(K.exp(x * w)), "then:"),
                 lambda: K.sum(K.square(K.reshape(x * w, (-1, 4)))) if not taken else
                 K.sum(K.square(K.reshape(x * w, (5, -1)))))
    (gw,) = K.gradients(y, [w])
    assert {"cond", "recomputed_grad"} <= _ops([gw])
    got_y, got_g = K.function([x, flag], [y, gw])([xv, taken])

    def loss(w_):
        return np.sum(np.exp(xv * w_)) if taken else np.sum((xv * w_) ** 2)
    np.testing.assert_allclose(got_y, loss(wv), rtol=1e-12)
    np.testing.assert_allclose(got_g, numeric_gradient(loss, [wv], 0), rtol=1e-6, atol=1e-8)
    printed = capsys.readouterr().out
    assert printed.startswith("then:") if taken else printed == ""


def test_a_constant_branch_takes_the_other_branch_dtype_and_mismatches_are_errors():
    x = K.placeholder(shape=(2,), dtype="float64")
    flag = K.placeholder(shape=(), dtype="bool")
    y = K.switch(flag, x, np.zeros(2))
    assert K.dtype(y) == "float64"
    np.testing.assert_array_equal(K.function([x, flag], [y])([np.ones(2), False])[0], [0, 0])
    with pytest.raises(ValueError, match="switch: branches of dtypes float64 and float32"):
        K.switch(flag, x, K.cast(x, "float32"))


def test_print_passes_its_gradient_through_staged(rng, capsys):
    xv = rng.standard_normal((2, 3))
    x = K.placeholder(shape=(None, 3), dtype="float64")
    (g,) = K.gradients(K.sum(K.square(K.print_tensor(x, "x:"))), [x])
    assert _staged([g]) and "print_tensor" in _ops([g])
    np.testing.assert_allclose(K.function([x], [g])([xv])[0], 2 * xv, rtol=1e-12)
    assert capsys.readouterr().out.startswith("x:")


def test_gradients_with_respect_to_a_part_of_a_structured_result(rng):
    x = K.placeholder(shape=(None, 2, 2), dtype="float64")
    last, _, _ = K.rnn(lambda x_t, s: (x_t + s[0], [x_t + s[0]]), x,
                       [K.zeros((K.shape(x)[0], 2), dtype="float64")])
    (g,) = K.gradients(K.sum(K.square(last)), [last])
    xv = rng.standard_normal((3, 2, 2))
    got_last, got_g = K.function([x], [last, g])([xv])
    np.testing.assert_allclose(got_g, 2 * got_last, rtol=1e-12)


def test_a_gradient_through_a_loop_differentiated_again_reaches_the_weights(rng):
    # d/dw of |d loss/dx|^2 through an rnn: the recomputed gradient must stay linked to the
    # fed input and the weight (a finite-difference reference of a hand-written BPTT).
    xv, wv = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 2)) * 0.5
    x, w, last = _tanh_rnn(wv)
    (gx,) = K.gradients(K.sum(K.square(last)), [x])
    (gw,) = K.gradients(K.sum(K.square(gx)), [w])
    got = K.function([x], [gw])([xv])[0]
    want = numeric_gradient(lambda w_: float(np.sum(_bptt(xv, w_)[1] ** 2)), [wv], 0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
