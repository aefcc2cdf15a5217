"""Fusion: a group of elementwise primitives in a K.function's plan runs as one generated kernel.

`fuse(plan, keep)` finds groups of steps (any DAG, not only a chain) of elementwise primitives
that have a scalar formula (`kernels/formulas.py`) and one float dtype, and whose intermediate
values nothing outside the group reads (an output, an update, another step); a group may end in
a sum, mean, max or min over the last axis. Each group becomes one step. Given its inputs, that
step describes them as a `kernels.fused.Pattern` (each input the output's shape, a row or a
column broadcast along the other axis, or a scalar; any dtype that converts safely to the
group's) and runs the pattern's kernel: a parallel CPU loop on the host (`kernels/fused.py`,
from `MIN_SIZE` elements: below, the members one by one are faster), a CUDA kernel where the
device runs gpubk's CUDA kernels (`kernels/cuda/fused.py`; the simulator under `sim`), always.
Whatever a pattern cannot describe (other broadcasts, float16 on the CPU, an empty reduction)
runs the members one by one, as unfused.

A group computing a variable's new value (an update of the function) writes it into the
variable's own buffer when nothing else can see that buffer: no step after the group reads the
variable, and nothing holds the buffer but the variable (no tape entry, array returned by
K.eval, DLPack export or view: its reference count says so), so a training step keeps its
buffers across calls; otherwise it writes a new buffer, which the update swaps in. Any other
group can write into a buffer the function keeps between calls (buffers.py: `Step.into`).
Results differ from the unfused ones by float rounding at most (the CPU's exp and log are the
vectorisable `fastmath` ones, its sums accumulate in float64); NaN propagates alike.
"""
from __future__ import annotations

import numpy as np

from .buffers import take, unshared, worth_keeping
from .core.primitive import Primitive
from .execute import getter
from .plan import Plan, Step
from .symbolic import Symbol, leaves
from .tensor import Tensor

# Below this many elements the members run one by one on the CPU, and below PARALLEL_MIN_SIZE
# the loop runs on one thread (waking Numba's threads costs ~5 us). A 7-op chain of float32
# (a K.function call, 2 cores, microseconds): at 1K elements one-thread fused 10.8, parallel
# 12.1, unfused 11.1; at 4K 10.9, 12.0, 12.6; at 64K 19.7, 19.1, 811; at 256K 46, 33, 3737.
MIN_SIZE = 1 << 11
PARALLEL_MIN_SIZE = 1 << 17

# Elementwise primitives whose formulas take their inputs in order (params as scalars too) and
# vectorise in a generated loop. Left out: sin, cos and pow, whose scalar libm calls made a
# fused loop 2-10x slower than the unfused ops here (measured on 4M float32; tanh was too, until
# fastmath's vectorisable tanh: 1.1 ms against NumPy's 1.5 ms there).
FUSIBLE = frozenset({
    "add", "subtract", "multiply", "divide", "negative", "abs", "exp", "log", "sqrt",
    "square", "maximum", "minimum", "clip",
    *(f"{name}{suffix}" for name in ("relu", "sigmoid", "hard_sigmoid", "tanh", "elu",
                                     "softplus", "softsign") for suffix in ("", "_grad"))})

# Primitives that call BLAS. OpenBLAS's threads spin for a while after each call, so a parallel
# loop started then waits for the cores they hold: in a plan with one of these (or a composite,
# which may hold one), loops run on one thread. Measured here (2 cores): a fused 400K-element
# update after a 512x512 matmul took 6 ms in parallel, 0.1 ms on one thread; a 7-op chain over
# 16M float32 alone 4.1 ms in parallel, 4.7 ms on one thread (memory-bound either way).
BLAS = frozenset({"matmul", "dot_general"})

# Reductions a group may end in (over the last axis only): their Pattern names.
REDUCTIONS = frozenset({"sum", "mean", "max", "min"})


def fuse(plan: Plan, keep: set, updates: dict | None = None) -> Plan:
    """`plan` with each fusible group replaced by one step (see the module); `keep`: the ids
    the function returns or updates with (never internal to a group); `updates`: node id ->
    the variable that node's value is assigned to after the call (written in place where
    safe)."""
    updates = updates or {}
    steps = plan.steps
    index = {id(step.node): i for i, step in enumerate(steps)}
    readers: dict = {}
    for i, step in enumerate(steps):
        for key in step.reads:
            readers.setdefault(key, set()).add(i)
    fusible = {i for i, step in enumerate(steps) if _fusible(step)}
    grouped: dict = {}  # member index -> its group's sink index
    groups = {}
    for sink in reversed(range(len(steps))):
        if sink in grouped:
            continue
        if sink in fusible:
            dtype, members, frontier = steps[sink].node.dtype, {sink}, [sink]
        elif _reduces_last_axis(steps[sink]):  # a reduction ending a group of its input's
            key = steps[sink].reads[0]
            j = index.get(key)
            if j is None or j not in fusible or j in grouped or key in keep or \
                    readers[key] != {sink} or steps[j].node.dtype != steps[sink].node.dtype:
                continue
            dtype, members, frontier = steps[j].node.dtype, {sink, j}, [j]
        else:
            continue
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
        return plan
    parallel = not calls_blas(steps)
    runs_at = [grouped.get(j, j) for j in range(len(steps))]  # a member runs at its sink
    fused = []
    for i, step in enumerate(steps):
        if i in groups:
            into = updates.get(id(step.node))
            if into is not None and any(
                    runs_at[j] > i and grouped.get(j) != i and into is v
                    for j, other in enumerate(steps)
                    for v in leaves((other.node.args, other.node.kwargs))):
                into = None  # read after the group runs: its old value must stay
            fused.append(_group_step([steps[j] for j in groups[i]], plan, parallel, into))
        elif i not in grouped:
            fused.append(step)
    return Plan(fused, plan.raw, plan.fixed)


