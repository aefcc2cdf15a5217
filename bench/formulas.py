"""The naive formulas the benchmarks compare against, written once for NumPy and CuPy (`xp`),
and the gradient call a gpubk user would write."""
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


def logits_loss_and_grad(xp, t, z, g):
    """Crossentropy from logits per row, and its gradient weighted by g, naively."""
    return (-(t * log_softmax(xp, z)).sum(-1),
            g[:, None] * (softmax(xp, z) * t.sum(-1, keepdims=True) - t))


def gpubk_grad(fn, x, dy):
    """Forward and backward through the tape: the gradient of fn at x against dy."""
    with K.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x, output_gradients=dy)
