"""Graph mode: symbolic tensors, K.function, symbolic gradients, errors, learning phase."""
import numpy as np
import pytest

import gpubk as K
from gpubk import graph


def test_walkthrough_placeholders():
    for kwargs, shape in (({"shape": (2, 4, 5)}, (2, 4, 5)),
                          ({"shape": (None, 4, 5)}, (None, 4, 5)),
                          ({"ndim": 3}, (None, None, None))):
        p = K.placeholder(**kwargs)
        assert K.int_shape(p) == shape and K.ndim(p) == 3 and K.is_keras_tensor(p)


def test_static_shapes_are_inferred():
    x = K.placeholder(shape=(None, 4, 5))
    assert K.int_shape(K.dot(x, K.ones((5, 3)))) == (None, 4, 3)
    assert K.int_shape(K.reshape(x, (-1, 20))) == (None, 20)
    assert K.int_shape(K.sum(x, axis=1)) == (None, 5)
    assert K.int_shape(K.concatenate([x, x], axis=-1)) == (None, 4, 10)
    assert K.int_shape(K.permute_dimensions(x, (2, 0, 1))) == (5, None, 4)
    assert K.int_shape(x[:, 1:, ::2]) == (None, 3, 3)
    assert K.dtype(K.cast(x, "int32")) == "int32" and K.dtype(x > 0) == "bool"
    t = K.constant(np.ones((8, 4, 5)))
    # A batch of 8 targets fixes the unknown batch size, as TensorFlow's static broadcasting does
    assert K.int_shape(K.categorical_crossentropy(t, K.softmax(x))) == (8, 4)
    assert K.int_shape(K.categorical_crossentropy(K.softmax(x), K.softmax(x))) == (None, 4)


def _ops(x, y, w):
    """The ops compared between graph and eager evaluation."""
    z = K.dot(x, w)
    return [x * 2.0 + y - 1.0, K.abs(x) / (1.0 + K.square(y)), z, K.softmax(z),
            K.categorical_crossentropy(K.softmax(y), K.softmax(z)),
            K.categorical_crossentropy(y, z, from_logits=True),
            K.reshape(x, (-1, 2)), K.concatenate([x, y], axis=0), K.sum(x, axis=1),
            K.mean(z), K.max(y, axis=0, keepdims=True), K.relu(x - 0.5), K.sigmoid(z)]


@pytest.mark.parametrize("batch", [3, 7])
def test_function_matches_eager(batch, device, rng):
    w = K.variable(rng.standard_normal((4, 4)))
    x, y = K.placeholder(shape=(None, 4)), K.placeholder(shape=(None, 4))
    f = K.function([x, y], _ops(x, y, w))
    xv, yv = rng.standard_normal((batch, 4)), rng.standard_normal((batch, 4))
    got = f([xv, yv])
    want = [K.eval(t) for t in _ops(K.constant(xv), K.constant(yv), w)]
    assert len(got) == len(want)
    for g, e in zip(got, want):
        assert isinstance(g, np.ndarray) and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-6)
    batch_two = f([xv[:2], yv[:2]])  # the same function, another batch size
    np.testing.assert_allclose(batch_two[0], want[0][:2], rtol=1e-6)


def test_updates_come_after_the_outputs():
    v = K.variable([1.0, 2.0])
    x = K.placeholder(shape=(2,))
    f = K.function([x], [x * 0.0 + v, x + v], updates=[(v, v + x), K.update_add(v, x * 0.0)])
    out = f([np.array([10.0, 20.0])])
    np.testing.assert_array_equal(out[0], [1.0, 2.0])  # the value before the update
    np.testing.assert_array_equal(K.eval(v), [11.0, 22.0])
    out = f([np.array([1.0, 1.0])])
    np.testing.assert_array_equal(out[0], [11.0, 22.0])
    assert K.int_shape(K.update_sub(v, x)) == (2,)  # a symbolic update: nothing changed yet
    np.testing.assert_array_equal(K.eval(v), [12.0, 23.0])


