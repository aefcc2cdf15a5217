"""The tape: K.gradients semantics, GradientTape, memory release, higher order, threads, updates."""
import gc
import threading
import weakref

import numpy as np
import pytest

import gpubk as K
from gradcheck import check_hessian_vector_products


def test_gradients_align_with_variables_and_give_none_when_unconnected(device):
    w = K.variable([[1.0, 2.0], [3.0, 4.0]])
    b = K.variable([0.5, -0.5])
    unused = K.variable([1.0])
    loss = K.dot(K.ones((3, 2)), w) + b  # non-scalar: differentiated as its sum
    gw, gb, gu = K.gradients(loss, [w, b, unused])
    np.testing.assert_array_equal(K.eval(gw), np.full((2, 2), 3.0))
    np.testing.assert_array_equal(K.eval(gb), [3.0, 3.0])
    assert gu is None
    assert gw.dtype == np.float32 and gw.device is w.device and gw.shape == w.shape


def test_constants_stop_gradient_and_no_grad_record_nothing(device):
    c = K.constant([1.0, 2.0])
    assert (c * c)._node is None
    v = K.variable([1.0, 2.0])
    assert (v * v)._node is not None
    with K.no_grad():
        assert (v * v)._node is None
    s = K.stop_gradient(v)
    assert (s * s)._node is None
    assert K.gradients(K.sum(K.stop_gradient(v * v) + v), [v])[0] is not None
    assert [t.requires_grad for t in K.stop_gradient([v, v])] == [False, False]
    np.testing.assert_array_equal(K.eval(K.gradients(K.sum(K.stop_gradient(v * v) * v), [v])[0]),
                                  [1.0, 4.0])


def test_gradient_wrt_intermediate_tensor(device):
    v = K.variable([1.0, 2.0, 3.0], dtype="float64")
    h = v * 2.0
    loss = K.sum(h * h)
    gh, gv = K.gradients(loss, [h, v])
    np.testing.assert_allclose(K.eval(gh), 2 * K.eval(h))
    np.testing.assert_allclose(K.eval(gv), 8 * K.eval(v))


def test_backward_uses_values_seen_by_the_forward_pass(device):
    v = K.variable([1.0, 2.0], dtype="float64")
    loss = K.sum(v * v)
    K.set_value(v, [10.0, 20.0])
    np.testing.assert_allclose(K.eval(K.gradients(loss, [v])[0]), [2.0, 4.0])


def test_entries_keep_only_what_their_rule_needs(device):
    v = K.variable(np.ones((4, 5)))
    h = v * 2.0
    buffer = weakref.ref(h.data)
    y = K.sum(K.softmax(h) * 3.0)  # softmax keeps its output, not h
    e = K.exp(h)                   # exp keeps its output
    s = K.sum(h)                   # sum keeps only h's shape
    del h
    gc.collect()
    assert buffer() is None
    g = K.gradients(y + K.sum(e) + s, [v])[0]
    np.testing.assert_allclose(K.eval(g), 2 * (np.exp(2.0) + 1), rtol=1e-6)


def test_long_chain_does_not_recurse(device):
    v = K.variable([1.0], dtype="float64")
    x = v
    for _ in range(10_000):
        x = x * 1.0001
    g = K.gradients(x, [v])[0]
    np.testing.assert_allclose(K.eval(g), [1.0001 ** 10_000], rtol=1e-9)


def test_gradient_tape_watch_and_persistent(device):
    x = K.constant([1.0, 2.0, 3.0], dtype="float64")
    with K.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = K.sum(x ** 3)
        z = K.sum(K.exp(x))
    np.testing.assert_allclose(K.eval(tape.gradient(y, x)), 3 * np.array([1, 4, 9.0]))
    np.testing.assert_allclose(K.eval(tape.gradient(z, [x])[0]), np.exp([1, 2, 3.0]))
    gy, gz = tape.gradient([y, z], (x, x)) if False else (None, None)
    got = tape.gradient(y, x, output_gradients=K.constant(2.0, dtype="float64"))
    np.testing.assert_allclose(K.eval(got), 6 * np.array([1, 4, 9.0]))
    assert not (x * x).requires_grad  # watching ended with the scope


