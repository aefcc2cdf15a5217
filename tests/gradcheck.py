"""Finite-difference references for gradient tests (float64 central differences)."""
from __future__ import annotations

import numpy as np

import gpubk as K


def numeric_gradient(f, arrays, index, eps=1e-6):
    """Central finite differences of the scalar `f(*arrays)` w.r.t. `arrays[index]` (float64)."""
    base = [np.array(a, dtype=np.float64) for a in arrays]
    x = base[index]
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(*base)
        x[i] = old - eps
        down = f(*base)
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def check_gradients(fn, arrays, rtol=1e-5, atol=1e-7, wrt=None):
    """Checks K.gradients of sum(fn(*variables)) against finite differences, in float64.

    `fn` takes gpubk variables and returns a tensor; every input listed in `wrt` (default all)
    is compared. Returns the analytic gradients."""
    wrt = range(len(arrays)) if wrt is None else wrt

    def value(*values):  # the reference runs on the CPU whatever the device under test
        with K.no_grad(), K.device("cpu"):
            return float(np.sum(K.eval(fn(*[K.variable(v, dtype="float64") for v in values]))))

    variables = [K.variable(a, dtype="float64") for a in arrays]
    grads = K.gradients(K.sum(fn(*variables)), variables)
    for i in wrt:
        want = numeric_gradient(value, arrays, i)
        assert grads[i] is not None, f"no gradient for input {i}"
        assert grads[i].shape == variables[i].shape
        assert grads[i].dtype == np.float64
        np.testing.assert_allclose(K.eval(grads[i]), want, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")
    return grads


def check_hessian_vector_products(fn, arrays, directions, rtol=1e-5, atol=1e-7):
    """Second derivatives of the scalar `fn(*variables)`: K.gradients of the directional first
    derivative sum_i <grad_i, direction_i> against finite differences of it (float64; the
    reference runs on the CPU whatever the device under test)."""
    def directional(*values):
        with K.device("cpu"):
            vs = [K.variable(v, dtype="float64") for v in values]
            grads = K.gradients(fn(*vs), vs)
            return float(sum(np.sum(K.eval(g) * d) for g, d in zip(grads, directions)))

    variables = [K.variable(a, dtype="float64") for a in arrays]
    grads = K.gradients(fn(*variables), variables)
    along = sum(K.sum(g * K.constant(d, dtype="float64")) for g, d in zip(grads, directions))
    for i, got in enumerate(K.gradients(along, variables)):
        np.testing.assert_allclose(K.eval(got), numeric_gradient(directional, arrays, i),
                                   rtol=rtol, atol=atol)
