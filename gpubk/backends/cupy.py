"""The `gpu` backend: CuPy arrays on CUDA device N, with gpubk's CUDA kernels compiled by
numba-cuda. The one module of gpubk that imports CuPy, and only once a GPU is asked for."""
from __future__ import annotations

from . import DeviceError, require_numba_cuda
from .numpy import to_host  # noqa: F401 (the protocol: CuPy arrays copy to the host with .get())

KIND = "gpu"
INDEXED = True
CUDA_KERNELS = True

_cupy = None  # the cupy module, once a GPU has been opened


def _cp():
    global _cupy
    if _cupy is None:
        import cupy  # noqa: PLC0415
        _cupy = cupy
    return _cupy


def open(index: int):  # noqa: A001 (the protocol's name)
    """Returns CuPy if CUDA device `index` is usable, else raises DeviceError saying why."""
    try:
        cupy = _cp()
    except ImportError as err:
        raise DeviceError(
            f"gpu:{index} requested but CuPy is not installed ({err}); install gpubk with the "
            "'cuda12' or 'cuda13' extra") from None
    require_numba_cuda(f"gpu:{index}", "install gpubk with the 'cuda12' or 'cuda13' extra")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError: no driver, or a driver older than the runtime
        raise DeviceError(f"gpu:{index} requested but the CUDA driver is unusable: {err}") from None
    if index >= count:
        raise DeviceError(
            f"gpu:{index} requested but this machine has {count} CUDA device(s)")
    return cupy


def context(index: int):
    """CUDA device `index` made current: CuPy allocates and launches there."""
    return _cp().cuda.Device(index)


def put(array, index: int):
    """`array` as a CuPy array on device `index` (no copy if it already is one there)."""
    cupy = _cp()
    with cupy.cuda.Device(index):
        if isinstance(array, cupy.ndarray) and array.device.id != index:
            return array.copy()  # a peer copy onto this device, not a view of another's memory
        return cupy.asarray(array)




def stream(index: int):
    """CuPy's current stream on device `index`: the one gpubk's kernels launch on."""
    cupy = _cp()
    with cupy.cuda.Device(index):
        return cupy.cuda.get_current_stream()


def scatter_add(array, key, values) -> None:
    """`array[key] += values` where repeated indices in `key` accumulate."""
    _cp()
    import cupyx  # noqa: PLC0415
    cupyx.scatter_add(array, key, values)
