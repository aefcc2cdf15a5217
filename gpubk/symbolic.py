"""Symbolic tensors: placeholders, and the nodes of ops applied to them (the graph IR).

Graph style (core/trace.py) starts with the first placeholder and ends with `K.clear_session()`;
in it, an op given a variable builds a node too, which reads the variable's value each time it is
evaluated (TensorFlow 1's semantics).

A node (`Symbol`) holds a declared primitive, its inputs (nodes, variables, tensors; a
composite's may nest in lists), its params, and its shape and dtype from the primitive's
abstract evaluation (`bind` stages it through `_stage_primitive`): nothing is run to learn a
shape, and unknown dimensions are None. A structured result (K.rnn's, K.ctc_decode's) is a node
for the call and one `pick` node per tensor of it. `K.function` (graph.py) evaluates nodes with
fed values; `staged_backprop.py` stages their gradients.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np

from . import devices
from .config import floatx
from .core import trace
from .core.primitive import Primitive, bind, bind_composite
from .dtypes import as_dtype
from .ops.validate import check_int
from .tensor import Operators, SymbolicValueError, Tensor
from .traversal import topological

_ids = itertools.count(1)
_serials = itertools.count()


class Symbol(Operators):
    """A symbolic tensor: `op(*args, **kwargs)` once its placeholders are fed."""

    __slots__ = ("op", "args", "kwargs", "shape", "dtype", "name", "placeholders", "serial",
                 "__weakref__")
    _symbolic = True

    def __init__(self, op, args, kwargs, shape, dtype, name, placeholders) -> None:
        self.op, self.args, self.kwargs = op, args, kwargs
        self.shape, self.dtype, self.name = shape, dtype, name
        self.placeholders = placeholders  # the placeholders it depends on (a tuple)
        self.serial = next(_serials)  # creation order (what a traced function built is later)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    # What needs a value finds none: a clear error (declared ops never reach for one).
    @property
    def data(self):
        raise self._no_value()

    @property
    def device(self):
        raise self._no_value()

    def __bool__(self):
        raise self._no_value()

    def __array__(self, *args, **kwargs):
        raise self._no_value()

    def _no_value(self) -> SymbolicValueError:
        return SymbolicValueError(f"'{self.name}' is a symbolic tensor of shape {self.shape}: it "
                                  "has no value until a K.function feeds its placeholders")

    def __len__(self) -> int:
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"len() of symbolic tensor '{self.name}' with shape {self.shape}")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<gpubk.Symbol '{self.name}' shape={self.shape} dtype={self.dtype.name}>"

    def evaluate(self, values: dict):
        """The op applied to its arguments, with each symbol replaced by values[id(symbol)]."""
        return self.op(*substitute(self.args, values), **substitute(self.kwargs, values))

    def no_value_error(self, func: str) -> TypeError:
        missing = [p for p in self.placeholders if p.default is None]
        names = ", ".join(f"'{p.name}' (shape {p.shape})" for p in missing)
        return TypeError(f"{func}: '{self.name}' depends on placeholder {names}, which has no "
                         "value; feed it through K.function(inputs, outputs)")


def next_serial() -> int:
    """A serial number below those of every node made after this call (see Symbol.serial)."""
    return next(_serials)


class Placeholder(Symbol):
    """A symbolic input: a dtype, a shape with `None` for unknown dimensions, and a name; a
    placeholder with a `default` need not be fed."""

    __slots__ = ("default",)

    def __init__(self, shape: tuple, dtype, name: str, default=None) -> None:
        super().__init__(None, (), {}, shape, dtype, name, ())
        self.placeholders = (self,)
        self.default = default

    def __repr__(self) -> str:
        return f"<gpubk.Placeholder '{self.name}' shape={self.shape} dtype={self.dtype.name}>"


def placeholder(shape=None, ndim: int | None = None, dtype=None, sparse: bool = False,
                name: str | None = None, ragged: bool = False) -> Placeholder:
    """Keras: `K.placeholder(shape=None, ndim=None, dtype=None, sparse=False, name=None)`.

    Instantiates a placeholder of `shape` (`None` for unknown dimensions) or, if no shape is
    given, of rank `ndim` with all dimensions unknown. Ops on it build a graph that
    `K.function` evaluates.

    Example:
    ```python
    x = K.placeholder(shape=(None, 4, 5))
    K.int_shape(x)  # (None, 4, 5)
    ```
    """
    func = "placeholder"
    if sparse or ragged:
        raise ValueError("placeholder: sparse and ragged placeholders are not supported")
    if shape is None:
        if ndim is None:
            raise ValueError("placeholder: expected `shape` or `ndim`, got neither")
        shape = (None,) * check_int(ndim, func, "ndim", 0)
    elif not isinstance(shape, (list, tuple)):
        raise TypeError(f"placeholder: shape must be a tuple of ints or None, got "
                        f"{type(shape).__name__}")
    shape = tuple(None if n is None else check_int(n, func, "shape entry", 0) for n in shape)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"placeholder: name must be a str, got {type(name).__name__}")
    result = Placeholder(shape, as_dtype(dtype or floatx(), func),
                         name or f"Placeholder_{next(_ids)}")
    trace.begin_graph_style()  # only once the placeholder exists: a bad call changes nothing
    return result


# -- building ------------------------------------------------------------------------------------
def leaves(obj) -> list:
    """The leaves of a (nested) structure of lists, tuples and dicts, in order."""
    if isinstance(obj, (list, tuple)):
        return [x for o in obj for x in leaves(o)]
    if isinstance(obj, dict):
        return [x for o in obj.values() for x in leaves(o)]
    return [obj]


def substitute(obj, values: dict):
    """`obj` with every Symbol inside (lists, tuples, dicts too) replaced by values[id]."""
    if isinstance(obj, Symbol):
        return values[id(obj)]
    if isinstance(obj, (list, tuple)):
        return type(obj)(substitute(o, values) for o in obj)
    if isinstance(obj, dict):
        return {k: substitute(v, values) for k, v in obj.items()}
    return obj


def symbols_in(obj) -> list:
    """The symbols among `obj`'s leaves, in order."""
    return [x for x in leaves(obj) if isinstance(x, Symbol)]


