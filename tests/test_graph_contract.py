"""Graph style's contract, against references written independently of gpubk.

Graph style is TensorFlow 1's default graph as Keras 2 used it: from the first placeholder on,
ops on variables build nodes, `K.update*` build deferred updates that a `K.function` runs after
its outputs (or `K.eval` runs), and random ops draw anew at each evaluation, reproducibly. The
references: Keras 2.2.4's optimizers as keras/optimizers.py writes them, checked against NumPy
float64 implementations with hand-written gradients; NumPy loops for `K.rnn`, folds and maps;
finite differences; and eager gpubk where the two styles must agree (CTC).
"""
import numpy as np
import pytest

import gpubk as K
from gradcheck import numeric_gradient
from gpubk.tensor import SymbolicValueError


# -- Keras 2.2.4's optimizers (keras/optimizers.py), as written there ------------------------------
class Optimizer:
    def __init__(self, **kwargs):
        self.updates = []
        self.weights = []

    def get_gradients(self, loss, params):
        grads = K.gradients(loss, params)
        # Keras 2.2.4 writes `if None in grads:`, see test_none_in_a_list_of_tensors.
        if any(g is None for g in grads):
            raise ValueError('An operation has `None` for gradient.')
        return grads


class SGD(Optimizer):
    def __init__(self, lr=0.01, momentum=0., decay=0., nesterov=False, **kwargs):
        super(SGD, self).__init__(**kwargs)
        with K.name_scope(self.__class__.__name__):
            self.iterations = K.variable(0, dtype='int64', name='iterations')
            self.lr = K.variable(lr, name='lr')
            self.momentum = K.variable(momentum, name='momentum')
            self.decay = K.variable(decay, name='decay')
        self.initial_decay = decay
        self.nesterov = nesterov

    def get_updates(self, loss, params):
        grads = self.get_gradients(loss, params)
        self.updates = [K.update_add(self.iterations, 1)]

        lr = self.lr
        if self.initial_decay > 0:
            lr = lr * (1. / (1. + self.decay * K.cast(self.iterations,
                                                      K.dtype(self.decay))))
        # momentum
        shapes = [K.int_shape(p) for p in params]
        moments = [K.zeros(shape, dtype=K.dtype(p)) for shape, p in zip(shapes, params)]
        self.weights = [self.iterations] + moments
        for p, g, m in zip(params, grads, moments):
            v = self.momentum * m - lr * g  # velocity
            self.updates.append(K.update(m, v))

            if self.nesterov:
                new_p = p + self.momentum * v - lr * g
            else:
                new_p = p + v

            # Apply constraints.
            if getattr(p, 'constraint', None) is not None:
                new_p = p.constraint(new_p)

            self.updates.append(K.update(p, new_p))
        return self.updates


class RMSprop(Optimizer):
    def __init__(self, lr=0.001, rho=0.9, epsilon=None, decay=0., **kwargs):
        super(RMSprop, self).__init__(**kwargs)
        with K.name_scope(self.__class__.__name__):
            self.lr = K.variable(lr, name='lr')
            self.rho = K.variable(rho, name='rho')
            self.decay = K.variable(decay, name='decay')
            self.iterations = K.variable(0, dtype='int64', name='iterations')
        if epsilon is None:
            epsilon = K.epsilon()
        self.epsilon = epsilon
        self.initial_decay = decay

    def get_updates(self, loss, params):
        grads = self.get_gradients(loss, params)
        accumulators = [K.zeros(K.int_shape(p), dtype=K.dtype(p)) for p in params]
        self.weights = accumulators
        self.updates = [K.update_add(self.iterations, 1)]

        lr = self.lr
        if self.initial_decay > 0:
            lr = lr * (1. / (1. + self.decay * K.cast(self.iterations,
                                                      K.dtype(self.decay))))

        for p, g, a in zip(params, grads, accumulators):
            # update accumulator
            new_a = self.rho * a + (1. - self.rho) * K.square(g)
            self.updates.append(K.update(a, new_a))
            new_p = p - lr * g / (K.sqrt(new_a) + self.epsilon)

            # Apply constraints.
            if getattr(p, 'constraint', None) is not None:
                new_p = p.constraint(new_p)

            self.updates.append(K.update(p, new_p))
        return self.updates


class Adam(Optimizer):
    def __init__(self, lr=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=None, decay=0., amsgrad=False, **kwargs):
        super(Adam, self).__init__(**kwargs)
        with K.name_scope(self.__class__.__name__):
            self.iterations = K.variable(0, dtype='int64', name='iterations')
            self.lr = K.variable(lr, name='lr')
            self.beta_1 = K.variable(beta_1, name='beta_1')
            self.beta_2 = K.variable(beta_2, name='beta_2')
            self.decay = K.variable(decay, name='decay')
        if epsilon is None:
            epsilon = K.epsilon()
        self.epsilon = epsilon
        self.initial_decay = decay
        self.amsgrad = amsgrad

    def get_updates(self, loss, params):
        grads = self.get_gradients(loss, params)
        self.updates = [K.update_add(self.iterations, 1)]

        lr = self.lr
        if self.initial_decay > 0:
            lr = lr * (1. / (1. + self.decay * K.cast(self.iterations,
                                                      K.dtype(self.decay))))

        t = K.cast(self.iterations, K.floatx()) + 1
        lr_t = lr * (K.sqrt(1. - K.pow(self.beta_2, t)) /
                     (1. - K.pow(self.beta_1, t)))

        ms = [K.zeros(K.int_shape(p), dtype=K.dtype(p)) for p in params]
        vs = [K.zeros(K.int_shape(p), dtype=K.dtype(p)) for p in params]
        if self.amsgrad:
            vhats = [K.zeros(K.int_shape(p), dtype=K.dtype(p)) for p in params]
        else:
            vhats = [K.zeros(1) for _ in params]
        self.weights = [self.iterations] + ms + vs + vhats

        for p, g, m, v, vhat in zip(params, grads, ms, vs, vhats):
            m_t = (self.beta_1 * m) + (1. - self.beta_1) * g
            v_t = (self.beta_2 * v) + (1. - self.beta_2) * K.square(g)
            if self.amsgrad:
                vhat_t = K.maximum(vhat, v_t)
                p_t = p - lr_t * m_t / (K.sqrt(vhat_t) + self.epsilon)
                self.updates.append(K.update(vhat, vhat_t))
            else:
                p_t = p - lr_t * m_t / (K.sqrt(v_t) + self.epsilon)

            self.updates.append(K.update(m, m_t))
            self.updates.append(K.update(v, v_t))
            new_p = p_t

            # Apply constraints.
            if getattr(p, 'constraint', None) is not None:
                new_p = p.constraint(new_p)

            self.updates.append(K.update(p, new_p))
        return self.updates


# -- the same optimizers in NumPy float64 ---------------------------------------------------------
class NumpySGD:
    def __init__(self, lr, momentum=0.0, decay=0.0, nesterov=False):
        self.lr, self.momentum, self.decay, self.nesterov = lr, momentum, decay, nesterov
        self.iterations, self.moments = 0, None

    def step(self, params, grads):
        lr = self.lr / (1.0 + self.decay * self.iterations)
        if self.moments is None:
            self.moments = [np.zeros_like(p) for p in params]
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            v = self.momentum * self.moments[i] - lr * g
            self.moments[i] = v
            new.append(p + self.momentum * v - lr * g if self.nesterov else p + v)
        self.iterations += 1
        return new


