"""Graph style: `K.function` evaluates symbolic tensors with fed values; the learning phase is
a placeholder that can be fed. (`K.gradients` of a symbolic loss: staged_backprop.py.)

A function is prepared once: the symbols its outputs and updates need, in topological order,
after which step each intermediate can be dropped, and which values are written into buffers
it keeps between calls (buffers.py). Each call feeds the placeholders,
evaluates the symbols eagerly in that order with recording off (gradients are nodes too; a
recomputed gradient records what it needs itself),
returns the outputs as NumPy arrays, then applies the updates, so outputs see pre-update values
(Keras 2's graph-mode contract).
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from . import autodiff, devices, staged_backprop
from .buffers import WORKSPACE, Workspace, plan_buffers
from .core import trace
from .execute import Boxed
from .fuse import calls_blas, fuse
from .kernels import launch
from .ops.control import switch
from .ops.state import update_p
from .plan import describe, lifetimes, make_plan
from .symbolic import (
    Placeholder, Symbol, check_feed as _check_feed, substitute, symbols_in,
    topological_symbols as _topological)
from .tensor import Tensor, Variable


class Function:
    """The callable returned by `K.function`; see `function`."""

    def __init__(self, inputs, outputs, updates=None, name=None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"function: name must be a str, got {type(name).__name__}")
        self.name = name or "function"
        self.inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        for p in self.inputs:
            if not isinstance(p, Placeholder):
                raise TypeError(f"{self.name}: inputs must be placeholders, got "
                                f"{type(p).__name__}")
        self._single = not isinstance(outputs, (list, tuple))
        for o in [outputs] if self._single else outputs:
            if not isinstance(o, (Symbol, Tensor)):
                raise TypeError(f"{self.name}: outputs must be tensors or symbolic tensors, "
                                f"got {type(o).__name__}")
        self.outputs = [outputs] if self._single else list(outputs)
        if updates is not None and not isinstance(updates, (list, tuple)):
            raise TypeError(f"{self.name}: updates must be a list, got {type(updates).__name__}")
        self._updates = [self._as_update(u) for u in (updates or [])]
        roots = symbols_in((self.outputs, [args for _, args in self._updates]))
        self._order = [s for s in _topological(roots) if not isinstance(s, Placeholder)]
        needed = {id(p): p for s in roots for p in s.placeholders}
        fed = {id(p) for p in self.inputs}
        missing = [p for i, p in needed.items() if i not in fed and p.default is None]
        if missing:
            raise ValueError(f"{self.name}: the outputs depend on placeholder(s) "
                             f"{', '.join(repr(p.name) for p in missing)}, which are not "
                             "among the inputs")
        self._defaults = [p for i, p in needed.items() if i not in fed]
        keep = {id(s) for s in roots}
        plan = fuse(make_plan(self._order, staged_backprop.shared_recordings(self._order)),
                    keep, self._assigned())
        plan.raw.update(id(p) for p in (*self.inputs, *self._defaults))  # fed: raw arrays
        self._plan, self._raw, self._fixed = plan.steps, plan.raw, plan.fixed
        updated = {id(s) for s in symbols_in([args for _, args in self._updates])}
        plan_buffers(self._plan, keep, updated)
        self._workspace = Workspace(self._plan)
        self._one_thread = calls_blas(self._plan, composites=False)  # the twins: kernels/launch.py
        self._steps = [(id(step.node), step.run) for step in self._plan]
        self._drop_after = lifetimes(self._plan, keep)
        self._fetch = [_fetcher(o, plan) for o in self.outputs]
        # Per input: its known dimensions, to check a fed array's shape without building tuples.
        self._known = [(p, len(p.shape), tuple((i, n) for i, n in enumerate(p.shape)
                                               if n is not None)) for p in self.inputs]

    def _as_update(self, update) -> tuple:
        """(apply, arguments): a `(variable, new_value)` pair, or a deferred `K.update*`."""
        if isinstance(update, (list, tuple)) and len(update) == 2:
            variable, value = update
            if not isinstance(variable, Variable):
                raise TypeError(f"{self.name}: an update pair must start with a variable, "
                                f"got {type(variable).__name__}")
            return _assign, (variable, value)
        if isinstance(update, Symbol) and getattr(update.op, "effect", None) == "update":
            return functools.partial(update.op, **update.kwargs), update.args
        raise TypeError(f"{self.name}: updates must be (variable, value) pairs or the result of "
                        f"K.update, K.update_add, K.update_sub or K.moving_average_update on a "
                        f"symbolic value, got {type(update).__name__}")

    def _assigned(self) -> dict:
        """Node id -> the variable its value replaces after a call, for fusion to write in
        place: each update setting a variable (a pair, or K.update) to a node's value, where
        neither the variable nor the node is updated or returned otherwise."""
        found, seen = {}, {}
        for apply, args in self._updates:
            variable, value = args
            seen[id(variable)] = seen.get(id(variable), 0) + 1
            seen[id(value)] = seen.get(id(value), 0) + 1
            if isinstance(value, Symbol) and (apply is _assign or
                                              getattr(apply, "func", None) is update_p):
                found[id(value)] = variable
        returned = {id(o) for o in self.outputs}
        return {key: variable for key, variable in found.items()
                if seen[key] == 1 and seen[id(variable)] == 1 and key not in returned and
                id(variable) not in returned}

    def _feed(self, values) -> dict:
        if not isinstance(values, (list, tuple)):
            values = [values]
        if len(values) != len(self.inputs):
            raise ValueError(f"{self.name}: expected {len(self.inputs)} input value(s) (for "
                             f"{', '.join(p.name for p in self.inputs)}), got {len(values)}")
        dev = devices.current()
        on_host = dev.xp is np
        fed = {}
        for (p, ndim, known), v in zip(self._known, values):
            if on_host and v.__class__ is np.ndarray and v.dtype == p.dtype and \
                    v.ndim == ndim and _fits(v.shape, known):  # the common case: as it is
                fed[id(p)] = v
            else:
                fed[id(p)] = _check_feed(p, v, self.name).data
        for p in self._defaults:
            fed[id(p)] = _check_feed(p, p.default, self.name).data
        return fed, dev

    def plan(self) -> str:
        """The steps a call runs, one line each (node, shape, dtype, inputs), and what the
        passes made of them: nodes merged as common subexpressions, nodes folded to constants
        when the function was made, fused groups and their kernels, the kept buffer a value is
        written into."""
        return describe(self._plan, self.name, self._workspace.nbytes())

    def __call__(self, inputs=()):
        values, device = self._feed(inputs)
        if self._workspace.keys:
            values[WORKSPACE] = self._workspace
        threads = launch.threads
        one_thread = threads.one_thread
        threads.one_thread = one_thread or self._one_thread
        try:
            with trace.evaluating(), autodiff.no_grad(), device.context():  # staged gradients
                drop_after = self._drop_after                                 # need no tape
                for step, (key, run) in enumerate(self._steps):
                    values[key] = run(values, device)
                    if step in drop_after:
                        for dropped in drop_after[step]:
                            del values[dropped]
                results = [fetch(values, device) for fetch in self._fetch]
                if self._updates:
                    boxed = Boxed(values, self._raw, self._fixed, device)
                    for apply, args in self._updates:
                        apply(*substitute(args, boxed))
        finally:
            threads.one_thread = one_thread
            self._workspace.keep(values)
        return results[0] if self._single else results


def _fits(shape: tuple, known: tuple) -> bool:
    """Whether `shape` has the known (index, size) dimensions of a placeholder."""
    for i, n in known:
        if shape[i] != n:
            return False
    return True


def _assign(variable: Variable, value) -> None:
    variable.assign(value, "function update")


def _fetcher(output, plan):
    """How a call reads one output as a NumPy array: a raw value (on its device), a tensor
    step's value, or a tensor given as an output."""
    if not isinstance(output, Symbol):
        return lambda values, device: output.numpy()
    key = id(output)
    if key not in plan.raw:
        return lambda values, device: values[key].numpy()
    fixed = plan.fixed.get(key)
    return lambda values, device: (fixed or device).to_host(values[key])


