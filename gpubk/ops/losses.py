"""Loss functions of the Keras 2 backend, with Keras's clipping and epsilon rules."""
from __future__ import annotations

import warnings

import numpy as np

from ..autodiff import record
from ..config import epsilon
from ..tensor import Tensor, as_tensor


def _xent_logits_grad(g, y, needs, target, logits, axis):
    g = expand_dims(g, axis)
    g_target = g_logits = None
    if needs[0]:
        g_target = sum_to(-g * log_softmax(logits, axis), target.shape)
    if needs[1]:  # softmax - target when the target sums to 1; exact for soft targets too
        p = softmax_any_rank(logits, axis)
        g_logits = sum_to(g * (p * sum(target, axis=axis, keepdims=True) - target), logits.shape)
    return g_target, g_logits


def _xent_with_logits(target: Tensor, logits: Tensor, axis: int) -> Tensor:
    """-sum(target * log_softmax(logits)) along `axis`, as one op with one backward rule."""
    xp = logits.device.xp
    log_p = _log_softmax_data(xp, logits.data, axis)
    data = -(target.data * log_p).sum(axis=axis)
    return record(data, (target, logits), _xent_logits_grad, (target, logits, axis))


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
    axis -= len(full)  # count from the end: target and output may differ in rank
    if output._logits is not None:
        if from_logits:
            warnings.warn("categorical_crossentropy received from_logits=True, but the output "
                          "was produced by a softmax and so does not represent logits; using "
                          "the softmax's logits", stacklevel=2)
        output, from_logits = output._logits, True
    if from_logits:
        return _xent_with_logits(target, output, axis)
    output = output / sum(output, axis=axis, keepdims=True)
    output = clip(output, epsilon(), 1.0 - epsilon())
    return -sum(target * log(output), axis=axis)


from .math import clip, log, sum_to  # noqa: E402
from .nn import _log_softmax_data, log_softmax, softmax_any_rank  # noqa: E402
from .reduce import normalize_axes, sum  # noqa: E402
from .shape import expand_dims, stack  # noqa: E402
