"""The buffer plan of a K.function: which values are written into buffers kept from earlier
calls, and which values share one.

A step that can write its value into a given array (a fused group, a matmul: `Step.into`) is
given a key; values whose lifetimes do not overlap and whose shapes and dtypes (as the graph
knows them) are equal share one, so that a call needs no more buffers than it has values alive
at once. A value lives from its step to the last step reading it, or reading a value that may be
a view of it (`Primitive.may_view`). The buffers stay with the function between calls
(`Workspace`): a training step keeps the same addresses (what CUDA-graph capture needs), and
large values skip the page faults of fresh memory. On the host only large values are kept
(`HOST_MIN_BYTES`): smaller ones cost as much in a new array.

Reuse is safe whatever holds on to a buffer: a buffer is written only when nothing but the call
refers to it (its reference count: an output the caller kept, a view of it, a tensor a runner
kept, a DLPack export), else the step writes a new one, which the key keeps from then on. A
call running while another holds the workspace (another thread's) allocates as if it had none.
The values of updates get no key: their variable takes the buffer. `K.clear_session()` drops
every function's kept buffers. On a GPU, kernels are ordered by their stream: calls from threads
on different non-default CuPy streams could write a kept buffer that a kernel queued by the
other still reads (CuPy's pool would order that reuse).
"""
from __future__ import annotations

import math
import sys
import threading
import weakref

import numpy as np

# On the host a value is written into a kept buffer from this many bytes: glibc maps larger
# blocks afresh at each allocation (its largest mmap threshold), so that a new array pays a page
# fault per 4 KB page; smaller ones come back from its free lists. Measured here (NumPy, float32,
# a multiply into a new array against into the same one, us): 512 KB 16.4 / 16.2, 4 MB 128 / 129,
# 16 MB 1841 / 1952, 32 MB 6805 / 4107, 64 MB 12699 / 8835. On a CUDA device every value is
# (CuPy's pool makes either cheap; kept buffers give the stable addresses graph capture needs).
HOST_MIN_BYTES = 32 << 20


def plan_buffers(steps: list, keep: set, exclude: set) -> None:
    """Gives each step that can write into a kept buffer (`step.into`, a factory of runners
    by key) a key (`step.buffer`: negative ints, as values' keys are ids) and its runner.
    `keep`: ids of values alive to the end of a call (outputs, updates' arguments); `exclude`:
    ids of values that must get no key."""
    end = lifetimes_with_views(steps, keep)
    free: dict = {}    # (shape, dtype) -> keys whose last value is dead
    busy: list = []    # (end, kind, key) of the keys in use
    count = 0
    for i, step in enumerate(steps):
        for entry in [b for b in busy if b[0] < i]:
            busy.remove(entry)
            free.setdefault(entry[1], []).append(entry[2])
        if step.into is None or id(step.node) in exclude:
            continue
        kind = (step.node.shape, step.node.dtype)
        if free.get(kind):
            key = free[kind].pop()
        else:
            count += 1
            key = -count
        step.run, step.buffer = step.into(key), key
        busy.append((end[id(step.node)], kind, key))


def lifetimes_with_views(steps: list, keep: set) -> dict:
    """For each step's value (by id), the index of the last step that may read its memory:
    reading it, or reading a value that may be a view of it. Values in `keep` live to the end."""
    readers: dict = {}
    for j, step in enumerate(steps):
        for key in step.reads:
            readers.setdefault(key, []).append(j)
    end: dict = {}
    for i in reversed(range(len(steps))):
        key = id(steps[i].node)
        last = len(steps) if key in keep else i
        for j in readers.get(key, ()):
            last = max(last, end[id(steps[j].node)] if _may_view(steps[j]) else j)
        end[key] = last
    return end


def gpu_only(step) -> bool:
    """Whether `step` writes into its kept buffer on a GPU only (a primitive's `impl_into`)."""
    return getattr(step.node.op, "impl_into", None) is not None


def _may_view(step) -> bool:
    """Whether `step`'s value may share memory with what it reads: a common subexpression's
    (the value it repeats), else not a writer's (new memory or a kept buffer), nor that of a
    primitive saying so (`Primitive.may_view`)."""
    return step.note.startswith("same as") or \
        step.into is None and getattr(step.node.op, "may_view", True)


