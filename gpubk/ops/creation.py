"""Creating tensors and variables: constants, fills, identity, random initialisers, transfers.

Given values or shapes known only when fed, `constant` is a composition of primitives (cast,
reshape or broadcast) and `zeros`, `ones` and `eye` bind `fill`, whose input is the shape."""
from __future__ import annotations

import numpy as np

from .. import devices, symbolic
from ..config import floatx
from ..core import trace
from ..core.primitive import Primitive, as_input, bind, is_symbolic
from ..dtypes import as_dtype
from ..tensor import SymbolicValueError, Tensor, Variable, as_tensor, device_buffer, to_array
from . import dims
from .math import cast, full_like_p, stop_gradient
from .random import draw
from .shape import broadcast_to, reshape
from .validate import check_number, check_shape, check_size


def _fill(func: str, shape, dtype, make) -> tuple:
    """Allocates on the current device: `make(xp, shape, dtype)`."""
    dev = devices.current()
    dtype = as_dtype(dtype or floatx(), func)
    shape = check_shape(shape, func)
    check_size(shape, dtype.itemsize, func, dev)
    with dev.context():
        return make(dev.xp, shape, dtype), dev


def variable(value, dtype=None, name: str | None = None, constraint=None) -> Variable:
    """Keras: `K.variable(value, dtype=None, name=None, constraint=None)`.

    Instantiates a trainable variable holding a copy of `value` (a NumPy array, list, scalar or
    tensor) on the current device, in `dtype` (default: floatx).

    Example:
    ```python
    w = K.variable(np.zeros((3, 4)), name="w")
    ```
    """
    if isinstance(value, symbolic.Symbol):  # an initial value built in graph style: its value now
        value = symbolic.evaluate(value, "variable")
    if hasattr(value, "__cuda_array_interface__"):  # stays on the GPU
        t = device_buffer(value, dtype or floatx(), "variable")
        return Variable(t.data, t.device, name or "Variable", constraint=constraint)
    array = to_array(value, dtype or floatx(), "variable")
    dev = devices.current()
    return Variable(dev.put(np.array(array, copy=True)), dev, name or "Variable",
                    constraint=constraint)


def constant(value, dtype=None, shape=None, name: str | None = None) -> Tensor:
    """Keras: `K.constant(value, dtype=None, shape=None, name=None)`.

    A constant tensor (dtype default floatx). With `shape`, a scalar is broadcast to it and an
    array of the same size is reshaped to it. Of a symbolic value (or, in graph style, a
    variable), a node with that value when evaluated; no gradient flows through it."""
    if is_symbolic(value) or isinstance(value, Variable) and trace.staging():
        return _graph_constant(value, dtype, shape)
    if shape is None and hasattr(value, "__cuda_array_interface__"):  # stays on the GPU
        return device_buffer(value, dtype or floatx(), "constant")
    try:
        array = to_array(value, dtype or floatx(), "constant")
    except SymbolicValueError:  # as tf.constant: a list of tensors is no constant
        raise TypeError("constant: got a list holding symbolic tensors; expected a value (join "
                        "them with K.stack first)") from None
    if shape is not None:
        shape = dims.parse(shape, "constant")
        if shape.__class__ is not tuple:  # a shape known only when fed
            dev = devices.current()
            return _graph_constant(Tensor(dev.put(array), dev), dtype, shape)
        if array.size == 1:
            array = np.full(shape, array.reshape(()), dtype=array.dtype)
        elif array.size == int(np.prod(shape)):
            array = array.reshape(shape)
        else:
            raise _misfit(array.shape, shape)
    dev = devices.current()
    return Tensor(dev.put(np.array(array, copy=True)), dev)


def _misfit(shape, target) -> ValueError:
    return ValueError(f"constant: a value of shape {shape} cannot take shape {target}; "
                      f"expected a scalar or {int(np.prod(target))} elements")


