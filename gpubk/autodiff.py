"""Reverse-mode autodiff: the tape entries ops leave, `gradients`, `GradientTape`, `stop_gradient`.

An op whose inputs need a gradient attaches a `Node` to its output: its backward rule and the
buffers that rule needs, nothing more (the rule is a closure over them). Nodes point at the nodes
(or leaf tensors) of their inputs, so the graph lives exactly as long as the tensors computed from
it, and each thread builds its own. `gradients` walks it in topological order without recursion.

Backward rules are written with gpubk ops, so running them while recording yields gradients that
are themselves differentiable. First-order gradients run the rules with recording off; a gradient
returned by `K.gradients` remembers how it was made and, only if someone differentiates it,
recomputes itself once with recording on (see `_Deferred`).
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Sequence

from .tensor import Tensor, Variable, as_tensor
from .traversal import topological

BackwardRule = Callable[[Tensor, "Tensor | None", tuple], Sequence["Tensor | None"]]


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.enabled = True  # False inside no_grad() and while running first-order rules
        self.tapes: list[GradientTape] = []  # active tapes, innermost last


_state = _ThreadState()


class Node:
    """One tape entry: how to send the output's gradient back to each input."""

    __slots__ = ("parents", "backward", "saved", "saved_out", "device", "holders", "pending",
                 "__weakref__")

    def __init__(self, backward: BackwardRule | None, parents: tuple, saved: tuple, saved_out,
                 device) -> None:
        self.backward = backward  # (g, y, needs, *saved) -> one gradient (or None) per input
        self.parents = parents    # per input: its Node, the leaf Tensor itself, or None
        self.saved = saved        # what the rule needs besides g and y: tensors, shapes, axes
        self.saved_out = saved_out  # the output buffer, for rules that need it (softmax, exp)
        self.device = device
        self.holders = 0          # non-persistent tapes that will release this node
        self.pending = None       # for gradients returned by K.gradients: see _Deferred

    def output(self) -> Tensor:
        """The output tensor rebuilt around the saved buffer (kept as a buffer to avoid a cycle)."""
        out = Tensor(self.saved_out, self.device)
        out._node = self
        out._rg = True
        return out

    def release(self) -> None:
        """Drops every buffer this entry holds; backpropagating through it afterwards fails."""
        self.backward = None
        self.parents = ()
        self.saved = ()
        self.saved_out = None
        self.pending = None

    def resolve(self) -> None:
        """Materialises a deferred gradient's own graph (first differentiation only)."""
        deferred, index = self.pending
        self.pending = None
        grad = deferred.materialize()[index]
        self.parents = (_key(grad),) if grad is not None and grad._rg else (None,)


def record(data, inputs: Sequence[Tensor], backward: BackwardRule, saved: tuple = (),
           save_output: bool = False) -> Tensor:
    """Wraps `data` (the op's output buffer, on the inputs' device) as a Tensor and, if any input
    needs a gradient and recording is on, attaches a tape entry with `backward` and `saved`.

    `backward(g, y, needs, *saved)` gets the output's gradient `g`, the output `y` when
    `save_output` is set (else None), per input whether its gradient is needed, and `saved`;
    it returns one gradient (or None) per input, with that input's shape.
    """
    out = Tensor(data, inputs[0].device)
    for t in inputs:
        if t._rg:
            break
    else:
        return out
    state = _state
    if not state.enabled:
        return out
    if saved:
        saved = tuple([_for_saving(s) if isinstance(s, Tensor) else s for s in saved])
    node = Node(backward, tuple([_parent(t) for t in inputs]), saved,
                data if save_output else None, out.device)
    out._node = node
    out._rg = True
    for tape in state.tapes:
        if tape._recording and not tape._persistent:
            tape._nodes.append(node)
            node.holders += 1
    return out


def _for_saving(t: Tensor) -> Tensor:
    """What a tape entry keeps of a tensor its rule needs: its buffer and its place in the graph.

    A variable is kept as its value now (assignments swap its buffer, so the rule sees what the
    forward pass saw), linked to the variable so that higher-order gradients still reach it.
    A softmax output is kept without the logits it remembers for crossentropy: they are not
    needed to compute gradients."""
    if isinstance(t, Variable):
        kept = Tensor(t.data, t.device)
        if t._rg:
            kept._node = Node(_pass_through, (t,), (), None, t.device)
            kept._rg = True
        return kept
    if t._logits is not None:
        kept = Tensor(t.data, t.device)
        kept._node, kept._rg = t._node, t._rg
        return kept
    return t


