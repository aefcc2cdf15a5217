"""Loss functions of the Keras 2 backend, with Keras's clipping and epsilon rules.

`categorical_crossentropy` is a kernel-backed primitive (one pass per row, forward and
backward) when target and output have the same shape; a target that only broadcasts against the
output goes through the same formula composed of gpubk functions. The backward is a primitive
too, whose vjp differentiates that composition (gradients of gradients).
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import kernels
from ..autodiff import composition_grads
from ..config import epsilon
from ..core.primitive import Primitive, as_input, bind, broadcast_shapes, device_of, is_symbolic
from ..tensor import Tensor, as_tensor
from .math import cast, clip, log, not_equal, pow, where
from .nn import (
    log_softmax, sigmoid, sigmoid_p, softmax_any_rank, softmax_p, softplus, softplus_parts)
from .reduce import normalize_axes, sum
from .shape import expand_dims, permute_dimensions, stack
from .validate import check_number


def _clipped_probs(output, axis: int, eps: float) -> Tensor:
    """Keras 2's probabilities: the output normalised along `axis`, clipped to [eps, 1 - eps]."""
    return clip(output / sum(output, axis=axis, keepdims=True), eps, 1.0 - eps)


def _probs_composed(target, output, axis: int, eps: float) -> Tensor:
    """Keras 2: -sum(t * log p) with p normalised and clipped (`_clipped_probs`)."""
    return -sum(target * log(_clipped_probs(output, axis, eps)), axis=axis)


def _logits_composed(target, logits, axis: int) -> Tensor:
    return -sum(target * log_softmax(logits, axis), axis=axis)


def _without_axis(t, x, **params) -> tuple:
    """Abstract evaluation of a crossentropy: one loss per row along `axis`."""
    axis = params["axis"]
    return x.shape[:axis] + x.shape[axis + 1:], x.dtype


def _crossentropy_primitives(name: str, composed, log_probs, forward_kernel,
                             backward_kernel) -> Primitive:
    """The crossentropy primitive of (target, x) and its backward primitive of (target, x, g),
    whose own vjp differentiates the composed formula's gradient (second order).
    `log_probs(x, **params)` is log p as the loss sees it (the targets' gradient is -g log p)."""
    forward = Primitive(name)
    forward.def_impl(forward_kernel)
    forward.def_abstract(_without_axis)
    backward = Primitive(f"{name}_grad")
    backward.def_impl(backward_kernel)
    backward.def_abstract(lambda t, x, g, **params: (x.shape, x.dtype))

    def composed_backward(t, x, g, **params):  # d(sum(g * loss)) / dx, in gpubk functions
        return composition_grads(lambda t, x: composed(t, x, **params), (t, x), g,
                                 (False, True))[1]

    backward.def_vjp(lambda u, y, needs, t, x, g, **params: composition_grads(
        lambda t, x, g: composed_backward(t, x, g, **params), (t, x, g), u, needs),
        saves=(0, 1, 2))

    def forward_vjp(g, y, needs, t, x, **params):
        return (-expand_dims(g, params["axis"]) * log_probs(x, **params) if needs[0] else None,
                bind(backward, t, x, g, **params) if needs[1] else None)
    forward.def_vjp(forward_vjp, saves=(0, 1))
    return forward


cce_probs_p = _crossentropy_primitives(
    "categorical_crossentropy", _probs_composed,
    lambda p, axis, eps: log(_clipped_probs(p, axis, eps)),
    lambda device, t, p, axis, eps: kernels.crossentropy.probs_forward(device, t, p, axis, eps),
    lambda device, t, p, g, axis, eps: kernels.crossentropy.probs_backward(
        device, t, p, g, axis, eps))
cce_logits_p = _crossentropy_primitives(
    "categorical_crossentropy_from_logits", _logits_composed,
    lambda z, axis: log_softmax(z, axis),
    lambda device, t, z, axis: kernels.crossentropy.logits_forward(device, t, z, axis),
    lambda device, t, z, g, axis: kernels.crossentropy.logits_backward(device, t, z, g, axis))


def _logits_of(output, from_logits: bool, activation: Primitive, func: str) -> tuple:
    """(logits, True) when `output` came out of `activation` (softmax or sigmoid), as Keras 2
    does; else (output, from_logits) unchanged. An eager output remembers its producer; a
    graph node is its producer."""
    if isinstance(output, Tensor):
        producer = output._logits
    else:
        producer = (output.op, output.args[0]) if output.op is activation else None
    if producer is None or producer[0] is not activation:
        return output, from_logits
    if from_logits:
        warnings.warn(f"{func} received from_logits=True, but the output was produced by "
                      f"{activation.name} and so does not represent logits; using its "
                      "logits", stacklevel=3)
    return producer[1], True


def _broadcast_shape(target, output, func: str) -> tuple:
    """The shape target and output broadcast to, or a ValueError naming `func`."""
    try:
        return broadcast_shapes(func, target.shape, output.shape)
    except ValueError:
        raise ValueError(f"{func}: target shape {target.shape} and output shape {output.shape} "
                         "do not match; expected equal (or broadcastable) shapes") from None


