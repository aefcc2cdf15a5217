"""Fusion: a group of elementwise primitives in a K.function's plan runs as one generated loop.

`fuse(steps, keep)` finds groups of steps (any DAG, not only a chain) of elementwise primitives
that have a scalar formula (`kernels/formulas.py`), one float dtype, and whose intermediate
values nothing outside the group reads (an output, an update, another step); each group becomes
one step. That step, given inputs of one shape (0-d ones broadcast as scalars) and of the
group's dtype, with at least `MIN_SIZE` elements, runs a CPU loop generated from the members'
formulas (compiled once per group, `numba.njit(parallel=True)`): one pass over memory
instead of one per op. Otherwise (other shapes, dtypes, small arrays, another device) it runs
its members' steps as before. Results differ from the unfused ones by float rounding at most
(the CPU formulas' exp and log are the vectorisable `fastmath` ones); NaN propagates alike.
"""
from __future__ import annotations

import numpy as np

from .core.primitive import Primitive
from .plan import Step
from .symbolic import Symbol
from .tensor import Tensor

# Below this many elements the members run one by one: `python bench/fusion.py` found a fused
# 7-op chain tying the unfused ops at 1K float32 elements and 1.4x faster at 4K (2 cores).
MIN_SIZE = 1 << 11

# Elementwise primitives whose formulas take their inputs in order (params as scalars too) and
# vectorise in a generated loop. Left out: tanh, sin, cos and pow, whose scalar libm calls made
# a fused loop 2-10x slower than the unfused ops here (measured on 4M float32).
FUSIBLE = frozenset({
    "add", "subtract", "multiply", "divide", "negative", "abs", "exp", "log", "sqrt",
    "square", "maximum", "minimum", "clip",
    *(f"{name}{suffix}" for name in ("relu", "sigmoid", "hard_sigmoid", "elu", "softplus",
                                     "softsign") for suffix in ("", "_grad"))})


def fuse(steps: list, keep: set) -> list:
    """`steps` with each fusible group replaced by one step (see the module); `keep`: the ids
    the function returns or updates with (never internal to a group)."""
    index = {id(step.node): i for i, step in enumerate(steps)}
    readers: dict = {}
    for i, step in enumerate(steps):
        for key in step.reads:
            readers.setdefault(key, set()).add(i)
    fusible = {i for i, step in enumerate(steps) if _fusible(step)}
    grouped: dict = {}  # member index -> its group's sink index
    groups = {}
    for sink in reversed(range(len(steps))):
        if sink not in fusible or sink in grouped:
            continue
        dtype, members, frontier = steps[sink].node.dtype, {sink}, [sink]
        while frontier:
            for key in steps[frontier.pop()].reads:
                j = index.get(key)
                if j is not None and j in fusible and j not in grouped and j not in members \
                        and key not in keep and steps[j].node.dtype == dtype \
                        and readers[key] <= members:
                    members.add(j)
                    frontier.append(j)
        if len(members) > 1:
            groups[sink] = sorted(members)
            grouped.update(dict.fromkeys(members, sink))
    if not groups:
        return steps
    fused = []
    for i, step in enumerate(steps):
        if i in groups:
            fused.append(_group_step([steps[j] for j in groups[i]]))
        elif i not in grouped:
            fused.append(step)
    return fused


def _fusible(step: Step) -> bool:
    op, node = step.node.op, step.node
    return (not step.note and isinstance(op, Primitive) and op.elementwise and
            op.name in FUSIBLE and node.dtype.kind == "f" and
            all(isinstance(a, (Symbol, Tensor)) for a in node.args))


class _Group:
    """A group's members, its external inputs (read per call through getters prepared here)
    and, per pattern of scalar inputs, its generated loop."""

    def __init__(self, members: list) -> None:
        self.members = members
        inside = {id(s.node) for s in members}
        self.inputs = []  # the external inputs: nodes, variables and constant tensors
        slots = {}
        for step in members:
            for a in step.node.args:
                if id(a) not in inside and id(a) not in slots:
                    slots[id(a)] = len(self.inputs)
                    self.inputs.append(a)
        self.slots = slots
        self.getters = [(lambda values, key=id(a): values[key]) if isinstance(a, Symbol) else
                        (lambda values, a=a: a) for a in self.inputs]
        self.kernels: dict = {}

    def kernel(self, scalar: tuple):
        if scalar not in self.kernels:
            self.kernels[scalar] = _generate(self, scalar)
        return self.kernels[scalar]


def _group_step(members: list) -> Step:
    group = _Group(members)
    sink = members[-1]
    runs = [(id(s.node), s.run) for s in members]
    internal = [key for key, _ in runs[:-1]]  # dropped after an unfused run: nothing reads them
    dtype = sink.node.dtype
    get, device_of = group.getters, group.getters[0]  # the output goes where the 1st input is

    def run(values):
        tensors = [g(values) for g in get]
        arrays = [t.data for t in tensors]
        shape = _common_shape(arrays, dtype)
        if shape is not None and int(np.prod(shape)) >= MIN_SIZE:
            scalar = tuple(a.ndim == 0 for a in arrays)
            out = np.empty(shape, dtype)
            group.kernel(scalar)(out.reshape(-1), *[
                a[()] if s else np.ascontiguousarray(a).reshape(-1)
                for a, s in zip(arrays, scalar)])
            return Tensor(out, device_of(values).device)
        for key, member in runs:  # as before: each member in turn
            values[key] = member(values)
        for key in internal:
            del values[key]
        return values[id(sink.node)]
    names = ", ".join(s.node.name for s in members)
    reads = [id(a) for a in group.inputs if isinstance(a, Symbol)]
    return Step(sink.node, run, reads, f"fused: {names}")


def _common_shape(arrays: list, dtype):
    """The shape every non-scalar input has, when all are host arrays of `dtype` (else None:
    the members run one by one)."""
    shape = None
    for a in arrays:
        if a.__class__ is not np.ndarray or a.dtype != dtype:
            return None
        if a.ndim:
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                return None
    return shape


def _generate(group: _Group, scalar: tuple):
    """The loop of a group, from its members' formulas compiled for the CPU."""
    import numba  # noqa: PLC0415 (compiled on first use: importing gpubk loads no Numba)
    from .kernels import formulas, generate  # noqa: PLC0415

    params = ", ".join(f"x{i}" for i in range(len(group.inputs)))
    lines = [f"def fused(out, {params}):", "    for i in prange(out.shape[0]):"]
    for i, is_scalar in enumerate(scalar):
        lines.append(f"        v{i} = x{i}" + ("" if is_scalar else "[i]"))
    namespace = {"prange": numba.prange, "like": formulas.like}
    temps = {}  # member node id -> its value's name in the loop
    for n, step in enumerate(group.members):
        node = step.node
        namespace[f"f{n}"] = generate.scalar(node.op.formula(), "cpu")
        args = [f"v{group.slots[id(a)]}" if id(a) in group.slots else temps[id(a)]
                for a in node.args]
        for k, value in enumerate(node.kwargs.get("params", ())):  # an activation's
            namespace[f"p{n}_{k}"] = value
            args.append(f"p{n}_{k}" if isinstance(value, bool) else f"like(v0, p{n}_{k})")
        lines.append(f"        t{n} = f{n}({', '.join(args)})")
        temps[id(node)] = f"t{n}"
    lines.append(f"        out[i] = t{len(group.members) - 1}")
    exec("\n".join(lines), namespace)  # noqa: S102 (source generated above, from our names)
    return numba.njit(parallel=True, **generate.CPU_SCALAR_OPTIONS)(namespace["fused"])
