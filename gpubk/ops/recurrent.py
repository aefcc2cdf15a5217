"""Normalisation and recurrence: batch_normalization, normalize_batch_in_training, rnn."""
from __future__ import annotations

import numpy as np

from ..core.primitive import (
    Primitive, as_input, bind_composite, broadcast_shapes, device_of, is_symbolic)
from ..subgraph import Body, merged
from ..tensor import as_tensor
from .creation import zeros_like
from .math import cast, sqrt, where
from .reduce import mean, normalize_axes, var
from .shape import reshape, reshape_target, squeeze, stack, transpose
from .validate import check_axis, check_callable, check_number, check_sequence, type_name


def _along(param, x, axis: int):
    """A 1-D per-channel parameter shaped to broadcast along `axis` of x (others as given)."""
    if param is None or param.ndim != 1 or x.ndim < 2:
        return param
    axis %= x.ndim
    if axis == x.ndim - 1:
        return param
    return reshape(param, (1,) * axis + (-1,) + (1,) * (x.ndim - axis - 1))


def _like(value, x, func: str):
    """A parameter as a tensor (or symbolic tensor) in x's dtype."""
    value = as_input(value, func)
    return value if value.dtype == x.dtype else cast(value, x.dtype)


def batch_normalization(x, mean, var, beta, gamma, axis: int = -1, epsilon: float = 1e-3):
    """Keras: `K.batch_normalization(x, mean, var, beta, gamma, axis=-1, epsilon=0.001)`.
    `(x - mean) / sqrt(var + epsilon) * gamma + beta`; 1-D parameters apply along `axis`
    (the channel axis), others broadcast as given. `beta` or `gamma` may be None."""
    func = "batch_normalization"
    x = as_input(x, func)
    axis = check_axis(axis, x.ndim, func)
    epsilon = check_number(epsilon, func, "epsilon", 0.0)
    params = {}
    for name, p in (("mean", mean), ("var", var), ("gamma", gamma), ("beta", beta)):
        if p is None and name in ("mean", "var"):
            raise TypeError(f"{func}: {name} must be a tensor, got None")
        if p is not None:
            given = _like(p, x, func)
            params[name] = _along(given, x, axis)
            try:
                broadcast_shapes(func, params[name].shape, x.shape)
            except ValueError:
                raise _misfit(func, name, given, x, axis) from None
    y = (x - params["mean"]) / sqrt(params["var"] + epsilon)
    if "gamma" in params:
        y = y * params["gamma"]
    if "beta" in params:
        y = y + params["beta"]
    return y


def _misfit(func: str, name: str, p, x, axis: int) -> ValueError:
    return ValueError(f"{func}: {name} of shape {tuple(p.shape)} does not fit x of shape "
                      f"{x.shape} (axis {axis}); expected ({x.shape[axis]},) or a shape that "
                      "broadcasts")


def normalize_batch_in_training(x, gamma, beta, reduction_axes, epsilon: float = 1e-3):
    """Keras: `K.normalize_batch_in_training(x, gamma, beta, reduction_axes, epsilon=0.001)`.
    Normalises x with the mean and variance over `reduction_axes`; returns
    (normalized, mean, variance), mean and variance without the reduced axes."""
    func = "normalize_batch_in_training"
    x = as_input(x, func)
    if reduction_axes is None:  # Keras needs the list (None would mean "all" to NumPy)
        raise TypeError(f"{func}: reduction_axes must be a list of ints, got None")
    axes = normalize_axes(reduction_axes, x.ndim, func, "reduction_axes")
    remaining = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    for name, p in (("gamma", gamma), ("beta", beta)):
        shape = () if p is None else tuple(np.shape(p))  # a placeholder's may have None
        if p is not None and None not in shape + remaining and \
                int(np.prod(shape)) != int(np.prod(remaining)):
            raise ValueError(f"{func}: {name} of shape {shape} does not fit x of shape "
                             f"{x.shape} reduced over {axes}; expected {remaining}")
    mean_kept = mean(x, axis=axes, keepdims=True)
    var_kept = var(x, axis=axes, keepdims=True)
    kept = reshape_target(tuple(1 if i in axes else n for i, n in enumerate(x.shape)))

    def broadcast(p):
        return None if p is None else reshape(_like(p, x, func), kept)
    normalized = batch_normalization(x, mean_kept, var_kept, broadcast(beta), broadcast(gamma),
                                     epsilon=epsilon)
    return normalized, reshape(mean_kept, reshape_target(remaining)), reshape(var_kept,
                                                                       reshape_target(remaining))


