"""Running a K.function's plan on raw arrays: no Tensor built per step, no dispatch per op.

A step of a plain primitive (not a composite, no caller-given runner) runs as
`impl(device, *arrays, **params)`, its inputs read straight from the values of earlier steps
(raw device arrays), from a fed placeholder, or from a variable's or constant's buffer. The
device is `bind`'s: that of the node's first input, known when the plan is made (a fixed
tensor's device) or the call's device (what the placeholders are fed on).

Steps that work on tensors (loops and conditions holding sub-graphs, losses checked on the host,
updates, prints, the recordings staged_backprop shares) keep their runner; `boxed` adapts it: it
sees the values through `Boxed`, which wraps the raw ones as tensors when read, and its result
(a tensor, or a structure of them) is stored as it is. So are the primitives whose first input
is such a result: they run through `bind`, on that tensor's device, known only when run.

Every runner here is `run(values, device) -> value`: `values` maps node ids to values, `device`
is the call's.
"""
from __future__ import annotations

import numpy as np

from .buffers import take
from .core.primitive import Primitive
from .symbolic import Symbol
from .tensor import Tensor


def raw_runner(node: Symbol, raw: set, fixed: dict):
    """The raw runner of `node`, or None when it needs tensors (see the module). `raw`: the
    ids of the nodes whose values are raw arrays; `fixed`: node id -> the device its value is
    on, for nodes whose device does not depend on the call (see `node_device`)."""
    op = node.op
    if not isinstance(op, Primitive) or op.composite or op.impl is None or \
            not all(isinstance(a, (Symbol, Tensor)) for a in node.args):
        return None
    first = node.args[0] if node.args else None
    if isinstance(first, Symbol) and id(first) not in raw:
        return None  # after a loop or condition: on its result's device, known when run
    getters = [getter(a, raw) for a in node.args]
    device = node_device(node, fixed)
    impl, params = op.impl, node.kwargs
    if device is not None and device.xp is not np:  # a tensor's device other than the call's
        def run(values, _):
            with device.context():
                return impl(device, *[get(values) for get in getters], **params)
        return run
    if len(getters) == 1:
        (get,) = getters
        if device is None:
            return lambda values, dev: _array(impl(dev, get(values), **params))
        return lambda values, _: _array(impl(device, get(values), **params))
    if len(getters) == 2:
        get_a, get_b = getters
        if device is None:
            return lambda values, dev: _array(impl(dev, get_a(values), get_b(values), **params))
        return lambda values, _: _array(impl(device, get_a(values), get_b(values), **params))
    if device is None:
        return lambda values, dev: _array(impl(dev, *[g(values) for g in getters], **params))
    return lambda values, _: _array(impl(device, *[g(values) for g in getters], **params))


def into_runner(node: Symbol, raw: set, fixed: dict, plain):
    """For a node with a raw runner (`plain`) whose primitive can write into a given array
    (`Primitive.impl_into`): a factory `key -> runner` writing the value into the buffer kept
    under `values[key]` on a CUDA device (buffers.py) and leaving there what it wrote; on the
    host the runner is `plain` (a product large enough for fresh memory to cost computes far
    longer than its page faults take). None for other nodes."""
    op = node.op
    if op.impl_into is None or id(node) not in raw:
        return None
    getters = [getter(a, raw) for a in node.args]
    device, dtype, params = fixed.get(id(node)), node.dtype, node.kwargs
    impl, impl_into, into_shape = op.impl, op.impl_into, op.into_shape

    def factory(key: int):
        def run(values, call_device):
            where = device or call_device
            if not where.cuda_kernels:
                return plain(values, call_device)
            with where.context():
                arrays = [get(values) for get in getters]
                shape = into_shape(*arrays, **params)
                if shape is None or arrays[0].dtype != dtype:  # not on these arrays
                    return impl(where, *arrays, **params)
                out = take(values, key, shape, dtype, where)
                if out is None:
                    out = where.xp.empty(shape, dtype)
                impl_into(where, out, *arrays, **params)
            values[key] = out
            return out
        return run
    return factory


def node_device(node: Symbol, fixed: dict):
    """The device `node`'s value is on when it does not depend on the call: that of its first
    input, a tensor's, or an earlier node's (in `fixed`); None for the call's device. Records
    the answer in `fixed`."""
    first = node.args[0] if node.args else None
    device = first.device if isinstance(first, Tensor) else \
        fixed.get(id(first)) if isinstance(first, Symbol) else None
    if device is not None:
        fixed[id(node)] = device
    return device


def _array(value):
    """NumPy returns scalars for 0-d results: keep arrays, as Tensor does."""
    if value.__class__ is np.ndarray or not isinstance(value, np.generic):
        return value
    return np.asarray(value)


def getter(arg, raw: set):
    """How a raw runner reads one input: a raw value, a tensor-valued step's buffer, or a
    variable's or constant's buffer (read at each call: an update replaces a variable's)."""
    if isinstance(arg, Symbol):
        key = id(arg)
        if key in raw:
            return lambda values: values[key]
        return lambda values: values[key].data
    return lambda values: arg.data


class Boxed:
    """The values as a tensor-valued runner reads them: raw arrays wrapped as tensors on their
    device (the call's, or a fixed one), anything else as stored; writes go to the values."""

    __slots__ = ("values", "raw", "fixed", "device")

    def __init__(self, values: dict, raw: set, fixed: dict, device) -> None:
        self.values, self.raw, self.fixed, self.device = values, raw, fixed, device

    def __getitem__(self, key):
        value = self.values[key]
        if key in self.raw:
            return Tensor(value, self.fixed.get(key, self.device))
        return value

    def __setitem__(self, key, value) -> None:
        self.values[key] = value

    def __delitem__(self, key) -> None:
        del self.values[key]


def boxed(run, raw: set, fixed: dict):
    """A runner over tensors (`run(values)`), as a raw plan's runner."""
    return lambda values, device: run(Boxed(values, raw, fixed, device))