def test_values_computed_from_variables_are_recomputed_each_call():
    x = K.placeholder(shape=(2,))
    v = K.variable([1.0, 2.0])
    decayed = v * 0.5  # written before any placeholder meets it: still recomputed per call
    f = K.function([x], [decayed, x + decayed], updates=[(v, decayed)])
    first, second = f([np.zeros(2)]), f([np.zeros(2)])
    np.testing.assert_array_equal(first[0], [0.5, 1.0])
    np.testing.assert_array_equal(second[0], [0.25, 0.5])
    np.testing.assert_array_equal(K.eval(v), [0.25, 0.5])
    assert K.is_keras_tensor(decayed)  # graph style: a node that reads v when evaluated
    np.testing.assert_array_equal(K.eval(decayed), [0.125, 0.25])
    K.clear_session()  # eager style again: an op on a variable computes at once
    assert isinstance(v * 2.0, K.Tensor)
    np.testing.assert_array_equal(K.eval(v * 2.0), [0.5, 1.0])


def test_function_is_prepared_once(monkeypatch):
    x = K.placeholder(shape=(None, 3))
    f = K.function([x], K.sum(K.exp(x) * 2.0))
    calls = []
    monkeypatch.setattr(graph, "_topological", lambda roots: calls.append(roots))
    for _ in range(3):
        np.testing.assert_allclose(f([np.zeros((2, 3))]), 12.0)
    assert calls == []  # single output in, single array out; nothing rebuilt


def _train_eager(x, y, params, forward, steps, lr):
    for _ in range(steps):
        loss = forward(K.constant(x), K.constant(y), params)
        for p, g in zip(params, K.gradients(loss, params)):
            K.update_sub(p, lr * g)


def _train_graph(x, y, params, forward, steps, lr):
    xp, yp = K.placeholder(shape=(None, x.shape[1])), K.placeholder(shape=(None, y.shape[1]))
    loss = forward(xp, yp, params)
    grads = K.gradients(loss, params)
    step = K.function([xp, yp], [loss], updates=[(p, p - lr * g) for p, g in zip(params, grads)])
    return [float(step([x, y])[0]) for _ in range(steps)]


def _logistic(x, y, params):
    w, b = params
    return K.mean(K.binary_crossentropy(y, K.sigmoid(K.dot(x, w) + b)))


def _two_layer(x, y, params):
    w1, b1, w2, b2 = params
    h = K.tanh(K.dot(x, w1) + b1)
    return K.mean(K.categorical_crossentropy(y, K.softmax(K.dot(h, w2) + b2)))


@pytest.mark.parametrize("model", ["logistic", "two-layer"])
def test_a_compiled_training_step_matches_the_eager_loop(model, rng):
    x = rng.standard_normal((32, 3))
    if model == "logistic":
        y = (x @ np.array([[1.0], [-2.0], [0.5]]) > 0).astype(float)
        shapes, forward = [(3, 1), (1,)], _logistic
    else:
        y = np.eye(3)[np.argmax(x @ rng.standard_normal((3, 3)), axis=1)]
        shapes, forward = [(3, 8), (8,), (8, 3), (3,)], _two_layer
    start = [rng.standard_normal(s) * 0.5 for s in shapes]
    eager = [K.variable(v, dtype="float64") for v in start]
    compiled = [K.variable(v, dtype="float64") for v in start]
    _train_eager(x, y, eager, forward, 50, 0.5)
    losses = _train_graph(x, y, compiled, forward, 50, 0.5)
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(K.eval(b), K.eval(a), rtol=1e-10)
    assert losses[-1] < losses[0] / 2


def test_adam_updates_compile_into_one_function(rng):
    x = rng.standard_normal((64, 2))
    y = x @ np.array([[2.0], [-1.0]]) + 0.5
    w, b = K.variable(np.zeros((2, 1)), "float64"), K.variable(np.zeros((1,)), "float64")
    xp = K.placeholder(shape=(None, 2), dtype="float64")
    yp = K.placeholder(shape=(None, 1), dtype="float64")
    loss = K.mean(K.square(K.dot(xp, w) + b - yp))
    updates = []
    for p, g in zip([w, b], K.gradients(loss, [w, b])):
        m, v = K.zeros(K.int_shape(p), "float64"), K.zeros(K.int_shape(p), "float64")
        m_new, v_new = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * K.square(g)
        updates += [K.update(m, m_new), K.update(v, v_new),
                    K.update_sub(p, 0.05 * m_new / (K.sqrt(v_new) + 1e-7))]
    step = K.function([xp, yp], [loss], updates=updates)
    losses = [float(step([x, y])[0]) for _ in range(100)]
    # The same Adam steps in NumPy, with the gradient of the mean squared error by hand.
    params = [np.zeros((2, 1)), np.zeros(1)]
    moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    for _ in range(100):
        residual = x @ params[0] + params[1] - y
        grads = [2 * x.T @ residual / len(x), 2 * residual.sum(axis=0) / len(x)]
        for p, g, mv in zip(params, grads, moments):
            mv[0] = 0.9 * mv[0] + 0.1 * g
            mv[1] = 0.999 * mv[1] + 0.001 * g * g
            p -= 0.05 * mv[0] / (np.sqrt(mv[1]) + 1e-7)
    np.testing.assert_allclose(K.eval(w), params[0], rtol=1e-9)
    np.testing.assert_allclose(K.eval(b), params[1], rtol=1e-9)
    assert losses[-1] < losses[0] / 10


