"""Devices: which one is in use, its array module, and transfers.

The one place that imports CuPy. A `Device` pairs a name (`cpu`, `gpu:N`) with its array module
`xp` (NumPy or CuPy); every op is written once against `xp`. Nothing here touches CUDA until a
GPU device is first asked for, so `import gpubk` stays fast and CUDA-free.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading

import numpy as np


class Device:
    """A place where tensors live: `cpu` (NumPy), `gpu:N` (CuPy on CUDA device N), or `sim`
    (NumPy buffers, with the CUDA kernels run by Numba's CUDA simulator: for tests)."""

    __slots__ = ("name", "kind", "index", "xp", "cuda_kernels")

    def __init__(self, kind: str, index: int, xp) -> None:
        self.kind = kind
        self.index = index
        self.name = f"{kind}:{index}" if kind == "gpu" else kind
        self.xp = xp
        self.cuda_kernels = kind != "cpu"  # kernel-backed ops launch the Numba CUDA kernels

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    def __str__(self) -> str:
        return self.name

    def context(self):
        """Scope in which CuPy allocates on this device (nothing to do on NumPy devices)."""
        if self.xp is np:
            return contextlib.nullcontext()
        return self.xp.cuda.Device(self.index)

    def put(self, array):
        """Returns `array` (NumPy or CuPy) as a buffer of this device; no copy if already here."""
        if self.xp is np:
            return array if isinstance(array, np.ndarray) else _to_host(array)
        with self.context():
            return self.xp.asarray(array)


CPU = Device("cpu", 0, np)
_gpus: dict[int, Device] = {}
_default: Device | None = None
_default_reason = ""
class _ThreadDevices(threading.local):
    def __init__(self) -> None:
        self.stack: list[Device] = []  # the `with device(...)` scopes of this thread


_local = _ThreadDevices()


class DeviceError(RuntimeError):
    """A device was asked for that this machine cannot provide."""


def _to_host(array) -> np.ndarray:
    get = getattr(array, "get", None)  # CuPy arrays copy to the host with .get()
    return get() if get is not None else np.asarray(array)


def scatter_add(array, key, values) -> None:
    """`array[key] += values` where repeated indices in `key` accumulate (NumPy or CuPy)."""
    if isinstance(array, np.ndarray):
        np.add.at(array, key, values)
    else:
        import cupyx  # noqa: PLC0415 (only reached with CuPy arrays, so CuPy is loaded)
        cupyx.scatter_add(array, key, values)


def _require_numba_cuda(requested: str, how: str) -> None:
    """The CUDA kernels need numba-cuda (an extra: the CPU path does without it)."""
    if importlib.util.find_spec("numba_cuda") is None:
        raise DeviceError(f"{requested} requested but numba-cuda, which compiles gpubk's CUDA "
                          f"kernels, is not installed; {how}")


def _gpu(index: int) -> Device:
    """Returns the Device for CUDA device `index`, or raises DeviceError saying why there is none."""
    if index in _gpus:
        return _gpus[index]
    try:
        import cupy
    except ImportError as err:
        raise DeviceError(
            f"gpu:{index} requested but CuPy is not installed ({err}); install gpubk with the "
            "'cuda12' or 'cuda13' extra") from None
    _require_numba_cuda(f"gpu:{index}", "install gpubk with the 'cuda12' or 'cuda13' extra")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError: no driver, or a driver older than the runtime
        raise DeviceError(f"gpu:{index} requested but the CUDA driver is unusable: {err}") from None
    if index >= count:
        raise DeviceError(
            f"gpu:{index} requested but this machine has {count} CUDA device(s)")
    _gpus[index] = Device("gpu", index, cupy)
    return _gpus[index]


_sim: Device | None = None


def _simulator() -> Device:
    """The `sim` device; Numba's CUDA simulator must be chosen before numba.cuda is imported."""
    global _sim
    if _sim is None:
        _require_numba_cuda("sim", "install gpubk with the 'sim' extra (pip install -e "
                            "\".[sim]\"), or numba-cuda")
        if "numba.cuda" in sys.modules and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
            raise DeviceError("sim requested but numba.cuda was already imported without the "
                              "simulator; set NUMBA_ENABLE_CUDASIM=1 before starting Python")
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        _sim = Device("sim", 0, np)
    return _sim


def parse(name: str | Device) -> Device:
    """Returns the Device named `name`: 'cpu', 'gpu' (= 'gpu:0'), 'gpu:N', or 'sim' (the CUDA
    kernels under Numba's simulator, on NumPy buffers: slow, for tests)."""
    if isinstance(name, Device):
        return name
    text = str(name).strip().lower()
    if text == "cpu":
        return CPU
    if text == "sim":
        return _simulator()
    kind, _, index = text.partition(":")
    if kind in ("gpu", "cuda") and (index == "" or index.isdigit()):
        return _gpu(int(index or 0))
    raise ValueError(f"device: unknown device {name!r}; expected 'cpu', 'gpu', 'gpu:N' or 'sim'")


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
    """Scope in which new tensors are created on device `name` ('cpu', 'gpu', 'gpu:N').

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
