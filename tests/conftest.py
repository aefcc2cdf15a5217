"""Shared fixtures: one test body runs on every available device (cpu always, gpu where CuPy sees
a CUDA device)."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import gpubk as K
from gpubk import devices, keras_compat


def _has_gpu() -> bool:
    try:
        devices.parse("gpu")
        return True
    except devices.DeviceError:
        return False


HAS_GPU = _has_gpu()
# numba-cuda has no macOS wheels: there the tests of the CUDA kernels (simulator, audit) skip.
HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
NO_NUMBA_CUDA = ("numba-cuda is not installed (it has no wheels for this platform), so the CUDA "
                 "kernels can neither run under the simulator nor compile here")
if not HAS_GPU:  # the simulator must be chosen before anything imports numba.cuda
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
GPU = [pytest.param("gpu", id="gpu", marks=pytest.mark.gpu)] if HAS_GPU else []
# Without a GPU, the CUDA kernels run under Numba's simulator (chosen before numba.cuda loads).
SIM = [] if HAS_GPU else [pytest.param("sim", id="sim")]


@pytest.fixture(params=[pytest.param("cpu", id="cpu")] + GPU)
def device(request):
    """Runs the test inside `with K.device(name)`; yields the name."""
    with K.device(request.param):
        yield request.param


@pytest.fixture(params=[pytest.param("cpu", id="cpu")] + SIM + GPU)
def kernel_device(request):
    """As `device`, plus `sim` where there is no GPU: for ops backed by the CUDA kernels."""
    with K.device(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _restore_config():
    floatx, eps = K.floatx(), K.epsilon()
    yield
    K.set_floatx(floatx)
    K.set_epsilon(eps)
    # each test starts eager (a placeholder turns graph mode on); K.clear_session() would also
    # collect garbage, about 30 ms a test
    keras_compat.reset_session_state()


def _is_sim(value) -> bool:
    # only strings compare: a parameter may be a tensor, whose == is elementwise
    return isinstance(value, str) and value == "sim"


def _runs_on_sim(item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(_is_sim(v) or isinstance(v, tuple) and any(_is_sim(e) for e in v)
               for v in params.values())


def pytest_collection_modifyitems(config, items):
    """Without numba-cuda, every test on the `sim` device, or marked `sim`, skips and says why."""
    if HAS_NUMBA_CUDA:
        return
    skip = pytest.mark.skip(reason=NO_NUMBA_CUDA)
    for item in items:
        if _runs_on_sim(item) or item.get_closest_marker("sim"):
            item.add_marker(skip)