def _graph_constant(value, dtype, shape):
    """K.constant of a value or shape known only when fed: the value cut from gradients, cast,
    then broadcast (a scalar) or reshaped to `shape`."""
    x = cast(stop_gradient(as_input(value, "constant")), as_dtype(dtype or floatx(), "constant"))
    if shape is None:
        return x
    target = dims.parse(shape, "constant")
    known = target if target.__class__ is tuple else target.known
    size = None if None in x.shape else int(np.prod(x.shape))
    if size == 1:
        return broadcast_to(reshape(x, ()), target)
    if size is not None and None not in known and size != int(np.prod(known)):
        raise _misfit(x.shape, known)
    return reshape(x, target)


def _fill_shape(func: str, known: tuple) -> tuple:
    """The shape `func` fills: eye's `n` is `(n, n)`."""
    return known * 2 if func == "eye" and len(known) == 1 else known


_FILLS = {"zeros": lambda xp, s, d: xp.zeros(s, dtype=d),
          "ones": lambda xp, s, d: xp.ones(s, dtype=d),
          "eye": lambda xp, s, d: xp.eye(s[0], s[1], dtype=d)}


def _fill_impl(device, vector, *, func, dtype, known):
    shape = _fill_shape(func, dims.resolve(device, vector, func, "size" if func == "eye" else
                                           "shape"))
    check_size(shape, dtype.itemsize, func, device)
    return _FILLS[func](device.xp, shape, dtype)


# zeros, ones or eye of a shape known only when fed (its input).
fill_p = Primitive("fill")  # no vjp: a constant
fill_p.def_impl(_fill_impl)
fill_p.def_abstract(lambda vector, *, func, dtype, known: (_fill_shape(func, known), dtype))


def _filled(func: str, shape, dtype, name):
    """A variable holding zeros, ones or an identity matrix of `shape`; a tensor where the
    shape is known only when fed (as Keras 2 returns a tensor, not a variable, then)."""
    parsed = dims.parse(shape, func, "size" if func == "eye" else "shape")
    fed = parsed.__class__ is not tuple
    known = parsed.known if fed else parsed
    if func == "eye" and len(known) not in (1, 2):
        raise ValueError(f"eye: size must be n or (rows, columns), got {shape!r}")
    if fed:
        return bind(fill_p, parsed.vector, func=func, dtype=as_dtype(dtype or floatx(), func),
                    known=known)
    t = Tensor(*_fill(func, _fill_shape(func, known), dtype, _FILLS[func]))
    return Variable(t.data, t.device, name or "Variable")


def zeros(shape, dtype=None, name: str | None = None) -> Variable:
    """Keras: `K.zeros(shape, dtype=None, name=None)`. A variable of zeros (as in Keras 2); a
    tensor if `shape` is symbolic (`(K.shape(x)[0], 2)`)."""
    return _filled("zeros", shape, dtype, name)


def ones(shape, dtype=None, name: str | None = None) -> Variable:
    """Keras: `K.ones(shape, dtype=None, name=None)`. A variable of ones (as in Keras 2); a
    tensor if `shape` is symbolic."""
    return _filled("ones", shape, dtype, name)


def eye(size, dtype=None, name: str | None = None) -> Variable:
    """Keras: `K.eye(size, dtype=None, name=None)`. An identity-matrix variable; `size` is `n`
    or `(rows, columns)` (a tensor if `size` is symbolic)."""
    return _filled("eye", size, dtype, name)


def _filled_like(func: str, x, dtype, value) -> Tensor:
    x = as_input(x, func)
    return bind(full_like_p, x, value=value,
                dtype=x.dtype if dtype is None else as_dtype(dtype, func))


def zeros_like(x, dtype=None, name: str | None = None) -> Tensor:
    """Keras: `K.zeros_like(x, dtype=None, name=None)`. Zeros of `x`'s shape (and dtype, unless
    `dtype` is given), on `x`'s device."""
    return _filled_like("zeros_like", x, dtype, 0)


def ones_like(x, dtype=None, name: str | None = None) -> Tensor:
    """Keras: `K.ones_like(x, dtype=None, name=None)`. Ones of `x`'s shape (and dtype, unless
    `dtype` is given), on `x`'s device."""
    return _filled_like("ones_like", x, dtype, 1)


