"""Tensor (one device buffer and its device) and Variable (named, trainable, assignable)."""
from __future__ import annotations

import numpy as np

from . import devices
from .config import floatx
from .dtypes import as_dtype


class SymbolicValueError(TypeError):
    """A value was needed of a symbolic tensor (a placeholder, or a node built on one), which
    has none until a K.function feeds its placeholders."""


class Operators:
    """Python's operators for tensors and symbolic tensors alike, each calling its gpubk
    function: installed by `install_operators` once the ops exist (the package does it last),
    so that this module imports no op."""

    __slots__ = ()

    def __pos__(self):
        return self

    def __hash__(self) -> int:  # identity, as for PyTorch tensors; __eq__ is elementwise
        return id(self)


def install_operators(add, subtract, multiply, divide, floordiv, mod, pow, matmul, negative,
                      abs, equal, not_equal, less, less_equal, greater, greater_equal,
                      getitem, cast) -> None:
    """Binds Python's operators to the gpubk functions, and `as_tensor`'s dtype conversion to
    `cast` (called by `gpubk/__init__.py`, once every op exists)."""
    global _cast
    _cast = cast
    binary = {"add": add, "sub": subtract, "mul": multiply, "truediv": divide,
              "floordiv": floordiv, "mod": mod, "pow": pow, "matmul": matmul}
    for name, fn in binary.items():
        setattr(Operators, f"__{name}__", fn)  # x + y is add(x, y): no extra call
        setattr(Operators, f"__r{name}__", lambda self, other, fn=fn: fn(other, self))
    Operators.__neg__ = negative
    Operators.__abs__ = abs
    # A tensor is never None (`None in grads`, as Keras 2's optimizers ask): TensorFlow answers
    # False / True there too, without an elementwise comparison.
    Operators.__eq__ = lambda self, other: False if other is None else equal(self, other)
    Operators.__ne__ = lambda self, other: True if other is None else not_equal(self, other)
    Operators.__lt__ = less
    Operators.__le__ = less_equal
    Operators.__gt__ = greater
    Operators.__ge__ = greater_equal
    Operators.__getitem__ = getitem


class Tensor(Operators):
    """An n-dimensional array on one device: a NumPy (cpu) or CuPy (gpu) buffer.

    Tensors are what every gpubk op takes and returns. `data` is the device buffer itself;
    `np.asarray(t)` (or `K.eval(t)`) copies it to a NumPy array.
    """

    # _node: the tape entry that produced this tensor (None for leaves and constants);
    # _rg: whether gradients flow back through it (trainable variable, watched, or recorded);
    # _logits: for softmax and sigmoid outputs, (that function, the logits it was given), as
    # Keras's `_keras_logits`: crossentropy then works from the logits, exactly.
    __slots__ = ("data", "device", "_node", "_rg", "_logits", "__weakref__")
    __array_priority__ = 100  # so `ndarray + tensor` defers to Tensor.__radd__

    def __init__(self, data, device: devices.Device) -> None:
        if data.__class__ is not np.ndarray and device.xp is np:
            data = np.asarray(data)  # NumPy returns scalars for 0-d results; keep arrays
        self.data = data
        self.device = device
        self._node = None
        self._rg = False
        self._logits = None

    # -- metadata ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow back through this tensor."""
        return self._rg

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def numpy(self) -> np.ndarray:
        """Returns the value as a NumPy array (a copy from the GPU; the buffer itself on cpu)."""
        return self.device.to_host(self.data)

    def __dlpack__(self, **kwargs):
        """This tensor's buffer itself (zero-copy) for `np.from_dlpack`, `torch.from_dlpack`,
        `cupy.from_dlpack`: writes through the importer are seen here. A variable exports its
        current buffer: a later assignment (`K.set_value`, `K.update*`, an optimizer step)
        swaps in a new buffer, which the exported view does not see."""
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple:
        return self.data.__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        value = self.numpy()
        return value if dtype is None else value.astype(dtype, copy=False)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self.data)

    def _describe(self) -> str:
        return f"shape={self.shape} dtype={self.dtype.name} device={self.device.name}"

    def __repr__(self) -> str:
        value = np.array2string(self.numpy(), separator=", ", prefix="       ")
        return f"<gpubk.Tensor {self._describe()}\n numpy={value}>"


