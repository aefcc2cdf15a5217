"""Devices: which one is in use, its array module, and transfers.

A `Device` pairs a name (`cpu`, `gpu:N`, `sim`) with its backend, the module that knows that
kind of device (`gpubk.backends`: NumPy, CuPy, the CUDA simulator), and the backend's array
module `xp` (NumPy or CuPy); every op is written once against `xp`. Kinds are looked up in the
backend registry, never special-cased here, so adding a device kind is adding a backend module.
Nothing here touches CUDA until a GPU device is first asked for, so `import gpubk` stays fast
and CUDA-free.
"""
from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

from . import backends
from .backends import DeviceError
from .backends import numpy as _numpy_backend

__all__ = ["CPU", "Device", "DeviceError", "current", "default_device", "default_device_reason",
           "device", "get_device", "parse"]


class Device:
    """A place where tensors live: `cpu` (NumPy), `gpu:N` (CuPy on CUDA device N), `sim` (NumPy
    buffers, with the CUDA kernels run by Numba's CUDA simulator: for tests), or a kind added
    with `gpubk.backends.register`.

    `Device(kind, index, backend)` opens device `index` of `backend` (a backend module, see
    `gpubk.backends`), raising DeviceError if it cannot be used; `parse(name)` makes each
    device once."""

    __slots__ = ("name", "kind", "index", "xp", "cuda_kernels", "backend")

    def __init__(self, kind: str, index: int, backend, xp=None) -> None:
        if xp is None:
            xp = backend.open(index)
        self.kind = kind
        self.index = index
        self.name = f"{kind}:{index}" if backend.INDEXED or index else kind
        self.backend = backend
        self.xp = xp
        self.cuda_kernels = bool(backend.CUDA_KERNELS)  # kernel-backed ops launch CUDA kernels

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    def __str__(self) -> str:
        return self.name

    def context(self):
        """Scope in which new buffers are allocated on this device (and kernels launch there):
        `cupy.cuda.Device(index)` on a GPU, a do-nothing scope on the host."""
        return self.backend.context(self.index)

    def put(self, array):
        """Returns `array` (NumPy, CuPy, array-like) as a buffer of this device; no copy if it
        already is one."""
        if self.xp is np and isinstance(array, np.ndarray):
            return array  # the eager hot path: a host array on a host device
        return self.backend.put(array, self.index)

    def to_host(self, array) -> np.ndarray:
        """A buffer of this device as a NumPy array (a copy from device memory)."""
        return self.backend.to_host(array)

    def stream(self):
        """The stream this device's kernels launch on (CuPy's current one), or None (host)."""
        return self.backend.stream(self.index)


CPU = Device("cpu", 0, _numpy_backend)
_devices: dict[tuple[str, int], Device] = {("cpu", 0): CPU}  # each device made once
_default: Device | None = None
_default_reason = ""


class _ThreadDevices(threading.local):
    def __init__(self) -> None:
        self.stack: list[Device] = []  # the `with device(...)` scopes of this thread


_local = _ThreadDevices()


_to_host = _numpy_backend.to_host  # any buffer (NumPy, CuPy, array-like) as a NumPy array


def _open(kind: str, index: int) -> Device:
    """The Device for device `index` of kind `kind` (made once), or DeviceError saying why not."""
    backend = backends.get(kind)
    dev = _devices.get((backend.KIND, index))
    if dev is None or dev.backend is not backend:  # a kind registered anew: a new device
        dev = Device(backend.KIND, index, backend)
        _devices[backend.KIND, index] = dev
    return dev


def _gpu(index: int) -> Device:
    """Returns the Device for CUDA device `index`, or raises DeviceError saying why there is none."""
    return _open("gpu", index)


def _expected() -> str:
    names = []
    for kind in backends.kinds():
        try:
            indexed = backends.get(kind).INDEXED
        except Exception:  # a registered module that does not import: still name it
            indexed = False
        names += [f"'{kind}'", f"'{kind}:N'"] if indexed else [f"'{kind}'"]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def parse(name: str | Device) -> Device:
    """Returns the Device named `name`: 'cpu', 'gpu' (= 'gpu:0'), 'gpu:N', or 'sim' (the CUDA
    kernels under Numba's simulator, on NumPy buffers: slow, for tests), or a kind added with
    `gpubk.backends.register`."""
    if isinstance(name, Device):
        return name
    text = str(name).strip().lower()
    if text == "cpu":
        return CPU
    kind, colon, index = text.partition(":")
    backend = backends.get(kind)
    if backend is not None:
        if not colon:
            return _open(kind, 0)
        if backend.INDEXED and (index == "" or index.isdigit()):
            return _open(kind, int(index or 0))
    raise ValueError(f"device: unknown device {name!r}; expected {_expected()}")


def _pick_default() -> tuple[Device, str]:
    requested = os.environ.get("GPUBK_DEVICE", "").strip()
    if requested:
        try:
            return parse(requested), f"GPUBK_DEVICE={requested}"
        except (ValueError, DeviceError) as err:  # name the variable: it may be set far away
            raise type(err)(f"GPUBK_DEVICE={requested}: "
                            f"{str(err).removeprefix('device: ')}") from None
    try:
        return _gpu(0), "a CUDA device is visible to CuPy"
    except DeviceError as err:
        return CPU, f"no GPU: {err}"


def default_device() -> Device:
    """The device used outside any `with device(...)` scope, chosen at first use."""
    global _default, _default_reason
    if _default is None:
        _default, _default_reason = _pick_default()
    return _default


def default_device_reason() -> str:
    """Why the default device was chosen (for `gpubk info` and error messages)."""
    default_device()
    return _default_reason


def current() -> Device:
    """The device new tensors are created on: the innermost `with device(...)`, else the default."""
    stack = _local.stack
    return stack[-1] if stack else _default or default_device()


def get_device() -> str:
    """Returns the name of the device new tensors are created on, e.g. `'cpu'` or `'gpu:0'`."""
    return current().name


@contextlib.contextmanager
def device(name: str | Device):
    """Scope in which new tensors are created on device `name` ('cpu', 'gpu', 'gpu:N', 'sim').

    Example:
    ```python
    with K.device("cpu"):
        x = K.ones((2, 3))
    ```
    """
    dev = parse(name)
    stack = _local.stack
    stack.append(dev)
    try:
        yield dev
    finally:
        stack.pop()
