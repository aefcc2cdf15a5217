"""Backends: the protocol every device kind implements, the registry, and adding a kind."""
import contextlib
import subprocess
import sys
import types

import numpy as np
import pytest

import gpubk as K
from gpubk import backends, devices

from conftest import HAS_GPU


def _host2(kind: str = "host2", indexed: bool = False):
    """A backend over NumPy, as a third party would write one, counting what it is asked."""
    calls = {"open": [], "put": 0, "context": []}

    def open(index):  # noqa: A001
        calls["open"].append(index)
        return np

    def put(array, index):
        calls["put"] += 1
        return np.asarray(array)

    def context(index):
        calls["context"].append(index)
        return contextlib.nullcontext()

    backend = types.SimpleNamespace(
        KIND=kind, INDEXED=indexed, CUDA_KERNELS=False, open=open, put=put,
        to_host=np.asarray, context=context, stream=lambda index: None,
        scatter_add=lambda array, key, values: np.add.at(array, key, values))
    return backend, calls


@pytest.fixture
def host2():
    backend, calls = _host2()
    backends.register("host2", backend, aliases=("h2",))
    try:
        yield calls
    finally:
        backends.unregister("host2")


def test_builtin_kinds_are_registered():
    assert backends.kinds()[:3] == ["cpu", "gpu", "sim"]
    assert backends.get("cuda") is backends.get("gpu")
    assert backends.get("tpu") is None


@pytest.mark.parametrize("kind", ["cpu", "gpu", "sim"])
def test_each_backend_defines_the_whole_protocol(kind):
    backend = backends.get(kind)  # importing a backend needs neither CuPy nor a GPU
    assert backends.missing(backend) == []
    assert backend.KIND == kind
    assert isinstance(backend.INDEXED, bool) and isinstance(backend.CUDA_KERNELS, bool)
    assert backend.INDEXED == (kind == "gpu")
    assert backend.CUDA_KERNELS == (kind != "cpu")


