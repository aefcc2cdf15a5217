"""Shared fixtures: one test body runs on every available device (cpu always, gpu where CuPy sees
a CUDA device)."""
from __future__ import annotations

import numpy as np
import pytest

import gpubk as K
from gpubk import devices


def _available_devices() -> list:
    params = [pytest.param("cpu", id="cpu")]
    try:
        devices.parse("gpu")
        params.append(pytest.param("gpu", id="gpu", marks=pytest.mark.gpu))
    except devices.DeviceError:
        pass
    return params


@pytest.fixture(params=_available_devices())
def device(request):
    """Runs the test inside `with K.device(name)`; yields the name."""
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
