"""Backends: one module per device kind, all implementing one protocol.

A device name (`cpu`, `gpu:N`, `sim`) starts with its kind; the kind names a backend, the module
that knows that kind of device. `gpubk.devices` wraps a backend and an index in a `Device` and
never special-cases a kind, so adding a device kind is adding a module and registering it::

    from gpubk import backends
    backends.register("host2", "mypackage.host2")   # or the module (or any object) itself
    with K.device("host2"):
        ...

Built in: `cpu` (`numpy.py`), `gpu` (`cupy.py`, also called `cuda`), `sim` (`sim.py`). Backend
modules are imported on first use of their kind, so `import gpubk` imports neither CuPy nor
numba.cuda; `cupy.py` is the one module of the package that imports CuPy, and only when a GPU
is asked for.

The protocol: a backend module (or any object) defines

`KIND: str`
    Its device kind, e.g. `"gpu"`; lower case, no `:`.
`INDEXED: bool`
    Whether devices of this kind are numbered: `gpu:0`, `gpu:1` (`gpu` alone is `gpu:0`).
    Unnumbered kinds have one device, named by the kind alone (`cpu`, `sim`).
`CUDA_KERNELS: bool`
    Whether kernel-backed ops (softmax, crossentropy, ...) launch gpubk's Numba CUDA kernels on
    this kind (`gpu`, `sim`) rather than their CPU twins (`cpu`).
`open(index) -> array module`
    Checks that device `index` can be used, raising `DeviceError` that says why not, and
    returns the array module its buffers belong to (`numpy`, `cupy`): every op is written once
    against it. Called once per device, the first time it is asked for (the Device is kept).
`put(array, index)`
    `array` (NumPy, CuPy, anything array-like) as a buffer of device `index`; no copy when it
    already is one. On a kind whose array module is NumPy, `Device.put` returns NumPy arrays
    as they are without calling it (the eager hot path), so `put` must agree.
`to_host(array) -> numpy.ndarray`
    A buffer of this kind as a NumPy array (a copy from device memory, the array itself on the
    host).
`context(index)`
    A context manager in which new buffers are allocated on device `index`
    (`cupy.cuda.Device(index)`; a do-nothing one on the host). Ops on a tensor run in its
    device's context, so a tensor on gpu:1 allocates on gpu:1. Keep it cheap on the host.
`stream(index)`
    The stream kernels launch on for device `index` (CuPy's current stream there), or None
    where there is none (the host, the simulator).
`scatter_add(array, key, values) -> None`
    `array[key] += values` in place where repeated indices in `key` accumulate.

`DeviceError` is defined here (and re-exported by `gpubk.devices` and as `K.DeviceError`) so
that backends can raise it without importing `gpubk.devices`.
"""
from __future__ import annotations

import importlib
import importlib.util
import threading
from types import ModuleType

# The names every backend defines (see the module docstring).
_FUNCTIONS = ("open", "put", "to_host", "context", "stream", "scatter_add")
PROTOCOL = ("KIND", "INDEXED", "CUDA_KERNELS", *_FUNCTIONS)


class DeviceError(RuntimeError):
    """A device was asked for that this machine cannot provide."""


# kind -> dotted module path (imported on first use), or the backend itself once loaded
_registry: dict[str, str | object] = {
    "cpu": "gpubk.backends.numpy",
    "gpu": "gpubk.backends.cupy",
    "sim": "gpubk.backends.sim",
}
_aliases: dict[str, str] = {"cuda": "gpu"}
_BUILTIN = frozenset(_registry)
_lock = threading.Lock()


def missing(backend) -> list:
    """The protocol's names that `backend` lacks or gets wrong (empty when it is complete)."""
    absent = [name for name in PROTOCOL if not hasattr(backend, name)]
    absent += [name for name in _FUNCTIONS
               if hasattr(backend, name) and not callable(getattr(backend, name))]
    kind = getattr(backend, "KIND", None)
    if hasattr(backend, "KIND") and not (isinstance(kind, str) and kind and ":" not in kind
                                         and kind == kind.lower()):
        absent.append("KIND")
    return absent


def _checked(kind: str, backend):
    absent = missing(backend)
    if absent:
        raise TypeError(f"backend for device kind {kind!r} ({backend!r}) does not implement "
                        f"the backend protocol: missing or invalid {', '.join(absent)}")
    if backend.KIND != kind:
        raise TypeError(f"backend {backend!r} has KIND {backend.KIND!r}; registered as {kind!r}")
    return backend


def get(kind: str):
    """The backend of device kind `kind` (or an alias, e.g. `cuda`), imported on first use;
    None when no backend is registered for it."""
    kind = _aliases.get(kind, kind)
    backend = _registry.get(kind)
    if backend is None or not isinstance(backend, str):
        return backend
    with _lock:
        backend = _registry.get(kind)
        if isinstance(backend, str):
            backend = _checked(kind, importlib.import_module(backend))
            _registry[kind] = backend
    return backend


def kinds() -> list:
    """The registered device kinds, in registration order (aliases left out)."""
    return list(_registry)


def register(kind: str, backend: str | ModuleType | object, *, aliases=()) -> None:
    """Makes device kind `kind` (and its `aliases`) available to `K.device(...)` and
    `GPUBK_DEVICE`, served by `backend`: a module, any object implementing the protocol, or the
    dotted path of a module, imported when the kind is first used. Raises ValueError if the
    kind or an alias is taken, TypeError if an object backend misses part of the protocol."""
    names = (kind, *aliases)
    for name in names:
        if not isinstance(name, str) or not name or ":" in name or name != name.strip().lower():
            raise ValueError(f"register: device kind {name!r} must be a non-empty lower-case "
                             "name without ':' or spaces")
    if not isinstance(backend, str):
        _checked(kind, backend)
    elif importlib.util.find_spec(backend.partition(".")[0]) is None:
        raise ValueError(f"register: no module {backend!r} for device kind {kind!r}")
    with _lock:
        taken = [name for name in names if name in _registry or name in _aliases]
        if taken:
            raise ValueError(f"register: device kind {taken[0]!r} is already registered")
        _registry[kind] = backend
        _aliases.update((alias, kind) for alias in aliases)


def unregister(kind: str) -> None:
    """Removes device kind `kind` (and its aliases) registered with `register`; devices of that
    kind already made keep working, new ones cannot be asked for. Built-in kinds stay."""
    if kind in _BUILTIN:
        raise ValueError(f"unregister: {kind!r} is a built-in device kind")
    with _lock:
        if _registry.pop(kind, None) is None:
            raise ValueError(f"unregister: device kind {kind!r} is not registered")
        for alias in [a for a, k in _aliases.items() if k == kind]:
            del _aliases[alias]


def require_numba_cuda(requested: str, how: str) -> None:
    """The CUDA kernels need numba-cuda (an extra: the CPU path does without it); raises
    DeviceError saying `how` to install it."""
    if importlib.util.find_spec("numba_cuda") is None:
        raise DeviceError(f"{requested} requested but numba-cuda, which compiles gpubk's CUDA "
                          f"kernels, is not installed; {how}")
