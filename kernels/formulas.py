"""Each activation's scalar formula, written once: the CUDA kernels, the Numba CPU twins (and any
later fusion pass) are all compiled from these functions (`generate.py`).

A formula is plain Python on one scalar. `forward(v, *params)` is the activation of the input
`v`; `backward(v, g, *params)` is the input gradient from `v` (the input, or the output for the
`uses_output` ops: sigmoid and tanh, whose gradient comes from their output, so that a tape keeps
one buffer per activation) and the output gradient `g`.

Rules the formulas keep, so that one body means the same on every target:
- every constant is `like(v, c)`, in the type of v: float32 math for float32 (and float16)
  inputs; a bare literal would be a float64 in Numba and turn the whole expression float64
  (1/64 of the float32 rate on consumer GPUs). The parameters arrive in that type too.
- `math.exp`, `math.log1p`, `math.expm1`, `math.tanh` only: the CUDA kernels call the native
  ones, the CPU twins get the vectorisable `fastmath` ones in their place (`generate.CPU_MATH`).
- NaN propagates as in NumPy and TensorFlow: every comparison is written so that a NaN input
  fails it and passes through (`0 if v <= t else v`, never `max(v, 0)`: Numba compiles `max`
  to a select that drops NaN, while the simulator runs Python's `max`, which keeps it).
  Gradients at NaN inputs follow TensorFlow's kernels: where TF selects on a comparison (leaky
  relu, elu, clip_by_value inside hard_sigmoid) a NaN input takes the non-kink branch.
- no `math.exp` that can overflow on a path the formula takes (the simulator runs Python's
  `math.exp`, which raises where a GPU returns inf).
- a helper a formula calls (`clamp`, `sigmoid`) is a plain function of this module: the
  generator compiles it for each target along with the formula.

relu follows Keras 2 (TensorFlow) exactly: `r = x if x > threshold else 0`, clipped to
[0, max_value] when max_value is given, minus `alpha * max(threshold - x, 0)`; its parameters
are `(alpha, low, high, threshold, top_open)` with `low = -inf, high = inf` when there is no
max_value. Its gradient at the kinks is TensorFlow's, from the op Keras 2 picks:
`tf.nn.leaky_relu` (no max_value, threshold 0: slope alpha at 0 and for NaN), `tf.nn.relu6`
(max_value 6, threshold 0: `top_open`, 0 at both 0 and 6), else relu (0 at the threshold) with
`tf.clip_by_value` (passes at max_value).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from .precision import like


@dataclasses.dataclass(frozen=True)
class Param:
    """A scalar parameter of the elementwise kernels: a float (passed in the arrays' work
    dtype) or, where `default` is a bool, a flag."""

    name: str
    default: float | bool

    @property
    def is_flag(self) -> bool:
        return isinstance(self.default, bool)


# Every parameter an activation may take, in the order the launchers receive them
# (`elementwise.forward(device, op, x, alpha, low, high, threshold, top_open)`).
PARAMS = (Param("alpha", 0.0), Param("low", -math.inf), Param("high", math.inf),
          Param("threshold", 0.0), Param("top_open", False))
PARAM_NAMES = tuple(p.name for p in PARAMS)
DIRECTIONS = ("forward", "backward")  # the Formula attributes, and the kernels' name suffixes


@dataclasses.dataclass(frozen=True)
class Formula:
    """One elementwise primitive: its name, its scalar forward `forward(v, *params)` and
    backward `backward(v, g, *params)`, the names of the parameters both take (a subsequence
    of PARAM_NAMES), and whether the backward's `v` is the output instead of the input."""

    name: str
    forward: Callable
    backward: Callable
    params: tuple = ()
    uses_output: bool = False

    def __post_init__(self):
        if tuple(p for p in PARAM_NAMES if p in self.params) != tuple(self.params):
            raise ValueError(f"{self.name}: params {self.params} must be a subsequence of "
                             f"{PARAM_NAMES}")


