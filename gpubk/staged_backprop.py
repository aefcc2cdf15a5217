"""Reverse mode over graph nodes: `K.gradients` of a symbolic loss stages its backward.

The graph is walked from the targets back to the sources in reverse topological order; each
node's primitive gives its vector-Jacobian product, written with gpubk functions, which called
on symbolic tensors stage nodes too. The gradients are nodes of the same graph: `K.function`
evaluates them without the tape, and they can be differentiated again.

A composite without a vjp (a loop or condition over traced sub-graphs), or a primitive whose
vjp needs a dimension the graph leaves unknown, gets a `recomputed_grad` node instead:
evaluated, it runs the op again with recording on and takes its gradient on the tape (a
K.function computing the op too runs it once, recording: `shared_recordings`). A structured
composite's gradient gathers those of the parts picked from it.

Vjps get every input as the graph has it (a node, a variable or a tensor), so that a vjp needing
an input's runtime shape (a placeholder's unknown batch size) can bind a primitive on the input.
"""
from __future__ import annotations

import numpy as np

from . import autodiff
from .core.primitive import Primitive, Unstageable, bind, bind_composite
from .ops.creation import zeros_like
from .ops.math import cast, full_like_p
from .symbolic import Symbol, is_aval, leaves, pick, substitute, topological_symbols


def backprop(targets: list, seeds: list | None, sources: list) -> list:
    """Symbolic gradients of sum(target * seed) (seeds default to ones) with respect to each
    source: a node, or None where no target depends on it."""
    source_ids = {id(s) for s in sources}
    order = topological_symbols([t for t in targets if isinstance(t, Symbol)])
    relevant = _relevant(order, source_ids)
    grads: dict[int, object] = {}
    for i, target in enumerate(targets):
        if id(target) in relevant:
            seed = bind(full_like_p, target, value=1, dtype=target.dtype) if seeds is None \
                else seeds[i]
            _accumulate(grads, id(target), seed)
    parts: dict[int, dict] = {}  # per structured call: its parts' gradients, by path
    results = {}
    for node in reversed(order):
        if node.op is pick:
            g = grads.pop(id(node), None)
            if g is not None:
                if id(node) in source_ids:
                    results[id(node)] = g
                call, path = node.args
                _accumulate(parts.setdefault(id(call), {}), path, g)
            continue
        g = parts.pop(id(node), None) if node.dtype.kind == "O" else grads.pop(id(node), None)
        if g is None:
            continue
        if id(node) in source_ids:
            results[id(node)] = g
        p = node.op
        if isinstance(p, Primitive):
            for a, ga in _input_grads(node, g, relevant):
                _accumulate(grads, id(a), ga)
    results.update(grads)  # what reached variables and tensors
    return [_as_source_grad(results.get(id(s)), s) for s in sources]


def _relevant(order: list, source_ids: set) -> set:
    """The sources, and the nodes computed from them that carry gradients (float tensors, and
    the calls of structured composites)."""
    relevant = set(source_ids)
    for node in order:
        op = node.op
        if op is None or id(node) in relevant:
            continue
        if op is pick:
            if id(node.args[0]) in relevant and node.dtype.kind == "f":
                relevant.add(id(node))
        elif _differentiable(op) and node.dtype.kind in "fO" and \
                any(id(a) in relevant for a in _flat_inputs(node)):
            relevant.add(id(node))
    return relevant


def _differentiable(p: Primitive) -> bool:
    """Whether gradients flow through `p`: a vjp, or a composite whose recomputed gradient
    reaches some argument (not an update, not a decoder: `differentiable=()`)."""
    return p.vjp is not None or p.composite and p.differentiable != ()


def _input_grads(node: Symbol, g, relevant: set) -> list:
    """(input, gradient) for each input of a primitive node that needs one: its vjp, or, for a
    composite without one (a loop) or a vjp needing what the graph does not know, a node that
    recomputes the op when evaluated and takes its gradient on the tape."""
    p, inputs = node.op, _flat_inputs(node)
    needs = tuple(id(a) in relevant for a in inputs)
    if not any(needs):
        return []
    if p.vjp is not None:
        y = node if p.saves_output else None
        try:
            grads = p.vjp(g, y, needs, *node.args, **node.kwargs)
            return [(a, ga) for a, need, ga in zip(inputs, needs, grads)
                    if need and ga is not None]
        except Unstageable:
            pass
    cotangents = [g.get(path) for path in _paths(p, node)] if isinstance(g, dict) else [g]
    needed = [a for a, need in zip(inputs, needs) if need]
    recomputed = bind_composite(recomputed_p, cotangents, node.args, primitive=p,
                                params=node.kwargs, needs=needs)
    return list(zip(needed, recomputed))