class Variable(Tensor):
    """A named tensor whose value can be assigned in place; trainable ones receive gradients."""

    __slots__ = ("name", "_trainable", "constraint")

    def __init__(self, data, device: devices.Device, name: str = "Variable",
                 trainable: bool = True, constraint=None) -> None:
        super().__init__(data, device)
        self.name = name
        self.constraint = constraint
        self.trainable = trainable

    @property
    def trainable(self) -> bool:
        """Whether gradients are computed for this variable (only float variables get them)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self._rg = self._trainable and self.data.dtype.kind == "f"

    def __repr__(self) -> str:
        value = np.array2string(self.numpy(), separator=", ", prefix="       ")
        return f"<gpubk.Variable '{self.name}' {self._describe()}\n numpy={value}>"

    def assign(self, value, func: str = "assign") -> "Variable":
        """Sets the value; `value` must have this variable's shape and a castable dtype.

        The variable gets a fresh buffer rather than being overwritten, so buffers that earlier
        ops saved for their gradients keep the values those ops saw.
        """
        self.data = self.prepared_value(value, func)
        return self

    def prepared_value(self, value, func: str = "assign"):
        """The buffer `assign(value)` would install (checked), without installing it:
        `batch_set_value` checks every pair before assigning any. The constraint is not applied
        here: as in Keras 2, optimizers apply `p.constraint` to the new value themselves."""
        return self._checked_value(value, func)

    def assign_add(self, delta, func: str = "assign_add") -> "Variable":
        return self.assign(self.data + self._checked_value(delta, func), func)

    def assign_sub(self, delta, func: str = "assign_sub") -> "Variable":
        return self.assign(self.data - self._checked_value(delta, func), func)

    def _checked_value(self, value, func: str):
        """`value` as a buffer of this variable's device, shape and dtype, or a clear error."""
        if isinstance(value, Tensor):
            if value.device is not self.device:
                raise ValueError(
                    f"{func}: variable '{self.name}' is on {self.device.name} but the value is "
                    f"on {value.device.name}; move it with K.to_device first")
            data = value.data
        else:
            data = self.device.put(to_array(value, None, func))
        if data.dtype.kind not in "biuf":
            raise TypeError(f"{func}: variable '{self.name}' ({self.dtype.name}) cannot take "
                            f"a value of dtype {data.dtype}")
        if data.shape != self.shape:
            raise ValueError(
                f"{func}: variable '{self.name}' has shape {self.shape} but the value has shape "
                f"{data.shape}; expected the same shape")
        if data.dtype.kind == "f" and self.dtype.kind in "iub":
            raise TypeError(f"{func}: variable '{self.name}' is {self.dtype.name} and cannot "
                            f"take a {data.dtype.name} value without losing its fraction")
        return data.astype(self.dtype, copy=False)


_cast = None  # K.cast, installed with the operators


def to_array(value, dtype, func: str) -> np.ndarray:
    """Host value (scalar, list, NumPy array) as a NumPy array, or a TypeError naming `func`."""
    if isinstance(value, Tensor):
        value = value.numpy()
    elif getattr(value, "_symbolic", False):
        raise SymbolicValueError(f"{func}: expected a value, got the symbolic tensor "
                                 f"'{value.name}', which has none until fed")
    elif value is None or isinstance(value, (str, bytes, dict)):
        # NumPy would make NaN of None, or parse a string, given a float dtype
        raise TypeError(f"{func}: cannot convert {type(value).__name__} to a numeric tensor; "
                        "expected a tensor, array or number")
    dtype = None if dtype is None else as_dtype(dtype, func)
    try:
        array = np.asarray(value, dtype=dtype)
    except SymbolicValueError:  # a list holding symbolic tensors: the caller says what to do
        raise
    except (TypeError, ValueError) as err:
        raise TypeError(f"{func}: cannot convert {type(value).__name__} to a numeric tensor "
                        f"({err})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{func}: expected a numeric value, got {type(value).__name__} of "
                        f"dtype {array.dtype}")
    return array


def device_buffer(value, dtype, func: str, device: devices.Device | None = None,
                  copy: bool = True) -> Tensor:
    """A GPU array (anything with `__cuda_array_interface__`) as a tensor on `device` (default:
    the current one), cast to `dtype` if given; a copy unless `copy` is False."""
    dev = device or devices.current()
    data = dev.put(value)
    if dtype is not None:
        data = data.astype(as_dtype(dtype, func), copy=False)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{func}: expected a numeric value, got dtype {data.dtype}")
    return Tensor(data.copy() if copy and data is value else data, dev)


def as_tensor(value, func: str, dtype=None, device: devices.Device | None = None) -> Tensor:
    """`value` as a Tensor: tensors pass through (cast if `dtype` differs); anything else is
    converted on `device` (default: the current device). Python floats become floatx."""
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype != as_dtype(dtype, func):
            return _cast(value, dtype)
        return value
    if hasattr(value, "__cuda_array_interface__"):  # a CuPy (or other GPU) array: no host trip
        return device_buffer(value, dtype, func, device, copy=False)
    array = to_array(value, dtype, func)
    if dtype is None and array.dtype == np.float64 and not isinstance(value, np.ndarray):
        array = array.astype(floatx())  # Python floats and lists follow floatx, as in Keras
    dev = device or devices.current()
    return Tensor(dev.put(array), dev)