def calls_blas(steps: list, composites: bool = True) -> bool:
    """Whether a plan calls BLAS (or, with `composites`, holds a composite, which may): its
    CPU loops and twins then run on one thread (see BLAS)."""
    return any(isinstance(s.node.op, Primitive) and
               ((composites and s.node.op.composite) or s.node.op.name in BLAS) for s in steps)


def _fusible(step: Step) -> bool:
    op, node = step.node.op, step.node
    return (step.raw and not step.note and isinstance(op, Primitive) and op.elementwise and
            op.name in FUSIBLE and node.dtype.kind == "f" and
            all(isinstance(a, (Symbol, Tensor)) for a in node.args))


def _reduces_last_axis(step: Step) -> bool:
    node = step.node
    return (step.raw and not step.note and isinstance(node.op, Primitive) and
            node.op.name in REDUCTIONS and isinstance(node.args[0], Symbol) and
            node.dtype.kind == "f" and node.args[0].ndim >= 1 and
            tuple(node.kwargs.get("axes") or ()) == (node.args[0].ndim - 1,))


class _Group:
    """A group's members, its external inputs (read per call through getters prepared here),
    and, per layout of its inputs (shapes and dtypes), how to call its kernel."""

    def __init__(self, members: list, raw: set) -> None:
        sink = members[-1].node
        self.reduce = sink.op.name if sink.op.name in REDUCTIONS else None
        self.elementwise = members[:-1] if self.reduce else members
        self.dtype = sink.dtype
        self.out_ndim = sink.ndim
        self.keepdims = bool(sink.kwargs.get("keepdims")) if self.reduce else False
        inside = {id(s.node) for s in members}
        self.inputs = []  # the external inputs: nodes, variables and constant tensors
        slots: dict = {}
        for step in self.elementwise:
            for a in step.node.args:
                if id(a) not in inside and id(a) not in slots:
                    slots[id(a)] = len(self.inputs)
                    self.inputs.append(a)
        position = {id(s.node): n for n, s in enumerate(self.elementwise)}
        self.ops = tuple((step.node.op.name,
                          tuple(f"x{slots[id(a)]}" if id(a) in slots else f"t{position[id(a)]}"
                                for a in step.node.args),
                          tuple(step.node.kwargs.get("params", ())))
                         for step in self.elementwise)
        self.getters = [getter(a, raw) for a in self.inputs]
        # The input whose size tells whether to fuse on the host: the one of highest rank (its
        # size is the output's unless it broadcasts; a guess is enough there).
        self.largest = max(range(len(self.inputs)), key=lambda i: self.inputs[i].ndim)
        self.layouts: dict = {}  # (shapes, dtypes) -> Layout or None (runs unfused)

    def describe_kernels(self) -> list:
        """One line per layout run so far: its kernel's name and pattern."""
        return [f"kernel {layout.pattern.name} ({layout.rows} x {layout.cols}): "
                f"{layout.pattern.describe()}" for layout in self.layouts.values()
                if layout is not None]

    def layout(self, arrays: list):
        key = tuple((a.shape, a.dtype) for a in arrays)
        if key not in self.layouts:
            self.layouts[key] = _layout(self, arrays)
        return self.layouts[key]


class _Layout:
    """How a group runs on inputs of given shapes and dtypes: its pattern, the output seen as
    rows x cols, and the output's shape and dtype."""

    __slots__ = ("pattern", "rows", "cols", "shape", "dtype")

    def __init__(self, pattern, rows: int, cols: int, shape: tuple) -> None:
        self.pattern, self.rows, self.cols, self.shape = pattern, rows, cols, shape
        self.dtype = np.dtype(pattern.dtype)


def _layout(group: _Group, arrays: list):
    """The layout of `arrays`, or None where a Pattern cannot describe them (see the module)."""
    from .kernels.fused import Pattern  # noqa: PLC0415 (importing gpubk loads no Numba)

    work = np.float32 if group.dtype == np.float16 else group.dtype
    if any(not np.can_cast(a.dtype, work) for a in arrays):
        return None
    try:
        shape = np.broadcast_shapes(*[a.shape for a in arrays])
    except ValueError:
        return None
    if group.reduce and (not shape or shape[-1] == 0):
        return None
    kinds = _kinds(shape, [a.shape for a in arrays], last=bool(group.reduce))
    if kinds is None:
        return None
    kinds, split = kinds
    rows, cols = int(np.prod(shape[:split])), int(np.prod(shape[split:]))
    pattern = Pattern(group.dtype.name, tuple((k, a.dtype.name) for k, a in zip(kinds, arrays)),
                      group.ops, group.reduce)
    out = shape
    if group.reduce:
        out = shape[:-1] + (1,) if group.keepdims else shape[:-1]
    return _Layout(pattern, rows, cols, out)


