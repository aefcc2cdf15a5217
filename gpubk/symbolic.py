"""Symbolic tensors: placeholders, and the results of ops applied to them.

Graph style (core/trace.py) starts with the first placeholder and ends with `K.clear_session()`;
in it, an op given a variable builds a node too, which reads the variable's value each time it is
evaluated (TensorFlow 1's semantics).

An op given a symbolic input does not compute: it returns a `Symbol`, a node holding the op and
its arguments. A declared primitive's node gets its shape and dtype from the primitive's abstract
evaluation (`bind` stages it through `_stage_primitive`). The ops not yet declared (their
`traced` wrapper) learn theirs by running on small stand-in values: every unknown dimension 2
in one, 3 in another; the dimensions that differ are unknown. If neither runs, the sizes found among the op's other arguments are tried too (a batch
of constants fixes the batch size); an op that fails with all of them has a certain shape error,
raised now. `K.function` (graph.py) evaluates symbols with fed values.
"""
from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np

from . import autodiff, devices
from .config import floatx
from .core import trace
from .core.primitive import Primitive, bind, bind_composite
from .dtypes import as_dtype
from .ops.validate import check_int
from .tensor import Operators, SymbolicInput, Tensor, Variable
from .traversal import topological

_ids = itertools.count(1)
STAND_IN_SIZES = (2, 3)  # what an unknown dimension becomes in each of the two stand-ins


class Symbol(Operators):
    """A symbolic tensor: `op(*args, **kwargs)` once its placeholders are fed."""

    __slots__ = ("op", "args", "kwargs", "shape", "dtype", "name", "_stand_ins",
                 "placeholders", "__weakref__")
    _symbolic = True

    def __init__(self, op, args, kwargs, shape, dtype, name, stand_ins, placeholders) -> None:
        self.op, self.args, self.kwargs = op, args, kwargs
        self.shape, self.dtype, self.name = shape, dtype, name
        self._stand_ins = stand_ins       # unknown-dimension size -> stand-in value (or error)
        self.placeholders = placeholders  # the placeholders it depends on (a tuple)

    def stand_in(self, size: int) -> Tensor:
        """Its value when every unknown dimension of its placeholders is `size` (cached)."""
        if size not in self._stand_ins:
            try:
                self._stand_ins[size] = _run(self.op, self.args, self.kwargs, size)
            except Exception as err:  # noqa: BLE001 (remembered, raised to each caller)
                self._stand_ins[size] = err
        value = self._stand_ins[size]
        if isinstance(value, Exception):
            raise value
        return value

    @property
    def ndim(self) -> int:
        return len(self.shape)

    # Ops reaching for a value find none: the op's `traced` wrapper takes over.
    @property
    def data(self):
        raise SymbolicInput(self.name)

    @property
    def device(self):
        raise SymbolicInput(self.name)

    def __bool__(self):
        raise SymbolicInput(self.name)

    def __array__(self, *args, **kwargs):
        raise SymbolicInput(self.name)

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


class Placeholder(Symbol):
    """A symbolic input: a dtype, a shape with `None` for unknown dimensions, and a name; a
    placeholder with a `default` need not be fed."""

    __slots__ = ("default", "needs_grad")

    def __init__(self, shape: tuple, dtype, name: str, default=None) -> None:
        super().__init__(None, (), {}, shape, dtype, name, {}, ())
        self.placeholders = (self,)
        self.default = default
        self.needs_grad = False  # set when a symbolic gradient is taken with respect to it

    def __repr__(self) -> str:
        return f"<gpubk.Placeholder '{self.name}' shape={self.shape} dtype={self.dtype.name}>"

    def stand_in(self, size: int) -> Tensor:
        if size not in self._stand_ins:
            self._stand_ins[size] = filled(self.shape, self.dtype, size)
        return self._stand_ins[size]


def filled(shape, dtype, size: int) -> Tensor:
    """A stand-in of `shape` (unknown dimensions `size`): 0.5 for floats, 0 otherwise."""
    concrete = tuple(size if n is None else n for n in shape)
    dev = devices.current()
    return Tensor(dev.put(np.full(concrete, 0.5 if dtype.kind == "f" else 0, dtype=dtype)), dev)


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


def has_variable(obj) -> bool:
    """Whether a variable is among `obj`'s leaves."""
    return any(isinstance(x, Variable) for x in leaves(obj))


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


