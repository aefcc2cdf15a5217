"""The naive formulas the peers are measured with, written once for any array module `xp`
(NumPy, CuPy, jax.numpy), and the gradient call a gpubk user would write."""
from __future__ import annotations

import gpubk as K


def softmax(xp, x):
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(xp, x):
    s = x - x.max(axis=-1, keepdims=True)
    return s - xp.log(xp.exp(s).sum(axis=-1, keepdims=True))


def softmax_grad(y, dy):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def log_softmax_grad(xp, y, dy):
    return dy - xp.exp(y) * dy.sum(axis=-1, keepdims=True)


def probs_loss(xp, t, p, eps=1e-7):
    """Keras 2: normalise, clip to [eps, 1 - eps], -sum(t * log p)."""
    q = xp.clip(p / p.sum(axis=-1, keepdims=True), eps, 1 - eps)
    return -(t * xp.log(q)).sum(axis=-1)


def probs_grad(xp, t, p, g, eps=1e-7):
    total = p.sum(axis=-1, keepdims=True)
    q = p / total
    inside = (q >= eps) & (q <= 1 - eps)
    a = xp.where(inside, -t / q, 0)
    return g[:, None] * (a - (a * q).sum(axis=-1, keepdims=True)) / total


def logits_loss(xp, t, z):
    return -(t * log_softmax(xp, z)).sum(axis=-1)


def logits_grad(xp, t, z, g):
    return g[:, None] * (softmax(xp, z) * t.sum(axis=-1, keepdims=True) - t)


def gpubk_grad(fn, x, dy):
    """Forward and backward through the tape: the gradient of fn at x against dy."""
    with K.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x, output_gradients=dy)
