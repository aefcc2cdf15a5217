"""Every public function, called with wrong arguments, raises a one-line TypeError or ValueError
that names the function, and changes nothing: the variables it was given keep their values.

The table below has, for each name in `gpubk.__all__` (but the allowlist), calls with None, a
string, a dict, NaN, negative sizes, axes of the wrong type or out of range, empty tensors and
mismatched shapes, whichever apply to its parameters. A test checks that nothing is left out."""
from __future__ import annotations

import re

import numpy as np
import pytest

import gpubk as K

NAN = float("nan")
DICT = {"a": 1}


class Lazy:
    """An argument built when the case runs (placeholders must not exist at collection)."""

    def __init__(self, make):
        self.make = make

    def __repr__(self):
        return "Lazy"


def v(*shape, dtype="float32"):
    """A variable of `shape` with distinct values (default (2, 3))."""
    shape = shape or (2, 3)
    return K.variable(np.arange(int(np.prod(shape))).reshape(shape) + 1, dtype=dtype)


def ph(*shape):
    return Lazy(lambda: K.placeholder(shape=shape))


def step(x, states):  # an rnn step function
    return x, states


CASES: list = []


def case(name: str, /, *args, **kwargs) -> None:
    CASES.append((name, args, kwargs))


def bad_x(name, *rest, **kwargs):
    """The tensor argument (first) replaced by None, a string and a dict."""
    for bad in (None, "abc", DICT):
        case(name, bad, *rest, **kwargs)


def bad_axis(name, *rest, x=None, keyword="axis", positional=False):
    """An axis of the wrong type (dict, string, float) or out of range."""
    for axis in (DICT, "0", 1.5, 5, -6):
        if positional:
            case(name, v() if x is None else x, *rest, axis)
        else:
            case(name, v() if x is None else x, *rest, **{keyword: axis})


# -- elementwise and activations ----------------------------------------------------------------
UNARY = ["abs", "cos", "exp", "log", "negative", "round", "sign", "sin", "sqrt", "square",
         "sigmoid", "softplus", "softsign", "tanh", "hard_sigmoid", "elu", "relu", "flatten",
         "batch_flatten", "transpose", "shape", "zeros_like", "ones_like", "print_tensor",
         "stop_gradient", "cast_to_floatx", "get_value", "eval", "count_params", "int_shape",
         "ndim", "dtype"]
for name in UNARY:
    bad_x(name)
BINARY = ["add", "subtract", "multiply", "divide", "pow", "maximum", "minimum", "equal",
          "not_equal", "greater", "greater_equal", "less", "less_equal"]
for name in BINARY:
    case(name, v(), None)
    case(name, v(), "abc")
    case(name, v(), DICT)
    case(name, v(2, 3), v(4, 5))
    case(name, None, v())
case("relu", v(), alpha="a")
case("relu", v(), max_value="a")
case("relu", v(), threshold=DICT)
case("elu", v(), alpha=None)
case("clip", None, 0, 1)
case("clip", v(), "a", 1)
case("clip", v(), 0, DICT)
case("cast", None, "float32")
case("cast", v(), "bogus")
case("cast", v(), None)
case("where", None, v(), v())
case("where", v(2, 3), v(4, 5), v(2, 3))
for name in ("softmax", "log_softmax"):
    bad_x(name)
    bad_axis(name)
bad_x("l2_normalize")
bad_axis("l2_normalize")

# -- reductions -------------------------------------------------------------------------------
for name in ("sum", "mean", "max", "min", "prod", "std", "var", "logsumexp", "all", "any"):
    bad_x(name)
    bad_axis(name)
    case(name, v(), axis=[0, DICT])
for name in ("argmax", "argmin", "cumsum", "cumprod"):
    bad_x(name)
    bad_axis(name)
case("argmax", v(2, 0), axis=1)
case("argmin", v(0, 3), axis=0)
case("max", v(0, 3), axis=0)
case("min", v(0, 3))

# -- shapes -----------------------------------------------------------------------------------
for shape in (None, DICT, "abc", (2, NAN), (4, 4), (2, -3), (1.5, 4)):
    case("reshape", v(), shape)