def function(inputs, outputs, updates=None, name=None, **kwargs) -> Function:
    """Keras: `K.function(inputs, outputs, updates=None, name=None)`.

    Compiles `outputs` (a symbolic tensor or a list) as a function of the placeholders
    `inputs`. Calling it with a list of values (one per input) returns the outputs as NumPy
    arrays, then applies `updates`: `(variable, new_value)` pairs or the results of
    `K.update`, `K.update_add`, `K.update_sub` and `K.moving_average_update` on symbolic
    values. Outputs see the values from before the updates.

    Example:
    ```python
    x = K.placeholder(shape=(None, 3))
    f = K.function([x], [K.sum(x, axis=1)])
    f([np.ones((2, 3))])  # [array([3., 3.], dtype=float32)]
    ```
    """
    if kwargs:
        raise ValueError(f"function: unexpected arguments {sorted(kwargs)}")
    return Function(inputs, outputs, updates, name)


# -- learning phase ------------------------------------------------------------------------------
_learning_phase = Placeholder((), np.dtype("int32"), "keras_learning_phase", default=0)
_learning_phase_set: int | None = None


def learning_phase():
    """Keras: `K.learning_phase()`. The value given to `set_learning_phase` if any; else a
    placeholder (0 = test, 1 = train; 0 when not fed) that `K.function` inputs can feed."""
    return _learning_phase if _learning_phase_set is None else _learning_phase_set


