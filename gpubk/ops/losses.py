"""Loss functions of the Keras 2 backend, with Keras's clipping and epsilon rules.

`categorical_crossentropy` runs as one fused op (a kernel per row, forward and backward) when
target and output have the same shape; a target that only broadcasts against the output goes
through the same formula composed of gpubk ops. The composition is also what gradients of
gradients differentiate.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import kernels
from ..autodiff import composition_grads, record, recording
from ..config import epsilon
from ..tensor import Tensor, as_tensor


def _probs_composed(target, output, axis: int, eps: float) -> Tensor:
    """Keras 2: normalise the output along `axis`, clip to [eps, 1 - eps], -sum(t * log p)."""
    output = clip(output / sum(output, axis=axis, keepdims=True), eps, 1.0 - eps)
    return -sum(target * log(output), axis=axis)


def _logits_composed(target, logits, axis: int) -> Tensor:
    return -sum(target * log_softmax(logits, axis), axis=axis)


def _probs_grad(g, y, needs, target, output, axis, eps):
    if recording():
        return composition_grads(lambda t, p: _probs_composed(t, p, axis, eps),
                                 (target, output), g, needs)
    g_target = g_output = None
    if needs[0]:
        g_target = -expand_dims(g, axis) * log(
            clip(output / sum(output, axis=axis, keepdims=True), eps, 1.0 - eps))
    if needs[1]:
        g_output = Tensor(kernels.crossentropy.probs_backward(
            output.device, target.data, output.data, g.data, axis, eps), output.device)
    return g_target, g_output


def _logits_grad(g, y, needs, target, logits, axis):
    if recording():
        return composition_grads(lambda t, z: _logits_composed(t, z, axis),
                                 (target, logits), g, needs)
    g_target = g_logits = None
    if needs[0]:
        g_target = -expand_dims(g, axis) * log_softmax(logits, axis)
    if needs[1]:  # softmax - target for a one-hot target, in one pass over logits and target
        g_logits = Tensor(kernels.crossentropy.logits_backward(
            logits.device, target.data, logits.data, g.data, axis), logits.device)
    return g_target, g_logits


def categorical_crossentropy(target, output, from_logits: bool = False,
                             axis: int = -1) -> Tensor:
    """Keras: `K.categorical_crossentropy(target, output, from_logits=False, axis=-1)`.

    Crossentropy between a target (one-hot or soft) and an output along `axis`.

    Arguments:
        target: tensor of the output's shape (or broadcastable to it); a list of tensors is
            stacked first.
        output: probabilities (from a softmax), or logits if `from_logits=True`. As in Keras 2,
            probabilities are divided by their sum along `axis` and clipped to
            `[epsilon, 1 - epsilon]`; an output of `K.softmax` is traced back to its logits and
            takes the exact logits path.
        from_logits: whether `output` holds logits.
        axis: the class axis.

    Returns:
        The loss per sample: the output's shape without `axis`.
    """
    if isinstance(target, (list, tuple)):
        target = stack(target)
    output = as_tensor(output, "categorical_crossentropy")
    target = as_tensor(target, "categorical_crossentropy", dtype=output.dtype,
                       device=output.device)
    if target.device is not output.device:
        raise ValueError(f"categorical_crossentropy: target is on {target.device.name} but "
                         f"output is on {output.device.name}")
    try:
        full = np.broadcast_shapes(target.shape, output.shape)
    except ValueError:
        raise ValueError(f"categorical_crossentropy: target shape {target.shape} and output "
                         f"shape {output.shape} do not match; expected equal (or "
                         "broadcastable) shapes") from None
    axis = normalize_axes(axis, len(full), "categorical_crossentropy")[0]
    if output._logits is not None:
        if from_logits:
            warnings.warn("categorical_crossentropy received from_logits=True, but the output "
                          "was produced by a softmax and so does not represent logits; using "
                          "the softmax's logits", stacklevel=2)
        output, from_logits = output._logits, True
    if output.dtype.kind != "f":
        raise TypeError(f"categorical_crossentropy: expected a float output, got "
                        f"{output.dtype.name}")
    if target.shape != output.shape:  # broadcasting: the composed formula
        axis -= len(full)  # counted from the end, as target and output may differ in rank
        return _logits_composed(target, output, axis) if from_logits \
            else _probs_composed(target, output, axis, epsilon())
    device = output.device
    if from_logits:
        data = kernels.crossentropy.logits_forward(device, target.data, output.data, axis)
        return record(data, (target, output), _logits_grad, (target, output, axis))
    eps = epsilon()
    data = kernels.crossentropy.probs_forward(device, target.data, output.data, axis, eps)
    return record(data, (target, output), _probs_grad, (target, output, axis, eps))


from .math import clip, log  # noqa: E402
from .nn import log_softmax  # noqa: E402
from .reduce import normalize_axes, sum  # noqa: E402
from .shape import expand_dims, stack  # noqa: E402