def recording() -> bool:
    """Whether ops are being recorded now. Backward rules that have a fused kernel use it when
    nothing records (first-order gradients), and their differentiable composition otherwise."""
    return _state.enabled


# Installed by the graph layer (staged_backprop.py): this module knows no graph classes.
_staged_backprop = _staged_composition_grads = None


def install_staged(backprop, composition_grads) -> None:
    """How gradients of symbolic tensors are staged (staged_backprop.py)."""
    global _staged_backprop, _staged_composition_grads
    _staged_backprop, _staged_composition_grads = backprop, composition_grads


def composition_grads(composition, inputs: tuple, g: Tensor, needs: tuple) -> tuple:
    """Gradients (against `g`) of an op written as a composition of gpubk functions,
    `composition(*inputs)`: what a kernel-backed backward primitive's vjp differentiates.

    While recording, the composition is recorded on the inputs themselves, so the gradients are
    differentiable again. Otherwise it runs on fresh leaves standing for the inputs, recording
    just long enough to be differentiated once. On symbolic tensors (a staged backward), the
    composition and its backward are staged."""
    if _staged_composition_grads is not None and any(
            getattr(t, "_symbolic", False) for t in (g, *inputs)):
        return _staged_composition_grads(composition, inputs, g, needs)
    return recomputed_grads(lambda *xs: [composition(*xs)], inputs, [g], needs)


def recomputed_grads(fn, inputs: tuple, cotangents: list, needs: tuple) -> tuple:
    """Gradients of sum_i <out_i, cotangent_i> over the outputs of `fn(*inputs)` (a list of
    tensors; a None cotangent adds nothing) with respect to each needed input, by running `fn`
    again with recording on (see `Recording`)."""
    return Recording(fn, inputs, needs).grads(cotangents)


class Recording:
    """`fn(*inputs)` (a list of output tensors) run with recording on, to be differentiated with
    respect to the needed inputs (`grads`, as often as needed).

    Each needed input is replaced by a fresh tensor standing for it, so that gradients stop
    there: one per input, even where one input was computed from another. While an outer tape
    records, that stand-in is linked to the input, so the gradients are differentiable again. A
    variable stands for itself (`fn` may read it directly), recorded while `fn` runs even if it
    is not trainable."""

    __slots__ = ("outputs", "sources", "needs", "create_graph")

    def __init__(self, fn, inputs: tuple, needs: tuple) -> None:
        self.create_graph = _state.enabled
        stand_ins, untracked, variables = [], [], set()
        needs = list(needs)
        for i, (t, need) in enumerate(zip(inputs, needs)):
            if need and isinstance(t, Variable):
                if id(t) in variables:  # read directly: its whole gradient goes to the first
                    needs[i] = False
                variables.add(id(t))
                if not t._rg:
                    t._rg = True
                    untracked.append(t)
            stand_ins.append(_stand_in(t, self.create_graph) if needs[i] else t)
        self.needs = tuple(needs)
        _state.enabled = True
        try:
            self.outputs = fn(*stand_ins)
        finally:
            _state.enabled = self.create_graph
            for t in untracked:
                t._rg = False
        self.sources = [t for t, need in zip(stand_ins, self.needs) if need]

    def grads(self, cotangents: list) -> tuple:
        """One gradient per input (None where not needed, or not reached)."""
        pairs = [(o, c) for o, c in zip(self.outputs, cotangents) if c is not None]
        grads = iter(_backprop([o for o, _ in pairs], [c for _, c in pairs], self.sources,
                               self.create_graph))
        return tuple(next(grads) if need else None for need in self.needs)


def _stand_in(t: Tensor, linked: bool) -> Tensor:
    """A new tensor for `t`'s value that gradients stop at (a variable stands for itself);
    `linked`: passing its gradient on to `t` when an outer tape differentiates it."""
    if isinstance(t, Variable):
        return t
    out = Tensor(t.data, t.device)
    out._rg = True
    if linked and t._rg:
        out._node = Node(_pass_through, (_parent(t),), (), None, t.device)
    return out


def _parent(t: Tensor):
    if t._node is not None:
        return t._node
    return t if t._rg else None


def _key(t: Tensor):
    """What identifies a tensor in the graph: its node if computed, else the leaf itself."""
    return t._node if t._node is not None else t


