"""Categorical crossentropy per row: from probabilities (Keras 2: divide by the row sum, clip to
[eps, 1 - eps], -sum(t * log p)) and from logits (a fused, stable log-softmax), forward and
backward. Each kernel reads its inputs once per row and writes one value per row (forward) or
one gradient per element (backward).

Gradients with respect to the output:
- probabilities: with P = sum(p), q = p / P, c = clip(q) and a = -t / c where q is inside the
  clip (0 outside), dp = g * (a - sum(a * q)) / P;
- logits: dz = g * (softmax(z) * sum(t) - t), i.e. softmax - target for a one-hot target.

NaN and inf come out where the NumPy formulas below (`_..._xp`, Keras's) put them, on every
path, with one convention for masked classes: a logit of -inf whose target is 0 adds 0 to the
loss (t * log(softmax) is 0 * -inf there), so a masked class neither makes the loss NaN nor
warns.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .fastmath import REDUCE_FLAGS, clamp, exp, log, row_max
from .launch import Rows, cpu_twin, cuda_family
from .precision import like


# -- shared by the CUDA and CPU kernels ----------------------------------------------------------
def _target_term(t, shifted):
    """t * (z - max), 0 (t itself) for a masked class: t = 0 and z = -inf, where the product
    would be NaN. One body for the CUDA and CPU kernels."""
    return t if (t == 0) & (shifted == like(shifted, -math.inf)) else t * shifted


_target_term_cpu = njit(inline="always")(_target_term)


# -- CPU twins -----------------------------------------------------------------------------------
@njit(error_model="numpy")  # its own flags (see _ratio): "arcp" would split the reciprocal
def _row_scale(total):
    """(s, 1 / (s * total)): s = 2**100 where total is below 2**-126, so that the reciprocal of
    a subnormal row total is finite (p / total is then (p * s) * inv, exact scalings by powers
    of two); s = 1 otherwise. (Not 1 / total: that is float64 in Numba.)"""
    one = like(total, 1.0)
    scale = like(total, 2.0 ** 100) if total < like(total, 2.0 ** -126) else one
    return scale, one / (total * scale)


@njit(error_model="numpy")  # its own flags, kept where LLVM inlines it: the kernels' "reassoc"
def _ratio(p, scale, inv):  # would fold scale * inv, an inf for a subnormal total
    """p / total as `_row_scale` prepares it."""
    return (p * scale) * inv


# Rows are taken as 1-D views first: indexing p[i, j] in the inner loops stops LLVM vectorising.
@njit(parallel=True, fastmath=REDUCE_FLAGS, cache=True)
def _probs_forward_cpu(t, p, loss, low, high):
    low, high = p.dtype.type(low), p.dtype.type(high)
    for i in prange(p.shape[0]):
        tr, pr = t[i], p[i]
        total = pr.dtype.type(0)
        for j in range(pr.shape[0]):
            total += pr[j]
        scale, inv = _row_scale(total)
        acc = pr.dtype.type(0)
        for j in range(pr.shape[0]):
            acc += tr[j] * log(clamp(_ratio(pr[j], scale, inv), low, high))
        loss[i] = -acc


@njit(parallel=True, fastmath=REDUCE_FLAGS, cache=True)
def _probs_backward_cpu(t, p, g, dp, low, high):
    low, high = p.dtype.type(low), p.dtype.type(high)
    zero = p.dtype.type(0)
    for i in prange(p.shape[0]):
        tr, pr, out = t[i], p[i], dp[i]
        total = zero
        for j in range(pr.shape[0]):
            total += pr[j]
        inv = pr.dtype.type(1) / total  # not 1 / total: that is float64 in Numba
        dot = zero
        for j in range(pr.shape[0]):
            q = pr[j] * inv
            dot += -tr[j] if low <= q <= high else zero * q  # a * q, NaN where q is NaN or inf
        scale = g[i] * inv
        for j in range(pr.shape[0]):
            q = pr[j] * inv
            a = -tr[j] / q if low <= q <= high else zero
            out[j] = (a - dot) * scale


@njit(parallel=True, fastmath=REDUCE_FLAGS, cache=True)
def _logits_forward_cpu(t, z, loss):
    for i in prange(z.shape[0]):
        tr, zr = t[i], z[i]
        m = row_max(zr)
        s = zr.dtype.type(0)
        t_sum = zr.dtype.type(0)
        tz = zr.dtype.type(0)
        for j in range(zr.shape[0]):
            s += exp(zr[j] - m)
            t_sum += tr[j]
            tz += _target_term_cpu(tr[j], zr[j] - m)
        loss[i] = t_sum * log(s) - tz


@njit(parallel=True, fastmath=REDUCE_FLAGS, cache=True)
def _logits_backward_cpu(t, z, g, dz):
    for i in prange(z.shape[0]):
        tr, zr, out = t[i], z[i], dz[i]
        m = row_max(zr)
        s = zr.dtype.type(0)
        t_sum = zr.dtype.type(0)
        for j in range(zr.shape[0]):
            e = exp(zr[j] - m)
            out[j] = e
            s += e
            t_sum += tr[j]
        scale = t_sum / s
        for j in range(zr.shape[0]):  # g * (...) as the formula: g = inf gives inf, not inf - inf
            out[j] = g[i] * (out[j] * scale - tr[j])


# -- NumPy / CuPy --------------------------------------------------------------------------------
def _probs_forward_xp(xp, t, p, low, high):
    q = xp.clip(p / p.sum(axis=-1, keepdims=True), low, high)
    return -(t * xp.log(q)).sum(axis=-1)


def _probs_backward_xp(xp, t, p, g, low, high):
    total = p.sum(axis=-1, keepdims=True)
    q = p / total
    inside = (q >= low) & (q <= high)
    a = xp.where(inside, -t / xp.where(inside, q, 1), 0)
    return g[:, None] * (a - (a * q).sum(axis=-1, keepdims=True)) / total


def _logits_forward_xp(xp, t, z):
    shifted = z - z.max(axis=-1, keepdims=True)
    log_s = xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    log_p = shifted - log_s
    masked = (t == 0) & (log_p == -xp.inf)  # 0 * -inf: a masked class adds 0 (module docs)
    return -(t * xp.where(masked, 0, log_p)).sum(axis=-1)


def _logits_backward_xp(xp, t, z, g):
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return g[:, None] * (p * t.sum(axis=-1, keepdims=True) - t)


# -- launchers -----------------------------------------------------------------------------------
def _run(device, cuda_kernel: str, cpu_kernel, reference, t, x, g, axis: int, *scalars):
    """Runs one member of the family over the rows of `t` and `x` (same shape) along `axis`
    (`cuda_kernel` names it in `cuda/crossentropy.py`).

    Forward members (`g` None) return one value per row, shaped as `x` without `axis`; backward
    members take `g` of that shape and return a gradient shaped as `x`."""
    xp = device.xp
    rows = Rows(xp, x, axis)
    inputs = [Rows(xp, t, axis).data.astype(rows.data.dtype, copy=False), rows.data]
    if g is not None:
        inputs.append(rows.vector_per_row(g))
    twin = None if device.cuda_kernels else cpu_twin(cpu_kernel, x)
    if x.size == 0 or not device.cuda_kernels and twin is None:
        out = reference(xp, *inputs, *scalars)
    else:
        out = xp.empty(rows.data.shape if g is not None else rows.data.shape[:1],
                       dtype=rows.data.dtype)
        if device.cuda_kernels:
            # scalars in the work dtype, as the kernels compute (float32: not a float64 operand)
            typed = tuple(rows.data.dtype.type(v) for v in scalars)
            cuda_family("blocks").launch_rows(getattr(cuda_family("crossentropy"), cuda_kernel),
                                              xp, rows.data, (*inputs, out), typed)
        else:
            twin(*inputs, out, *scalars)
    return rows.restore(out) if g is not None else rows.restore_reduced(out)


def _clip_bounds(dtype, eps: float) -> tuple:
    """[eps, 1 - eps] computed in the output's dtype, as Keras does (so exact in the work
    dtype, which the CUDA kernels take them in)."""
    low = dtype.type(eps) if dtype.kind == "f" else np.float32(eps)
    return float(low), float(low.dtype.type(1) - low)


def probs_forward(device, t, p, axis: int, eps: float):
    """Keras 2's crossentropy of probabilities `p` against `t` along `axis` (one per row)."""
    return _run(device, "_probs_forward_cuda", _probs_forward_cpu, _probs_forward_xp,
                t, p, None, axis, *_clip_bounds(p.dtype, eps))


def probs_backward(device, t, p, g, axis: int, eps: float):
    """d(sum(g * loss)) / dp for `probs_forward`, in one pass over each row."""
    return _run(device, "_probs_backward_cuda", _probs_backward_cpu, _probs_backward_xp,
                t, p, g, axis, *_clip_bounds(p.dtype, eps))


def logits_forward(device, t, z, axis: int):
    """Crossentropy of softmax(z) against `t` along `axis`, from the logits (one per row)."""
    return _run(device, "_logits_forward_cuda", _logits_forward_cpu, _logits_forward_xp,
                t, z, None, axis)


def logits_backward(device, t, z, g, axis: int):
    """d(sum(g * loss)) / dz for `logits_forward`: g * (softmax(z) * sum(t) - t), one pass."""
    return _run(device, "_logits_backward_cuda", _logits_backward_cpu, _logits_backward_xp,
                t, z, g, axis)