def _kinds(shape: tuple, shapes: list, last: bool):
    """Each input's kind ("a", "r", "c", "s": kernels/fused.py) for an output of `shape`, seen
    as rows x cols split before axis `split`, and that split; None where no split describes
    every input. A reduction (`last`) splits before the last axis."""
    n = len(shape)
    padded = [(1,) * (n - len(s)) + tuple(s) for s in shapes]
    for split in ([n - 1] if last else range(n + 1)):
        kinds = []
        for s in padded:
            if s == shape:
                kinds.append("a")
            elif all(d == 1 for d in s):
                kinds.append("s")
            elif all(d == 1 for d in s[:split]) and s[split:] == shape[split:]:
                kinds.append("r")
            elif s[:split] == shape[:split] and all(d == 1 for d in s[split:]):
                kinds.append("c")
            else:
                break
        else:
            return kinds, split
    return None


def _group_step(members: list, plan: Plan, parallel: bool, into=None) -> Step:
    group = _Group(members, plan.raw)
    fixed = plan.fixed.get(id(members[-1].node))  # its members' device, where not the call's
    runs = [(id(s.node), s.run) for s in members]
    sink = id(members[-1].node)
    internal = [key for key, _ in runs[:-1]]  # dropped after an unfused run: nothing reads them
    get = group.getters
    probe = get[group.largest]

    def runner(key=None):
        """The step's runner; with `key`, writing into the buffer kept there (buffers.py)."""
        def run(values, device):
            where = fixed or device
            if where.cuda_kernels or probe(values).size >= MIN_SIZE:
                target = None if into is None else _unshared(into)  # before reading inputs
                arrays = [g(values) for g in get]
                layout = group.layout(arrays)
                if layout is not None:
                    kept = key is not None and worth_keeping(where, layout.shape, layout.dtype)
                    if kept:
                        target = take(values, key, layout.shape, layout.dtype, where)
                    out = _run_fused(layout, arrays, where, parallel, target)
                    if out is not None:
                        if kept:
                            values[key] = out
                        return out
            for member_key, member in runs:  # as before: each member in turn
                values[member_key] = member(values, device)
            for member_key in internal:
                del values[member_key]
            return values[sink]
        return run
    names = ", ".join(s.node.name for s in members)
    reads = [id(a) for a in group.inputs if isinstance(a, Symbol)]
    written = f"; into variable '{into.name}' when unshared" if into is not None else ""
    return Step(members[-1].node, runner(), reads, True, f"fused: {names}{written}",
                group.describe_kernels, into=runner if into is None else None)


def _unshared(variable):
    """`variable`'s buffer where nothing else refers to it (see the module), else None: it owns
    its memory (a view's memory is another array's, whose views its count cannot show), can be
    written, and only the variable holds it."""
    buffer = variable.data
    if buffer.base is not None or not getattr(buffer.flags, "writeable", True):
        return None
    return buffer if unshared(buffer, 1) else None


def _run_fused(layout: _Layout, arrays: list, device, parallel: bool, target=None):
    """The group's value from its kernel, or None where this device has none for the pattern
    (float16 on the CPU, a device kind with neither CPU arrays nor CUDA kernels). Written into
    `target` (a variable's buffer) where it has the value's shape and dtype and no input but
    itself overlaps it (an element read after it is written)."""
    from .kernels import fused  # noqa: PLC0415

    pattern, xp = layout.pattern, device.xp
    if not device.cuda_kernels and (xp is not np or not fused.cpu_supports(pattern)):
        return None
    inputs = [xp.ascontiguousarray(a).reshape(-1) for a in arrays]
    # In place only where each element is read before it is written, by the same thread: the
    # target may be an input read element by element ("a"), never a row or column one.
    if target is None or target.shape != layout.shape or target.dtype != pattern.dtype or \
            not target.flags.c_contiguous or not all(
                (a is target and kind == "a") or not xp.may_share_memory(a, target)
                for a, (kind, _) in zip(arrays, pattern.inputs)):
        with device.context():  # owns its memory, so a later call may write it in place
            target = xp.empty(layout.shape, pattern.dtype)
    out = target.reshape(-1)
    if device.cuda_kernels:
        from .kernels.cuda import fused as cuda_fused  # noqa: PLC0415 (needs numba-cuda)
        cuda_fused.launch(device, pattern, out, layout.rows, layout.cols, inputs)
    else:
        parallel = parallel and layout.rows * layout.cols >= PARALLEL_MIN_SIZE
        fused.cpu_kernel(pattern, parallel)(out, layout.rows, layout.cols, *inputs)
    return target
