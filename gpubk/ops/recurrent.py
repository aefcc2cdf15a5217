"""Normalisation and recurrence: batch_normalization, normalize_batch_in_training, rnn."""
from __future__ import annotations

from ..symbolic import traced
from ..tensor import Tensor, as_tensor


def _along(param, x: Tensor, axis: int):
    """A 1-D per-channel parameter shaped to broadcast along `axis` of x (others as given)."""
    if param is None or not isinstance(param, Tensor) or param.ndim != 1 or x.ndim < 2:
        return param
    axis %= x.ndim
    if axis == x.ndim - 1:
        return param
    return reshape(param, (1,) * axis + (param.shape[0],) + (1,) * (x.ndim - axis - 1))


@traced
def batch_normalization(x, mean, var, beta, gamma, axis: int = -1, epsilon: float = 1e-3):
    """Keras: `K.batch_normalization(x, mean, var, beta, gamma, axis=-1, epsilon=0.001)`.
    `(x - mean) / sqrt(var + epsilon) * gamma + beta`; 1-D parameters apply along `axis`
    (the channel axis), others broadcast as given. `beta` or `gamma` may be None."""
    x = as_tensor(x, "batch_normalization")
    mean, var = (_along(as_tensor(p, "batch_normalization", dtype=x.dtype), x, axis)
                 for p in (mean, var))
    y = (x - mean) / sqrt(var + epsilon)
    if gamma is not None:
        y = y * _along(as_tensor(gamma, "batch_normalization", dtype=x.dtype), x, axis)
    if beta is not None:
        y = y + _along(as_tensor(beta, "batch_normalization", dtype=x.dtype), x, axis)
    return y


def normalize_batch_in_training(x, gamma, beta, reduction_axes, epsilon: float = 1e-3):
    """Keras: `K.normalize_batch_in_training(x, gamma, beta, reduction_axes, epsilon=0.001)`.
    Normalises x with the mean and variance over `reduction_axes`; returns
    (normalized, mean, variance), mean and variance without the reduced axes."""
    x = as_tensor(x, "normalize_batch_in_training")
    axes = tuple(sorted(a % x.ndim for a in reduction_axes))
    mean_kept = mean(x, axis=axes, keepdims=True)
    var_kept = var(x, axis=axes, keepdims=True)
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))

    def broadcast(p):
        return None if p is None else reshape(as_tensor(p, "normalize_batch_in_training",
                                                        dtype=x.dtype), kept)
    normalized = batch_normalization(x, mean_kept, var_kept, broadcast(beta), broadcast(gamma),
                                     epsilon=epsilon)
    remaining = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return normalized, reshape(mean_kept, remaining), reshape(var_kept, remaining)


def rnn(step_function, inputs, initial_states, go_backwards: bool = False, mask=None,
        constants=None, unroll: bool = False, input_length=None, time_major: bool = False,
        zero_output_for_mask: bool = False):
    """Keras: `K.rnn(step_function, inputs, initial_states, go_backwards=False, mask=None,
    constants=None, unroll=False, input_length=None, time_major=False,
    zero_output_for_mask=False)`.

    Iterates `step_function(input_t, states + constants) -> (output_t, new_states)` over the
    time axis (1, or 0 if `time_major`). Where `mask` (batch, time) is False, the states are
    kept and the output repeats the previous one (or is zero with `zero_output_for_mask`).
    Returns (last_output, outputs stacked along time, new_states). Eager execution always
    runs step by step, so `unroll` changes nothing; gradients flow through time.
    """
    inputs = as_tensor(inputs, "rnn")
    if inputs.ndim < 3:
        raise ValueError(f"rnn: expected inputs of rank >= 3, got shape {inputs.shape}")
    time_axis = 0 if time_major else 1
    steps = inputs.shape[time_axis]
    if steps == 0:
        raise ValueError("rnn: the inputs have no time steps")
    index = (lambda t: inputs[t]) if time_major else (lambda t: inputs[:, t])
    if mask is not None:
        mask = as_tensor(mask, "rnn", device=inputs.device)
        if mask.ndim != 2:
            raise ValueError(f"rnn: expected a (batch, time) mask, got shape {mask.shape}")
        mask = cast(mask, "bool")
        if time_major:
            mask = transpose(mask)
    states = list(initial_states)
    constants = list(constants or [])
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    outputs, previous = [], None
    for t in order:
        output, new_states = step_function(index(t), states + constants)
        new_states = list(new_states)
        if mask is not None:
            keep = mask[:, t]

            def select(new, old, keep=keep):
                condition = reshape(keep, (keep.shape[0],) + (1,) * (new.ndim - 1))
                return where(condition, new, old)
            states = [select(n, o) for n, o in zip(new_states, states)]
            fallback = zeros_like(output) if zero_output_for_mask or previous is None \
                else previous
            output = select(output, fallback)
        else:
            states = new_states
        outputs.append(output)
        previous = output
    stacked = stack(outputs, axis=time_axis)
    return outputs[-1], stacked, states


from .creation import zeros_like  # noqa: E402
from .math import cast, sqrt, where  # noqa: E402
from .reduce import mean, var  # noqa: E402
from .shape import reshape, stack, transpose  # noqa: E402