bad_x("reshape", (6,))
for pattern in (None, DICT, (0, 0), (0, 1, 2), ("a", 0)):
    case("permute_dimensions", v(), pattern)
bad_x("permute_dimensions", (1, 0))
bad_x("expand_dims")
bad_axis("expand_dims")
bad_x("squeeze", 0)
bad_axis("squeeze", positional=True)
case("squeeze", v(2, 3), 0)
for tensors in (None, "abc", DICT, [], [v(), None], [v(2, 3), v(4, 5)], [v(2, 3), v(2, 3, 1)]):
    case("concatenate", tensors)
    case("stack", tensors)
bad_axis("concatenate", x=[v(), v()])
bad_axis("stack", x=[v(), v()])
for n in (None, DICT, "ab", (2, -1), (2,), (2, NAN)):
    case("tile", v(), n)
for rep in (None, "a", -1, 1.5):
    case("repeat_elements", v(), rep, 0)
bad_axis("repeat_elements", 2, positional=True)
for n in (None, DICT, -1, 2.5):
    case("repeat", v(), n)
case("repeat", v(3), 2)
bad_x("repeat", 2)
bad_axis("reverse", keyword="axes")
case("reverse", v(), None)
case("gather", v(), None)
case("gather", v(), "a")
case("gather", v(), np.array([0.5]))
case("gather", v(), [5])
case("gather", v(), [-3])
case("gather", v(3), DICT)
case("gather", np.float32(1.0), [0])
for num_classes in (None, "a", -1, 2.5):
    case("one_hot", np.array([0, 1]), num_classes)
case("one_hot", np.array([0.5]), 3)
bad_x("one_hot", 3)
for start, stop, step_ in ((None, None, 1), ("a", None, 1), (DICT, None, 1), (0, 5, 0),
                           (0, NAN, 1), (0, 5, "a")):
    case("arange", start, stop, step_)
case("arange", 5, dtype="bogus")
case("bias_add", v(), None)
case("bias_add", v(), v(4))
case("bias_add", v(), v(2, 2))
case("bias_add", np.float32(1.0), v(1))
case("bias_add", v(3), v(3, 1))
case("bias_add", v(), v(3), data_format="bogus")
bad_x("bias_add", v(3))
for pad in (None, DICT, (1,), (1, -1), ("a", 1), (1, NAN)):
    case("temporal_padding", v(1, 2, 3), pad)
case("temporal_padding", v(2, 3), (1, 1))
for pad in (None, DICT, ((1, 1),), ((1, 1), (1, -1)), (1, 1)):
    case("spatial_2d_padding", v(1, 2, 2, 1), pad)
case("spatial_2d_padding", v(2, 3), ((1, 1), (1, 1)))
case("spatial_2d_padding", v(1, 2, 2, 1), data_format="bogus")
for pad in (None, ((1, 1), (1, 1)), ((1, 1), (1, 1), (-1, 1))):
    case("spatial_3d_padding", v(1, 2, 2, 2, 1), pad)
case("spatial_3d_padding", v(2, 3), ((1, 1), (1, 1), (1, 1)))
for h, w in ((None, 2), ("a", 2), (-1, 2), (2, 1.5), (0, 2)):
    case("resize_images", v(1, 2, 2, 1), h, w, "channels_last")
case("resize_images", v(1, 2, 2, 1), 2, 2, "bogus")
case("resize_images", v(1, 2, 2, 1), 2, 2, "channels_last", interpolation="bogus")
case("resize_images", v(2, 3), 2, 2, "channels_last")
for d, h, w in ((None, 2, 2), ("a", 2, 2), (-1, 2, 2), (2, 2, 1.5)):
    case("resize_volumes", v(1, 2, 2, 2, 1), d, h, w, "channels_last")
case("resize_volumes", v(1, 2, 2, 2, 1), 2, 2, 2, "bogus")
case("resize_volumes", v(2, 3), 2, 2, 2, "channels_last")