def rnn(step_function, inputs, initial_states, go_backwards: bool = False, mask=None,
        constants=None, unroll: bool = False, input_length=None, time_major: bool = False,
        zero_output_for_mask: bool = False, return_all_outputs: bool = True):
    """Keras: `K.rnn(step_function, inputs, initial_states, go_backwards=False, mask=None,
    constants=None, unroll=False, input_length=None, time_major=False,
    zero_output_for_mask=False, return_all_outputs=True)`.

    Iterates `step_function(input_t, states + constants) -> (output_t, new_states)` over the
    time axis (1, or 0 if `time_major`). Where `mask` (batch, time) is False, the states are
    kept and the output repeats the previous one (or is zero with `zero_output_for_mask`).
    Returns (last_output, outputs stacked along time, new_states). With
    `return_all_outputs=False` (Keras 2.13+), `outputs` holds only the last output, with a time
    axis of size 1, as Keras's TensorArray of one element gives; the other outputs are not
    kept. Eager execution always runs step by step, so `unroll` changes nothing; gradients flow
    through time. On symbolic inputs (the number of steps may be unknown) the step function is
    traced once into a loop node (see subgraph.py), which runs step by step when evaluated.
    """
    func = "rnn"
    check_callable(step_function, func, "step_function")
    inputs = as_input(inputs, func)
    if inputs.ndim < 3:
        raise ValueError(f"rnn: expected inputs of rank >= 3, got shape {inputs.shape}")
    time_axis = 0 if time_major else 1
    if inputs.shape[time_axis] == 0:
        raise ValueError("rnn: the inputs have no time steps")
    if return_all_outputs.__class__ is not bool:
        raise TypeError(f"rnn: return_all_outputs must be a bool, got "
                        f"{type_name(return_all_outputs)}")
    if mask is not None:
        mask = _check_mask(mask, inputs, time_major)
    states = [as_input(s, func) for s in check_sequence(initial_states, func, "initial_states")]
    constants = [] if constants is None else [
        as_input(c, func) for c in check_sequence(constants, func, "constants")]
    options = dict(time_axis=time_axis, go_backwards=bool(go_backwards),
                   zero_output_for_mask=bool(zero_output_for_mask),
                   return_all_outputs=return_all_outputs)
    if any(is_symbolic(t) for t in [inputs, mask, *states, *constants]):
        return _staged_rnn(step_function, inputs, states, constants, mask, options)
    return _iterate(lambda x, rest: _step(step_function, x, rest), inputs, states, constants,
                    mask, **options)


def _check_mask(mask, inputs, time_major: bool):
    """The mask as bool (batch, time) (Keras also takes (batch, time, 1))."""
    mask = as_input(mask, "rnn") if is_symbolic(mask) else \
        as_tensor(mask, "rnn", device=device_of(inputs))
    expected = inputs.shape[:2]  # (batch, time), or (time, batch) if time_major
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = squeeze(mask, 2)
    if mask.ndim != 2 or any(a != b and None not in (a, b) for a, b in zip(mask.shape, expected)):
        raise ValueError(f"rnn: mask of shape {mask.shape} for inputs of shape "
                         f"{inputs.shape}; expected {expected}")
    mask = cast(mask, "bool")
    return transpose(mask) if time_major else mask


def _step(step_function, x, states_and_constants) -> tuple:
    """One call of the step function: (output, new_states as a list), its result checked."""
    result = step_function(x, states_and_constants)
    if not isinstance(result, (list, tuple)) or len(result) != 2:
        raise TypeError(f"rnn: step_function must return (output, new_states), got "
                        f"{type_name(result)}"
                        + (f" of length {len(result)}" if isinstance(result, (list, tuple))
                           else ""))
    output, new_states = result
    return output, list(new_states)


def _iterate(step, inputs, states, constants, mask, *, time_axis, go_backwards,
             zero_output_for_mask, return_all_outputs):
    """The loop itself, on tensors: `step(input_t, states + constants)`."""
    steps = inputs.shape[time_axis]
    index = (lambda t: inputs[t]) if time_axis == 0 else (lambda t: inputs[:, t])
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    outputs, previous = [], None
    for t in order:
        output, new_states = step(index(t), states + constants)
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
        if return_all_outputs or t == order[-1]:
            outputs.append(output)
        previous = output
    stacked = stack(outputs, axis=time_axis)
    return outputs[-1], stacked, states


def _staged_rnn(step_function, inputs, states, constants, mask, options):
    """A loop node: the step function traced once on parameters of one step's shapes."""
    time_axis = options["time_axis"]
    step_shape = inputs.shape[:time_axis] + inputs.shape[time_axis + 1:]

    def traced_step(x, *rest):
        return _step(step_function, x, list(rest))
    body = Body(traced_step, [(step_shape, inputs.dtype)] + [
        (t.shape, t.dtype) for t in states + constants], "rnn")
    _, new_states = body.result
    if len(new_states) != len(states) or any(
            n.ndim != s.ndim for n, s in zip(new_states, states)):
        raise ValueError(f"rnn: step_function returned new states of shapes "
                         f"{[n.shape for n in new_states]} for initial states of shapes "
                         f"{[s.shape for s in states]}; expected one of the same rank per state")
    return bind_composite(rnn_p, inputs, states, constants, mask, body.captures, body=body,
                          **options)


def _rnn_abstract(inputs, states, constants, mask, captures, *, body, time_axis,
                  return_all_outputs, **options):
    output, new_states = body.result
    steps = inputs.shape[time_axis] if return_all_outputs else 1
    return ((output.shape, output.dtype),
            (output.shape[:time_axis] + (steps,) + output.shape[time_axis:], output.dtype),
            [(merged(s.shape, n.shape), n.dtype) for s, n in zip(states, new_states)])


def _rnn_loop(inputs, states, constants, mask, captures, *, body, **options):
    """A loop node's evaluation: the traced step run at each time step."""
    return _iterate(lambda x, rest: body.run([x, *rest], captures), inputs, list(states),
                    list(constants), mask, **options)


# K.rnn over symbolic tensors: a loop holding the step function's sub-graph (gradients: the
# recomputed gradient of staged_backprop.py).
rnn_p = Primitive("rnn", composite=True)
rnn_p.def_impl(_rnn_loop)
rnn_p.def_abstract(_rnn_abstract)
