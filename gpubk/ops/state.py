"""Reading and writing values: eval, get/set_value, updates of variables, print_tensor."""
from __future__ import annotations

import numpy as np

from ..autodiff import record
from ..config import floatx
from ..core.primitive import Primitive, as_input, bind_composite, is_symbolic
from ..symbolic import Symbol, evaluate
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


def _deferred(name: str, apply) -> Primitive:
    """An update as a composite primitive: it applies at once eagerly; in graph style its node
    changes nothing until a K.function runs it (after its outputs) or K.eval evaluates it."""
    p = Primitive(name, composite=True, effect="update", differentiable=())  # as TF's Assign
    p.def_impl(apply)
    p.def_abstract(lambda x, value, **params: (tuple(x.shape), x.dtype))
    return p


def _moving_average(x, value, *, momentum):
    value = x._checked_value(value, "moving_average_update")
    return x.assign(x.data - (x.data - value) * (1 - momentum), "moving_average_update")


update_p = _deferred("update", lambda x, value: x.assign(value, "update"))
update_add_p = _deferred("update_add", lambda x, value: x.assign_add(value, "update_add"))
update_sub_p = _deferred("update_sub", lambda x, value: x.assign_sub(value, "update_sub"))
moving_average_update_p = _deferred("moving_average_update", _moving_average)


def update(x, new_x) -> Variable:
    """Keras: `K.update(x, new_x)`. Sets variable `x` to `new_x`; returns `x`."""
    return bind_composite(update_p, _variable(x, "update"), new_x)


def update_add(x, increment) -> Variable:
    """Keras: `K.update_add(x, increment)`. Adds `increment` to variable `x`; returns `x`."""
    return bind_composite(update_add_p, _variable(x, "update_add"), increment)


def update_sub(x, decrement) -> Variable:
    """Keras: `K.update_sub(x, decrement)`. Subtracts `decrement` from variable `x`; returns `x`."""
    return bind_composite(update_sub_p, _variable(x, "update_sub"), decrement)


def moving_average_update(x, value, momentum) -> Variable:
    """Keras: `K.moving_average_update(x, value, momentum)`.

    `x = x * momentum + value * (1 - momentum)`, computed as Keras 2 (TF2) does:
    `x -= (x - value) * (1 - momentum)`; returns `x`."""
    func = "moving_average_update"
    return bind_composite(moving_average_update_p, _variable(x, func), value,
                          momentum=check_number(momentum, func, "momentum"))


def cast_to_floatx(x):
    """Keras: `K.cast_to_floatx(x)`. A NumPy array (or tensor, for tensors) of dtype floatx."""
    if isinstance(x, Tensor) or is_symbolic(x):
        return cast(x, floatx())
    return to_array(x, floatx(), "cast_to_floatx")


def _print(x, *, message: str, summarize: int) -> Tensor:
    with np.printoptions(threshold=2 * summarize, edgeitems=summarize):
        print(*([message] if message else []), x.numpy())
    return record(x.data, (x,), lambda g, y, needs: (g,))


# Printing as a node: each evaluation prints; gradients pass through.
print_p = Primitive("print_tensor", composite=True, effect="print")
print_p.def_impl(_print)
print_p.def_abstract(lambda x, **params: (tuple(x.shape), x.dtype))
print_p.def_vjp(lambda g, y, needs, x, **params: (g,))


def print_tensor(x, message: str = "", summarize: int = 3) -> Tensor:
    """Keras: `K.print_tensor(x, message='', summarize=3)`. Prints `message` and the value of
    `x` (the first and last `summarize` entries of long axes), and returns a tensor equal to `x`
    (gradients pass through)."""
    x = as_input(x, "print_tensor")
    if not isinstance(message, str):
        raise TypeError(f"print_tensor: message must be a str, got {type_name(message)}")
    return bind_composite(print_p, x, message=message,
                          summarize=check_int(summarize, "print_tensor", "summarize", -1))