def _run(op, args, kwargs, size: int):
    """`op` on the stand-ins of its symbolic arguments for unknown-dimension `size`."""
    values = {id(s): s.stand_in(size) for s in symbols_in((args, kwargs))}
    with trace.inferring_shapes(), autodiff.no_grad(), np.errstate(all="ignore"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = op(*substitute(args, values), **substitute(kwargs, values))
    if not isinstance(result, Tensor):
        _tensor_paths(result, op)  # a (nested) list or tuple of tensors, or an error
    return result


def _tensor_paths(value, op, prefix: tuple = ()) -> list:
    """(path, tensor) for each tensor of a result that is a (nested) list or tuple of them."""
    if isinstance(value, Tensor):
        return [(prefix, value)]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _tensor_paths(v, op, prefix + (i,))]
    raise TypeError(f"{op.__name__}: cannot be applied to symbolic tensors")


def _replace_tensors(value, make, prefix: tuple = ()):
    """`value`'s structure with each tensor replaced by `make(path)`."""
    if isinstance(value, Tensor):
        return make(prefix)
    return type(value)(_replace_tensors(v, make, prefix + (i,)) for i, v in enumerate(value))


def pick(value, path: tuple):
    """The part of a structured result (lists and tuples of tensors) at `path`."""
    for i in path:
        value = value[i]
    return value


def _candidate_sizes(args, kwargs) -> list:
    """Sizes worth trying for the unknown dimensions: those of the op's other arguments, and
    those its symbolic arguments were built with."""
    sizes = set()
    for leaf in leaves((args, kwargs)):
        shape = getattr(leaf, "shape", None)
        if isinstance(shape, tuple):
            sizes.update(n for n in shape if isinstance(n, int) and n > 1)
        if isinstance(leaf, Symbol):
            sizes.update(k for k, v in leaf._stand_ins.items() if not isinstance(v, Exception))
    return sorted(sizes - set(STAND_IN_SIZES))[:8]


def build(op, args: tuple, kwargs: dict, spec=None) -> Symbol:
    """A Symbol for `op(*args, **kwargs)`, its shape and dtype inferred from stand-ins (or given
    by `spec(*args, **kwargs) -> (shape, dtype)` for ops that must not run at build time)."""
    inputs = symbols_in((args, kwargs))
    placeholders = tuple(dict.fromkeys(p for s in inputs for p in s.placeholders))
    name = f"{op.__name__}_{next(_ids)}"
    if spec is not None:
        declared = spec(*args, **kwargs)
        if is_aval(declared):
            shape, dtype = declared
            stand_ins = {size: filled(shape, dtype, size) for size in STAND_IN_SIZES}
            return Symbol(op, args, kwargs, tuple(shape), dtype, name, stand_ins, placeholders)
        results = {size: _map_avals(declared, lambda a, size=size: filled(*a, size))
                   for size in STAND_IN_SIZES}
        return _structured(op, args, kwargs, name, results, placeholders,
                           lambda path: tuple(pick(declared, path)[0]))
    results, first_error = {}, None
    if not inputs:  # on variables only: every dimension is known, one run tells them
        results = dict.fromkeys(STAND_IN_SIZES, _run(op, args, kwargs, STAND_IN_SIZES[0]))
    sizes = [*STAND_IN_SIZES, *_candidate_sizes(args, kwargs)]
    for size in sizes:  # until two sizes work: the dimensions that differ are unknown
        if len(results) == 2 or len(sizes) > 24:
            break
        try:
            results[size] = _run(op, args, kwargs, size)
        except SymbolicInput:
            raise
        except Exception as err:  # noqa: BLE001 (judged below: certain only if all fail)
            first_error = first_error or err
            continue
        if size not in STAND_IN_SIZES:  # a size that fits: its multiples may fit too
            sizes += [2 * size, 3 * size]
    if not results:  # wrong whatever the unknown dimensions are: say so now
        raise type(first_error)(f"{first_error} (building {op.__name__} on symbolic input "
                                f"{', '.join(repr(s.name) + ' ' + str(s.shape) for s in inputs)})"
                                ) from None
    first = next(iter(results.values()))
    if isinstance(first, Tensor):
        return Symbol(op, args, kwargs, _joint_shape(op, results), first.dtype, name, results,
                      placeholders)
    return _structured(op, args, kwargs, name, results, placeholders)


def is_aval(declared) -> bool:
    """Whether a spec's answer is one (shape, dtype) pair, rather than a structure of them."""
    return isinstance(declared, tuple) and len(declared) == 2 and \
        isinstance(declared[1], np.dtype)


def _map_avals(declared, make):
    if is_aval(declared):
        return make(declared)
    return type(declared)(_map_avals(d, make) for d in declared)