def pick(value, path: tuple):
    """The part of a structured result (lists and tuples of tensors) at `path`."""
    for i in path:
        value = value[i]
    return value


def is_aval(declared) -> bool:
    """Whether an abstract evaluation's answer is one (shape, dtype) pair, rather than a
    structure of them."""
    return isinstance(declared, tuple) and len(declared) == 2 and \
        isinstance(declared[1], np.dtype)


def _stage_primitive(primitive, inputs: tuple, params: dict) -> Symbol:
    """A node for a declared primitive: shape and dtype from its abstract evaluation."""
    if primitive.composite:
        return _stage_composite(primitive, inputs, params)
    shape, dtype = primitive.abstract(*inputs, **params)
    placeholders = tuple(dict.fromkeys(p for s in inputs if isinstance(s, Symbol)
                                       for p in s.placeholders))
    return Symbol(primitive, inputs, params, tuple(shape), np.dtype(dtype),
                  f"{primitive.name}_{next(_ids)}", placeholders)


def _stage_composite(primitive, inputs: tuple, params: dict):
    """A composite's node (its inputs may nest); a structured result is a node for the call
    and one picking each tensor of it."""
    declared = primitive.abstract(*inputs, **params)
    placeholders = tuple(dict.fromkeys(p for s in symbols_in(inputs) for p in s.placeholders))
    name = f"{primitive.name}_{next(_ids)}"
    if is_aval(declared):
        shape, dtype = declared
        return Symbol(primitive, inputs, params, tuple(shape), np.dtype(dtype), name,
                      placeholders)
    call = Symbol(primitive, inputs, params, (), np.dtype(object), name, placeholders)

    def part(declared, path):
        if is_aval(declared):
            shape, dtype = declared
            return Symbol(pick, (call, path), {}, tuple(shape), np.dtype(dtype),
                          f"{name}{list(path)}", placeholders)
        return type(declared)(part(d, path + (i,)) for i, d in enumerate(declared))
    return part(declared, ())


