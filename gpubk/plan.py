"""K.function's plan: the steps that evaluate a graph, after passes over its nodes.

`make_plan(order)` takes the nodes a function needs, in topological order, and returns one
`Step` per node:
- **common subexpressions**: a node applying the same pure primitive, with the same params, to
  the same inputs as an earlier one takes that one's value (one step computes it);
- **constant folding**: a node whose inputs are all constants (tensors, or nodes already folded),
  and `K.shape` of a tensor whose shape is known statically, is computed once, when the plan is
  made;
- the rest run their node: on raw arrays where it is a plain primitive (`execute.raw_runner`),
  else with its tensor runner (`symbolic.runner`, or the runner a caller gives: staged_backprop's
  shared recordings) adapted by `execute.boxed`.
Dead code is never in the plan: the order holds only what the outputs and updates need. Each
step lists what it reads, from which `lifetimes` says when a value can be dropped, and
`buffers.plan_buffers` which values can share a buffer kept between calls.

Pure means: a declared primitive that is not a composite (a loop or condition holding
sub-graphs, a loss reading the host) and has no effect (an update, a print, a random draw).
"""
from __future__ import annotations

import numpy as np

from . import autodiff
from .buffers import gpu_only
from .core import trace
from .core.primitive import Primitive, bind, device_of
from .execute import boxed, into_runner, node_device, raw_runner
from .ops.query import shape_p
from .symbolic import Symbol, runner, symbols_in
from .tensor import Tensor, Variable


class Step:
    """One step of a plan: `run(values, device)` gives `node`'s value from the values of
    `reads` (ids); `raw`: whether that value is a raw array (else a tensor or a structure of
    them); `note` says what a pass made of it ("" when the node runs as built); `kernels`, for
    a fused step, lists the kernels it has generated so far (lines of text); `into`, for a
    step that can write its value into a kept buffer, makes that runner from the buffer's key
    (buffers.py), and `buffer` is the key the buffer plan gave it (None: none)."""

    __slots__ = ("node", "run", "reads", "raw", "note", "kernels", "into", "buffer")

    def __init__(self, node: Symbol, run, reads: list, raw: bool, note: str = "",
                 kernels=None, into=None) -> None:
        self.node, self.run, self.reads, self.raw, self.note = node, run, reads, raw, note
        self.kernels = kernels or (lambda: [])
        self.into, self.buffer = into, None


class Plan:
    """The steps of a function, and what its executor needs to read their values: `raw`, the
    ids of the values that are raw arrays; `fixed`, node id -> device, for values whose device
    does not depend on the call (execute.node_device)."""

    __slots__ = ("steps", "raw", "fixed")

    def __init__(self, steps: list, raw: set, fixed: dict) -> None:
        self.steps, self.raw, self.fixed = steps, raw, fixed


def make_plan(order: list, runners: dict | None = None) -> Plan:
    """The plan evaluating `order` (nodes, placeholders left out); `runners` (by node id)
    replace a node's own runner (they run on tensors)."""
    runners = runners or {}
    seen: dict = {}    # CSE key -> the node computing it
    same: dict = {}    # id of a merged node -> id of the node computing its value
    folded: dict = {}  # id -> value, of the nodes folded so far
    raw = {id(p) for node in order for p in node.placeholders}  # fed: raw arrays
    fixed: dict = {}
    steps = []
    for node in order:
        key = _cse_key(node, same) if id(node) not in runners else None
        if key is not None and key in seen:
            first = seen[key]
            same[id(node)] = id(first)
            if id(first) in raw:
                raw.add(id(node))
            if id(first) in fixed:
                fixed[id(node)] = fixed[id(first)]
            steps.append(Step(node, _copy(id(first)), [id(first)], id(first) in raw,
                              f"same as {first.name}"))
            if id(first) in folded:
                folded[id(node)] = folded[id(first)]
            continue
        if key is not None:
            seen[key] = node
        value = _folded(node, folded) if id(node) not in runners else None
        if value is not None:
            folded[id(node)] = value
            raw.add(id(node))
            fixed[id(node)] = value.device
            steps.append(Step(node, _constant(value.data), [], True, "folded"))
            continue
        reads = [id(s) for s in symbols_in((node.args, node.kwargs))]
        if id(node) in runners:
            steps.append(Step(node, boxed(runners[id(node)], raw, fixed), reads, False,
                              "shared recording"))
            continue
        run = raw_runner(node, raw, fixed)
        if run is None:
            node_device(node, fixed)
            steps.append(Step(node, boxed(runner(node), raw, fixed), reads, False))
        else:
            raw.add(id(node))
            steps.append(Step(node, run, reads, True, into=into_runner(node, raw, fixed, run)))
    return Plan(steps, raw, fixed)