def test_symbolic_gradients_of_unconnected_variables_and_placeholders(rng):
    x = K.placeholder(shape=(None, 3))
    w, unused = K.variable(np.ones((3, 1))), K.variable([1.0])
    loss = K.sum(K.square(K.dot(x, w)))
    gw, gu, gx = K.gradients(loss, [w, unused, x])
    assert gu is None and K.int_shape(gw) == (3, 1) and K.int_shape(gx) == (None, 3)
    xv = rng.standard_normal((4, 3))
    got_w, got_x = K.function([x], [gw, gx])([xv])
    np.testing.assert_allclose(got_w, 2 * xv.T @ (xv @ np.ones((3, 1))), rtol=1e-5)
    np.testing.assert_allclose(got_x, 2 * (xv @ np.ones((3, 1))) @ np.ones((1, 3)), rtol=1e-5)


def test_feeding_errors_name_the_placeholder():
    x = K.placeholder(shape=(None, 3), name="images")
    f = K.function([x], [x * 2.0])
    with pytest.raises(ValueError, match=r"placeholder 'images' has rank 2 .*shape \(3,\)"):
        f([np.ones(3)])
    with pytest.raises(ValueError, match=r"placeholder 'images' has shape \(None, 3\) but was "
                                         r"fed a value of shape \(2, 4\)"):
        f([np.ones((2, 4))])
    with pytest.raises(TypeError, match="placeholder 'images' is float32 and cannot take a "
                                        "value of dtype <U1"):
        f([np.array([["a", "b", "c"]])])
    labels = K.placeholder(shape=(None,), dtype="int32", name="labels")
    with pytest.raises(TypeError, match="'labels' is int32 and cannot take a value of dtype "
                                        "float64"):
        K.function([labels], [labels + 1])([np.array([0.5])])
    with pytest.raises(ValueError, match=r"expected 1 input value\(s\)"):
        f([np.ones((2, 3)), np.ones((2, 3))])


def test_graph_errors():
    x = K.placeholder(shape=(None, 3), name="x")
    with pytest.raises(ValueError, match=r"dot: .*\(building dot on symbolic input 'x' "
                                         r"\(None, 3\)\)"):
        K.dot(x, K.ones((4, 5)))
    with pytest.raises(ValueError, match="depend on placeholder.*'x'.*not among the inputs"):
        K.function([], [x * 2.0])
    with pytest.raises(TypeError, match=r"eval: '.*' depends on placeholder 'x' \(shape "
                                        r"\(None, 3\)\).*feed it through K.function"):
        K.eval(K.exp(x))
    assert K.int_shape(K.reshape(x, (5, -1))) == (5, None)  # possible for some batch sizes


def test_learning_phase(monkeypatch):
    monkeypatch.setattr(graph, "_learning_phase_set", None)
    train, test = K.constant([1.0]), K.constant([2.0])
    assert K.eval(K.in_train_phase(train, test)) == 2.0  # eagerly: the test phase
    assert K.eval(K.in_test_phase(train, test)) == 1.0
    assert K.eval(K.in_train_phase(lambda: train, lambda: test, training=1)) == 1.0
    assert int(K.eval(K.learning_phase())) == 0  # the placeholder's default
    x = K.placeholder(shape=(None,))
    out = K.in_train_phase(x * 10.0, x)
    f = K.function([x, K.learning_phase()], [out])
    np.testing.assert_array_equal(f([np.ones(2), 1])[0], [10.0, 10.0])
    np.testing.assert_array_equal(f([np.ones(2), 0])[0], [1.0, 1.0])
    np.testing.assert_array_equal(K.function([x], [out])([np.ones(2)])[0], [1.0, 1.0])
    K.set_learning_phase(1)
    assert K.learning_phase() == 1
    assert K.eval(K.in_train_phase(train, test)) == 1.0
    with pytest.raises(ValueError, match="set_learning_phase"):
        K.set_learning_phase(2)