def _check_phase(value, func: str) -> int:
    if value.__class__ not in (int, bool) and not isinstance(value, np.integer) \
            or value not in (0, 1):
        raise ValueError(f"{func}: expected 0 or 1, got {value!r}")
    return int(value)


def set_learning_phase(value: int) -> None:
    """Keras: `K.set_learning_phase(value)`. Fixes the learning phase: 0 (test) or 1 (train)."""
    global _learning_phase_set
    _learning_phase_set = _check_phase(value, "set_learning_phase")


def learning_phase_scope(value: int) -> contextlib.AbstractContextManager:
    """Keras: `K.learning_phase_scope(value)`. A context manager: the learning phase is
    `value` (0 or 1) inside, and what it was before on exit, exception or not."""
    return _phase_scope(_check_phase(value, "learning_phase_scope"))


@contextlib.contextmanager
def _phase_scope(value: int):
    global _learning_phase_set
    previous = _learning_phase_set
    _learning_phase_set = value
    try:
        yield value
    finally:
        _learning_phase_set = previous


def in_train_phase(x, alt, training=None):
    """Keras: `K.in_train_phase(x, alt, training=None)`. `x` in the training phase, else `alt`
    (callables are called only when chosen). With `training=None`, the learning phase decides:
    a fixed phase, or, in graph style, the fed learning-phase placeholder (eagerly, test)."""
    _check_training(training, "in_train_phase")
    if training is None:
        training = learning_phase()
        # Graph style (callables too: what they build is not known before they are called)
        # switches on the placeholder; eager code takes its default, test.
        symbolic = isinstance(x, Symbol) or isinstance(alt, Symbol) or trace.staging()
        if isinstance(training, Placeholder) and not symbolic:
            training = 0
    if isinstance(training, (Symbol, Tensor)):
        return switch(training, x, alt)
    chosen = x if training else alt
    return chosen() if callable(chosen) else chosen


def in_test_phase(x, alt, training=None):
    """Keras: `K.in_test_phase(x, alt, training=None)`. `x` in the test phase, else `alt`."""
    _check_training(training, "in_test_phase")
    return in_train_phase(alt, x, training=training)


def _check_training(training, func: str) -> None:
    """Keras takes 0, 1, a bool, a tensor or None; anything else fails in its tf.cast."""
    if not (training is None or isinstance(training, (Symbol, Tensor)) or
            training.__class__ in (int, bool) and training in (0, 1)):
        raise ValueError(f"{func}: training must be 0, 1, a bool, a tensor or None, got "
                         f"{training!r}")