def _float_output(output: Tensor, func: str) -> Tensor:
    if output.dtype.kind != "f":
        raise TypeError(f"{func}: expected a float output (probabilities or logits), got "
                        f"{output.dtype.name} of shape {output.shape}")
    return output


def _sigmoid_crossentropy(target: Tensor, logits: Tensor) -> Tensor:
    """`tf.nn.sigmoid_cross_entropy_with_logits`, as TensorFlow writes it:
    `relu(z) - z * t + log1p(exp(-|z|))` with relu and -|z| as selects on `z >= 0`, so that the
    gradient is `sigmoid(z) - t` everywhere, `0.5 - t` at z = 0 included."""
    relu_part, neg_abs = softplus_parts(logits)
    return relu_part - logits * target + softplus(neg_abs)


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
    func = "categorical_crossentropy"
    if isinstance(target, (list, tuple)):
        target = stack(target)
    output = as_input(output, func)
    target = _target_like(target, output, func)
    full = _broadcast_shape(target, output, func)
    axis = normalize_axes(axis, len(full), func)[0]
    output, from_logits = _logits_of(output, from_logits, softmax_p, func)
    _float_output(output, func)
    # Broadcasting, or no classes at all (a loss of 0 per row, as Keras): the composed formula.
    if target.shape != output.shape or output.shape[axis] == 0:
        axis -= len(full)  # counted from the end, as target and output may differ in rank
        return _logits_composed(target, output, axis) if from_logits \
            else _probs_composed(target, output, axis, epsilon())
    if from_logits:
        return bind(cce_logits_p, target, output, axis=axis)
    return bind(cce_probs_p, target, output, axis=axis, eps=epsilon())


def _target_like(target, output, func: str):
    """The target as a tensor in the output's dtype, on its device."""
    if is_symbolic(target):
        return target if target.dtype == output.dtype else cast(target, output.dtype)
    target = as_tensor(target, func, dtype=output.dtype, device=device_of(output))
    if isinstance(output, Tensor) and target.device is not output.device:
        raise ValueError(f"{func}: target is on {target.device.name} but output is on "
                         f"{output.device.name}")
    return target


def binary_crossentropy(target, output, from_logits: bool = False) -> Tensor:
    """Keras: `K.binary_crossentropy(target, output, from_logits=False)`. Elementwise.

    From probabilities exactly as Keras 2: clip to [eps, 1 - eps], then
    `-(t * log(p + eps) + (1 - t) * log(1 - p + eps))`. From logits (or from the output of
    `K.sigmoid`): TensorFlow's `sigmoid_cross_entropy_with_logits`,
    `max(z, 0) - z * t + log(1 + exp(-|z|))`, without overflow; its gradient at z = 0 is
    `0.5 - t`."""
    output = as_input(output, "binary_crossentropy")
    target = _target_like(target, output, "binary_crossentropy")
    output, from_logits = _logits_of(output, from_logits, sigmoid_p, "binary_crossentropy")
    _float_output(output, "binary_crossentropy")
    _broadcast_shape(target, output, "binary_crossentropy")
    if from_logits:
        return _sigmoid_crossentropy(target, output)
    eps = epsilon()
    output = clip(output, eps, 1.0 - eps)
    return -(target * log(output + eps) + (1.0 - target) * log(1.0 - output + eps))


def _rows_error(target_shape: tuple, output_shape: tuple) -> ValueError:
    return ValueError(f"sparse_categorical_crossentropy: target of shape {target_shape} for "
                      f"output of shape {output_shape}; expected one index per row of the output")


def _sparse_targets_impl(device, target, logits, *, ignore_class):
    """The targets as int64 class indices, one per row of `logits` (classes last), checked on
    the host: the one synchronisation of sparse_categorical_crossentropy."""
    rows, classes = logits.shape[:-1], logits.shape[-1]
    if target.shape != rows:
        if target.size != int(np.prod(rows)):
            raise _rows_error(target.shape, logits.shape)
        target = target.reshape(rows)
    indices = target.astype(np.int64)
    bad = (indices < 0) | (indices >= classes)
    # Keras casts float targets to int64, which would silently truncate 0.5 to class 0: such
    # targets are refused.
    if target.dtype.kind == "f":
        bad |= target != device.xp.trunc(target)
    if ignore_class is not None:
        bad &= indices != ignore_class
    if bool(bad.any()):
        raise ValueError(f"sparse_categorical_crossentropy: targets must be whole class "
                         f"indices in [0, {classes})")
    return indices


def _sparse_targets_abstract(target, logits, *, ignore_class):
    rows = logits.shape[:-1]
    if None not in target.shape + rows and np.prod(target.shape) != np.prod(rows):
        raise _rows_error(target.shape, logits.shape)
    return rows, np.dtype(np.int64)


# The targets' check, a node of its own: a symbolic target is checked when the graph is
# evaluated. No vjp: its output is integer. `logits` gives the rows and classes (at runtime,
# where the graph leaves them unknown); its values are not read.
sparse_targets_p = Primitive("sparse_targets")
sparse_targets_p.def_impl(_sparse_targets_impl)
sparse_targets_p.def_abstract(_sparse_targets_abstract)

