"""DLPack: gpubk tensors share memory with NumPy, PyTorch and CuPy both ways, without a copy.
Each test proves the sharing by writing through one side and reading through the other."""
import numpy as np
import pytest

import gpubk as K


def test_from_numpy_shares_the_buffer(device):
    host = np.arange(6.0).reshape(2, 3)
    t = K.from_dlpack(host)
    assert t.shape == (2, 3) and t.dtype == np.float64
    host[1, 2] = -7.0  # seen by the tensor: no copy was made
    np.testing.assert_array_equal(K.eval(t), [[0.0, 1.0, 2.0], [3.0, 4.0, -7.0]])
    np.testing.assert_array_equal(K.eval(t * 2.0)[1], [6.0, 8.0, -14.0])


def test_to_numpy_shares_the_buffer():
    with K.device("cpu"):
        t = K.constant(np.arange(4.0), dtype="float32")
    view = np.from_dlpack(t)
    assert view.dtype == np.float32 and t.__dlpack_device__() == (1, 0)
    view[0] = 42.0
    np.testing.assert_array_equal(K.eval(t), [42.0, 1.0, 2.0, 3.0])


def test_an_exported_variable_keeps_the_buffer_it_had():
    """The documented behaviour: an assignment swaps in a new buffer, which the exported view
    does not see; the variable keeps the new value."""
    with K.device("cpu"):
        v = K.variable(np.zeros(3))
    view = np.from_dlpack(v)
    K.set_value(v, np.ones(3))
    np.testing.assert_array_equal(view, np.zeros(3))
    np.testing.assert_array_equal(K.get_value(v), np.ones(3))


def test_from_dlpack_names_itself_on_bad_input():
    with pytest.raises(TypeError, match="^from_dlpack: expected an object with __dlpack__.*list"):
        K.from_dlpack([1.0, 2.0])


def test_pytorch_cpu_round_trip():
    torch = pytest.importorskip("torch")  # an optional peer: not installed by the test extra
    source = torch.arange(5, dtype=torch.float32)
    t = K.from_dlpack(source)
    source[0] = 9.0
    assert K.eval(t)[0] == 9.0
    back = torch.from_dlpack(t)
    back[1] = -3.0
    np.testing.assert_array_equal(K.eval(t), [9.0, -3.0, 2.0, 3.0, 4.0])


@pytest.mark.gpu
def test_cupy_and_pytorch_gpu_round_trip():
    cupy = pytest.importorskip("cupy")
    with K.device("gpu"):
        t = K.constant(np.arange(4.0), dtype="float32")
    view = cupy.from_dlpack(t)
    view[0] = 5.0
    assert K.eval(t)[0] == 5.0
    back = K.from_dlpack(view)
    assert back.device.name == "gpu:0"
    view[1] = 6.0
    assert K.eval(back)[1] == 6.0
    torch = pytest.importorskip("torch")
    shared = torch.from_dlpack(t)
    shared[2] = 7.0
    assert K.eval(t)[2] == 7.0