def test_non_persistent_tape_releases_its_buffers_after_gradient(device):
    w = K.variable(np.ones((3, 3)))
    with K.GradientTape() as tape:
        h = K.exp(w * 2.0)
        y = K.softmax(h)
        loss = K.sum(y * h)
    saved = [weakref.ref(h.data), weakref.ref(y.data)]
    del h, y
    gc.collect()
    assert all(r() is not None for r in saved)  # held by the tape's entries
    grad = tape.gradient(loss, w)
    assert grad.shape == (3, 3)
    gc.collect()
    assert all(r() is None for r in saved)
    assert loss._node.backward is None  # released: loss itself stays usable as a value
    with pytest.raises(RuntimeError, match="only be called once"):
        tape.gradient(loss, w)


def test_deleting_an_unused_tape_releases_its_buffers(device):
    w = K.variable(np.ones((2, 2)))
    with K.GradientTape() as tape:
        h = K.exp(w)
        loss = K.sum(h * h)
    saved = weakref.ref(h.data)
    del h, tape
    gc.collect()
    assert saved() is None
    assert float(loss) > 0


def test_tape_under_k_gradients_of_released_graph_raises_clearly(device):
    w = K.variable([1.0, 2.0])
    with K.GradientTape() as tape:
        loss = K.sum(K.exp(w))
    tape.gradient(loss, w)
    with pytest.raises(RuntimeError, match="released"):
        K.gradients(loss, [w])


def _mlp_loss(w1, w2, x, t):
    return K.sum(K.categorical_crossentropy(t, K.softmax(K.dot(K.tanh(K.dot(x, w1)), w2))))


def _data(rng):
    x = K.constant(rng.standard_normal((6, 3)), dtype="float64")
    t = K.constant(np.eye(4)[rng.integers(0, 4, 6)], dtype="float64")
    w1 = rng.standard_normal((3, 5)) * 0.5
    w2 = rng.standard_normal((5, 4)) * 0.5
    return x, t, w1, w2


def _hvp_reference(x, t, w1, w2, v1, v2, eps=1e-5):
    """Finite differences of the first gradient along (v1, v2)."""
    def grad_at(s):
        a = K.variable(w1 + s * v1, dtype="float64")
        b = K.variable(w2 + s * v2, dtype="float64")
        return [K.eval(g) for g in K.gradients(_mlp_loss(a, b, x, t), [a, b])]
    up, down = grad_at(eps), grad_at(-eps)
    return [(u - d) / (2 * eps) for u, d in zip(up, down)]


def test_hessian_vector_product_with_nested_k_gradients(device, rng):
    x, t, w1, w2 = _data(rng)
    v1, v2 = rng.standard_normal(w1.shape), rng.standard_normal(w2.shape)
    a, b = K.variable(w1, dtype="float64"), K.variable(w2, dtype="float64")
    ga, gb = K.gradients(_mlp_loss(a, b, x, t), [a, b])
    assert ga._node.pending is not None  # first order recorded nothing for second order
    gv = K.sum(ga * K.constant(v1, dtype="float64")) + K.sum(gb * K.constant(v2, dtype="float64"))
    hv = K.gradients(gv, [a, b])
    for got, want in zip(hv, _hvp_reference(x, t, w1, w2, v1, v2)):
        np.testing.assert_allclose(K.eval(got), want, rtol=1e-5, atol=1e-8)


