"""Declared primitives and `bind`, the one path every declared op takes.

A primitive is declared once: its name, its implementation (array code given the device, which
holds the backend's array module; a family with hand-written kernels calls its launcher from
there), its abstract evaluation (the output's shape and dtype from the inputs' shapes and dtypes,
computing nothing: what a graph node needs), and its vector-Jacobian product written with gpubk
functions, so that running it while recording gives gradients of gradients: one backward path.
(Run on symbolic tensors it stages the backward into the graph: `K.gradients` of a symbolic loss,
staged_backprop.py.)

`bind(p, *inputs, **params)` takes tensors the Keras function has already checked and converted:
- a symbolic input (or, in graph style, a variable) stages a node, its shape from `abstract`;
- otherwise it computes at once on the inputs' device (in its context: a tensor on gpu:1
  allocates on gpu:1) and, if an input needs a gradient and recording is on, leaves a tape entry
  holding only what the vjp declared it uses. No abstract evaluation on this path.

Example (gpubk/ops/math.py declares its primitives this way):
```python
exp_p = Primitive("exp", elementwise=True)
exp_p.def_impl(lambda device, a: device.xp.exp(a))
exp_p.def_abstract(same_as_input)
exp_p.def_vjp(lambda g, y, needs, x: (g * y,), saves=(), output=True)
```
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import devices
from ..autodiff import record
from ..tensor import SymbolicValueError, Tensor, Variable, as_tensor
from . import trace


class Unstageable(Exception):
    """A vjp needs a dimension its graph leaves unknown (spatial sizes of a convolution over
    an unknown image size): `K.gradients` then stages a node that takes that gradient when the
    graph is evaluated, on the tape (staged_backprop's recomputed gradient)."""


def static(shape: tuple) -> tuple:
    """`shape` for a vjp that needs every dimension known (always so eagerly)."""
    if None in shape:
        raise Unstageable(f"a vjp needs the unknown dimensions of {shape}")
    return shape


class Aval:
    """What a vjp gets for an input it did not save (and what abstract evaluation reads): the
    shape and dtype, no buffer."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple, dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


class Primitive:
    """One operation gpubk can compute, record, differentiate and stage (see the module)."""

    __slots__ = ("name", "elementwise", "remembers_input", "composite", "effect",
                 "differentiable", "impl", "abstract", "vjp", "saves", "saves_output",
                 "impl_into", "into_shape", "may_view", "_backward", "__weakref__")

    def __init__(self, name: str, elementwise: bool = False, remembers_input: bool = False,
                 composite: bool = False, effect: str | None = None,
                 differentiable: tuple | None = None) -> None:
        self.name = name
        self.elementwise = elementwise
        # A composite's impl takes tensors (not arrays) and runs gpubk functions, which record
        # themselves: a loop over a traced sub-graph, a loss checked on the host. Its inputs
        # may be lists of tensors; its abstract evaluation may give a structure (a list or
        # tuple of (shape, dtype) pairs), staged as one node per tensor. It is bound with
        # `bind_composite`.
        self.composite = composite
        # What an evaluation does besides computing a value: "update" (a composite assigning
        # its first input, a variable: a K.function runs its nodes after the outputs),
        # "print", or "random" (a new draw each time). Such a node is never merged with an
        # equal-looking one nor folded to a constant (plan.py).
        self.effect = effect
        # For a composite without a vjp: the arguments its gradient reaches (None: all), taken
        # by rerunning it with recording on (staged_backprop's recomputed gradient).
        self.differentiable = differentiable
        # Whether an eager output remembers (this primitive, its first input): a softmax or
        # sigmoid output's logits, from which crossentropy works exactly. (A graph node has
        # them as its op and first input.)
        self.remembers_input = remembers_input
        # Whether the value may share memory with an input (a view, or the input itself): an
        # elementwise op's value is new memory unless it says otherwise (buffers.py).
        self.may_view = not elementwise
        self.impl: Callable | None = None      # (device, *arrays, **params) -> array
        # Where the value can be written into a given array (a K.function's kept buffers):
        # impl_into(device, out, *arrays, **params) writes it into `out`, whose shape is
        # into_shape(*arrays, **params) (None: not on these arrays; `impl` runs instead).
        self.impl_into: Callable | None = None
        self.into_shape: Callable | None = None
        self.abstract: Callable | None = None  # (*avals, **params) -> (shape, dtype)
        self.vjp: Callable | None = None       # (g, y, needs, *inputs, **params) -> grads
        self.saves: tuple = ()                 # the inputs the vjp reads (others: their Aval)
        self.saves_output = False              # whether the vjp reads the output y
        self._backward = None

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"

    @property
    def __name__(self) -> str:  # graph nodes are named after their op
        return self.name

    def formula(self) -> Callable:
        """An elementwise primitive's scalar formula (`kernels/formulas.py`), from which kernels
        are generated: fused ones too. Loaded on first use (the formulas module imports Numba)."""
        if not self.elementwise:
            raise TypeError(f"{self.name}: not an elementwise primitive; it has no formula")
        from ..kernels import formulas  # noqa: PLC0415 (lazy: importing gpubk loads no Numba)
        return formulas.SCALAR[self.name]

    def def_impl(self, fn: Callable) -> Callable:
        self.impl = fn
        return fn

    def def_impl_into(self, fn: Callable, shape: Callable) -> Callable:
        """`fn(device, out, *arrays, **params)` writes the value into `out`, an array of
        shape `shape(*arrays, **params)` and the node's dtype (see `impl_into`)."""
        self.impl_into, self.into_shape = fn, shape
        return fn

    def def_abstract(self, fn: Callable) -> Callable:
        self.abstract = fn
        return fn

    def def_vjp(self, fn: Callable, saves: tuple = (), output: bool = False) -> Callable:
        """`fn(g, y, needs, *inputs, **params)` returns one gradient (or None) per input, with
        that input's shape; inputs not in `saves` arrive as their Aval, y only with `output`."""
        self.vjp, self.saves, self.saves_output = fn, tuple(saves), output

        def backward(g, y, needs, params, *inputs):
            return fn(g, y, needs, *inputs, **params)
        self._backward = backward
        return fn

    def __call__(self, *inputs, **params):
        if self.composite:
            return bind_composite(self, *inputs, **params)
        return bind(self, *inputs, **params)


def bind(p: Primitive, *inputs, **params):
    """Applies primitive `p` to tensors (or symbolic tensors) `inputs`; see the module."""
    # The hot case first: one or two plain tensors (not variables, not symbolic) on the host.
    if len(inputs) == 2:
        first, second = inputs
        if first.__class__ is Tensor and second.__class__ is Tensor and \
                first.device.xp is np:
            device = first.device
            data = p.impl(device, first.data, second.data, **params) if params else \
                p.impl(device, first.data, second.data)
            if not (first._rg or second._rg or p.remembers_input):
                return Tensor(data, device)
            return _output(p, data, device, inputs, params)
    elif len(inputs) == 1:
        first = inputs[0]
        if first.__class__ is Tensor and first.device.xp is np:
            device = first.device
            data = p.impl(device, first.data, **params) if params else \
                p.impl(device, first.data)
            if not (first._rg or p.remembers_input):
                return Tensor(data, device)
            return _output(p, data, device, inputs, params)
    for t in inputs:
        if t.__class__ is not Tensor and (getattr(t, "_symbolic", False) or (
                trace.graph_style and isinstance(t, Variable) and trace.staging())):
            return trace.stage(p, inputs, params)
    device = inputs[0].device
    if device.xp is np:
        data = p.impl(device, *[t.data for t in inputs], **params)
    else:  # allocate on the inputs' device (gpu:1 stays on gpu:1)
        with device.context():
            data = p.impl(device, *[t.data for t in inputs], **params)
    return _output(p, data, device, inputs, params)


def bind_composite(p: Primitive, *inputs, **params):
    """Applies composite primitive `p` (see Primitive) to `inputs`, tensors or (possibly
    nested) lists of them: staged if one is symbolic (or, in graph style, a variable), else
    its impl runs on them."""
    if _stages(inputs):
        return trace.stage(p, inputs, params)
    return p.impl(*inputs, **params)


def _stages(value) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_stages(v) for v in value)
    return getattr(value, "_symbolic", False) or (
        trace.graph_style and isinstance(value, Variable) and trace.staging())