def _node_parents(node: Node) -> list:
    """The parent nodes of `node` (materialising deferred gradients first)."""
    if node.backward is None:
        raise RuntimeError(
            "gradients: part of this graph was released by a non-persistent "
            "GradientTape; use GradientTape(persistent=True) to differentiate it again")
    if node.pending is not None:
        node.resolve()
    return [p for p in reversed(node.parents) if type(p) is Node]


def _backprop(targets: Sequence[Tensor], target_grads: Sequence[Tensor],
              sources: Sequence[Tensor], create_graph: bool) -> list:
    """Gradients of sum(target * target_grad) with respect to each source (None if unconnected)."""
    source_ids = {id(_key(s)) for s in sources}
    roots = [t._node for t in targets if t._node is not None]
    order = topological(roots, _node_parents)

    # Only nodes with a source upstream need their backward rule run.
    relevant = set(source_ids)
    for node in order:
        if any(id(p) in relevant for p in node.parents if p is not None):
            relevant.add(id(node))

    grads: dict[int, Tensor] = {}
    previous, _state.enabled = _state.enabled, create_graph
    try:
        for t, g in zip(targets, target_grads):
            if t._rg:
                _accumulate(grads, id(_key(t)), g)
        results: dict[int, Tensor] = {}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if id(node) in source_ids:
                results[id(node)] = g
            if id(node) not in relevant:
                continue
            needs = tuple(p is not None and id(p) in relevant for p in node.parents)
            y = node.output() if node.saved_out is not None else None
            for p, need, gp in zip(node.parents, needs, node.backward(g, y, needs, *node.saved)):
                if need and gp is not None:
                    _accumulate(grads, id(p), gp)
        results.update(grads)  # what reached leaves
        return [_as_source_grad(results.get(id(_key(s))), s) for s in sources]
    finally:
        _state.enabled = previous


def _accumulate(grads: dict, key: int, g: Tensor) -> None:
    grads[key] = g if key not in grads else grads[key] + g


def _as_source_grad(g: Tensor | None, source: Tensor) -> Tensor | None:
    """Gradients have their source's dtype (a float32 weight gets a float32 gradient)."""
    if g is None or g.dtype == source.dtype:
        return g
    from .ops.math import cast  # noqa: PLC0415 (the ops are built on this module; rare path)
    return cast(g, source.dtype)


def _ones_like(t: Tensor) -> Tensor:
    """The seed of a gradient: ones of the target's shape (a constant)."""
    with t.device.context():  # CuPy's *_like allocate on the current device, not the input's
        return Tensor(t.device.xp.ones_like(t.data), t.device)


class _Deferred:
    """The recipe of one `K.gradients` call, kept so its results can be differentiated.

    The first time a second-order gradient passes through one of the results, the whole call is
    recomputed once with recording on; the recorded results then stand in for the originals.
    """

    __slots__ = ("targets", "sources", "_recorded")

    def __init__(self, targets: list, sources: list) -> None:
        self.targets = targets
        self.sources = sources
        self._recorded = None

    def materialize(self) -> list:
        if self._recorded is None:
            seeds = [_ones_like(t) for t in self.targets]
            self._recorded = _backprop(self.targets, seeds, self.sources, create_graph=True)
        return self._recorded


def _pass_through(g, y, needs):
    return (g,)


def _check_differentiable(tensors, func: str) -> None:
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{func}: expected gpubk tensors, got {type(t).__name__}")


def gradients(loss: Tensor, variables) -> list:
    """Returns the gradients of `loss` with respect to `variables`.

    Arguments:
        loss: scalar tensor to minimise (a non-scalar loss is differentiated as its sum).
        variables: list of variables (or tensors).

    Returns:
        A list aligned with `variables`: each gradient has its variable's shape, dtype and
        device, or is `None` where `loss` does not depend on that variable. The gradients can
        themselves be differentiated (Hessian-vector products); that costs nothing unless used.
    """
    single = isinstance(variables, Tensor) or getattr(variables, "_symbolic", False)
    if not single and not isinstance(variables, (list, tuple)):
        raise TypeError(f"gradients: variables must be a tensor or a list of tensors, got "
                        f"{type(variables).__name__}")
    sources = [variables] if single else list(variables)
    if getattr(loss, "_symbolic", False):  # graph style: the backward is staged as nodes
        _check_differentiable([s for s in sources if not getattr(s, "_symbolic", False)],
                              "gradients")
        return _staged_backprop([loss], None, sources)
    _check_differentiable([loss, *sources], "gradients")
    grads = _backprop([loss], [_ones_like(loss)], sources, create_graph=False)
    if _state.enabled:
        deferred = _Deferred([loss], sources)
        for i, g in enumerate(grads):
            if g is not None:
                g._node = Node(_pass_through, (), (), None, g.device)
                g._node.pending = (deferred, i)
                g._rg = True
    return grads


