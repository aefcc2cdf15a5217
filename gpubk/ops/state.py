"""Reading and writing values: eval, get/set_value, updates of variables, print_tensor."""
from __future__ import annotations

import numpy as np

from ..autodiff import record
from ..config import floatx
from ..symbolic import Symbol, evaluate, traced
from ..tensor import Tensor, Variable, as_tensor, to_array
from .math import cast
from .validate import check_int, check_number, check_sequence, type_name


def _value(x, func: str) -> np.ndarray:
    if isinstance(x, Symbol):  # only placeholders with defaults (the learning phase) evaluate
        x = evaluate(x, func)
    return np.asarray(as_tensor(x, func).numpy())


def eval(x) -> np.ndarray:
    """Keras: `K.eval(x)`. The value of a tensor or variable, as a NumPy array. A symbolic
    tensor that depends on a placeholder raises an error naming it: feed it with K.function."""
    return _value(x, "eval")


def get_value(x) -> np.ndarray:
    """Keras: `K.get_value(x)`. The value of a variable (or tensor), as a NumPy array."""
    return _value(x, "get_value")


def batch_get_value(tensors) -> list:
    """Keras: `K.batch_get_value(tensors)`. The values of a list of tensors, as NumPy arrays."""
    return [_value(t, "batch_get_value") for t in check_sequence(tensors, "batch_get_value",
                                                                 "tensors")]


def _variable(x, func: str) -> Variable:
    if not isinstance(x, Variable):
        raise TypeError(f"{func}: expected a variable, got {type_name(x)}")
    return x


def set_value(x, value) -> None:
    """Keras: `K.set_value(x, value)`. Sets a variable from a NumPy array (or anything array-like)
    of its shape; on error the variable keeps its value."""
    _variable(x, "set_value").assign(value, "set_value")


def batch_set_value(tuples) -> None:
    """Keras: `K.batch_set_value(tuples)`. Sets several variables: `[(variable, value), ...]`.

    All or nothing: every pair is checked before any variable is assigned."""
    func = "batch_set_value"
    pairs = check_sequence(tuples, func, "tuples")
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TypeError(f"{func}: expected (variable, value) pairs, got {type_name(pair)}"
                            + (f" of length {len(pair)}" if isinstance(pair, (list, tuple))
                               else ""))
    new_values = [_variable(x, func).prepared_value(value, func) for x, value in pairs]
    for (x, _), new in zip(pairs, new_values):
        x.data = new


def _variable_spec(x, *args):
    """The result of an update is the variable: its shape and dtype (no run at build time)."""
    return tuple(x.shape), x.dtype


@traced(spec=_variable_spec)
def update(x, new_x) -> Variable:
    """Keras: `K.update(x, new_x)`. Sets variable `x` to `new_x`; returns `x`."""
    return _variable(x, "update").assign(new_x, "update")


@traced(spec=_variable_spec)
def update_add(x, increment) -> Variable:
    """Keras: `K.update_add(x, increment)`. Adds `increment` to variable `x`; returns `x`."""
    return _variable(x, "update_add").assign_add(increment, "update_add")


@traced(spec=_variable_spec)
def update_sub(x, decrement) -> Variable:
    """Keras: `K.update_sub(x, decrement)`. Subtracts `decrement` from variable `x`; returns `x`."""
    return _variable(x, "update_sub").assign_sub(decrement, "update_sub")


@traced(spec=_variable_spec)
def moving_average_update(x, value, momentum) -> Variable:
    """Keras: `K.moving_average_update(x, value, momentum)`.

    `x = x * momentum + value * (1 - momentum)`, computed as Keras 2 (TF2) does:
    `x -= (x - value) * (1 - momentum)`; returns `x`."""
    x = _variable(x, "moving_average_update")
    momentum = check_number(momentum, "moving_average_update", "momentum")
    value = x._checked_value(value, "moving_average_update")
    return x.assign(x.data - (x.data - value) * (1 - momentum), "moving_average_update")


@traced
def cast_to_floatx(x):
    """Keras: `K.cast_to_floatx(x)`. A NumPy array (or tensor, for tensors) of dtype floatx."""
    if isinstance(x, Tensor):
        return cast(x, floatx())
    return to_array(x, floatx(), "cast_to_floatx")


def _identity_grad(g, y, needs):
    return (g,)


@traced(spec=lambda x, *args, **kwargs: (tuple(x.shape), x.dtype))
def print_tensor(x, message: str = "", summarize: int = 3) -> Tensor:
    """Keras: `K.print_tensor(x, message='', summarize=3)`. Prints `message` and the value of
    `x` (the first and last `summarize` entries of long axes), and returns a tensor equal to `x`
    (gradients pass through)."""
    x = as_tensor(x, "print_tensor")
    if not isinstance(message, str):
        raise TypeError(f"print_tensor: message must be a str, got {type_name(message)}")
    summarize = check_int(summarize, "print_tensor", "summarize", -1)
    with np.printoptions(threshold=2 * summarize, edgeitems=summarize):
        print(*([message] if message else []), x.numpy())
    return record(x.data, (x,), _identity_grad)



# What graphs must not run for a trial (see graph.py): these change variables or print.
for _op in (update, update_add, update_sub, moving_average_update):
    _op.eager.side_effect = "update"
print_tensor.eager.side_effect = "print"