def _output(p: Primitive, data, device, inputs: tuple, params: dict) -> Tensor:
    """The output tensor, with a tape entry when an input needs a gradient (and recording is
    on: `record` checks)."""
    for t in inputs:
        if t._rg:
            break
    else:
        return _constant(p, data, device, inputs[0])
    if p.vjp is None or data.dtype.kind != "f":  # piecewise constant (comparisons, rounding,
        return _constant(p, data, device, inputs[0])  # integer results): no gradient flows
    saves = p.saves
    out = record(data, inputs, p._backward, (params, *[
        t if i in saves else Aval(t.shape, t.dtype) for i, t in enumerate(inputs)]),
        p.saves_output)
    if p.remembers_input:
        out._logits = (p, inputs[0])
    return out


def _constant(p: Primitive, data, device, first) -> Tensor:
    """An output no gradient flows through."""
    out = Tensor(data, device)
    if p.remembers_input:
        out._logits = (p, first)
    return out


def shaped_like(name: str, impl: Callable, vjp: Callable) -> Primitive:
    """A variant of a primitive whose `shape` param is the runtime shape of a second input,
    `like` (staged gradients of a placeholder with unknown dimensions, as TensorFlow's
    shape-taking gradient ops): `impl(device, a, shape=..., **params)` as the original;
    `vjp(g, x, **params)` the gradient of the first input; `like` gets none."""
    p = Primitive(name)
    p.def_impl(lambda device, a, like, **params: impl(device, a, shape=like.shape, **params))
    p.def_abstract(lambda x, like, **params: (like.shape, x.dtype))
    p.def_vjp(lambda g, y, needs, x, like, **params: (vjp(g, x, **params), None))
    return p