# -- products -----------------------------------------------------------------------------------
for name in ("dot", "matmul", "batch_dot"):
    case(name, v(), None)
    case(name, v(), "abc")
    case(name, v(2, 3), v(4, 5))
    case(name, None, v())
case("dot", v(3), v(3, 2))
case("matmul", np.float32(1.0), v(2, 2))
for axes in (DICT, "a", (1, 5), (0, 1), [[1], [1]], 1.5):
    case("batch_dot", v(2, 3), v(2, 3), axes=axes)
case("batch_dot", v(2, 3), v(3, 3))

# -- creation -------------------------------------------------------------------------------------
for name in ("zeros", "ones", "random_uniform", "random_normal", "truncated_normal",
             "random_bernoulli", "random_binomial"):
    for shape in (None, DICT, "abc", (2, -1), (2, NAN), (2.5,), ("a", 2)):
        case(name, shape)
    case(name, (2, 3), dtype="bogus")
for name in ("random_uniform_variable", "random_normal_variable"):
    for shape in (None, DICT, (2, -1), (2, NAN)):
        case(name, shape, 0.0, 1.0)
    case(name, (2, 3), "a", 1.0)
    case(name, (2, 3), 0.0, None)
    case(name, (2, 3), 0.0, 1.0, dtype="bogus")
    case(name, (10 ** 7, 10 ** 7), 0.0, 1.0)
for low, high in ((None, 1.0), (0.0, "a"), (DICT, 1.0), (NAN, 1.0)):
    case("random_uniform", (2,), low, high)
for mean, std in ((None, 1.0), (0.0, "a"), (NAN, 1.0)):
    case("random_normal", (2,), mean, std)
    case("truncated_normal", (2,), mean, std)
for p in (None, "a", NAN, -0.5, 1.5):
    case("random_bernoulli", (2,), p)
    case("random_binomial", (2,), p)
case("random_uniform", (2,), seed="a")
case("random_normal", (2,), seed=DICT)
for size in (None, DICT, "a", -1, (2, -1), 2.5, (1, 2, 3)):
    case("eye", size)
case("eye", 2, dtype="bogus")
for value in (None, "abc", DICT, [[1, 2], [3]]):
    case("variable", value)
    case("constant", value)
case("variable", 1.0, dtype="bogus")
case("constant", 1.0, dtype="bogus")
case("constant", [1.0, 2.0], shape=(3,))
case("constant", 1.0, shape=(2, -1))
case("constant", 1.0, shape=DICT)
case("zeros_like", v(), dtype="bogus")
case("ones_like", v(), dtype="bogus")
case("to_device", v(), "bogus")
case("to_device", v(), None)
bad_x("to_device", "cpu")
case("from_dlpack", None)
case("from_dlpack", [1.0, 2.0])
case("from_dlpack", DICT)

# -- state ------------------------------------------------------------------------------------------
for name in ("set_value", "update", "update_add", "update_sub"):
    case(name, v(), None)
    case(name, v(), "abc")
    case(name, v(), DICT)
    case(name, v(), np.ones((4, 5)))
    case(name, v(), np.array([[NAN] * 3] * 2, dtype=np.float64)[:1])
    case(name, v(dtype="int32"), np.full((2, 3), 0.5))
    case(name, np.ones((2, 3)), np.ones((2, 3)))
    case(name, None, np.ones((2, 3)))
for momentum in (None, "a", DICT):
    case("moving_average_update", v(), np.ones((2, 3)), momentum)
case("moving_average_update", v(), np.ones((4, 5)), 0.9)
case("moving_average_update", None, np.ones((2, 3)), 0.9)
for tuples in (None, "abc", DICT, [v()], [(v(), np.ones((2, 3)), 1)], [(None, 1.0)],
               [(v(), np.ones((2, 3))), (v(), np.ones((2, 3))), (v(), np.ones((4, 5)))],
               [(v(), np.ones((2, 3))), (v(dtype="int32"), np.full((2, 3), 0.5))],
               [(v(), np.ones((2, 3))), (np.ones(3), np.ones(3))]):
    case("batch_set_value", tuples)