# Where a call's values hold its function's workspace, and whether the call has its buffers
# (lent on the first write into one: a call writing none pays nothing).
WORKSPACE, LENT = "workspace", "lent"


class Workspace:
    """The buffers a function keeps between calls (key -> array), lent to one call at a time:
    a call's values hold the workspace under WORKSPACE; the first `take` moves the buffers into
    them (`lend_to`), and `keep` takes back what the call left under their keys."""

    __slots__ = ("keys", "buffers", "_lock", "__weakref__")

    def __init__(self, steps: list) -> None:
        self.keys = tuple(sorted({step.buffer for step in steps if step.buffer is not None}))
        self.buffers: dict = {}
        self._lock = threading.Lock()
        if self.keys:
            _workspaces.add(self)

    def release(self) -> None:
        """Drops the kept buffers (a later call allocates anew), unless a call has them."""
        if self._lock.acquire(blocking=False):
            self.buffers.clear()
            self._lock.release()

    def lend_to(self, values: dict) -> bool:
        """Whether the call of `values` has the buffers: lent now, unless another call has
        them (then this call allocates its own)."""
        lent = values.get(LENT)
        if lent is None:
            lent = values[LENT] = self._lock.acquire(blocking=False)
            if lent:
                values.update(self.buffers)
                self.buffers.clear()  # while lent, a buffer's only holder is the call's values
        return lent

    def keep(self, values: dict) -> None:
        """After a call: takes back the buffers it left under their keys, if it had them."""
        if values.get(LENT):
            for key in self.keys:
                buffer = values.get(key)
                if buffer is not None:
                    self.buffers[key] = buffer
            self._lock.release()

    def nbytes(self) -> int:
        """The memory held between calls (0 while a call has the buffers)."""
        return sum(buffer.nbytes for buffer in list(self.buffers.values()))  # a call may lend


_workspaces: weakref.WeakSet = weakref.WeakSet()  # of the functions alive


def release_all() -> None:
    """Drops the buffers every function keeps (K.clear_session)."""
    for workspace in list(_workspaces):
        workspace.release()


def worth_keeping(device, shape: tuple, dtype) -> bool:
    """Whether a value of `shape` and `dtype` on `device` is written into a kept buffer."""
    return device.cuda_kernels or math.prod(shape) * dtype.itemsize >= HOST_MIN_BYTES


def take(values: dict, key: int, shape: tuple, dtype, device):
    """The buffer under `key` (removed from `values`), if the call has its function's buffers
    (`Workspace.lend_to`), and it is an array of `device` (its kind, and on a GPU its index) of
    `shape` and `dtype` that nothing else refers to; else None (the caller writes a new one,
    and leaves it under `key` all the same)."""
    workspace = values.get(WORKSPACE)
    if workspace is None or not workspace.lend_to(values):
        return None
    buffer = values.pop(key, None)
    if buffer is None or buffer.__class__ is not device.xp.ndarray or buffer.shape != shape or \
            buffer.dtype != dtype or not unshared(buffer):
        return None
    if device.xp is not np and buffer.device.id != device.index:  # another GPU's
        return None
    return buffer


def unshared(array, holders: int = 0) -> bool:
    """Whether nothing refers to `array` but the caller's local variable and `holders` others
    (a variable's attribute: 1)."""
    return sys.getrefcount(array) <= _ALONE + holders


def _count(array) -> int:  # called as `unshared` is, so that it counts alike
    return sys.getrefcount(array)


def _alone() -> int:
    """What `unshared` counts of an object held by one local variable only (calibrated: the
    count depends on the interpreter). Measured with no trace or profile function set: one
    that reads `frame.f_locals` (a debugger, pysnooper, a profiler) would add references, and
    every buffer would then look free with as many other holders."""
    tracer, profiler = sys.gettrace(), sys.getprofile()
    sys.settrace(None)
    sys.setprofile(None)
    try:
        array = object()
        return _count(array)
    finally:
        sys.setprofile(profiler)
        sys.settrace(tracer)


_ALONE = _alone()