class NumpyRMSprop:
    def __init__(self, lr, rho=0.9, epsilon=1e-7, decay=0.0):
        self.lr, self.rho, self.epsilon, self.decay = lr, rho, epsilon, decay
        self.iterations, self.acc = 0, None

    def step(self, params, grads):
        lr = self.lr / (1.0 + self.decay * self.iterations)
        if self.acc is None:
            self.acc = [np.zeros_like(p) for p in params]
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            self.acc[i] = self.rho * self.acc[i] + (1 - self.rho) * g * g
            new.append(p - lr * g / (np.sqrt(self.acc[i]) + self.epsilon))
        self.iterations += 1
        return new


class NumpyAdam:
    def __init__(self, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, decay=0.0, amsgrad=False):
        self.lr, self.b1, self.b2, self.epsilon, self.decay = lr, beta_1, beta_2, epsilon, decay
        self.amsgrad, self.iterations, self.m, self.v, self.vhat = amsgrad, 0, None, None, None

    def step(self, params, grads):
        lr = self.lr / (1.0 + self.decay * self.iterations)
        t = self.iterations + 1
        lr_t = lr * np.sqrt(1 - self.b2 ** t) / (1 - self.b1 ** t)
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
            self.vhat = [np.zeros_like(p) for p in params]
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            self.vhat[i] = np.maximum(self.vhat[i], self.v[i])
            v = self.vhat[i] if self.amsgrad else self.v[i]
            new.append(p - lr_t * self.m[i] / (np.sqrt(v) + self.epsilon))
        self.iterations += 1
        return new


# -- two models: loss and hand-written gradient in NumPy, loss in gpubk -----------------------------
def _softmax_np(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def classifier_np(params, x, y):
    """Dense softmax classifier, mean categorical crossentropy: loss and d loss / d params."""
    w, b = params
    p = _softmax_np(x @ w + b)
    loss = -np.mean(np.sum(y * np.log(np.clip(p, 1e-7, 1 - 1e-7)), axis=1))
    dz = (p - y) / len(x)  # softmax followed by crossentropy; no probability is clipped here
    return loss, [x.T @ dz, dz.sum(axis=0)]


def classifier_k(params, x, y):
    w, b = params
    return K.mean(K.categorical_crossentropy(y, K.softmax(K.dot(x, w) + b)))


def regression_np(params, x, y):
    """Linear regression, mean squared error: loss and d loss / d params."""
    w, b = params
    r = x @ w + b - y
    dr = 2 * r / r.size
    return np.mean(r * r), [x.T @ dr, dr.sum(axis=0)]


def regression_k(params, x, y):
    w, b = params
    return K.mean(K.square(K.dot(x, w) + b - y))


def _dataset(model, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 5))
    if model == "classifier":
        y = np.eye(3)[rng.integers(0, 3, 16)]
        start = [rng.standard_normal((5, 3)) * 0.3, rng.standard_normal(3) * 0.1]
    else:
        y = x @ rng.standard_normal((5, 2)) + 0.5 + 0.1 * rng.standard_normal((16, 2))
        start = [rng.standard_normal((5, 2)) * 0.3, np.zeros(2)]
    return x, y, start


OPTIMIZERS = {
    "sgd-momentum": (lambda: SGD(lr=0.1, momentum=0.9),
                     lambda: NumpySGD(0.1, momentum=0.9)),
    "sgd-nesterov-decay": (lambda: SGD(lr=0.1, momentum=0.8, decay=0.05, nesterov=True),
                           lambda: NumpySGD(0.1, momentum=0.8, decay=0.05, nesterov=True)),
    "rmsprop": (lambda: RMSprop(lr=0.01, rho=0.9),
                lambda: NumpyRMSprop(0.01, rho=0.9, epsilon=1e-7)),
    "rmsprop-decay": (lambda: RMSprop(lr=0.01, rho=0.8, decay=0.1),
                      lambda: NumpyRMSprop(0.01, rho=0.8, epsilon=1e-7, decay=0.1)),
    "adam-decay": (lambda: Adam(lr=0.05, decay=0.02),
                   lambda: NumpyAdam(0.05, epsilon=1e-7, decay=0.02)),
    "adam": (lambda: Adam(lr=0.05, beta_1=0.8, beta_2=0.99),
             lambda: NumpyAdam(0.05, beta_1=0.8, beta_2=0.99, epsilon=1e-7)),
    "adam-amsgrad": (lambda: Adam(lr=0.05, beta_2=0.9, amsgrad=True),
                     lambda: NumpyAdam(0.05, beta_2=0.9, epsilon=1e-7, amsgrad=True)),
}


def _train(optimizer, model, dtype, steps=20):
    """Trains through K.function as Keras 2's fit does; checks every step against NumPy."""
    K.set_floatx(dtype)  # hyperparameter variables, moments and placeholders in that dtype
    make, make_np = OPTIMIZERS[optimizer]
    forward_np, forward_k = {"classifier": (classifier_np, classifier_k),
                             "regression": (regression_np, regression_k)}[model]
    x, y, start = _dataset(model)
    params = [K.variable(v, name=f"p{i}") for i, v in enumerate(start)]
    xp = K.placeholder(shape=(None, x.shape[1]), name="x")
    yp = K.placeholder(shape=(None, y.shape[1]), name="y")
    loss = forward_k(params, xp, yp)
    opt = make()
    updates = opt.get_updates(loss, params)
    # deferred: building the updates changed nothing
    assert K.eval(opt.iterations) == 0
    for p, v in zip(params, start):
        np.testing.assert_array_equal(K.eval(p), v.astype(dtype))
    train = K.function([xp, yp], [loss], updates=updates)
    reference, ref_params = make_np(), [v.copy() for v in start]
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (2e-4, 2e-5)
    losses = []
    for step in range(steps):
        (got_loss,) = train([x.astype(dtype), y.astype(dtype)])
        want_loss, grads = forward_np(ref_params, x, y)  # the loss before this step's update
        np.testing.assert_allclose(got_loss, want_loss, rtol=rtol, atol=atol,
                                   err_msg=f"loss at step {step}")
        ref_params = reference.step(ref_params, grads)
        for i, (p, want) in enumerate(zip(params, ref_params)):
            np.testing.assert_allclose(K.eval(p), want, rtol=rtol, atol=atol,
                                       err_msg=f"parameter {i} after step {step + 1}")
        assert K.eval(opt.iterations) == step + 1
        losses.append(float(got_loss))
    assert losses[-1] < losses[0]
    return opt