for tensors in (None, DICT, [v(), None], [v(), "abc"]):
    case("batch_get_value", tensors)
case("print_tensor", v(), message=DICT)
case("print_tensor", v(), summarize="a")

# -- queries and graph ------------------------------------------------------------------------------
case("is_keras_tensor", None)
case("is_keras_tensor", "abc")
case("function", Lazy(lambda: [K.placeholder(shape=(2,))]), ["not a tensor"])
case("function", Lazy(lambda: [K.placeholder(shape=(2,))]), None)
case("function", Lazy(lambda: [K.placeholder(shape=(2,))]), DICT)
case("function", ["not a placeholder"], [v()])
case("function", None, [v()])
case("function", [], [v()], updates=[(v(), v(), v())])
case("function", [], [v()], updates="abc")
case("function", [], [v()], name=DICT)
case("function", [], [v()], bogus=1)
for shape, ndim_ in ((DICT, None), ("abc", None), ((2, -1), None), ((2, NAN), None),
                     (None, "a"), (None, -1), (None, None)):
    case("placeholder", shape=shape, ndim=ndim_)
case("placeholder", shape=(2,), dtype="bogus")
case("placeholder", shape=(2,), name=DICT)
case("gradients", None, [v()])
case("gradients", "abc", [v()])
case("gradients", Lazy(lambda: K.sum(v())), None)
case("gradients", Lazy(lambda: K.sum(v())), [None])
case("gradients", Lazy(lambda: K.sum(v())), ["abc"])
for value in (None, 2, -1, "1", 0.5, DICT):
    case("set_learning_phase", value)
    case("learning_phase_scope", value)
for training in (DICT, "abc", 2):
    case("in_train_phase", v(), v(), training=training)
    case("in_test_phase", v(), v(), training=training)
for value in (None, "abc", DICT, "float8"):
    case("set_floatx", value)
for value in (None, "abc", DICT, NAN, -1.0):
    case("set_epsilon", value)
for value in (None, "abc", DICT):
    case("set_image_data_format", value)
case("get_uid", DICT)
case("get_uid", None)
case("name_scope", None)
case("name_scope", DICT)
case("device", None)
case("device", "bogus")
case("device", DICT)

# -- control flow ---------------------------------------------------------------------------------
for condition in (None, "abc", DICT):
    case("switch", condition, v(), v())
case("switch", v(2, 3, 4) > 0, v(), v())
case("switch", v(2) > 1, v(2, 3), v(4, 5))
for k in (None, "a", 1.5, DICT):
    case("in_top_k", v(2, 3), np.array([0, 1]), k)
case("in_top_k", v(3), np.array([0]), 1)
case("in_top_k", v(2, 3), np.array([0, 1, 2]), 1)
case("in_top_k", v(2, 3), np.array([0.5, 1.5]), 1)
case("in_top_k", None, np.array([0, 1]), 1)
for name in ("map_fn", "foldl", "foldr"):
    case(name, None, v())
    case(name, "abc", v())
    case(name, lambda *a: a[-1], None)
    case(name, lambda *a: a[-1], "abc")
    case(name, lambda *a: a[-1], np.float32(1.0))
case("map_fn", lambda x: x, v(), dtype="bogus")
case("foldl", lambda a, x: a, v(0, 3))
case("foldr", lambda a, x: a, v(0, 3))

