"""gpubk: the Keras 2 backend API (`import gpubk as K`) on a CUDA GPU through CuPy, or on NumPy.

Importing gpubk initialises no CUDA and compiles nothing; the device is chosen at first use
(`GPUBK_DEVICE=cpu|gpu|gpu:N|sim` overrides the automatic choice).
"""
from types import ModuleType as _ModuleType

from .tensor import Tensor, Variable, install_operators
from .autodiff import GradientTape, gradients, install_staged, no_grad
from .config import (
    epsilon, floatx, image_data_format, set_epsilon, set_floatx, set_image_data_format)
from .devices import DeviceError, device, get_device
from .graph import (
    function, in_test_phase, in_train_phase, learning_phase, learning_phase_scope,
    set_learning_phase)
from .symbolic import Placeholder, Symbol, placeholder
from .keras_compat import (
    backend, clear_session, get_session, get_uid, is_keras_tensor, is_sparse,
    manual_variable_initialization, name_scope, reset_uids, set_session, to_dense)
from .ops.control import foldl, foldr, in_top_k, map_fn, switch
from .ops.conv import (
    conv1d, conv2d, conv2d_transpose, conv3d, depthwise_conv2d, local_conv1d, local_conv2d,
    pool2d, pool3d, separable_conv2d)
from .ops.creation import (
    constant, eye, from_dlpack, ones, ones_like, random_normal_variable, random_uniform_variable,
    to_device, variable, zeros, zeros_like)
from .ops.ctc import ctc_batch_cost, ctc_decode, ctc_label_dense_to_sparse
from .ops.linalg import batch_dot, dot, matmul
from .ops.losses import (
    binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy,
    categorical_focal_crossentropy, sparse_categorical_crossentropy)
from .ops.math import (
    abs, add, cast, clip, cos, divide, equal, exp, floordiv, greater, greater_equal, less,
    less_equal, log, maximum, minimum, mod, multiply, negative, not_equal, pow, round, sign, sin,
    sqrt, square, stop_gradient, subtract, where)
from .ops.nn import (
    elu, hard_sigmoid, l2_normalize, log_softmax, relu, sigmoid, softmax, softplus, softsign,
    tanh)
from .ops.query import count_params, dtype, int_shape, is_tensor, ndim, shape
from .ops.random import (
    dropout, random_bernoulli, random_binomial, random_normal, random_uniform, truncated_normal)
from .ops.recurrent import batch_normalization, normalize_batch_in_training, rnn
from .ops.reduce import (
    all, any, argmax, argmin, cumprod, cumsum, logsumexp, max, mean, min, prod, std, sum, var)
from .ops.image import resize_images, resize_volumes
from .ops.shape import (
    arange, batch_flatten, bias_add, concatenate, expand_dims, flatten, gather, getitem, one_hot,
    permute_dimensions, repeat, repeat_elements, reshape, reverse, spatial_2d_padding,
    spatial_3d_padding, squeeze, stack, temporal_padding, tile, transpose)
from . import staged_backprop
from .ops.state import (
    batch_get_value, batch_set_value, cast_to_floatx, eval, get_value, moving_average_update,
    print_tensor, set_value, update, update_add, update_sub)

__version__ = "0.1.0"

# Last, once every op exists: Python's operators on tensors and symbolic tensors, and how the
# tape hands gradients of symbolic tensors to the graph layer.
install_operators(add, subtract, multiply, divide, floordiv, mod, pow, matmul, negative, abs,
                  equal, not_equal, less, less_equal, greater, greater_equal, getitem, cast)
install_staged(staged_backprop.backprop, staged_backprop.composition_grads)
del floordiv, mod, getitem, install_operators, install_staged  # not Keras backend functions

# The public API: every name imported above (the Keras 2 backend functions and gpubk's own),
# not the submodules that importing them binds here.
__all__ = sorted(name for name, value in globals().items()
                 if not name.startswith("_") and not isinstance(value, _ModuleType))
