"""The `sim` backend: NumPy buffers, with gpubk's CUDA kernels run by Numba's CUDA simulator
(slow: for tests of the kernels on machines without a GPU)."""
from __future__ import annotations

import os
import sys

from . import DeviceError, require_numba_cuda
from .numpy import context, put, scatter_add, stream, to_host  # noqa: F401 (the protocol)

KIND = "sim"
INDEXED = False
CUDA_KERNELS = True


def open(index: int):  # noqa: A001 (the protocol's name)
    """Chooses Numba's CUDA simulator, which must happen before numba.cuda is imported."""
    import numpy as np  # noqa: PLC0415

    require_numba_cuda("sim", "install gpubk with the 'sim' extra (pip install -e \".[sim]\"), "
                       "or numba-cuda")
    if "numba.cuda" in sys.modules and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        raise DeviceError("sim requested but numba.cuda was already imported without the "
                          "simulator; set NUMBA_ENABLE_CUDASIM=1 before starting Python")
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    return np