# -- rnn, normalisation, ctc ----------------------------------------------------------------------
case("rnn", None, v(2, 3, 4), [v(2, 4)])
case("rnn", "abc", v(2, 3, 4), [v(2, 4)])
case("rnn", step, None, [v(2, 4)])
case("rnn", step, v(2, 3), [v(2, 4)])
case("rnn", step, v(2, 0, 4), [v(2, 4)])
case("rnn", step, v(2, 3, 4), None)
case("rnn", step, v(2, 3, 4), DICT)
case("rnn", step, v(2, 3, 4), [v(2, 4)], mask=np.ones((2, 5)))
case("rnn", step, v(2, 3, 4), [v(2, 4)], mask=np.ones(3))
case("rnn", step, v(2, 3, 4), [v(2, 4)], mask="abc")
case("rnn", step, v(2, 3, 4), [v(2, 4)], constants=DICT)
case("rnn", lambda x, s: (x, s, 1), v(2, 3, 4), [v(2, 4)])
case("rnn", lambda x, s: None, v(2, 3, 4), [v(2, 4)])
case("rnn", step, v(2, 3, 4), [v(2, 4)], return_all_outputs="abc")
bad_x("batch_normalization", v(3), v(3), v(3), v(3))
case("batch_normalization", v(2, 3), v(4), v(3), v(3), v(3))
case("batch_normalization", v(2, 3), v(3), v(3), v(3), v(3), axis=DICT)
case("batch_normalization", v(2, 3), v(3), v(3), v(3), v(3), axis=5)
case("batch_normalization", v(2, 3), None, v(3), v(3), v(3))
case("batch_normalization", v(2, 3), v(3), v(3), v(3), v(3), epsilon="a")
for axes in (None, DICT, [5], ["a"], 1.5):
    case("normalize_batch_in_training", v(2, 3), v(3), v(3), axes)
case("normalize_batch_in_training", v(2, 3), v(4), v(3), [0])
bad_x("normalize_batch_in_training", v(3), v(3), [0])
case("ctc_label_dense_to_sparse", np.array([1, 2]), np.array([1]))
case("ctc_label_dense_to_sparse", None, np.array([1]))
case("ctc_label_dense_to_sparse", np.array([[1, 2]]), np.array([1, 2, 3]))
case("ctc_label_dense_to_sparse", np.array([[1, 2]]), np.array([5]))
case("ctc_label_dense_to_sparse", np.array([[1, 2]]), "a")
Y_PRED = np.full((2, 4, 3), 1 / 3, dtype=np.float32)
LABELS, LENGTHS, LABEL_LENGTHS = np.array([[0, 1], [1, 0]]), np.array([[4], [4]]), np.array([[2], [1]])
case("ctc_batch_cost", LABELS, Y_PRED[0], LENGTHS, LABEL_LENGTHS)
case("ctc_batch_cost", None, Y_PRED, LENGTHS, LABEL_LENGTHS)
case("ctc_batch_cost", LABELS, None, LENGTHS, LABEL_LENGTHS)
case("ctc_batch_cost", LABELS[:1], Y_PRED, LENGTHS, LABEL_LENGTHS)
case("ctc_batch_cost", LABELS, Y_PRED, np.array([[9], [4]]), LABEL_LENGTHS)
case("ctc_batch_cost", LABELS, Y_PRED, LENGTHS, np.array([[3], [1]]))
case("ctc_batch_cost", LABELS, Y_PRED, "a", LABEL_LENGTHS)
case("ctc_batch_cost", np.array([[0, 5]]), Y_PRED[:1], LENGTHS[:1], LABEL_LENGTHS[:1])
case("ctc_decode", Y_PRED[0], np.array([4]))
case("ctc_decode", None, np.array([4, 4]))
case("ctc_decode", Y_PRED, np.array([4]))
case("ctc_decode", Y_PRED, np.array([9, 4]))
case("ctc_decode", Y_PRED, None)
case("ctc_decode", Y_PRED, np.array([4, 4]), beam_width="a")
case("ctc_decode", Y_PRED, np.array([4, 4]), top_paths=-1)
case("ctc_decode", Y_PRED, np.array([4, 4]), greedy="abc")

# -- random and dropout -----------------------------------------------------------------------------
for level in (None, "a", NAN, -0.1, 1.0, DICT):
    case("dropout", v(), level)
case("dropout", v(), 0.5, noise_shape=(4, 5))
case("dropout", v(), 0.5, noise_shape=DICT)
case("dropout", v(), 0.5, noise_shape=(2, -3))
bad_x("dropout", 0.5)

# -- losses (losses.py) ------------------------------------------------------------------------------
for name in ("binary_crossentropy", "categorical_crossentropy",
             "sparse_categorical_crossentropy", "binary_focal_crossentropy",
             "categorical_focal_crossentropy"):
    case(name, None, v())
    case(name, v(), None)
    case(name, "abc", v())
    case(name, v(2, 3), v(4, 5))