trace.install_stager(_stage_primitive)


# -- evaluation --------------------------------------------------------------------------------
def topological_symbols(roots: list) -> list:
    """Every symbol the roots need, each after the symbols in its arguments."""
    return topological(roots, lambda s: reversed(symbols_in((s.args, s.kwargs))))


def runner(symbol: Symbol):
    """`symbol.evaluate`, specialised once: for the usual flat arguments, the symbols' slots
    are found at build time instead of searched at every call."""
    op, args, kwargs = symbol.op, symbol.args, symbol.kwargs
    nested = any(isinstance(a, (list, tuple, dict)) and symbols_in(a) for a in args)
    if nested or symbols_in(kwargs):
        return symbol.evaluate
    holes = [(i, id(a)) for i, a in enumerate(args) if isinstance(a, Symbol)]
    template = list(args)
    if isinstance(op, Primitive):  # straight to bind, one call less
        primitive, op = op, functools.partial(bind_composite if op.composite else bind, op)
        if len(args) in (1, 2) and not primitive.composite:
            return _bind_runner(primitive, args, kwargs)

    def run(values):
        filled = template.copy()
        for i, key in holes:
            filled[i] = values[key]
        return op(*filled, **kwargs)
    return run


def _bind_runner(p, args: tuple, params: dict):
    """The runner of a primitive node of one or two inputs, each a node (its value read) or a
    variable or tensor (passed as it is)."""
    if len(args) == 1:
        (a,) = args
        if isinstance(a, Symbol):
            key = id(a)
            return lambda values: bind(p, values[key], **params)
        return lambda values: bind(p, a, **params)
    a, b = args
    ka, kb = (id(x) if isinstance(x, Symbol) else None for x in args)
    if ka is not None and kb is not None:
        return lambda values: bind(p, values[ka], values[kb], **params)
    if ka is not None:
        return lambda values: bind(p, values[ka], b, **params)
    if kb is not None:
        return lambda values: bind(p, a, values[kb], **params)
    return lambda values: bind(p, a, b, **params)


def check_feed(p: Placeholder, value, func: str) -> Tensor:
    """A fed value as a tensor of the placeholder's dtype, or an error naming the placeholder."""
    dev = devices.current()
    if isinstance(value, Tensor):
        data = value.numpy() if value.device is not dev else value.data
    elif hasattr(value, "__cuda_array_interface__"):
        data = dev.put(value)
    else:
        data = np.asarray(value)
    if data.ndim != len(p.shape):
        raise ValueError(f"{func}: placeholder '{p.name}' has rank {len(p.shape)} (shape "
                         f"{p.shape}) but was fed a value of shape {data.shape}")
    for i, (want, got) in enumerate(zip(p.shape, data.shape)):
        if want is not None and want != got:
            raise ValueError(f"{func}: placeholder '{p.name}' has shape {p.shape} but was fed "
                             f"a value of shape {data.shape} (dimension {i}: {got} != {want})")
    if not np.can_cast(data.dtype, p.dtype, casting="same_kind"):
        raise TypeError(f"{func}: placeholder '{p.name}' is {p.dtype.name} and cannot take a "
                        f"value of dtype {data.dtype}")
    return Tensor(dev.put(data.astype(p.dtype, copy=False)), dev)


def evaluate(symbol: Symbol, func: str) -> Tensor:
    """A symbol whose placeholders all have defaults (the learning phase), or that depends on
    variables only, evaluated now (the variables' current values)."""
    if any(p.default is None for p in symbol.placeholders):
        raise symbol.no_value_error(func)
    values = {id(p): check_feed(p, p.default, func) for p in symbol.placeholders}
    with trace.evaluating():
        for s in topological_symbols([symbol]):
            if not isinstance(s, Placeholder):
                values[id(s)] = s.evaluate(values)
    return values[id(symbol)]
