"""Reverse mode over graph nodes: `K.gradients` of a symbolic loss stages its backward.

The graph is walked from the targets back to the sources in reverse topological order; each
node's primitive gives its vector-Jacobian product, written with gpubk functions, which called
on symbolic tensors stage nodes too. The gradients are nodes of the same graph: `K.function`
evaluates them without the tape, and they can be differentiated again.

Where a node on the path is not a declared primitive, or a vjp needs a dimension the graph
leaves unknown, `Unstageable` is raised and the caller takes the gradient when the graph is
evaluated instead.

Vjps get every input as the graph has it (a node, a variable or a tensor), so that a vjp needing
an input's runtime shape (a placeholder's unknown batch size) can bind a primitive on the input.
"""
from __future__ import annotations

from . import autodiff
from .core.primitive import Primitive, Unstageable, bind
from .ops.math import cast, full_like_p
from .symbolic import Symbol, leaves, topological_symbols
from .tensor import Tensor


def backprop(targets: list, seeds: list | None, sources: list) -> list:
    """Symbolic gradients of sum(target * seed) (seeds default to ones) with respect to each
    source: a node, or None where no target depends on it."""
    source_ids = {id(s) for s in sources}
    order = topological_symbols([t for t in targets if isinstance(t, Symbol)])
    relevant = set(source_ids)  # the sources, and the float nodes computed from them
    for node in order:
        if node.op is not None and not isinstance(node.op, Primitive) and (
                _opaque(node) or any(id(a) in relevant for a in _inputs(node))):
            raise Unstageable(node.name)  # (a function's closure may hold variables)
        if id(node) in relevant or node.dtype.kind != "f":
            continue
        if any(id(a) in relevant for a in node.args):
            relevant.add(id(node))
    grads: dict[int, object] = {}
    for i, target in enumerate(targets):
        if id(target) in relevant:
            seed = bind(full_like_p, target, value=1, dtype=target.dtype) if seeds is None \
                else seeds[i]
            _accumulate(grads, id(target), seed)
    results = {}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if id(node) in source_ids:
            results[id(node)] = g
        p = node.op
        if not isinstance(p, Primitive) or p.vjp is None:
            continue  # a placeholder, or a primitive no gradient flows through
        inputs = node.args
        needs = tuple(id(a) in relevant for a in inputs)
        y = node if p.saves_output else None
        for a, need, ga in zip(inputs, needs, p.vjp(g, y, needs, *inputs, **node.kwargs)):
            if need and ga is not None:
                _accumulate(grads, id(a), ga)
    results.update(grads)  # what reached variables and tensors
    return [_as_source_grad(results.get(id(s)), s) for s in sources]


def composition_grads(composition, inputs: tuple, g, needs: tuple) -> tuple:
    """autodiff.composition_grads on symbolic tensors: the composition staged on the inputs,
    then its backward against `g`."""
    sources = [t for t, need in zip(inputs, needs) if need]
    grads = iter(backprop([composition(*inputs)], [g], sources))
    return tuple(next(grads) if need else None for need in needs)


autodiff.install_staged_composition_grads(composition_grads)


def _inputs(node: Symbol) -> list:
    """The leaves of an undeclared op's arguments (they may nest)."""
    return leaves((node.args, node.kwargs))


def _opaque(node: Symbol) -> bool:
    """Whether an undeclared op takes a function (K.rnn's step), whose closure may hold
    variables that no argument shows."""
    return any(callable(a) and not isinstance(a, (type, Symbol, Tensor)) for a in _inputs(node))


def _accumulate(grads: dict, key: int, g) -> None:
    grads[key] = g if key not in grads else grads[key] + g


def _as_source_grad(g, source):
    if g is None or g.dtype == source.dtype:
        return g
    return cast(g, source.dtype)