for name in ("categorical_crossentropy", "sparse_categorical_crossentropy",
             "categorical_focal_crossentropy"):
    case(name, v(), v(), axis=DICT)
    case(name, v(), v(), axis=5)
case("sparse_categorical_crossentropy", np.array([0.5, 1.0]), v())
case("binary_focal_crossentropy", v(), v(), gamma="a")
case("categorical_focal_crossentropy", v(), v(), alpha=None)

# -- convolution and pooling (conv.py) --------------------------------------------------------------
X4, K4 = (1, 4, 4, 2), (2, 2, 2, 3)
case("conv1d", None, v(2, 2, 3))
case("conv1d", v(1, 4, 2), None)
case("conv1d", v(1, 4, 2), v(2, 5, 3))
case("conv1d", v(1, 4, 2), v(2, 2, 3), strides=0)
case("conv1d", v(1, 4, 2), v(2, 2, 3), strides="a")
case("conv1d", v(1, 4, 2), v(2, 2, 3), padding="bogus")
case("conv1d", v(4, 2), v(2, 2, 3))
case("conv2d", None, v(*K4))
case("conv2d", v(*X4), None)
case("conv2d", v(*X4), v(2, 2, 5, 3))
case("conv2d", v(2, 3), v(*K4))
case("conv2d", v(*X4), v(*K4), strides=(0, 1))
case("conv2d", v(*X4), v(*K4), strides=DICT)
case("conv2d", v(*X4), v(*K4), strides=(-1, 1))
case("conv2d", v(*X4), v(*K4), padding="bogus")
case("conv2d", v(*X4), v(*K4), padding=None)
case("conv2d", v(*X4), v(*K4), data_format="bogus")
case("conv2d", v(*X4), v(*K4), dilation_rate=(0, 1))
case("conv2d", v(*X4), v(*K4), dilation_rate="a")
case("conv2d", v(1, 1, 1, 2), v(*K4))
case("conv3d", v(1, 3, 3, 3, 2), v(2, 2, 2, 5, 1))
case("conv3d", v(2, 3), v(2, 2, 2, 2, 1))
case("conv3d", v(1, 3, 3, 3, 2), v(2, 2, 2, 2, 1), strides=(1, 1))
case("conv2d_transpose", v(*X4), v(2, 2, 3, 2), None)
case("conv2d_transpose", v(*X4), v(2, 2, 3, 2), (1, 5, 5, 3), strides=(0, 1))
case("conv2d_transpose", v(*X4), v(2, 2, 3, 5), (1, 5, 5, 3))
case("conv2d_transpose", v(*X4), v(2, 2, 3, 2), "abc")
case("depthwise_conv2d", v(*X4), v(2, 2, 5, 1))
case("depthwise_conv2d", v(*X4), None)
case("depthwise_conv2d", v(*X4), v(2, 2, 2, 1), strides=0)
case("separable_conv2d", v(*X4), v(2, 2, 2, 1), v(1, 1, 5, 3))
case("separable_conv2d", v(*X4), v(2, 2, 2, 1), None)
case("local_conv1d", v(1, 4, 2), v(3, 4, 3), DICT, 1)
case("local_conv1d", v(1, 4, 2), v(3, 4, 3), 2, 0)
case("local_conv1d", v(1, 4, 2), v(2, 4, 3), 2, 1)
case("local_conv1d", None, v(3, 4, 3), 2, 1)
case("local_conv2d", v(*X4), v(9, 8, 3), (2, 2), (1, 1), None)
case("local_conv2d", v(*X4), v(9, 8, 3), (2, 2), (1, 1), (2, 2))
case("local_conv2d", v(*X4), v(9, 8, 3), DICT, (1, 1), (3, 3))
for name, x, size in (("pool2d", X4, (2, 2)), ("pool3d", (1, 2, 2, 2, 1), (2, 2, 2))):
    case(name, None, size)
    case(name, v(*x), None)
    case(name, v(*x), DICT)
    case(name, v(*x), tuple(-n for n in size))
    case(name, v(*x), size, pool_mode="bogus")
    case(name, v(*x), size, padding="bogus")
    case(name, v(*x), size, strides=tuple(0 for _ in size))
    case(name, v(*x), size, data_format="bogus")
    case(name, v(2, 3), size)