# one_hot with the class count and dtype of `logits` (known at runtime only, in a graph whose
# class axis is unknown). No vjp: the one-hot does not depend on the logits' values.
one_hot_like_p = Primitive("one_hot_like")
one_hot_like_p.def_impl(lambda device, indices, logits: (
    indices[..., None] == device.xp.arange(logits.shape[-1])).astype(logits.dtype))
one_hot_like_p.def_abstract(lambda indices, logits: (logits.shape, logits.dtype))


def sparse_categorical_crossentropy(target, output, from_logits: bool = False, axis: int = -1,
                                    ignore_class=None) -> Tensor:
    """Keras: `K.sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1,
    ignore_class=None)`. Crossentropy against integer class indices.

    Targets of shape `(N,)` or `(N, 1)` (any shape that flattens to the output's rows); whole
    floats are taken as indices. Probabilities are clipped to [eps, 1 - eps], their log taken,
    then renormalised by a log-softmax, as Keras 2 does. Positions whose target is
    `ignore_class` get a loss of 0. Targets outside [0, classes) raise a ValueError (for a
    symbolic target, when the graph is evaluated)."""
    func = "sparse_categorical_crossentropy"
    output = as_input(output, func)
    if not is_symbolic(target):
        target = as_tensor(target, func, device=device_of(output))
    if target.dtype.kind not in "iuf":
        raise TypeError(f"{func}: expected integer targets, got {target.dtype.name}")
    output, from_logits = _logits_of(output, from_logits, softmax_p, func)
    if from_logits:
        _float_output(output, func)
    else:
        eps = epsilon()
        output = log(clip(output, eps, 1.0 - eps))
    (axis,) = normalize_axes(axis, output.ndim, func)
    if axis != output.ndim - 1:
        output = permute_dimensions(
            output, [i for i in range(output.ndim) if i != axis] + [axis])
    ignore = None if ignore_class is None else int(ignore_class)
    indices = bind(sparse_targets_p, target, output, ignore_class=ignore)
    # An ignored index outside [0, classes) has a row of zeros; inside, the `where` drops it.
    loss = categorical_crossentropy(bind(one_hot_like_p, indices, output), output,
                                    from_logits=True)
    return loss if ignore is None else where(not_equal(indices, ignore), loss, 0.0)


def binary_focal_crossentropy(target, output, apply_class_balancing: bool = False,
                              alpha: float = 0.25, gamma: float = 2.0,
                              from_logits: bool = False) -> Tensor:
    """Keras: `K.binary_focal_crossentropy(target, output, apply_class_balancing=False,
    alpha=0.25, gamma=2.0, from_logits=False)`. Binary crossentropy down-weighted by
    `(1 - p_t) ** gamma`; with class balancing, weighted by alpha for positives."""
    output = _float_output(as_input(output, "binary_focal_crossentropy"),
                           "binary_focal_crossentropy")
    target = _target_like(target, output, "binary_focal_crossentropy")
    _broadcast_shape(target, output, "binary_focal_crossentropy")
    alpha = check_number(alpha, "binary_focal_crossentropy", "alpha")
    gamma = check_number(gamma, "binary_focal_crossentropy", "gamma")
    p = sigmoid(output) if from_logits else output
    p_t = target * p + (1.0 - target) * (1.0 - p)
    focal = pow(1.0 - p_t, gamma) * binary_crossentropy(target, output, from_logits)
    if apply_class_balancing:
        focal = (target * alpha + (1.0 - target) * (1.0 - alpha)) * focal
    return focal


def categorical_focal_crossentropy(target, output, alpha: float = 0.25, gamma: float = 2.0,
                                   from_logits: bool = False, axis: int = -1) -> Tensor:
    """Keras: `K.categorical_focal_crossentropy(target, output, alpha=0.25, gamma=2.0,
    from_logits=False, axis=-1)`. Categorical crossentropy with each class's term scaled by
    `alpha * (1 - p) ** gamma`; probabilities normalised and clipped as Keras 2 does."""
    output = as_input(output, "categorical_focal_crossentropy")
    target = _target_like(target, output, "categorical_focal_crossentropy")
    if target.shape != output.shape:
        raise ValueError(f"categorical_focal_crossentropy: target shape {target.shape} and "
                         f"output shape {output.shape}; expected equal shapes")
    output, from_logits = _logits_of(output, from_logits, softmax_p,
                                     "categorical_focal_crossentropy")
    axis = normalize_axes(axis, output.ndim, "categorical_focal_crossentropy")[0]
    if not isinstance(alpha, (list, tuple, np.ndarray, Tensor)):  # Keras: a scalar or per class
        alpha = check_number(alpha, "categorical_focal_crossentropy", "alpha")
    gamma = check_number(gamma, "categorical_focal_crossentropy", "gamma")
    if from_logits:
        output = softmax_any_rank(output, axis)
    output = _clipped_probs(output, axis, epsilon())
    weighted = alpha * pow(1.0 - output, gamma) * (-target * log(output))
    return sum(weighted, axis=axis)