def test_backend_modules_import_no_cuda():
    code = ("import sys; from gpubk import backends; [backends.get(k) for k in backends.kinds()];"
            "print(sorted(m for m in ('cupy', 'cupyx', 'numba.cuda') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_cpu_round_trip():
    dev = devices.parse("cpu")
    assert dev is devices.CPU and dev.backend is backends.get("cpu")
    assert dev.xp is np and not dev.cuda_kernels and dev.stream() is None
    a = np.array([[1.5, -2.0], [3.0, 4.25]], np.float32)
    assert dev.put(a) is a  # no copy for a host array
    back = dev.to_host(dev.put([[1.5, -2.0], [3.0, 4.25]]))
    assert isinstance(back, np.ndarray) and np.array_equal(back, a)
    with dev.context():
        assert np.array_equal(dev.xp.ones(2), [1.0, 1.0])


@pytest.mark.sim
@pytest.mark.skipif(HAS_GPU, reason="numba.cuda runs compiled here; the simulator is not chosen")
def test_sim_round_trip():
    dev = devices.parse("sim")
    assert dev is devices.parse(" SIM ") and dev.name == "sim" and dev.backend.KIND == "sim"
    assert dev.xp is np and dev.cuda_kernels and dev.stream() is None
    a = np.arange(6, dtype=np.float64).reshape(2, 3) / 4
    assert dev.put(a) is a
    assert np.array_equal(dev.to_host(dev.put(a.tolist())), a)
    with K.device("sim"):
        t = K.constant([0.5, 1.5])
        assert t.device is dev
        assert np.array_equal(K.eval(K.softmax(K.constant([[0.0, 0.0]]))), [[0.5, 0.5]])
    assert np.array_equal(dev.to_host(t.data), [0.5, 1.5])


def test_unknown_kinds_keep_the_clear_error():
    for name in ("tpu", "cpu:1", "sim:0", "gpu:x", ""):
        with pytest.raises(ValueError, match="unknown device .*; expected 'cpu', 'gpu', "
                                             "'gpu:N' or 'sim'"):
            devices.parse(name)


def test_a_registered_kind_works_end_to_end(host2):
    with K.device("host2") as dev:
        assert K.get_device() == "host2" and dev.name == "host2" and dev.kind == "host2"
        x = K.constant([1.0, 2.0]) * 2.0
        assert np.array_equal(K.eval(x), [2.0, 4.0])
        assert x.device is dev and x.device.name == "host2"
        assert K.eval(K.sum(K.ones((2, 3)))) == 6.0
    assert K.get_device() != "host2"
    assert devices.parse("H2") is dev  # the alias, case-insensitive
    assert host2["open"] == [0]  # opened once, then kept
    assert dev.put([1, 2]).tolist() == [1, 2] and host2["put"] >= 1  # non-NumPy input: its put
    before = len(host2["context"])  # ops may already have entered it (K.ones does)
    with dev.context():
        pass
    assert host2["context"][before:] == [0] and set(host2["context"]) == {0}
    with pytest.raises(ValueError, match="unknown device 'host2:1'.*'host2'"):
        devices.parse("host2:1")


def test_an_indexed_kind_names_its_devices():
    backend, calls = _host2("multi", indexed=True)
    backends.register("multi", backend)
    try:
        one = devices.parse("multi:1")
        assert one.name == "multi:1" and one.index == 1
        assert devices.parse("multi").name == "multi:0"
        with K.device("multi:1"):
            y = K.constant([3.0]) + 1.0
        assert y.device is one and np.array_equal(y.numpy(), [4.0])
        assert calls["open"] == [1, 0]
    finally:
        backends.unregister("multi")


def test_unregistered_kind_is_unknown_again():
    backend, _ = _host2()
    backends.register("host2", backend)
    devices.parse("host2")
    backends.unregister("host2")
    with pytest.raises(ValueError, match="unknown device 'host2'"):
        devices.parse("host2")
    backend2, calls = _host2()  # registered anew: a new device on the new backend
    backends.register("host2", backend2)
    try:
        assert devices.parse("host2").backend is backend2 and calls["open"] == [0]
    finally:
        backends.unregister("host2")


def test_registering_checks_the_protocol_and_names():
    incomplete = types.SimpleNamespace(KIND="half", INDEXED=False, CUDA_KERNELS=False,
                                       open=lambda index: np)
    with pytest.raises(TypeError, match="missing or invalid put, to_host, context, stream"):
        backends.register("half", incomplete)
    backend, _ = _host2()
    with pytest.raises(TypeError, match="registered as 'other'"):
        backends.register("other", backend)
    with pytest.raises(ValueError, match="already registered"):
        backends.register("cpu", backends.get("cpu"))
    with pytest.raises(ValueError, match="already registered"):
        backends.register("cuda", _host2("cuda")[0])
    for bad in ("Host", "a:b", "", " x"):
        with pytest.raises(ValueError, match="lower-case"):
            backends.register(bad, backend)
    with pytest.raises(ValueError, match="no module"):
        backends.register("nowhere", "no_such_package_gpubk.backend")
    with pytest.raises(ValueError, match="built-in"):
        backends.unregister("cpu")
    assert "half" not in backends.kinds() and "other" not in backends.kinds()


def test_a_kind_registered_by_module_path_imports_it_on_first_use(tmp_path, monkeypatch):
    (tmp_path / "gpubk_host3.py").write_text(
        "from gpubk.backends.numpy import open, put, to_host, context, stream, scatter_add\n"
        "KIND = 'host3'\nINDEXED = False\nCUDA_KERNELS = False\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    backends.register("host3", "gpubk_host3")
    try:
        assert "gpubk_host3" not in sys.modules
        with K.device("host3"):
            x = K.constant([1.0, 2.0]) * 2.0
        assert x.device.name == "host3" and np.array_equal(K.eval(x), [2.0, 4.0])
        assert backends.get("host3") is sys.modules["gpubk_host3"]
    finally:
        backends.unregister("host3")
        sys.modules.pop("gpubk_host3", None)


def test_device_error_is_one_class():
    assert devices.DeviceError is backends.DeviceError is K.DeviceError


def test_scatter_add_accumulates_repeats():
    a = np.zeros(3)
    K.ops.creation.devices.CPU.backend.scatter_add(a, np.array([0, 2, 0]),
                                                   np.array([1.0, 2.0, 3.0]))
    assert a.tolist() == [4.0, 0.0, 2.0]
    b = np.zeros(3)
    backends.get("cpu").scatter_add(b, np.array([1, 1]), np.array([1.0, 1.0]))
    assert b.tolist() == [0.0, 2.0, 0.0]