def _structured(op, args, kwargs, name: str, results: dict, placeholders: tuple,
                shape_of=None) -> list | tuple:
    """A structured result (rnn, ctc_decode): a node for the call, and one picking each tensor
    (its shape declared by `shape_of(path)`, or inferred from the stand-in results)."""
    call = Symbol(op, args, kwargs, (), np.dtype(object), name, results, placeholders)
    parts_by_size = {size: dict(_tensor_paths(value, op)) for size, value in results.items()}
    first_parts = next(iter(parts_by_size.values()))
    if any(parts.keys() != first_parts.keys() for parts in parts_by_size.values()):
        raise ValueError(f"{op.__name__}: the structure of its result depends on unknown "
                         "dimensions")

    def node(path):
        stand_ins = {size: parts[path] for size, parts in parts_by_size.items()}
        shape = _joint_shape(op, stand_ins) if shape_of is None else shape_of(path)
        return Symbol(pick, (call, path), {}, shape, stand_ins[next(iter(stand_ins))].dtype,
                      f"{name}{list(path)}", stand_ins, placeholders)
    return _replace_tensors(next(iter(results.values())), node)


def _joint_shape(op, results: dict) -> tuple:
    """The static shape of a result computed for several unknown-dimension sizes: the
    dimensions that differ (or, with one size, that equal it) are unknown."""
    values = list(results.values())
    if any(v.ndim != values[0].ndim for v in values):
        raise ValueError(f"{op.__name__}: the rank of its result depends on unknown dimensions")
    if len(values) > 1:
        return tuple(a if a == b else None for a, b in zip(values[0].shape, values[1].shape))
    (size,) = results  # one size worked: the dimensions of that size are taken as unknown
    return tuple(None if n == size else n for n in values[0].shape)


def _stage_primitive(primitive, inputs: tuple, params: dict) -> Symbol:
    """A node for a declared primitive: shape and dtype from its abstract evaluation."""
    if primitive.composite:
        return _stage_composite(primitive, inputs, params)
    shape, dtype = primitive.abstract(*inputs, **params)
    placeholders = tuple(dict.fromkeys(p for s in inputs if isinstance(s, Symbol)
                                       for p in s.placeholders))
    return Symbol(primitive, inputs, params, tuple(shape), np.dtype(dtype),
                  f"{primitive.name}_{next(_ids)}", {}, placeholders)


def _stage_composite(primitive, inputs: tuple, params: dict):
    """A composite's node (its inputs may nest); a structured result is a node for the call
    and one picking each tensor of it."""
    declared = primitive.abstract(*inputs, **params)
    placeholders = tuple(dict.fromkeys(p for s in symbols_in(inputs) for p in s.placeholders))
    name = f"{primitive.name}_{next(_ids)}"
    if is_aval(declared):
        shape, dtype = declared
        return Symbol(primitive, inputs, params, tuple(shape), np.dtype(dtype), name, {},
                      placeholders)
    call = Symbol(primitive, inputs, params, (), np.dtype(object), name, {}, placeholders)

    def part(declared, path):
        if is_aval(declared):
            shape, dtype = declared
            return Symbol(pick, (call, path), {}, tuple(shape), np.dtype(dtype),
                          f"{name}{list(path)}", {}, placeholders)
        return type(declared)(part(d, path + (i,)) for i, d in enumerate(declared))
    return part(declared, ())


trace.install_stager(_stage_primitive)


def traced(fn=None, *, spec=None):
    """Makes op `fn` accept symbolic tensors: given one (or, in graph style, a variable), it
    returns a Symbol instead of computing. Ops with side effects (variable updates, printing)
    pass `spec` so that they never run at build time."""
    def wrap(fn):
        @functools.wraps(fn)
        def op(*args, **kwargs):
            if trace.graph_style and trace.staging() and has_variable((args, kwargs)):
                return build(fn, args, kwargs, spec)
            try:
                return fn(*args, **kwargs)
            except SymbolicInput:
                return build(fn, args, kwargs, spec)
        op.eager = fn  # the op itself, for evaluation once values are known
        return op
    return wrap(fn) if fn is not None else wrap


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
        if len(holes) == len(args) and not kwargs and len(args) in (1, 2) and \
                not primitive.composite:
            keys = [key for _, key in holes]
            if len(keys) == 1:
                (key,) = keys
                return lambda values: bind(primitive, values[key])
            first, second = keys
            return lambda values: bind(primitive, values[first], values[second])

    def run(values):
        filled = template.copy()
        for i, key in holes:
            filled[i] = values[key]
        return op(*filled, **kwargs)
    return run


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
    t = Tensor(dev.put(data.astype(p.dtype, copy=False)), dev)
    t._rg = p.needs_grad  # a gradient is taken with respect to it
    return t


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