def _random_variable(func: str, shape, dtype, name, seed, sample) -> Variable:
    t = draw(func, shape, dtype, seed, sample)
    return Variable(t.data, t.device, name or "Variable")


def random_uniform_variable(shape, low, high, dtype=None, name: str | None = None,
                            seed=None) -> Variable:
    """Keras: `K.random_uniform_variable(shape, low, high, dtype=None, name=None, seed=None)`.

    A variable drawn from the uniform distribution on [low, high); the same seed gives the same
    values on the same device."""
    func = "random_uniform_variable"
    low, high = check_number(low, func, "low"), check_number(high, func, "high")
    return _random_variable(func, shape, dtype, name, seed,
                            lambda rng, s: rng.uniform(low, high, size=s))


def random_normal_variable(shape, mean, scale, dtype=None, name: str | None = None,
                           seed=None) -> Variable:
    """Keras: `K.random_normal_variable(shape, mean, scale, dtype=None, name=None, seed=None)`.

    A variable drawn from the normal distribution N(mean, scale^2); the same seed gives the same
    values on the same device."""
    func = "random_normal_variable"
    mean, scale = check_number(mean, func, "mean"), check_number(scale, func, "scale")
    return _random_variable(func, shape, dtype, name, seed,
                            lambda rng, s: rng.normal(mean, scale, size=s))


def to_device(x, device) -> Tensor:
    """Returns a copy of `x` on `device` ('cpu', 'gpu', 'gpu:N'); a variable stays a variable.

    The copy does not carry gradients back to `x`."""
    x = as_tensor(x, "to_device")
    try:
        dev = devices.parse(device)
    except ValueError as err:  # devices.parse names itself "device"
        raise ValueError(f"to_device: {str(err).removeprefix('device: ')}") from None
    data = dev.put(x.data)
    if data is x.data:  # same device: still a copy, so the two never alias
        data = data.copy()
    if isinstance(x, Variable):
        return Variable(data, dev, x.name, x.trainable, x.constraint)
    return Tensor(data, dev)


# DLPack device types (dlpack.h): where the exporter's buffer lives.
_DLPACK_HOST = (1, 3)  # kDLCPU, kDLCUDAHost (pinned host memory)
_DLPACK_CUDA = (2, 13)  # kDLCUDA, kDLCUDAManaged


def from_dlpack(obj) -> Tensor:
    """A tensor sharing the memory of `obj` (zero-copy), through the DLPack protocol: a NumPy or
    CuPy array, a PyTorch or JAX array, anything with `__dlpack__` and `__dlpack_device__`.

    Host memory becomes a tensor on the current device if that device keeps its buffers on the
    host (`cpu`, `sim`), else on `cpu`; CUDA memory becomes a tensor on `gpu:N`, the exporter's
    device. Writes through either side are seen by the other. (gpubk's own ops never write into
    their inputs; `K.set_value` on a variable made from it swaps in a new buffer.)

    The other way round, `np.from_dlpack(t)`, `torch.from_dlpack(t)` or `cupy.from_dlpack(t)`
    share a gpubk tensor's buffer (see `Tensor.__dlpack__`).
    """
    if not (hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__")):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and "
                        f"__dlpack_device__ (a NumPy or CuPy array, a PyTorch tensor, ...), got "
                        f"{type(obj).__name__}")
    kind, index = (int(v) for v in obj.__dlpack_device__())
    if kind in _DLPACK_HOST:
        here = devices.current()
        dev = here if here.xp is np else devices.CPU
        return Tensor(np.from_dlpack(obj), dev)
    if kind in _DLPACK_CUDA:
        dev = devices.parse(f"gpu:{index}")  # a DeviceError saying why, without CuPy or a GPU
        with dev.context():
            return Tensor(dev.xp.from_dlpack(obj), dev)
    raise ValueError(f"from_dlpack: {type(obj).__name__} lives on DLPack device type {kind}; "
                     "expected host (1, 3) or CUDA (2, 13) memory")
