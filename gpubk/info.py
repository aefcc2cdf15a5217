"""`gpubk info`: versions, the device chosen and why, the GPU, and the kernel cache."""
from __future__ import annotations

import importlib.metadata
import pathlib
import platform
import sys

from . import __version__, devices


def _version(*distributions: str) -> str:
    for name in distributions:
        try:
            return f"{importlib.metadata.version(name)} ({name})" if len(distributions) > 1 \
                else importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def _gpu_lines(device: devices.Device) -> list:
    if device.kind != "gpu":
        return []
    cp = device.xp
    props = cp.cuda.runtime.getDeviceProperties(device.index)
    free, total = cp.cuda.Device(device.index).mem_info
    driver, runtime = cp.cuda.runtime.driverGetVersion(), cp.cuda.runtime.runtimeGetVersion()
    return [f"gpu: {props['name'].decode()}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB "
            f"free), compute capability {props['major']}.{props['minor']}",
            f"cuda: driver {driver // 1000}.{driver % 1000 // 10}, runtime "
            f"{runtime // 1000}.{runtime % 1000 // 10}"]


# Why Numba's cache locator (numba.core.caching) picked the folder it did.
_LOCATOR_REASONS = {
    "UserProvidedCacheLocator": "NUMBA_CACHE_DIR",
    "InTreeCacheLocator": "beside the kernels' source",
    "UserWideCacheLocator": "Numba's user-wide folder: the kernels' own folder is not writable",
}


def _kernel_cache() -> str:
    """Where Numba caches the compiled kernels, as Numba itself decides for a kernel module
    (NUMBA_CACHE_DIR, else the kernels' __pycache__ if writable, else a user-wide folder), and
    how many kernels are there. Asks a kernel's dispatcher, which compiles nothing."""
    try:
        from .kernels import softmax  # noqa: PLC0415 (imports Numba)
        cache = softmax._forward_cpu._cache
        folder, locator = pathlib.Path(cache._cache_path), type(cache._impl.locator).__name__
    except Exception as err:  # no Numba, or a Numba whose cache internals moved
        return f"kernels cached: unknown (cannot ask Numba: {type(err).__name__}: {err})"
    why = _LOCATOR_REASONS.get(locator, f"Numba's {locator}")
    kernels = len(list(folder.glob("*.nbi"))) if folder.is_dir() else 0
    if not kernels:
        return f"kernels cached: none yet in {folder} ({why}); they compile on first use"
    return f"kernels cached: {kernels} kernel(s) in {folder} ({why})"


def _default_device() -> tuple[devices.Device | None, str]:
    """The default device and why it was chosen, or None and why none could be."""
    try:
        device = devices.default_device()
    except (ValueError, devices.DeviceError) as err:
        return None, str(err)
    return device, devices.default_device_reason()


def report() -> str:
    """Everything `gpubk info` knows, one fact a line; a device that cannot be used is one of
    them, and the others are still reported."""
    device, why = _default_device()
    lines = [f"gpubk {__version__}",
             f"python {platform.python_version()} ({platform.machine()})",
             f"numpy {_version('numpy')}, numba {_version('numba')}, numba-cuda "
             f"{_version('numba-cuda')}, cupy {_version('cupy-cuda13x', 'cupy-cuda12x', 'cupy')}",
             f"device: {device.name} ({why})" if device else f"device: none usable ({why})"]
    return "\n".join(lines + (_gpu_lines(device) if device else []) + [_kernel_cache()])


def main() -> int:
    """Prints the report; when no device is usable, also says why on stderr and returns 1."""
    print(report())
    device, why = _default_device()
    if device is None:
        print(f"gpubk info: {why}", file=sys.stderr)
        return 1
    return 0
