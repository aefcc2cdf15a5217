"""Keras 2 backend utilities about TensorFlow's graph, session and naming. gpubk runs eagerly
and has no session, so these keep Keras scripts running: the stand-ins say so below."""
from __future__ import annotations

import collections
import contextlib
import gc

from . import buffers
from .core import trace
from .symbolic import Symbol
from .ops import state
from .tensor import Tensor

_uids: collections.defaultdict = collections.defaultdict(int)
_name_scopes: list = []
_manual_initialization = False


def backend() -> str:
    """Keras: `K.backend()`. The name of the backend: `'gpubk'`."""
    return "gpubk"


def get_uid(prefix: str = "") -> int:
    """Keras: `K.get_uid(prefix='')`. 1, 2, 3, ... for successive calls with one prefix."""
    if not isinstance(prefix, str):
        raise TypeError(f"get_uid: prefix must be a str, got {type(prefix).__name__}")
    _uids[prefix] += 1
    return _uids[prefix]


def reset_uids() -> None:
    """Keras: `K.reset_uids()`. Restarts every `get_uid` counter."""
    _uids.clear()


def clear_session() -> None:
    """Keras: `K.clear_session()`. Leaves graph style (ops on variables compute at once again),
    resets the uid counters and name scopes, drops the buffers functions keep between calls
    (a function made before still works: it allocates them anew), and collects garbage."""
    reset_session_state()
    buffers.release_all()
    gc.collect()


def reset_session_state() -> None:
    """`clear_session` without the garbage collection (tens of milliseconds): graph style off,
    uid counters and name scopes reset."""
    trace.end_graph_style()
    reset_uids()
    _name_scopes.clear()


@contextlib.contextmanager
def name_scope(name: str):
    """Keras: `K.name_scope(name)`. A scope for names; it has no effect on computation."""
    if not isinstance(name, str):  # as tf.name_scope
        raise ValueError(f"name_scope: name must be a str, got {type(name).__name__}")
    _name_scopes.append(name)
    try:
        yield "/".join(_name_scopes) + "/"
    finally:
        _name_scopes.pop()


def is_keras_tensor(x) -> bool:
    """Keras: `K.is_keras_tensor(x)`. True for symbolic tensors (placeholders and ops on them),
    False for tensors and variables; a ValueError for anything else, as in Keras."""
    if isinstance(x, Symbol):
        return True
    if isinstance(x, Tensor):
        return False
    raise ValueError(f"is_keras_tensor: unexpectedly found an instance of type {type(x)}; "
                     "expected a symbolic tensor instance")


def is_sparse(tensor) -> bool:
    """Keras: `K.is_sparse(tensor)`. Always False: gpubk has no sparse tensors."""
    return False


def to_dense(tensor):
    """Keras: `K.to_dense(tensor)`. The tensor itself: gpubk tensors are always dense."""
    return tensor


def manual_variable_initialization(value: bool) -> None:
    """Keras: `K.manual_variable_initialization(value)`. Recorded only: gpubk variables hold
    their value from the moment they are created, so there is nothing to initialise."""
    global _manual_initialization
    _manual_initialization = bool(value)


class Session:
    """A stand-in for a TensorFlow session: `run(fetches)` evaluates tensors eagerly (a tensor,
    or a list or tuple of them), which is all a session does for an eager backend."""

    def run(self, fetches, feed_dict=None):
        if feed_dict:
            raise ValueError("Session.run: feed_dict is not supported; gpubk runs eagerly")
        if isinstance(fetches, (list, tuple)):
            return type(fetches)(self.run(f) for f in fetches)
        return state.eval(fetches)


_session = Session()


def get_session(op_input_list=()) -> Session:
    """Keras: `K.get_session()`. A stand-in session whose `run(x)` returns `K.eval(x)`; gpubk
    has no TensorFlow session."""
    return _session


def set_session(session) -> None:
    """Keras: `K.set_session(session)`. A stand-in: the session is kept and returned by
    `get_session`, but gpubk runs eagerly and never uses it."""
    global _session
    _session = session
