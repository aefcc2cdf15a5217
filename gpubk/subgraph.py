"""Sub-graphs: a function (K.rnn's step, K.map_fn's fn) traced once into graph nodes.

A loop over symbolic tensors cannot run its function per element when it is built: it calls
the function once on parameters (placeholders of the elements' shapes) and keeps what that
builds. The nodes the function made are the body, run again at each step (or, for K.switch's
branches, only when taken); every value from outside the body uses (a symbolic tensor, a
variable) is a capture: an explicit input of the loop's node, so that the graph shows what the
loop reads (`K.gradients` finds a weight that only the step function's closure holds) and
`K.function` evaluates it once per call.
"""
from __future__ import annotations

from .symbolic import (
    Placeholder, Symbol, leaves, next_serial, runner, topological_symbols)
from .tensor import Variable


class Body:
    """`fn(*params)` traced into nodes: its outputs (a structure of tensors), the body's nodes in
    evaluation order, and its captures."""

    def __init__(self, fn, avals: list, name: str) -> None:
        first = next_serial()  # the nodes made from here on are the function's: its body
        self.params = [Placeholder(tuple(shape), dtype, f"{name}/arg{i}")
                       for i, (shape, dtype) in enumerate(avals)]
        self.result = fn(*self.params)  # the structure the function returned
        outputs = leaves(self.result)
        order = topological_symbols([o for o in outputs if isinstance(o, Symbol)])
        params = {id(p) for p in self.params}
        # As in tf.while_loop and tf.cond, what the function made runs at every step (a draw
        # anew each time); what existed before is evaluated once per call and passed in.
        self.order = [n for n in order if n.serial > first and id(n) not in params]
        captures = {}
        for node in self.order:
            for a in _arguments(node):
                if isinstance(a, Symbol) and a.serial < first or isinstance(a, Variable):
                    captures.setdefault(id(a), a)
        for o in outputs:
            if isinstance(o, Symbol) and o.serial < first:
                captures.setdefault(id(o), o)
        self.captures = list(captures.values())
        # Prepared once: run at every step of a loop.
        self._param_keys = [id(p) for p in self.params]
        self._capture_keys = [(i, id(c)) for i, c in enumerate(self.captures)
                              if isinstance(c, Symbol)]
        self._steps = [(id(node), runner(node)) for node in self.order]
        self._build = _builder(self.result)

    def run(self, params: list, captures: list):
        """The function's result for parameter values `params`, the captures' values given."""
        values = dict(zip(self._param_keys, params))
        for i, key in self._capture_keys:
            values[key] = captures[i]
        for key, run in self._steps:
            values[key] = run(values)
        return self._build(values)


def _builder(result):
    """A function of the values giving `result`'s structure with each node's value in place
    (what `substitute` does, its walk done once)."""
    if isinstance(result, Symbol):
        key = id(result)
        return lambda values: values[key]
    if isinstance(result, (list, tuple)):
        parts, kind = [_builder(r) for r in result], type(result)
        return lambda values: kind([part(values) for part in parts])
    return lambda values: result


def _arguments(node: Symbol) -> list:
    return leaves((node.args, node.kwargs))


def merged(a: tuple, b: tuple) -> tuple:
    """The static shape of a loop state, `a` before a step and `b` after: the dimensions they
    agree on, None where they differ (the ranks agree: the caller checks)."""
    return tuple(x if x == y else None for x, y in zip(a, b))
