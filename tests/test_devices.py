"""Device choice, overrides, errors, and the import-time promise."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gpubk as K
from gpubk import backends, devices


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_gpubk_device_cpu_override():
    out = _run("import gpubk as K; print(K.get_device())", GPUBK_DEVICE="cpu")
    assert out.returncode == 0 and out.stdout.strip() == "cpu"


def test_unknown_device_override_is_a_clear_error():
    out = _run("import gpubk as K; K.ones((2,))", GPUBK_DEVICE="tpu")
    assert out.returncode != 0 and "unknown device 'tpu'" in out.stderr


def test_asking_for_a_missing_gpu_says_why():
    try:
        devices.parse("gpu:0")
    except devices.DeviceError as err:
        assert any(why in str(err) for why in ("CuPy is not installed", "CUDA driver",
                                               "CUDA device(s)"))
    else:  # a GPU is present: ask for one past the last
        with pytest.raises(devices.DeviceError, match="CUDA device"):
            devices.parse("gpu:99")


def test_mixing_devices_is_an_error_not_a_silent_copy():
    other = devices.Device("gpu", 7, backends.get("cpu"))  # a second device backed by NumPy
    x = K.constant([1.0, 2.0])
    y = K.Tensor(np.array([1.0, 2.0], np.float32), other)
    with pytest.raises(ValueError, match="different devices"):
        x + y
    with pytest.raises(ValueError, match="different devices"):
        K.concatenate([x, y])


def test_import_initialises_no_cuda_and_compiles_nothing():
    code = ("import sys, gpubk; "
            "print(sorted(m for m in ('cupy', 'numba', 'numba.cuda') if m in sys.modules))")
    out = _run(code)
    assert out.returncode == 0 and out.stdout.strip() == "[]"


def test_devices_delegate_to_their_backend():
    from gpubk import backends
    assert devices.CPU.backend is backends.get("cpu") and devices.CPU.kind == "cpu"
    assert devices.parse("cpu") is devices.CPU and devices.parse(devices.CPU) is devices.CPU
    a = np.array([1.0, 2.0])
    assert devices.CPU.put(a) is a and devices.CPU.to_host(a) is a
    assert devices.CPU.stream() is None and not devices.CPU.cuda_kernels
    assert devices.CPU.context() is devices.CPU.context()  # one do-nothing scope, no allocation


def test_gpubk_device_names_a_registered_kind(tmp_path):
    (tmp_path / "gpubk_host4.py").write_text(
        "from gpubk.backends.numpy import open, put, to_host, context, stream, scatter_add\n"
        "KIND = 'host4'\nINDEXED = True\nCUDA_KERNELS = False\n")
    code = ("import gpubk as K; from gpubk import backends; "
            "backends.register('host4', 'gpubk_host4'); "
            "x = K.constant([1.0, 2.0]) * 2.0; print(K.get_device(), x.device, K.eval(x).tolist())")
    out = _run(code, GPUBK_DEVICE="host4:2", PYTHONPATH=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "host4:2 host4:2 [2.0, 4.0]"