class GradientTape:
    """Records operations for automatic differentiation, as `tf.GradientTape` does.

    Trainable variables are watched automatically; `watch(x)` adds any other tensor.

    Example:
    ```python
    with K.GradientTape() as tape:
        loss = K.sum(K.square(K.dot(x, w)))
    grad_w = tape.gradient(loss, w)
    ```

    A non-persistent tape releases every buffer it recorded after its one `gradient()` call,
    or when the tape itself is deleted. `gradient()` records its own computation when an outer
    tape is recording, which gives higher-order gradients.
    """

    def __init__(self, persistent: bool = False) -> None:
        self._persistent = bool(persistent)
        self._recording = False
        self._nodes: list[Node] = []
        self._watched: list[Tensor] = []
        self._used = False

    def __enter__(self) -> "GradientTape":
        self._recording = True
        _state.tapes.append(self)
        return self

    def __exit__(self, *exc) -> None:
        self._recording = False
        if self in _state.tapes:
            _state.tapes.remove(self)
        for t in self._watched:  # watching lasts as long as the scope
            t._rg = False
        self._watched = []

    def watch(self, tensor) -> None:
        """Makes the tape track `tensor` (or each tensor of a list) as a source."""
        for t in tensor if isinstance(tensor, (list, tuple)) else [tensor]:
            _check_differentiable([t], "GradientTape.watch")
            if not t._rg:
                t._rg = True
                self._watched.append(t)

    @contextlib.contextmanager
    def stop_recording(self):
        """Scope in which ops are not recorded on this tape (or any other)."""
        previous, _state.enabled = _state.enabled, False
        try:
            yield
        finally:
            _state.enabled = previous

    def gradient(self, target, sources, output_gradients=None):
        """Computes the gradient of `target` (a tensor or list of tensors) w.r.t. `sources`.

        Arguments:
            target: tensor, or list of tensors, to differentiate (non-scalars as their sum).
            sources: a tensor, or a list or tuple of tensors.
            output_gradients: optional gradients of `target` (same structure), default ones.

        Returns:
            The gradients in the structure of `sources`; `None` where unconnected.
        """
        if self._used and not self._persistent:
            raise RuntimeError("GradientTape.gradient can only be called once on a "
                               "non-persistent tape; use GradientTape(persistent=True)")
        targets = list(target) if isinstance(target, (list, tuple)) else [target]
        single = not isinstance(sources, (list, tuple))
        source_list = [sources] if single else list(sources)
        _check_differentiable([*targets, *source_list], "GradientTape.gradient")
        if output_gradients is None:
            seeds = [_ones_like(t) for t in targets]
        else:
            given = output_gradients if isinstance(output_gradients, (list, tuple)) \
                else [output_gradients]
            seeds = [as_tensor(g, "GradientTape.gradient", dtype=t.dtype, device=t.device)
                     for g, t in zip(given, targets)]
        outer = any(t._recording for t in _state.tapes if t is not self)
        try:
            grads = _backprop(targets, seeds, source_list, create_graph=outer)
        finally:
            self._used = True
            if not self._persistent:
                self._release()
        return grads[0] if single else type(sources)(grads)

    def _release(self) -> None:
        for node in self._nodes:
            node.holders -= 1
            if node.holders == 0:
                node.release()
        self._nodes = []

    def __del__(self) -> None:
        self._release()


class no_grad(contextlib.ContextDecorator):  # noqa: N801 (used as a function: no_grad())
    """Scope in which no op is recorded for differentiation (cheaper inference); also a
    decorator, `@K.no_grad()`. A class, not a generator: K.function enters one per call."""

    def __enter__(self) -> None:
        self.previous, _state.enabled = _state.enabled, False

    def __exit__(self, *exc) -> None:
        _state.enabled = self.previous

    def _recreate_cm(self) -> "no_grad":  # each decorated call its own (recursion too)
        return no_grad()
