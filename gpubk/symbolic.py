"""Symbolic tensors: placeholders, and the results of ops applied to them.

Graph mode starts with the first placeholder (and ends with `K.clear_session()`). From then on,
an op computed from variables still computes at once, but its result also keeps its recipe (the
op and its arguments): a graph built on such a value computes it again, from the variables'
values at that time, each time the graph runs, as Keras 2's graph mode would.

An op given a symbolic input does not compute: its `traced` wrapper records the op and its
arguments in a `Symbol`, whose static shape and dtype are inferred by running the op on small
stand-in values: every unknown dimension 2 in one, 3 in another; the dimensions that differ are
unknown. If neither runs, the sizes found among the op's other arguments are tried too (a batch
of constants fixes the batch size); an op that fails with all of them has a certain shape error,
raised now. `K.function` (graph.py) evaluates symbols with fed values.
"""
from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np

from . import devices
from .config import floatx
from .dtypes import as_dtype
from .tensor import Operators, SymbolicInput, Tensor, Variable

_ids = itertools.count(1)
STAND_IN_SIZES = (2, 3)  # what an unknown dimension becomes in each of the two stand-ins
graph_mode = False  # set by the first placeholder, cleared by K.clear_session()


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
    global graph_mode
    graph_mode = True  # only once the placeholder exists: a bad call changes nothing
    return result


# -- building ------------------------------------------------------------------------------------
class Recomputed(Symbol):
    """A value computed from variables, as a symbol: it depends on no placeholder, and each
    evaluation recomputes it from the variables' current values."""

    __slots__ = ("value",)

    def __init__(self, value: Tensor) -> None:
        op, args, kwargs = value._recipe
        args, kwargs = lift((args, kwargs))
        super().__init__(op, args, kwargs, tuple(value.shape), value.dtype,
                         f"{op.__name__}_{next(_ids)}", {}, ())
        self.value = value

    def stand_in(self, size: int) -> Tensor:
        return self.value


def lift(obj):
    """`obj` with each tensor that keeps a recipe replaced by its Recomputed symbol."""
    if isinstance(obj, Tensor):
        if obj._recipe is None:
            return obj
        if len(obj._recipe) == 3:  # built once per tensor, so that a graph computes it once
            obj._recipe = (*obj._recipe, Recomputed(obj))
        return obj._recipe[3]
    if isinstance(obj, (list, tuple)):
        return type(obj)(lift(o) for o in obj)
    if isinstance(obj, dict):
        return {k: lift(v) for k, v in obj.items()}
    return obj


def _from_variables(obj) -> bool:
    """Whether a variable, or a tensor computed from one, is among `obj`'s leaves."""
    if isinstance(obj, Tensor):
        return obj._recipe is not None or isinstance(obj, Variable)
    if isinstance(obj, (list, tuple)):
        return any(_from_variables(o) for o in obj)
    if isinstance(obj, dict):
        return any(_from_variables(o) for o in obj.values())
    return False


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
    """The symbols inside `obj` (lists, tuples, dicts too), in order."""
    if isinstance(obj, Symbol):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [s for o in obj for s in symbols_in(o)]
    if isinstance(obj, dict):
        return [s for o in obj.values() for s in symbols_in(o)]
    return []


def _run(op, args, kwargs, size: int):
    """`op` on the stand-ins of its symbolic arguments for unknown-dimension `size`."""
    values = {id(s): s.stand_in(size) for s in symbols_in((args, kwargs))}
    with autodiff.no_grad(), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = op(*substitute(args, values), **substitute(kwargs, values))
    if not isinstance(result, Tensor):
        raise TypeError(f"{op.__name__}: cannot be applied to symbolic tensors")
    return result


def _candidate_sizes(args, kwargs) -> list:
    """Sizes worth trying for the unknown dimensions: those of the op's other arguments, and
    those its symbolic arguments were built with."""
    sizes = set()
    for leaf in _leaves((args, kwargs)):
        shape = getattr(leaf, "shape", None)
        if isinstance(shape, tuple):
            sizes.update(n for n in shape if isinstance(n, int) and n > 1)
        if isinstance(leaf, Symbol):
            sizes.update(k for k, v in leaf._stand_ins.items() if not isinstance(v, Exception))
    return sorted(sizes - set(STAND_IN_SIZES))[:8]


def _leaves(obj) -> list:
    if isinstance(obj, (list, tuple)):
        return [x for o in obj for x in _leaves(o)]
    if isinstance(obj, dict):
        return [x for o in obj.values() for x in _leaves(o)]
    return [obj]


def build(op, args: tuple, kwargs: dict, spec=None) -> Symbol:
    """A Symbol for `op(*args, **kwargs)`, its shape and dtype inferred from stand-ins (or given
    by `spec(*args, **kwargs) -> (shape, dtype)` for ops that must not run at build time)."""
    args, kwargs = lift((args, kwargs))
    inputs = symbols_in((args, kwargs))
    placeholders = tuple(dict.fromkeys(p for s in inputs for p in s.placeholders))
    name = f"{op.__name__}_{next(_ids)}"
    if spec is not None:
        shape, dtype = spec(*args, **kwargs)
        stand_ins = {size: filled(shape, dtype, size) for size in STAND_IN_SIZES}
        return Symbol(op, args, kwargs, tuple(shape), dtype, name, stand_ins, placeholders)
    results, first_error = {}, None
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
    values = list(results.values())
    if any(v.ndim != values[0].ndim for v in values):
        raise ValueError(f"{op.__name__}: the rank of its result depends on unknown dimensions")
    if len(values) > 1:
        shape = tuple(a if a == b else None for a, b in zip(values[0].shape, values[1].shape))
    else:  # one size worked: the dimensions of that size are taken as unknown
        (size,) = results
        shape = tuple(None if n == size else n for n in values[0].shape)
    return Symbol(op, args, kwargs, shape, values[0].dtype, name, results, placeholders)


def traced(fn=None, *, spec=None):
    """Makes op `fn` accept symbolic tensors: given one, it returns a Symbol instead of
    computing. Ops with side effects (variable updates, printing) pass `spec` so that they never
    run at build time."""
    def wrap(fn):
        @functools.wraps(fn)
        def op(*args, **kwargs):
            try:
                result = fn(*args, **kwargs)
            except SymbolicInput:
                return build(fn, args, kwargs, spec)
            if graph_mode and not isinstance(result, Variable) and \
                    _from_variables((args, kwargs)):
                result._recipe = (fn, args, kwargs)
            return result
        op.eager = fn  # the op itself, for evaluation once values are known
        return op
    return wrap(fn) if fn is not None else wrap


from . import autodiff  # noqa: E402  (autodiff imports ops, which import this module)
from .ops.validate import check_int  # noqa: E402