# -- helpers ---------------------------------------------------------------------------------------
def clamp(x, low, high):
    """x clipped to [low, high], NaN staying NaN as with np.clip (min(max()) can drop it); also
    compiled as fastmath.clamp (CPU kernels) and cuda/blocks.clamp (CUDA kernels)."""
    return low if x < low else (high if x > high else x)


def sigmoid(v):
    """1 / (1 + exp(-v)) from exp(-|v|), which never overflows and keeps full precision for
    very negative v: 1 / (1 + e) for v >= 0, e / (1 + e) below (and for NaN), one division."""
    one = like(v, 1.0)
    e = math.exp(-abs(v))
    return (one if v >= like(v, 0.0) else e) / (one + e)


# -- the activations ---------------------------------------------------------------------------------
def relu_forward(v, alpha, low, high, threshold, top_open):
    zero = like(v, 0.0)
    if threshold == zero:  # tf.nn.relu
        r = zero if v <= zero else v
    else:  # x * cast(x > threshold), as Keras 2 writes it: -inf * 0 is NaN there too
        r = v if v > threshold else v * zero
    r = clamp(r, low, high)
    below = threshold - v
    return r - alpha * below if below > zero and alpha != zero else r  # 0 * inf is NaN


def relu_backward(v, g, alpha, low, high, threshold, top_open):
    zero, one = like(v, 0.0), like(v, 1.0)
    if threshold == zero and low == -math.inf:  # no max_value: tf.nn.leaky_relu (or relu)
        return g if v > zero else g * alpha
    inside = v > threshold and v >= low and (v < high if top_open else v <= high)
    return g * ((one if inside else zero) + (alpha if v < threshold else zero))


def sigmoid_forward(v):
    return sigmoid(v)


def sigmoid_backward(y, g):
    return g * y * (like(y, 1.0) - y)


def hard_sigmoid_forward(v):
    return clamp(like(v, 0.2) * v + like(v, 0.5), like(v, 0.0), like(v, 1.0))


def hard_sigmoid_backward(v, g):
    zero = like(v, 0.0)
    h = like(v, 0.2) * v + like(v, 0.5)
    # clip_by_value: the gradient passes at the bounds (and a select: 0 even for an inf g)
    return zero if h < zero or h > like(v, 1.0) else g * like(v, 0.2)


def tanh_forward(v):
    return math.tanh(v)


def tanh_backward(y, g):
    return g * (like(y, 1.0) - y * y)


def elu_forward(v, alpha):
    return v if v > like(v, 0.0) else alpha * math.expm1(v)


def elu_backward(v, g, alpha):
    # TF's EluGrad: g where elu(x) >= 0 (x = 0 and NaN too), times alpha there (Keras 2)
    zero = like(v, 0.0)
    return g if v > zero else g * alpha * (math.exp(v) if v < zero else like(v, 1.0))


def softplus_forward(v):
    zero = like(v, 0.0)
    return (v if v > zero else zero) + math.log1p(math.exp(-abs(v)))  # log1p: very negative v


def softplus_backward(v, g):
    return g * sigmoid(v)


def softsign_forward(v):
    return v / (like(v, 1.0) + abs(v))


def softsign_backward(v, g):
    d = like(v, 1.0) + abs(v)
    return g / (d * d)


# In the order of the op codes of `elementwise` (RELU = 0 ... SOFTSIGN = 6).
ACTIVATIONS = (
    Formula("relu", relu_forward, relu_backward, PARAM_NAMES),
    Formula("sigmoid", sigmoid_forward, sigmoid_backward, uses_output=True),
    Formula("hard_sigmoid", hard_sigmoid_forward, hard_sigmoid_backward),
    Formula("tanh", tanh_forward, tanh_backward, uses_output=True),
    Formula("elu", elu_forward, elu_backward, ("alpha",)),
    Formula("softplus", softplus_forward, softplus_backward),
    Formula("softsign", softsign_forward, softsign_backward),
)
BY_NAME = {f.name: f for f in ACTIVATIONS}