def lifetimes(steps: list, keep: set) -> dict:
    """For each step index, the ids no later step reads (those in `keep` are kept)."""
    last_read = {}
    for i, step in enumerate(steps):
        for key in step.reads:
            last_read[key] = i
    drop: dict = {}
    for key, i in last_read.items():
        if key not in keep:
            drop.setdefault(i, []).append(key)
    return drop


def describe(steps: list, name: str, kept_bytes: int = 0) -> str:
    """The plan as text: one line per step (its node, shape, dtype, inputs, what a pass made of
    it, and the kept buffer it writes into: buffers.py); `kept_bytes`, what those buffers hold
    between calls."""
    merged = sum(s.note.startswith("same as") for s in steps)
    folded = sum(s.note == "folded" for s in steps)
    fused = sum(s.note.startswith("fused") for s in steps)
    written = [s.buffer for s in steps if s.buffer is not None]
    lines = [f"{name}: {len(steps)} steps ({merged} merged as common subexpressions, "
             f"{folded} folded, {fused} fused); {len(written)} values planned into "
             f"{len(set(written))} buffers kept between calls ({kept_bytes} bytes kept)"]
    for i, step in enumerate(steps, 1):
        node = step.node
        inputs = ", ".join(_label(a) for a in node.args if isinstance(a, (Symbol, Tensor)))
        notes = [step.note] if step.note else []
        if step.buffer is not None:
            notes.append(f"buffer {-step.buffer}" + (" on a GPU" if gpu_only(step) else ""))
        lines.append(f"{i:4}  {node.name:28} {str(node.shape):18} {node.dtype.name:8} "
                     f"<- {inputs}" + (f"   [{'; '.join(notes)}]" if notes else ""))
        lines += [f"{'':6}{kernel}" for kernel in step.kernels()]
    return "\n".join(lines)


def _label(value) -> str:
    if isinstance(value, Symbol):
        return value.name
    if isinstance(value, Variable):
        return f"variable '{value.name}'"
    return f"constant {value.shape}"


def _pure(op) -> bool:
    return isinstance(op, Primitive) and not op.composite and op.effect is None


def _cse_key(node: Symbol, same: dict):
    """What identifies `node`'s value among pure nodes: its primitive, inputs (a merged input
    as the node it was merged with) and params; None for a node that cannot share: impure, or
    with params that cannot be compared."""
    if not _pure(node.op):
        return None
    try:
        key = (node.op, tuple(same.get(id(a), id(a)) for a in node.args),
               _frozen(node.kwargs))
        hash(key)
    except TypeError:
        return None
    return key


def _frozen(value):
    """A hashable stand-in for a params value (slices, lists and dicts included), or a
    TypeError where there is none (arrays)."""
    if isinstance(value, slice):
        return ("slice", _frozen(value.start), _frozen(value.stop), _frozen(value.step))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, *(_frozen(v) for v in value))
    if isinstance(value, dict):
        return ("dict", *((k, _frozen(v)) for k, v in sorted(value.items())))
    if isinstance(value, (np.ndarray, Tensor, Symbol)):
        raise TypeError("not comparable as a param")
    hash(value)
    return value


def _folded(node: Symbol, folded: dict):
    """`node`'s value, computed now, where it does not depend on what is fed or on a variable;
    None otherwise (and where computing it fails: the evaluation will say why)."""
    if not _pure(node.op):
        return None
    if node.op is shape_p and None not in node.args[0].shape:
        dev = device_of(node.args[0])
        return Tensor(dev.put(np.asarray(node.args[0].shape, dtype=np.int32)), dev)
    inputs = []
    for a in node.args:
        if isinstance(a, Symbol):
            if id(a) not in folded:
                return None
            a = folded[id(a)]
        elif isinstance(a, Variable) or not isinstance(a, Tensor):
            return None
        inputs.append(a)
    try:
        with trace.evaluating(), autodiff.no_grad(), np.errstate(all="ignore"):
            return bind(node.op, *inputs, **node.kwargs)
    except Exception:  # noqa: BLE001 (left to the evaluation, which raises it for the caller)
        return None


def _copy(key: int):
    return lambda values, device: values[key]


def _constant(value):
    return lambda values, device: value