def is_symbolic(x) -> bool:
    """Whether `x` is a symbolic tensor (a placeholder, or a node built on one)."""
    return getattr(x, "_symbolic", False)


def as_input(x, func: str, dtype=None):
    """An argument of a Keras function as what `bind` takes: tensors and symbolic tensors pass
    (a tensor cast to `dtype` if given), anything else becomes a tensor on the current device."""
    if x.__class__ is Tensor and dtype is None or is_symbolic(x):
        return x
    try:
        return as_tensor(x, func, dtype=dtype)
    except SymbolicValueError:  # a list holding symbolic tensors
        raise TypeError(f"{func}: got a {type(x).__name__} holding symbolic tensors; expected a "
                        "tensor (join them with K.stack or K.concatenate first)") from None


def device_of(x):
    """The device of a tensor; for a symbolic tensor, the current device (where it will be
    evaluated)."""
    return x.device if isinstance(x, Tensor) else devices.current()


def same_as_input(x, *args, **params) -> tuple:
    """Abstract evaluation of a unary elementwise primitive: its input's shape and dtype."""
    return x.shape, x.dtype


def broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether `shape` broadcasts to `target` (NumPy rules; a None dimension, unknown, may)."""
    if len(shape) > len(target):
        return False
    lead = len(target) - len(shape)
    return all(n is None or m is None or n == 1 or n == m
               for n, m in zip(shape, target[lead:]))


def broadcast_shapes(func: str, *shapes) -> tuple:
    """NumPy broadcasting of shapes that may hold unknown (None) dimensions."""
    ndim = max(len(s) for s in shapes)
    result = []
    for i in range(ndim):
        dims = {s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 0} - {1}
        known = dims - {None}
        if len(known) > 1:
            raise ValueError(f"{func}: shapes {', '.join(map(str, shapes))} do not broadcast; "
                             "expected equal or size-1 dims")
        result.append(known.pop() if known else (None if None in dims else 1))
    return tuple(result)

