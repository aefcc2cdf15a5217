"""gpubk: the Keras 2 backend API (`import gpubk as K`) on a CUDA GPU through CuPy, or on NumPy.

Importing gpubk initialises no CUDA and compiles nothing; the device is chosen at first use
(`GPUBK_DEVICE=cpu|gpu|gpu:N` overrides the automatic choice).
"""
# tensor.py first: it binds its operators to ops/, which need autodiff, which needs Tensor.
from .tensor import Tensor, Variable  # noqa: I001
from .autodiff import GradientTape, gradients, no_grad, stop_gradient
from .config import epsilon, floatx, set_epsilon, set_floatx
from .devices import DeviceError, device, get_device
from .graph import Placeholder, placeholder
from .ops.creation import (
    constant, eye, ones, ones_like, random_normal_variable, random_uniform_variable, to_device,
    variable, zeros, zeros_like)
from .ops.linalg import dot, matmul
from .ops.losses import categorical_crossentropy
from .ops.math import (
    abs, add, cast, clip, divide, equal, exp, greater, greater_equal, less, less_equal, log,
    multiply, negative, not_equal, pow, sign, sqrt, square, subtract, where)
from .ops.nn import (
    elu, hard_sigmoid, log_softmax, relu, sigmoid, softmax, softplus, softsign, tanh)
from .ops.query import count_params, dtype, int_shape, is_tensor, ndim, shape
from .ops.reduce import max, mean, min, prod, sum
from .ops.shape import (
    concatenate, expand_dims, permute_dimensions, repeat_elements, reshape, stack, tile,
    transpose)
from .ops.state import (
    batch_get_value, batch_set_value, cast_to_floatx, eval, get_value, moving_average_update,
    print_tensor, set_value, update, update_add, update_sub)

__version__ = "0.1.0"

__all__ = [
    "GradientTape", "Placeholder", "Tensor", "Variable", "DeviceError",
    "abs", "add", "batch_get_value", "batch_set_value", "cast", "cast_to_floatx",
    "categorical_crossentropy", "clip", "concatenate", "constant", "count_params", "device",
    "divide", "dot", "dtype", "epsilon", "equal", "eval", "exp", "expand_dims", "eye", "floatx",
    "get_device", "get_value", "gradients", "greater", "greater_equal", "int_shape",
    "is_tensor", "less", "less_equal", "log", "log_softmax", "matmul", "max", "mean", "min",
    "moving_average_update", "multiply", "ndim", "negative", "no_grad", "not_equal", "ones",
    "ones_like", "permute_dimensions", "placeholder", "relu", "tanh", "elu", "hard_sigmoid", "sigmoid",
    "softplus", "softsign", "pow", "print_tensor", "prod",
    "random_normal_variable", "random_uniform_variable", "repeat_elements", "reshape",
    "set_epsilon", "set_floatx", "set_value", "shape", "sign", "softmax", "sqrt", "square",
    "stack", "stop_gradient", "subtract", "sum", "tile", "to_device", "transpose", "update",
    "update_add", "update_sub", "variable", "where", "zeros", "zeros_like",
]
