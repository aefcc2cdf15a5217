"""Who handles an op: eager execution, or staging a node of the graph (graph style).

Graph style follows TensorFlow 1's default graph: it begins with the first placeholder a user
creates and ends with `K.clear_session()`. In it, an op on a symbolic tensor or on a variable
builds a node instead of computing, and `K.eval` / `K.function` evaluate nodes with the
variables' values at that time; random ops build nodes too (a new draw per evaluation). Before
the first placeholder everything computes at once (eager style).

While nodes are being evaluated, ops compute (the evaluation is eager), so the flag is paired
with a per-thread count of evaluations in progress.
"""
from __future__ import annotations

import contextlib
import threading

graph_style = False  # set by the first placeholder, cleared by K.clear_session()


class _Evaluations(threading.local):
    def __init__(self) -> None:
        self.depth = 0  # evaluations of graph nodes in progress on this thread


_evaluations = _Evaluations()


def staging() -> bool:
    """Whether an op on variables (or a random op) builds a graph node now."""
    return graph_style and not _evaluations.depth


def begin_graph_style() -> None:
    global graph_style
    graph_style = True


def end_graph_style() -> None:
    global graph_style
    graph_style = False


class _Evaluating:
    """The scope `evaluating` returns (a class: entered on every K.function call, where a
    generator-based context manager costs a microsecond)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _evaluations.depth += 1

    def __exit__(self, *exc) -> None:
        _evaluations.depth -= 1


_EVALUATING = _Evaluating()


def evaluating() -> _Evaluating:
    """Scope in which graph nodes are being evaluated: ops compute their values."""
    return _EVALUATING


# The graph layer (symbolic.py) installs how a primitive's node is built: the core knows no
# graph classes, so that imports flow one way.
_stager = None


def install_stager(fn) -> None:
    global _stager
    _stager = fn


def stage(primitive, inputs: tuple, params: dict):
    """A graph node for `primitive(*inputs, **params)` (shape from its abstract evaluation)."""
    return _stager(primitive, inputs, params)