def _flat_inputs(node: Symbol) -> tuple:
    """A primitive node's inputs that gradients may reach; a composite's may nest (lists of
    states, captures), and it may declare the arguments its gradient reaches (the others' leaves
    are None here)."""
    p = node.op
    if not p.composite:
        return node.args
    return tuple(leaf if p.differentiable is None or i in p.differentiable else None
                 for i, arg in enumerate(node.args) for leaf in leaves(arg))


def _paths(p: Primitive, node: Symbol) -> list:
    """The paths of a structured composite's tensors, in the order of its result's leaves."""
    def walk(declared, path):
        if is_aval(declared):
            return [path]
        return [q for i, d in enumerate(declared) for q in walk(d, path + (i,))]
    return walk(p.abstract(*node.args, **node.kwargs), ())


def _recompute(cotangents, inputs, *, primitive, params, needs):
    """Evaluation of `recomputed_p`: the op run again on its inputs with recording on, and its
    gradient taken on the tape."""
    recording, _ = _record(inputs, primitive, params, needs)
    return _grads_of(recording, cotangents, inputs, needs)


def _record(inputs, primitive, params, needs) -> tuple:
    """The op run on its (evaluated) inputs with recording on: (the recording, its result)."""
    result = []

    def run(*values):
        result.append(primitive(*_rebuild(inputs, iter(values)), **params))
        return leaves(result[0])
    return autodiff.Recording(run, tuple(leaves(inputs)), needs), result[0]


def _grads_of(recording, cotangents, inputs, needs) -> tuple:
    """The needed inputs' gradients from a recording (zeros where the op turned out not to
    reach one)."""
    grads = recording.grads(list(cotangents))
    return tuple(zeros_like(x) if g is None else g
                 for x, g, need in zip(leaves(inputs), grads, needs) if need)


def shared_recordings(order: list) -> dict:
    """For a K.function evaluating `order`: runners (by node id) for each op whose recomputed
    gradients the same function evaluates. The op then runs once, with recording on, and its
    gradient nodes differentiate that recording instead of running it again (which would also
    draw new random numbers inside a loop); the recording lives until the last of them, as a
    tape would."""
    ops = {(id(s.args), id(s.kwargs)): s for s in order if isinstance(s.op, Primitive)}
    grads_of = {}
    for grad in order:
        if grad.op is recomputed_p:
            op = ops.get((id(grad.args[1]), id(grad.kwargs["params"])))
            if op is not None and op.op is grad.kwargs["primitive"]:
                grads_of.setdefault(id(op), (op, []))[1].append(grad)
    runners = {}
    for op, grads in grads_of.values():
        runners[id(op)], *backwards = _recording_runners(op, grads)
        runners.update(zip([id(g) for g in grads], backwards))
    return runners


def _recording_runners(op: Symbol, grads: list) -> list:
    """The op's runner, recording for every needed input of `grads`, then one per gradient."""
    key = ("recording", id(op))
    needs = tuple(any(n) for n in zip(*[g.kwargs["needs"] for g in grads]))
    pending = [len(grads)]  # gradients still to take from the recording

    def forward(values):
        inputs = substitute(op.args, values)
        recording, result = _record(inputs, op.op, op.kwargs, needs)
        values[key] = recording, inputs
        pending[0] = len(grads)
        return result

    positions = [i for i, need in enumerate(needs) if need]  # of what _grads_of returns

    def backward(grad):
        own = grad.kwargs["needs"]

        def run(values):
            recording, inputs = values[key]
            pending[0] -= 1
            if not pending[0]:
                del values[key]
            taken = _grads_of(recording, substitute(grad.args[0], values), inputs, needs)
            return tuple(g for i, g in zip(positions, taken) if own[i])
        return run
    return [forward] + [backward(g) for g in grads]


def _rebuild(structure, values):
    if isinstance(structure, (list, tuple)):
        return type(structure)(_rebuild(s, values) for s in structure)
    return next(values)


# The gradient of an op whose backward cannot be staged as its vjp (a loop over a traced
# sub-graph, a vjp needing an unknown dimension): one output per needed input. Its own gradient
# (second order) is taken the same way.
recomputed_p = Primitive("recomputed_grad", composite=True)
recomputed_p.def_impl(_recompute)
recomputed_p.def_abstract(lambda cotangents, inputs, *, primitive, params, needs: tuple(
    (tuple(x.shape), np.dtype(x.dtype)) for x, need in zip(leaves(inputs), needs) if need))


def composition_grads(composition, inputs: tuple, g, needs: tuple) -> tuple:
    """autodiff.composition_grads on symbolic tensors: the composition staged on the inputs,
    then its backward against `g`."""
    sources = [t for t, need in zip(inputs, needs) if need]
    grads = iter(backprop([composition(*inputs)], [g], sources))
    return tuple(next(grads) if need else None for need in needs)


def _accumulate(grads: dict, key: int, g) -> None:
    grads[key] = g if key not in grads else grads[key] + g


def _as_source_grad(g, source):
    if g is None or g.dtype == source.dtype:
        return g
    return cast(g, source.dtype)
