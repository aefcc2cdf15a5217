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


# -- the other elementwise primitives (gpubk/ops/math.py) ------------------------------------------
# Each is the scalar form of its primitive's implementation, NaN and infinities included, for the
# fusion of elementwise graphs (gpubk/fuse.py fuses the primitives in its FUSIBLE so far); `SCALAR` maps every elementwise primitive's name to its formula
# (an activation's backward primitive, `<name>_grad`, to its backward). Their names start with
# `scalar_`: a formula's helpers are found by name (generate.py), and `exp` would be taken for
# `math.exp`. Division follows NumPy
# (compile with `error_model="numpy"`): x / 0 is inf or NaN, never an exception.
def scalar_add(a, b):
    return a + b


def scalar_subtract(a, b):
    return a - b


def scalar_multiply(a, b):
    return a * b


def scalar_divide(a, b):
    return a / b


def scalar_mod(a, b):
    """NumPy's remainder: the sign of b, NaN where b is 0 (Python's float `%`)."""
    return a % b


def scalar_floordiv(a, b):
    """NumPy's floor_divide on floats: a == b * floordiv + mod (Python's float `//`)."""
    return a // b


def scalar_power(a, b):
    return a ** b


def scalar_negative(a):
    return -a


def scalar_absolute(a):
    return abs(a)


def scalar_sign(a):
    """-1, 0 (both zeros) or 1; NaN stays NaN."""
    if a > like(a, 0.0):
        return like(a, 1.0)
    if a < like(a, 0.0):
        return -like(a, 1.0)
    return a if a != a else like(a, 0.0)


def scalar_exp(a):
    return math.exp(a)


def scalar_log(a):
    return math.log(a)


def scalar_sqrt(a):
    """Of max(a, 0), as Keras (negative inputs and zeros give 0); NaN stays NaN."""
    if a > like(a, 0.0):
        return math.sqrt(a)
    return a if a != a else like(a, 0.0)


def scalar_square(a):
    return a * a


def scalar_sine(a):
    return math.sin(a)


def scalar_cosine(a):
    return math.cos(a)


def scalar_round_half_even(a):
    """NumPy's round: to the nearest integer, halves to even, a zero keeping a's sign."""
    if a - a != like(a, 0.0):  # inf or NaN
        return a
    d = a % like(a, 1.0)  # exact, in [0, 1)
    f = a - d
    if d > like(d, 0.5) or d == like(d, 0.5) and f % like(f, 2.0) != like(f, 0.0):
        f += like(f, 1.0)
    return f if f != like(f, 0.0) else math.copysign(like(a, 0.0), a)


def scalar_clip(a, low, high):
    """np.clip: max(a, low), then min(., high); a NaN value or bound gives NaN."""
    m = low if a < low or low != low else a
    return high if m > high or high != high else m


def scalar_maximum(a, b):
    """K.maximum's select: a where a >= b, else b (a NaN a gives b, a NaN b NaN)."""
    return a if a >= b else b


def scalar_minimum(a, b):
    return a if a <= b else b


def scalar_identity(a):
    """cast (its store converts) and stop_gradient."""
    return a


def scalar_select(c, a, b):
    return a if c else b


COMPARISONS = {
    "equal": lambda a, b: a == b, "not_equal": lambda a, b: a != b,
    "greater": lambda a, b: a > b, "greater_equal": lambda a, b: a >= b,
    "less": lambda a, b: a < b, "less_equal": lambda a, b: a <= b,
    "logical_and": lambda a, b: a != 0 and b != 0, "logical_or": lambda a, b: a != 0 or b != 0,
}
SCALAR = {
    "add": scalar_add, "subtract": scalar_subtract, "multiply": scalar_multiply,
    "divide": scalar_divide, "mod": scalar_mod, "floordiv": scalar_floordiv, "pow": scalar_power,
    "negative": scalar_negative, "abs": scalar_absolute, "sign": scalar_sign, "exp": scalar_exp,
    "log": scalar_log, "sqrt": scalar_sqrt, "square": scalar_square, "sin": scalar_sine,
    "cos": scalar_cosine, "round": scalar_round_half_even, "clip": scalar_clip,
    "maximum": scalar_maximum, "minimum": scalar_minimum, "cast": scalar_identity,
    "stop_gradient": scalar_identity, "where": scalar_select, **COMPARISONS,
    **{f.name: f.forward for f in ACTIVATIONS},
    **{f"{f.name}_grad": f.backward for f in ACTIVATIONS},
}