def test_hessian_vector_product_with_nested_tapes(device, rng):
    x, t, w1, w2 = _data(rng)
    v1, v2 = rng.standard_normal(w1.shape), rng.standard_normal(w2.shape)
    a, b = K.variable(w1, dtype="float64"), K.variable(w2, dtype="float64")
    with K.GradientTape() as outer:
        with K.GradientTape() as inner:
            loss = _mlp_loss(a, b, x, t)
        ga, gb = inner.gradient(loss, [a, b])
        gv = K.sum(ga * K.constant(v1, dtype="float64")) + \
            K.sum(gb * K.constant(v2, dtype="float64"))
    hv = outer.gradient(gv, [a, b])
    for got, want in zip(hv, _hvp_reference(x, t, w1, w2, v1, v2)):
        np.testing.assert_allclose(K.eval(got), want, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("fn", [
    lambda x: K.sum(K.exp(x) * x),
    lambda x: K.sum(K.sqrt(x) / (x + 1.0)),
    lambda x: K.mean(K.square(K.log(x))),
    lambda x: K.sum(K.max(x * x, axis=1)),
    lambda x: K.sum(K.dot(x, K.transpose(x)) ** 2),
    lambda x: K.sum(K.softmax(x) * K.softmax(x * 2.0, axis=0)),
    lambda x: K.sum(K.categorical_crossentropy(K.softmax(x), x * 0.5)),
    lambda x: K.sum(K.categorical_crossentropy(K.softmax(x), x, from_logits=True)),
])
def test_second_derivatives_against_finite_differences(fn, device, rng):
    a = rng.uniform(0.5, 1.5, (3, 4))
    check_hessian_vector_products(fn, [a], [rng.standard_normal(a.shape)])


def test_prod_second_derivative_says_it_is_unsupported(device):
    x = K.variable([1.0, 2.0, 3.0], dtype="float64")
    g = K.gradients(K.prod(x), [x])[0]
    with pytest.raises(NotImplementedError, match="prod"):
        K.gradients(K.sum(g), [x])


def _train(seed, steps=300):
    rng = np.random.default_rng(seed)
    x = K.constant(rng.standard_normal((64, 4)))
    y = K.constant(np.sin(K.eval(x) @ np.array([[1.0], [-2.0], [0.5], [1.5]])))
    w1 = K.variable(rng.standard_normal((4, 16)) * 0.5)
    b1 = K.zeros((16,))
    w2 = K.variable(rng.standard_normal((16, 1)) * 0.5)
    params = [w1, b1, w2]
    losses = []
    for _ in range(steps):
        pred = K.dot(K.tanh(K.dot(x, w1) + b1), w2)
        loss = K.mean(K.square(pred - y))
        for p, g in zip(params, K.gradients(loss, params)):
            K.update_sub(p, 0.2 * g)
        losses.append(float(loss))
    return losses, [K.eval(p) for p in params]


def test_two_layer_network_trains(device):
    losses, _ = _train(0)
    assert losses[-1] < losses[0] / 10


def test_threads_record_on_their_own_tapes():
    expected = [_train(seed, steps=40) for seed in (1, 2)]
    results = [None, None]

    def work(i, seed):
        with K.device("cpu"):
            results[i] = _train(seed, steps=40)

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate((1, 2))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for (losses, params), (want_losses, want_params) in zip(results, expected):
        np.testing.assert_allclose(losses, want_losses, rtol=1e-6)
        for p, q in zip(params, want_params):
            np.testing.assert_allclose(p, q, rtol=1e-6)


def test_tape_scope_is_per_thread(device):
    seen = []
    with K.GradientTape():
        th = threading.Thread(target=lambda: seen.append(len(K.autodiff._state.tapes)))
        th.start()
        th.join()
    assert seen == [0]


def test_updates(device):
    x = K.variable([1.0, 2.0], dtype="float64")
    assert K.update(x, [3.0, 4.0]) is x
    np.testing.assert_array_equal(K.eval(x), [3, 4])
    K.update_add(x, K.constant([1.0, 1.0], dtype="float64"))
    K.update_sub(x, np.array([0.5, 0.5]))
    np.testing.assert_array_equal(K.eval(x), [3.5, 4.5])
    K.moving_average_update(x, [10.0, 0.0], 0.9)
    np.testing.assert_allclose(K.eval(x), [3.5 * 0.9 + 1.0, 4.5 * 0.9])


@pytest.mark.parametrize("call", [
    lambda x: K.update(x, [1.0, 2.0, 3.0]),
    lambda x: K.update_add(x, np.ones((2, 2))),
    lambda x: K.update_sub(x, ["a", "b"]),
    lambda x: K.moving_average_update(x, [1.0], 0.9),
])
def test_failed_updates_leave_the_variable_unchanged(call, device):
    x = K.variable([1.0, 2.0])
    with pytest.raises((ValueError, TypeError), match=r"update|moving_average"):
        call(x)
    np.testing.assert_array_equal(K.eval(x), [1.0, 2.0])