# Not called with wrong arguments, and why.
ALLOWLIST = {
    # classes and exceptions: constructed by gpubk itself, not Keras backend functions
    "DeviceError": "an exception class", "GradientTape": "a class (its gradient() is tested "
    "through K.gradients)", "Placeholder": "internal class (K.placeholder is tested)",
    "Symbol": "internal class", "Tensor": "internal class", "Variable": "internal class "
    "(K.variable is tested)",
    # no arguments
    "backend": "no arguments", "clear_session": "no arguments", "epsilon": "no arguments",
    "floatx": "no arguments", "get_device": "no arguments", "image_data_format": "no arguments",
    "learning_phase": "no arguments", "no_grad": "no arguments", "reset_uids": "no arguments",
    # any object is valid, as in Keras
    "is_sparse": "any object: False", "is_tensor": "any object: a yes/no question",
    "to_dense": "any object: returned as it is", "set_session": "any object: kept",
    "get_session": "its argument is ignored, as in TF2 Keras",
    "manual_variable_initialization": "any object: its truth value is kept, as in Keras",
}


def test_every_public_function_is_covered():
    covered = {name for name, _, _ in CASES}
    missing = set(K.__all__) - covered - set(ALLOWLIST)
    assert not missing, f"public functions with no bad-argument case: {sorted(missing)}"
    assert not (covered | set(ALLOWLIST)) - set(K.__all__), "stale names in the table"


def _build(obj):
    if isinstance(obj, Lazy):
        return obj.make()
    if isinstance(obj, list):
        return [_build(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_build(o) for o in obj)
    return obj


def _variables(obj) -> list:
    if isinstance(obj, K.Variable):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [v for o in obj for v in _variables(o)]
    if isinstance(obj, dict):
        return [v for o in obj.values() for v in _variables(o)]
    return []


def _case_id(name, args, kwargs) -> str:
    def short(a):
        if isinstance(a, K.Tensor):
            return f"T{a.shape}"
        if isinstance(a, np.ndarray):
            return f"A{a.shape}"
        if callable(a) and not isinstance(a, Lazy):
            return "fn"
        return repr(a)[:30]
    parts = [short(a) for a in args] + [f"{k}={short(a)}" for k, a in kwargs.items()]
    return f"{name}({', '.join(parts)})"


@pytest.mark.parametrize("name,args,kwargs", CASES,
                         ids=[_case_id(*c) for c in CASES])
def test_bad_arguments_raise_a_clear_error_and_change_nothing(name, args, kwargs):
    args, kwargs = _build(args), {k: _build(a) for k, a in kwargs.items()}
    variables = _variables((args, kwargs))
    before = [v.numpy().copy() for v in variables]
    floatx, eps, data_format = K.floatx(), K.epsilon(), K.image_data_format()
    phase = K.learning_phase()
    with pytest.raises(Exception) as info:  # the kind is asserted below
        result = getattr(K, name)(*args, **kwargs)
        if name in ("learning_phase_scope", "name_scope", "device"):
            with result:
                pass
    err = info.value
    message = str(err)
    assert type(err) in (TypeError, ValueError), \
        f"{type(err).__name__} (expected TypeError or ValueError): {message}"
    assert re.search(rf"(^|\W){name}\b", message), \
        f"the message does not name {name}: {message}"
    assert "\n" not in message, f"not one line: {message!r}"
    for variable, value in zip(variables, before):
        np.testing.assert_array_equal(variable.numpy(), value,
                                      err_msg=f"{name} changed variable {variable.name}")
    assert (K.floatx(), K.epsilon(), K.image_data_format()) == (floatx, eps, data_format)
    assert K.learning_phase() is phase or K.learning_phase() == phase
