"""`gpubk info`: versions, the device chosen and why, the GPU, and the kernel cache."""
from __future__ import annotations

import importlib.metadata
import os
import pathlib
import platform

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


def _kernel_cache() -> str:
    """Where Numba keeps the compiled kernels, and how many entries are there."""
    from . import kernels
    package = pathlib.Path(kernels.__file__).parent
    folders = [pathlib.Path(os.environ["NUMBA_CACHE_DIR"])] if os.environ.get(
        "NUMBA_CACHE_DIR") else [package / "__pycache__"]
    entries = [p for folder in folders if folder.is_dir() for p in folder.rglob("*.nbi")]
    where = ", ".join(str(f) for f in folders)
    if not entries:
        return f"kernels cached: none yet (they compile on first use, then cache in {where})"
    return f"kernels cached: {len(entries)} kernel(s) in {where}"


def report() -> str:
    device = devices.default_device()
    lines = [f"gpubk {__version__}",
             f"python {platform.python_version()} ({platform.machine()})",
             f"numpy {_version('numpy')}, numba {_version('numba')}, numba-cuda "
             f"{_version('numba-cuda')}, cupy {_version('cupy-cuda13x', 'cupy-cuda12x', 'cupy')}",
             f"device: {device.name} ({devices.default_device_reason()})"]
    return "\n".join(lines + _gpu_lines(device) + [_kernel_cache()])