@pytest.mark.parametrize("model", ["classifier", "regression"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_keras2_optimizer_matches_numpy_float64(optimizer, model):
    _train(optimizer, model, "float64")


@pytest.mark.parametrize("optimizer", ["sgd-nesterov-decay", "rmsprop-decay", "adam-decay"])
def test_keras2_optimizer_matches_numpy_float32(optimizer, device):
    opt = _train(optimizer, "classifier", "float32")
    assert K.dtype(opt.iterations) == "int64"


def test_optimizer_constraint_is_applied_in_the_update():
    K.set_floatx("float64")
    x, y, start = _dataset("regression")
    w = K.variable(start[0], constraint=lambda t: K.clip(t, -0.05, 0.05))
    b = K.variable(start[1])
    assert w.constraint is not None
    xp, yp = K.placeholder(shape=(None, 5)), K.placeholder(shape=(None, 2))
    opt = SGD(lr=0.1, momentum=0.5)
    train = K.function([xp, yp], [regression_k([w, b], xp, yp)],
                       updates=opt.get_updates(regression_k([w, b], xp, yp), [w, b]))
    ref, params = NumpySGD(0.1, momentum=0.5), [start[0].copy(), start[1].copy()]
    for _ in range(5):
        train([x, y])
        params = ref.step(params, regression_np(params, x, y)[1])
        params[0] = np.clip(params[0], -0.05, 0.05)
        np.testing.assert_allclose(K.eval(w), params[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(K.eval(b), params[1], rtol=1e-12, atol=1e-14)


def test_none_in_a_list_of_tensors():
    v = K.variable(np.ones((3, 2)))
    x = K.placeholder(shape=(None, 3))
    grads = K.gradients(K.mean(K.dot(x, v)), [v])
    assert (None in grads) is False
    assert (None in [K.constant(1.0), v]) is False


def _min_max_norm(w, min_value=0.0, max_value=0.5, rate=0.5, axis=0):
    """keras.constraints.MinMaxNorm.__call__ (not idempotent for rate < 1)."""
    norms = K.sqrt(K.sum(K.square(w), axis=axis, keepdims=True))
    desired = (rate * K.clip(norms, min_value, max_value) + (1 - rate) * norms)
    return w * (desired / (K.epsilon() + norms))


def _min_max_norm_np(w, min_value=0.0, max_value=0.5, rate=0.5, axis=0):
    norms = np.sqrt(np.sum(w * w, axis=axis, keepdims=True))
    desired = rate * np.clip(norms, min_value, max_value) + (1 - rate) * norms
    return w * (desired / (1e-7 + norms))


def test_a_constraint_is_applied_once_per_update():
    K.set_floatx("float64")
    x, y, start = _dataset("regression")
    w, b = K.variable(start[0], constraint=_min_max_norm), K.variable(start[1])
    xp, yp = K.placeholder(shape=(None, 5)), K.placeholder(shape=(None, 2))
    loss = regression_k([w, b], xp, yp)
    train = K.function([xp, yp], [loss], updates=SGD(lr=0.1).get_updates(loss, [w, b]))
    train([x, y])
    grads = regression_np(start, x, y)[1]
    np.testing.assert_allclose(K.eval(w), _min_max_norm_np(start[0] - 0.1 * grads[0]),
                               rtol=1e-12)
    v = K.variable(np.ones(3), constraint=_min_max_norm)
    K.set_value(v, np.full(3, 4.0))
    np.testing.assert_array_equal(K.eval(v), np.full(3, 4.0))


# -- deferred updates ------------------------------------------------------------------------------
UPDATES = {  # name: (build the update, its effect on the value in NumPy)
    "update": (lambda v, d: K.update(v, d), lambda old, d: d),
    "update_add": (lambda v, d: K.update_add(v, d), lambda old, d: old + d),
    "update_sub": (lambda v, d: K.update_sub(v, d), lambda old, d: old - d),
    "moving_average_update": (lambda v, d: K.moving_average_update(v, d, 0.75),
                              lambda old, d: 0.75 * old + 0.25 * d),
}


@pytest.mark.parametrize("name", list(UPDATES))
def test_graph_style_update_waits_for_k_eval(name):
    make, effect = UPDATES[name]
    K.placeholder(shape=(2,))  # graph style from here on
    start, delta = np.array([1.0, 2.0]), np.array([0.5, -4.0])
    v = K.variable(start, dtype="float64")
    u = make(v, delta)
    assert K.is_keras_tensor(u)
    np.testing.assert_array_equal(K.eval(v), start)  # built, not run
    np.testing.assert_allclose(K.eval(u), effect(start, delta), rtol=1e-15)  # runs it
    np.testing.assert_allclose(K.eval(v), effect(start, delta), rtol=1e-15)
    K.eval(u)  # each evaluation runs the update again (a TF1 assign op)
    np.testing.assert_allclose(K.eval(v), effect(effect(start, delta), delta), rtol=1e-15)


@pytest.mark.parametrize("name", list(UPDATES))
def test_graph_style_update_runs_after_the_outputs_at_each_call(name):
    make, effect = UPDATES[name]
    start = np.array([1.0, 2.0])
    v = K.variable(start, dtype="float64")
    d = K.placeholder(shape=(2,), dtype="float64")
    doubled = v * 2.0  # a node reading v at each call
    u = make(v, d)
    np.testing.assert_array_equal(K.eval(v), start)
    f = K.function([d], [doubled, v + d], updates=[u])
    np.testing.assert_array_equal(K.eval(v), start)  # making the function changes nothing
    value = start
    for delta in (np.array([0.5, -4.0]), np.array([3.0, 1.0])):
        out = f([delta])
        np.testing.assert_allclose(out[0], 2 * value, rtol=1e-15)  # the pre-update value
        np.testing.assert_allclose(out[1], value + delta, rtol=1e-15)
        value = effect(value, delta)
        np.testing.assert_allclose(K.eval(v), value, rtol=1e-15)
    f2 = K.function([d], [v + 0.0])  # no updates: nothing changes
    f2([np.ones(2)])
    np.testing.assert_allclose(K.eval(v), value, rtol=1e-15)


@pytest.mark.parametrize("name", list(UPDATES))
def test_eager_style_update_applies_at_once(name):
    make, effect = UPDATES[name]
    start, delta = np.array([1.0, 2.0]), np.array([0.5, -4.0])
    v = K.variable(start, dtype="float64")
    result = make(v, delta)  # no placeholder yet: eager style
    assert not K.is_keras_tensor(result)
    np.testing.assert_allclose(K.eval(v), effect(start, delta), rtol=1e-15)
    np.testing.assert_allclose(K.eval(result), effect(start, delta), rtol=1e-15)


def test_every_update_value_is_computed_before_any_update_applies():
    """What Keras 2's optimizers assume (Adam's lr_t reads `iterations` that an update of the
    same call increments); TF1 left the order open, gpubk computes all values first."""
    a = K.variable(1.0, dtype="float64")
    b = K.variable(10.0, dtype="float64")
    x = K.placeholder(shape=(), dtype="float64")
    f = K.function([x], [a + b], updates=[K.update(a, b + x), (b, a * 2.0)])
    assert f([1.0]) == [11.0]
    assert K.eval(a) == 11.0 and K.eval(b) == 2.0
    assert f([1.0]) == [13.0]
    assert K.eval(a) == 3.0 and K.eval(b) == 22.0


# -- shapes known only when fed --------------------------------------------------------------------
@pytest.mark.parametrize("fill, value", [(K.zeros, 0.0), (K.ones, 1.0)])
def test_zeros_and_ones_of_a_symbolic_shape_are_tensors(fill, value):
    x = K.placeholder(shape=(None, 3))
    t = fill((K.shape(x)[0], 2))
    t64 = fill((K.shape(x)[0], 2, K.shape(x)[1]), dtype="float64")
    assert K.is_keras_tensor(t) and not isinstance(t, K.Variable)  # as Keras 2: a tensor
    assert K.int_shape(t) == (None, 2) and K.dtype(t) == "float32"
    assert K.int_shape(t64) == (None, 2, 3) and K.dtype(t64) == "float64"
    f = K.function([x], [t, t64, x[:, :2] + t])
    for batch in (3, 7):
        xv = np.arange(3 * batch, dtype="float32").reshape(batch, 3)
        a, b, c = f([xv])
        assert a.dtype == np.float32 and b.dtype == np.float64
        np.testing.assert_array_equal(a, np.full((batch, 2), value))
        np.testing.assert_array_equal(b, np.full((batch, 2, 3), value))
        np.testing.assert_array_equal(c, xv[:, :2] + value)


def test_reshape_and_tile_to_symbolic_shapes():
    x = K.placeholder(shape=(None, 2, 3))
    row = K.variable(np.array([[1.0, 2.0, 3.0]]))
    outs = [K.reshape(x, (K.shape(x)[0], -1)),
            K.reshape(x, (-1, K.shape(x)[2])),
            K.reshape(K.reshape(x, (-1,)), K.shape(x)),
            K.tile(row, (K.shape(x)[0], 1)),
            K.tile(row, K.stack([K.shape(x)[0], 2])),
            K.tile(K.expand_dims(x, 1), (1, K.shape(x)[0], 1, 1))]
    assert K.int_shape(outs[0])[0] is None and K.int_shape(outs[3]) == (None, 3)
    f = K.function([x], outs)
    for batch in (1, 4):
        xv = np.random.default_rng(batch).standard_normal((batch, 2, 3)).astype("float32")
        got = f([xv])
        want = [xv.reshape(batch, -1), xv.reshape(-1, 3), xv,
                np.tile([[1.0, 2.0, 3.0]], (batch, 1)), np.tile([[1.0, 2.0, 3.0]], (batch, 2)),
                np.tile(xv[:, None], (1, batch, 1, 1))]
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_array_equal(g, w)


RANDOM_OPS = {  # name: (op, its statistics: (low, high) or (mean, std))
    "random_uniform": (lambda shape, seed: K.random_uniform(shape, -2.0, 3.0, seed=seed),
                       ("range", -2.0, 3.0)),
    "random_normal": (lambda shape, seed: K.random_normal(shape, 1.0, 2.0, seed=seed),
                      ("moments", 1.0, 2.0)),
    "truncated_normal": (lambda shape, seed: K.truncated_normal(shape, 0.0, 1.0, seed=seed),
                         ("range", -2.0, 2.0)),
    "random_bernoulli": (lambda shape, seed: K.random_bernoulli(shape, 0.25, seed=seed),
                         ("moments", 0.25, np.sqrt(0.25 * 0.75))),
}


def _check_statistics(values, kind, a, b):
    if kind == "range":
        assert values.min() >= a and values.max() <= b
        assert values.max() - values.min() > 0.8 * (b - a)
    else:
        assert abs(values.mean() - a) < 0.1 * max(b, 1) and abs(values.std() - b) < 0.1 * b


@pytest.mark.parametrize("name", list(RANDOM_OPS))
def test_random_ops_take_symbolic_shapes(name):
    op, stats = RANDOM_OPS[name]
    x = K.placeholder(shape=(None, 40))
    whole = op(K.shape(x), 5)  # the shape of x
    rows = op((K.shape(x)[0], 30), 5)  # a tuple with a symbolic entry
    assert K.int_shape(whole) == (None, 40) and K.int_shape(rows) == (None, 30)
    static = op((50, 30), 5)  # the same seed, the shape known: the same first draws (TF1)
    f = K.function([x], [whole, rows])
    for batch in (50, 80):
        a, b = f([np.zeros((batch, 40), "float32")])
        assert a.shape == (batch, 40) and b.shape == (batch, 30)
        assert a.dtype == b.dtype == np.float32
        _check_statistics(a, *stats)
        _check_statistics(b, *stats)
    fresh = op((K.shape(x)[0], 30), 5)  # rows has drawn twice already: a new node
    np.testing.assert_array_equal(K.function([x], [fresh])([np.zeros((50, 40), "float32")])[0],
                                  K.eval(static))


# -- random nodes: new values per call, reproducible --------------------------------------------------
def _random_graph():
    x = K.placeholder(shape=(None, 6))
    outs = [K.dropout(x, 0.5, seed=3), K.random_uniform((2, 3), seed=3),
            K.random_normal((K.shape(x)[0], 2), seed=7), K.dropout(x, 0.5)]
    return K.function([x], outs)


def test_seeded_random_ops_draw_anew_at_each_call_reproducibly():
    xv = np.ones((4, 6), "float32")
    np.random.seed(11)  # unseeded ops take their seed from NumPy's generator, as Keras
    f = _random_graph()
    first, second, third = f([xv]), f([xv]), f([xv])
    for a, b in zip(first, second):
        assert not np.array_equal(a, b)  # a new draw per call
    for dropped in (first[0], second[0], first[3]):
        assert set(np.unique(dropped)) <= {0.0, 2.0}  # dropped or scaled by 1 / (1 - 0.5)
        assert 0 < np.count_nonzero(dropped) < dropped.size
    K.clear_session()  # a new graph: the same seeds give the same sequence
    np.random.seed(11)
    g = _random_graph()
    for run_f, run_g in zip((first, second, third), (g([xv]), g([xv]), g([xv]))):
        for a, b in zip(run_f, run_g):
            np.testing.assert_array_equal(a, b)


def test_a_random_node_draws_anew_at_each_k_eval():
    K.placeholder(shape=(1,))
    r = K.random_uniform((3, 4), seed=1)
    assert K.is_keras_tensor(r)
    a, b = K.eval(r), K.eval(r)
    assert a.shape == (3, 4) and not np.array_equal(a, b)
    K.clear_session()  # eager style: a seeded op computes once, the same for the same seed
    a, b = K.eval(K.random_uniform((3, 4), seed=1)), K.eval(K.random_uniform((3, 4), seed=1))
    np.testing.assert_array_equal(a, b)


# -- control flow and structured ops on placeholders ------------------------------------------------
def _rnn_np(x, mask, c, W, U, V, go_backwards):
    """tf.keras.backend.rnn's semantics in a NumPy loop: where the mask is False the states are
    kept and the output repeats the previous output (zeros before the first)."""
    batch, steps, _ = x.shape
    h, s = np.zeros((batch, W.shape[1])), np.zeros((batch, W.shape[1]))
    previous, outputs = np.zeros((batch, V.shape[1])), []
    for t in (range(steps - 1, -1, -1) if go_backwards else range(steps)):
        h_new = np.tanh(x[:, t] @ W + h @ U + c)
        s_new = s + h_new
        out = 2.0 * h_new @ V + x[:, t, :1]
        if mask is not None:
            keep = mask[:, t][:, None]
            h, s, out = np.where(keep, h_new, h), np.where(keep, s_new, s), \
                np.where(keep, out, previous)
        else:
            h, s = h_new, s_new
        outputs.append(out)
        previous = out
    return outputs[-1], np.stack(outputs, axis=1), [h, s]


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_rnn_over_unknown_timesteps_matches_a_numpy_loop(masked, go_backwards, device):
    K.set_floatx("float64")
    rng = np.random.default_rng(3)
    Wv, Uv, Vv = (rng.standard_normal(s) * 0.5 for s in ((3, 4), (4, 4), (4, 2)))
    W, U, V = K.variable(Wv), K.variable(Uv), K.variable(Vv)
    x = K.placeholder(shape=(None, None, 3))
    c = K.placeholder(shape=(None, 4))
    mask = K.placeholder(shape=(None, None), dtype="bool")

    def step(x_t, states):  # states: [h, s] + constants [c]
        h, s, const = states
        h_new = K.tanh(K.dot(x_t, W) + K.dot(h, U) + const)
        return 2.0 * K.dot(h_new, V) + x_t[:, :1], [h_new, s + h_new]

    # Keras's RNN.get_initial_state, and a zeros of symbolic shape
    h0 = K.tile(K.expand_dims(K.sum(K.zeros_like(x), axis=(1, 2))), [1, 4])
    s0 = K.zeros((K.shape(x)[0], 4))
    last, outputs, states = K.rnn(step, x, [h0, s0], go_backwards=go_backwards,
                                  mask=mask if masked else None, constants=[c])
    for t in (last, outputs, *states):
        assert K.is_keras_tensor(t)
    assert K.int_shape(last) == (None, 2) and K.int_shape(outputs) == (None, None, 2)
    assert [K.int_shape(s) for s in states] == [(None, 4), (None, 4)]
    f = K.function([x, c, mask], [last, outputs, *states])
    for batch, steps in ((2, 3), (4, 6)):
        xv, cv = rng.standard_normal((batch, steps, 3)), rng.standard_normal((batch, 4))
        lengths = rng.integers(1, steps + 1, batch)
        lengths[0] = steps
        mv = np.arange(steps)[None, :] < lengths[:, None]  # post-padding
        mv[-1, 0] = False  # and a hole at the start
        got = f([xv, cv, mv])
        want_last, want_outputs, want_states = _rnn_np(xv, mv if masked else None, cv, Wv,
                                                       Uv, Vv, go_backwards)
        for g, w in zip(got, [want_last, want_outputs, *want_states]):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def _rnn_loss_np(params, x, mask, y):
    W, U, Wo = params
    h = np.zeros((x.shape[0], W.shape[1]))
    for t in range(x.shape[1]):
        h = np.where(mask[:, t][:, None], np.tanh(x[:, t] @ W + h @ U), h)
    return np.mean((h @ Wo - y) ** 2)


def test_a_recurrent_model_trains_through_k_function():
    K.set_floatx("float64")
    rng = np.random.default_rng(5)
    start = [rng.standard_normal((2, 5)) * 0.5, rng.standard_normal((5, 5)) * 0.3,
             rng.standard_normal((5, 1)) * 0.5]
    params = [K.variable(v) for v in start]
    W, U, Wo = params
    x = K.placeholder(shape=(None, None, 2))
    mask = K.placeholder(shape=(None, None), dtype="bool")
    y = K.placeholder(shape=(None, 1))

    def step(x_t, states):
        h = K.tanh(K.dot(x_t, W) + K.dot(states[0], U))
        return h, [h]

    h0 = K.zeros((K.shape(x)[0], 5))
    last, _, _ = K.rnn(step, x, [h0], mask=mask)
    loss = K.mean(K.square(K.dot(last, Wo) - y))
    grads = K.gradients(loss, params)
    opt = SGD(lr=0.3, momentum=0.5)
    train = K.function([x, mask, y], [loss] + grads, updates=opt.get_updates(loss, params))
    xv = rng.standard_normal((8, 6, 2))
    mv = np.arange(6)[None, :] < rng.integers(2, 7, 8)[:, None]
    yv = np.sum(xv[:, :, :1] * mv[:, :, None], axis=1) * 0.5
    first = train([xv, mv, yv])
    np.testing.assert_allclose(first[0], _rnn_loss_np(start, xv, mv, yv), rtol=1e-12)
    for p, g in zip(range(3), first[1:]):  # central differences at the starting point
        numeric = np.zeros_like(start[p])
        for i in np.ndindex(start[p].shape):
            plus, minus = [v.copy() for v in start], [v.copy() for v in start]
            plus[p][i] += 1e-6
            minus[p][i] -= 1e-6
            numeric[i] = (_rnn_loss_np(plus, xv, mv, yv) - _rnn_loss_np(minus, xv, mv, yv)) / 2e-6
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-9)
    losses = [float(first[0])] + [float(train([xv, mv, yv])[0]) for _ in range(40)]
    assert K.eval(opt.iterations) == 41
    assert losses[-1] < 0.3 * losses[0]


def test_gradients_reach_variables_that_only_a_step_function_holds():
    """Keras's RNN layer calls K.rnn with `step = lambda x, s: self.cell.call(x, s)`: the
    weights are in no argument, yet K.gradients must find them (TF1 does)."""
    class Cell:
        def __init__(self):
            self.kernel = K.variable(np.full((2, 3), 0.1))
            self.unused = K.variable(np.ones(3))

        def call(self, x_t, states):
            h = K.tanh(K.dot(x_t, self.kernel) + states[0])
            return h, [h]

    cell = Cell()
    x = K.placeholder(shape=(None, None, 2))
    last, _, _ = K.rnn(lambda x_t, states: cell.call(x_t, states), x,
                       [K.zeros((K.shape(x)[0], 3))])
    grads = K.gradients(K.sum(last), [cell.kernel, cell.unused, x])
    assert K.is_keras_tensor(grads[0]) and K.is_keras_tensor(grads[2])
    assert grads[1] is None  # not connected: None, as TF1
    gk, gx = K.function([x], [grads[0], grads[2]])([np.ones((2, 1, 2), "float32")])
    d = 1 - np.tanh(0.2) ** 2  # one step from h0 = 0: h = tanh(x @ kernel)
    np.testing.assert_allclose(gk, np.full((2, 3), 2 * d), rtol=1e-6)
    np.testing.assert_allclose(gx, np.full((2, 1, 2), 0.3 * d), rtol=1e-6)


def test_switch_with_callables_on_symbolic_conditions():
    x = K.placeholder(shape=(None, 3))
    flag = K.placeholder(shape=(), dtype="bool")
    w = K.variable(np.array([1.0, -2.0, 3.0]))
    by_flag = K.switch(flag, lambda: x * w, lambda: x - 1.0)
    by_data = K.switch(K.greater(K.sum(x), 0.0), lambda: K.square(x), lambda: -x)
    by_row = K.switch(K.greater(K.sum(x, axis=1), 0.0), lambda: x * 2.0, lambda: x * 0.0)
    elementwise = K.switch(x > 0, x, K.zeros_like(x))
    for t in (by_flag, by_data, by_row, elementwise):
        assert K.is_keras_tensor(t) and K.int_shape(t) == (None, 3)
    f = K.function([x, flag], [by_flag, by_data, by_row, elementwise])
    wv = np.array([1.0, -2.0, 3.0], "float32")
    for xv in (np.array([[1.0, 2.0, -0.5]], "float32"), -np.arange(6, dtype="float32").reshape(2, 3)):
        for fv in (True, False):
            a, b, c, d = f([xv, fv])
            np.testing.assert_array_equal(a, xv * wv if fv else xv - 1.0)
            np.testing.assert_array_equal(b, xv ** 2 if xv.sum() > 0 else -xv)
            np.testing.assert_array_equal(c, np.where(xv.sum(1, keepdims=True) > 0, 2 * xv, 0))
            np.testing.assert_array_equal(d, np.maximum(xv, 0))


def test_in_train_phase_with_callables_follows_the_fed_learning_phase():
    x = K.placeholder(shape=(None, 4))
    training = K.placeholder(shape=(), dtype="bool")
    out = K.in_train_phase(lambda: x * 2.0, lambda: x - 1.0)
    test_out = K.in_test_phase(lambda: x * 2.0, lambda: x - 1.0)
    dropped = K.in_train_phase(lambda: K.dropout(x, 0.5, seed=2), x)  # Keras's Dropout layer
    explicit = K.in_train_phase(lambda: x * 3.0, lambda: x, training=training)
    for t in (out, test_out, dropped, explicit):
        assert K.is_keras_tensor(t) and K.int_shape(t) == (None, 4)
    xv = np.ones((3, 4), "float32")
    f = K.function([x, K.learning_phase()], [out, test_out, dropped])
    a, b, c = f([xv, 1])
    np.testing.assert_array_equal(a, 2 * xv)
    np.testing.assert_array_equal(b, xv - 1)
    assert set(np.unique(c)) <= {0.0, 2.0} and 0 < np.count_nonzero(c) < c.size
    a, b, c = f([xv, 0])
    np.testing.assert_array_equal(a, xv - 1)
    np.testing.assert_array_equal(b, 2 * xv)
    np.testing.assert_array_equal(c, xv)
    np.testing.assert_array_equal(K.function([x], [out])([xv])[0], xv - 1)  # not fed: test
    g = K.function([x, training], [explicit])
    np.testing.assert_array_equal(g([xv, True])[0], 3 * xv)
    np.testing.assert_array_equal(g([xv, False])[0], xv)


def test_folds_and_maps_over_placeholders_match_numpy_loops():
    x = K.placeholder(shape=(None, 3))
    init = K.placeholder(shape=(3,))
    w = K.variable(np.array([0.5, -1.0, 2.0]))
    mapped = K.map_fn(lambda row: K.sum(row * w), x)
    mapped_rows = K.map_fn(lambda row: row * w + 1.0, x)
    left = K.foldl(lambda acc, row: acc * 0.5 + row, x)
    right = K.foldr(lambda acc, row: acc * 0.5 + row, x)
    left_init = K.foldl(lambda acc, row: acc * row + 1.0, x, initializer=init)
    right_init = K.foldr(lambda acc, row: acc * row + 1.0, x, initializer=init)
    outs = [mapped, mapped_rows, left, right, left_init, right_init]
    for t in outs:
        assert K.is_keras_tensor(t)
    assert K.int_shape(mapped) == (None,) and K.int_shape(mapped_rows) == (None, 3)
    assert K.int_shape(left) == (3,) and K.int_shape(right_init) == (3,)
    f = K.function([x, init], outs)
    wv = np.array([0.5, -1.0, 2.0], "float32")
    for batch in (1, 5):
        xv = np.random.default_rng(batch).standard_normal((batch, 3)).astype("float32")
        iv = np.array([1.0, 2.0, -1.0], "float32")
        want = [(xv * wv).sum(1), xv * wv + 1.0]
        for rows, acc0 in ((xv, None), (xv[::-1], None), (xv, iv), (xv[::-1], iv)):
            acc = rows[0] if acc0 is None else acc0
            for row in (rows[1:] if acc0 is None else rows):
                acc = acc * 0.5 + row if acc0 is None else acc * row + 1.0
            want.append(acc)
        for g, e in zip(f([xv, iv]), want):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


def _greedy_decode_np(y_pred, lengths):
    """TF's ctc_greedy_decoder as Keras 2 calls it (log(y_pred + eps), blank last, merged
    repeats), densified with -1; and minus the sum of each step's largest log value."""
    logs = np.log(y_pred.astype(np.float64) + 1e-7)
    blank = y_pred.shape[2] - 1
    sequences, scores = [], []
    for b in range(len(y_pred)):
        best = logs[b, :lengths[b]].argmax(axis=1)
        merged = [c for i, c in enumerate(best) if (i == 0 or c != best[i - 1]) and c != blank]
        sequences.append(merged)
        scores.append(-logs[b, :lengths[b]].max(axis=1).sum())
    decoded = np.full((len(y_pred), max(map(len, sequences))), -1)
    for b, s in enumerate(sequences):
        decoded[b, :len(s)] = s
    return decoded, np.array(scores)[:, None]


def test_ctc_decode_on_placeholders_has_a_data_dependent_shape():
    rng = np.random.default_rng(0)
    batches = [rng.dirichlet(np.full(5, 0.3), size=(2, 6)).astype("float32"),
               rng.dirichlet(np.full(5, 0.3), size=(3, 9)).astype("float32")]
    lengths = [np.array([6, 3], "int32"), np.array([9, 2, 7], "int32")]
    eager = [K.ctc_decode(K.constant(y), K.constant(n, dtype="int32")) for y, n in
             zip(batches, lengths)]  # before any placeholder: eager style
    y_pred = K.placeholder(shape=(None, None, 5))
    input_length = K.placeholder(shape=(None,), dtype="int32")
    (decoded,), log_prob = K.ctc_decode(y_pred, input_length, greedy=True)
    assert K.is_keras_tensor(decoded) and K.is_keras_tensor(log_prob)
    assert K.int_shape(decoded) == (None, None) and K.int_shape(log_prob) == (None, 1)
    f = K.function([y_pred, input_length], [decoded, log_prob])
    widths = set()
    for y, n, ((want_decoded,), want_log_prob) in zip(batches, lengths, eager):
        got_decoded, got_log_prob = f([y, n])
        ref_decoded, ref_log_prob = _greedy_decode_np(y, n)
        np.testing.assert_array_equal(got_decoded, K.eval(want_decoded))
        np.testing.assert_array_equal(got_decoded, ref_decoded)
        np.testing.assert_allclose(got_log_prob, K.eval(want_log_prob), rtol=1e-6)
        np.testing.assert_allclose(got_log_prob, ref_log_prob, rtol=1e-5)
        widths.add(got_decoded.shape[1])
    assert len(widths) == 2  # the decoded width is known only once evaluated


def _ctc_cost_np(labels, y_pred):
    """-log p(labels | y_pred): the CTC forward recursion in probability space, float64, on
    Keras's inputs (log(y_pred + eps), which TF's ctc_loss renormalises)."""
    probs = y_pred.astype(np.float64) + 1e-7
    probs /= probs.sum(axis=1, keepdims=True)
    blank = probs.shape[1] - 1
    ext = [blank]
    for c in labels:
        ext += [int(c), blank]
    alpha = np.zeros(len(ext))
    alpha[0] = probs[0, blank]
    if len(ext) > 1:
        alpha[1] = probs[0, ext[1]]
    for t in range(1, len(probs)):
        new = np.zeros_like(alpha)
        for s in range(len(ext)):
            a = alpha[s] + (alpha[s - 1] if s > 0 else 0.0)
            if s > 1 and ext[s] != blank and ext[s] != ext[s - 2]:
                a += alpha[s - 2]
            new[s] = a * probs[t, ext[s]]
        alpha = new
    return -np.log(alpha[-1] + (alpha[-2] if len(ext) > 1 else 0.0))


def test_ctc_batch_cost_on_placeholders_as_keras_ocr_example_feeds_them():
    rng = np.random.default_rng(1)
    y_pred_v = rng.dirichlet(np.ones(6), size=(3, 8)).astype("float32")
    labels_v = np.array([[1, 2, 2, 0], [4, 0, 0, 0], [3, 1, 0, 0]], "float32")
    input_length_v = np.array([[8], [5], [7]], "int64")
    label_length_v = np.array([[3], [1], [2]], "int64")
    eager = K.eval(K.ctc_batch_cost(K.constant(labels_v), K.constant(y_pred_v),
                                    K.constant(input_length_v, dtype="int64"),
                                    K.constant(label_length_v, dtype="int64")))
    labels = K.placeholder(shape=(None, 4), name="the_labels")  # float32, as the OCR example
    y_pred = K.placeholder(shape=(None, None, 6))
    input_length = K.placeholder(shape=(None, 1), dtype="int64")
    label_length = K.placeholder(shape=(None, 1), dtype="int64")
    cost = K.ctc_batch_cost(labels, y_pred, input_length, label_length)
    assert K.is_keras_tensor(cost) and K.int_shape(cost) == (None, 1)
    f = K.function([labels, y_pred, input_length, label_length], [cost])
    (got,) = f([labels_v, y_pred_v, input_length_v, label_length_v])
    np.testing.assert_allclose(got, eager, rtol=1e-6)
    want = [_ctc_cost_np(labels_v[b, :label_length_v[b, 0]], y_pred_v[b, :input_length_v[b, 0]])
            for b in range(3)]
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-4)
    (two,) = f([labels_v[:2], y_pred_v[:2, :5], np.minimum(input_length_v[:2], 5),
                label_length_v[:2]])  # another batch size and number of steps
    np.testing.assert_allclose(two[:, 0], [_ctc_cost_np(labels_v[b, :label_length_v[b, 0]],
                                                        y_pred_v[b, :5]) for b in range(2)],
                               rtol=1e-4)


# -- symbolic inputs anywhere: symbolic results; no op reaches for a value (SymbolicValueError) ----
def _flat(result):
    if isinstance(result, (list, tuple)):
        return [leaf for r in result for leaf in _flat(r)]
    return [result]


def _step(x_t, states):  # states: [h] + constants [c]
    h = K.tanh(x_t + states[0] * states[1])
    return h * 2.0, [h]


_R = np.random.default_rng(7)
_X3 = _R.standard_normal((2, 4, 3)).astype("float32")
_H = _R.standard_normal((2, 3)).astype("float32")
_MASK = np.array([[True, True, False, True], [False, True, True, True]])
_P = _R.dirichlet(np.ones(4), size=(2, 5)).astype("float32")
_A = _R.standard_normal((4, 3)).astype("float32")

# name: (builder, its inputs, which inputs are placeholders, placeholder shapes if not (None, ...))
NO_LEAK = {
    "rnn": (lambda x, h, m, c: K.rnn(_step, x, [h], mask=m, constants=[c]),
            [_X3, _H, _MASK, _H], [0, 1, 2, 3]),
    "rnn-initial-state": (lambda x, h, m, c: K.rnn(_step, x, [h], mask=m, constants=[c]),
                          [_X3, _H, _MASK, _H], [1]),
    "rnn-mask": (lambda x, h, m, c: K.rnn(_step, x, [h], mask=m, constants=[c],
                                          go_backwards=True), [_X3, _H, _MASK, _H], [2]),
    "rnn-constants": (lambda x, h, m, c: K.rnn(_step, x, [h], mask=m, constants=[c]),
                      [_X3, _H, _MASK, _H], [3]),
    "switch-scalar-condition": (lambda f, a: K.switch(f, lambda: a * 2.0, lambda: a - 1.0),
                                [np.array(True), _A], [0]),
    "switch-scalar-branches": (lambda f, a: K.switch(f, lambda: a * 2.0, lambda: a - 1.0),
                               [np.array(False), _A], [1]),
    "switch-rows": (lambda f, a: K.switch(f, a, -a), [np.array([True, False, False, True]), _A],
                    [0, 1]),
    "in_train_phase": (lambda t, a: K.in_train_phase(lambda: a * 2.0, lambda: a, training=t),
                       [np.array(True), _A], [0, 1]),
    "in_test_phase": (lambda t, a: K.in_test_phase(lambda: a * 2.0, lambda: a, training=t),
                      [np.array(True), _A], [0]),
    "map_fn": (lambda a: K.map_fn(lambda r: K.sum(r * r), a), [_A], [0]),
    "foldl": (lambda a, i: K.foldl(lambda acc, r: acc * r + 1.0, a, initializer=i),
              [_A, _H[0]], [0, 1]),
    "foldl-initializer": (lambda a, i: K.foldl(lambda acc, r: acc * r + 1.0, a, initializer=i),
                          [_A, _H[0]], [1]),
    "foldr": (lambda a: K.foldr(lambda acc, r: acc * 0.5 - r, a), [_A], [0]),
    "ctc_decode": (lambda p, n: K.ctc_decode(p, n), [_P, np.array([5, 3], "int32")], [0, 1]),
    "ctc_decode-lengths": (lambda p, n: K.ctc_decode(p, n), [_P, np.array([5, 3], "int32")],
                           [1]),
    "ctc_batch_cost": (lambda y, p, n, m: K.ctc_batch_cost(y, p, n, m),
                       [np.array([[0, 1], [2, 0]], "float32"), _P,
                        np.array([[5], [4]], "int64"), np.array([[2], [1]], "int64")],
                       [0, 1, 2, 3]),
    "ctc_batch_cost-labels": (lambda y, p, n, m: K.ctc_batch_cost(y, p, n, m),
                              [np.array([[0, 1], [2, 0]], "float32"), _P,
                               np.array([[5], [4]], "int64"), np.array([[2], [1]], "int64")],
                              [0]),
    "ctc_batch_cost-lengths": (lambda y, p, n, m: K.ctc_batch_cost(y, p, n, m),
                               [np.array([[0, 1], [2, 0]], "float32"), _P,
                                np.array([[5], [4]], "int64"), np.array([[2], [1]], "int64")],
                               [2, 3]),
    "normalize_batch_in_training": (
        lambda x, g, b: K.normalize_batch_in_training(x, g, b, [0]), [_A, _H[0], _H[1]],
        [0, 1, 2]),
    "normalize_batch_in_training-gamma": (
        lambda x, g, b: K.normalize_batch_in_training(x, g, b, [0]), [_A, _H[0], _H[1]], [1]),
    "normalize_batch_in_training-3d": (
        lambda x, g, b: K.normalize_batch_in_training(x, g, b, [0, 1]), [_X3, _H[0], _H[1]],
        [0]),
    "constant": (lambda a: K.constant(a), [_A], [0]),
    "constant-dtype": (lambda a: K.constant(a, dtype="float64"), [_A], [0]),
    "constant-shape": (lambda a: K.constant(a, shape=(3, 4)), [_A], [0], [(4, 3)]),
    "stop_gradient": (lambda a: K.stop_gradient(a), [_A], [0]),
    "stop_gradient-list": (lambda a, h: K.stop_gradient([a, h]), [_A, _H], [0, 1]),
}


@pytest.mark.parametrize("name", list(NO_LEAK))
def test_symbolic_inputs_give_symbolic_results(name):
    build, values, symbolic, *shapes = NO_LEAK[name]
    want = [K.eval(t) for t in _flat(build(*[K.constant(v, dtype=v.dtype) for v in values]))]
    inputs, feeds = [], []
    for i, v in enumerate(values):
        if i in symbolic:
            shape = shapes[0][symbolic.index(i)] if shapes else (None,) * min(v.ndim, 1) + \
                v.shape[1:]
            inputs.append(K.placeholder(shape=shape, dtype=v.dtype))
            feeds.append(v)
        else:
            inputs.append(K.constant(v, dtype=v.dtype))
    try:
        result = build(*inputs)
    except SymbolicValueError as err:  # pragma: no cover (what this test is about)
        pytest.fail(f"an op reached for a symbolic tensor's value: {err!r}")
    leaves = _flat(result)
    assert len(leaves) == len(want)
    # A result computed from constants only may be computed at once (graph style builds nodes
    # for symbolic tensors and variables): normalize_batch_in_training's mean and variance when
    # only gamma is fed. At least one result is symbolic, and none is an internal object.
    assert any(K.is_keras_tensor(leaf) for leaf in leaves)
    for leaf in leaves:
        assert K.is_keras_tensor(leaf) or isinstance(leaf, K.Tensor), f"{leaf!r}"
    placeholders = [p for i, p in enumerate(inputs) if i in symbolic]
    got = K.function(placeholders, leaves)(feeds)
    for leaf, g, w in zip(leaves, got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert all(n is None or n == m for n, m in zip(K.int_shape(leaf), g.shape))
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_clear_errors_for_wrong_symbolic_calls():
    x = K.placeholder(shape=(None, 3))
    s = K.placeholder(shape=(None, None, 3))
    h0 = K.zeros((K.shape(s)[0], 3))
    with pytest.raises(ValueError, match="rank >= 3"):
        K.rnn(_step, x, [x])
    with pytest.raises(TypeError, match="output, new_states"):
        K.rnn(lambda x_t, states: x_t, s, [h0])
    with pytest.raises(NotImplementedError, match="beam search"):
        K.ctc_decode(s, K.placeholder(shape=(None,), dtype="int32"), greedy=False)
    with pytest.raises(TypeError, match="reduction_axes"):
        K.normalize_batch_in_training(x, None, None, None)
    with pytest.raises(ValueError, match="gamma"):
        K.normalize_batch_in_training(x, K.ones((4,)), None, [0])
    with pytest.raises(TypeError, match="fn"):
        K.map_fn(3, x)
    with pytest.raises(ValueError, match="constant"):
        K.constant(K.placeholder(shape=(4, 3)), shape=(5, 2))


def test_switch_on_a_symbolic_scalar_takes_numbers_and_branches_of_other_shapes():
    """tf.cond converts numbers to tensors, and its static shape is what the branches agree
    on: neither branch's shape is taken for the other's."""
    x = K.placeholder(shape=(None, 3))
    flag = K.placeholder(shape=(), dtype="bool")
    number = K.switch(flag, lambda: 1.0, lambda: 0.0)
    first_row = K.switch(flag, lambda: x, lambda: x[:1])
    fixed = K.switch(flag, lambda: K.ones((2, 3)), lambda: K.zeros((2, 4)))
    assert K.int_shape(number) == () and K.int_shape(first_row) == (None, 3)
    assert K.int_shape(fixed) == (2, None)
    assert K.eval(K.in_train_phase(1.0, 0.0)) == 0.0  # graph style: the phase's default
    f = K.function([x, flag, K.learning_phase()],
                   [number, first_row, fixed, K.in_train_phase(1.0, 0.0)])
    xv = np.arange(6, dtype="float32").reshape(2, 3)
    n, r, c, phase = f([xv, True, 1])
    assert n == 1.0 and phase == 1.0 and c.shape == (2, 3)
    np.testing.assert_array_equal(r, xv)
    n, r, c, phase = f([xv, False, 0])
    assert n == 0.0 and phase == 0.0 and c.shape == (2, 4)
    np.testing.assert_array_equal(r, xv[:1])


def test_functions_given_to_rnn_and_map_fn_may_capture_symbolic_tensors():
    x = K.placeholder(shape=(None, None, 3))
    keep = K.placeholder(shape=(None, 3))  # a dropout mask, as SimpleRNNCell keeps one

    def step(x_t, states):
        h = K.tanh(x_t * keep + states[0])
        return h, [h]

    last, _, _ = K.rnn(step, x, [K.zeros((K.shape(x)[0], 3))])
    rows = K.map_fn(lambda r: K.sum(r * keep[0]), x[:, 0])
    xv, kv = np.ones((2, 1, 3), "float32"), np.full((2, 3), 0.5, "float32")
    got_last, got_rows = K.function([x, keep], [last, rows])([xv, kv])
    np.testing.assert_allclose(got_last, np.tanh(0.5 * np.ones((2, 3))), rtol=1e-6)
    np.testing.assert_allclose(got_rows, [1.5, 1.5], rtol=1e-6)


def test_gradients_reach_what_a_traced_function_captures(rng):
    # The step holds a weight and a symbolic mask in its closure, the fold a symbolic scale:
    # the loop nodes list them as inputs, so K.gradients reaches them (finite differences of a
    # NumPy loop as the reference).
    xv, kv, sv = rng.standard_normal((2, 4, 3)), rng.uniform(0.5, 1.5, (2, 3)), \
        rng.standard_normal(3)
    wv = rng.standard_normal((3, 3)) * 0.5
    w = K.variable(wv, dtype="float64")
    x = K.placeholder(shape=(None, None, 3), dtype="float64")
    keep = K.placeholder(shape=(None, 3), dtype="float64")
    scale = K.placeholder(shape=(3,), dtype="float64")

    def step(x_t, states):
        h = K.tanh(K.dot(x_t * keep + states[0], w))
        return h, [h]
    _, outputs, _ = K.rnn(step, x, [K.zeros((K.shape(x)[0], 3), dtype="float64")])
    total = K.foldl(lambda acc, o: acc + K.sum(o * scale), K.permute_dimensions(outputs,
                                                                                (1, 0, 2)),
                    initializer=K.constant(0.0, dtype="float64"))
    grads = K.gradients(total, [w, keep, scale, x])
    assert all(g is not None for g in grads)
    got = K.function([x, keep, scale], grads)([xv, kv, sv])

    def loss(w_, k_, s_, x_):
        h, acc = np.zeros((2, 3)), 0.0
        for t in range(4):
            h = np.tanh((x_[:, t] * k_ + h) @ w_)
            acc += np.sum(h * s_)
        return acc
    arrays = [wv, kv, sv, xv]
    for i, g in enumerate(got):
        np.testing.assert_allclose(g, numeric_gradient(loss, arrays, i), rtol=1e-6, atol=1e-8)


def test_reshape_and_cast_to_their_own_shape_and_dtype_in_graph_style():
    x = K.placeholder(shape=(None, 3))
    v = K.variable(np.arange(6.0).reshape(2, 3))
    y = v * 2.0  # graph style: a node reading v
    assert K.is_keras_tensor(y)
    outs = [K.reshape(y, y.shape), K.cast(y, y.dtype), K.reshape(y, K.int_shape(y)),
            K.cast(y, K.dtype(y)), K.reshape(K.cast(y, "float64"), y.shape), x[:1] + y]
    got = K.function([x], outs)([np.ones((1, 3), "float32")])
    want = np.arange(6.0).reshape(2, 3) * 2
    for g in got[:5]:
        np.testing.assert_array_equal(g, want)
    assert got[4].dtype == np.float64
    np.testing.assert_array_equal(got[5], want + 1)
    K.set_value(v, np.ones((2, 3)))
    np.testing.assert_array_equal(K.eval(outs[0]), np.full((2, 3), 2.0))
