"""Random tensors and dropout: seeded and reproducible on a device (the same seed gives the same
numbers on the same device); without a seed, one is drawn from NumPy's global generator, as
Keras does, so `np.random.seed` makes a script repeatable.

In graph style, and given symbolic arguments (a shape from `K.shape(x)`, a placeholder to drop
out), a random op builds a node that draws new values each time it is evaluated, as TensorFlow 1
does in each `session.run`: its seeds come from a stream started from the op's seed, so the
sequence of draws is reproducible."""
from __future__ import annotations

import functools
import inspect

import numpy as np

from .. import devices, symbolic
from ..config import floatx
from ..core import trace
from ..dtypes import as_dtype
from ..tensor import Tensor, as_tensor
from . import math as ops_math
from .validate import (
    check_int, check_number, check_probability, check_rate, check_shape, check_size)


class SeedStream:
    """The seeds of a random node: a new one at each evaluation, in a sequence fixed by the
    node's own seed. (Shape inference runs the op on stand-ins: those draws take no seed.)"""

    __slots__ = ("seed", "_generator")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._generator = np.random.RandomState(seed)

    def next(self) -> int:
        if trace.inferring():
            return self.seed
        return int(self._generator.randint(2 ** 31 - 1))


def staged(fn):
    """Random op `fn` (with a `seed` argument) builds a node in graph style or on symbolic
    arguments, with a `SeedStream` in place of its seed; otherwise it computes at once."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if not (trace.staging() or symbolic.symbols_in((args, kwargs))):
            return fn(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        seed = bound.arguments.get("seed")
        bound.arguments["seed"] = SeedStream(
            np.random.randint(10_000_000) if seed is None else check_int(seed, fn.__name__,
                                                                         "seed"))
        return symbolic.build(fn, bound.args, bound.kwargs)
    op.eager = fn
    return op


def draw(func: str, shape, dtype, seed, sample) -> Tensor:
    """`sample(generator, shape)` on the current device, cast to `dtype` (default floatx)."""
    if isinstance(seed, SeedStream):
        seed = seed.next()
    else:
        seed = np.random.randint(10_000_000) if seed is None else check_int(seed, func, "seed")
    dev = devices.current()
    dtype = as_dtype(dtype or floatx(), func)
    shape = check_shape(shape, func)
    check_size(shape, 8, func, dev)  # the generators draw float64, then cast
    with dev.context():
        data = sample(dev.xp.random.RandomState(seed), shape)
    return Tensor(data.astype(dtype, copy=False), dev)


@staged
def random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None)`.
    Values drawn uniformly from [minval, maxval)."""
    minval = check_number(minval, "random_uniform", "minval")
    maxval = check_number(maxval, "random_uniform", "maxval")
    return draw("random_uniform", shape, dtype, seed,
                lambda rng, s: rng.uniform(minval, maxval, size=s))


@staged
def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None)`."""
    mean = check_number(mean, "random_normal", "mean")
    stddev = check_number(stddev, "random_normal", "stddev")
    return draw("random_normal", shape, dtype, seed,
                lambda rng, s: rng.normal(mean, stddev, size=s))


def _truncated(rng, shape, mean, stddev):
    """Normal values, those beyond two standard deviations drawn again (as TensorFlow)."""
    values = rng.standard_normal(size=shape)
    outside = abs(values) > 2
    while bool(outside.any()):
        values[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = abs(values) > 2
    return values * stddev + mean


@staged
def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None)`. Normal
    values within two standard deviations of the mean."""
    mean = check_number(mean, "truncated_normal", "mean")
    stddev = check_number(stddev, "truncated_normal", "stddev")
    return draw("truncated_normal", shape, dtype, seed,
                lambda rng, s: _truncated(rng, s, mean, stddev))


@staged
def random_bernoulli(shape, p=0.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_bernoulli(shape, p=0.0, dtype=None, seed=None)`. 1 with probability p
    (a uniform draw <= p), else 0."""
    p = check_probability(p, "random_bernoulli", "p")
    return draw("random_bernoulli", shape, dtype, seed,
                lambda rng, s: rng.uniform(0.0, 1.0, size=s) <= p)


@staged
def random_binomial(shape, p=0.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_binomial(shape, p=0.0, dtype=None, seed=None)`: Keras 2's deprecated
    name for `random_bernoulli`, with the same values."""
    p = check_probability(p, "random_binomial", "p")
    return draw("random_binomial", shape, dtype, seed,
                lambda rng, s: rng.uniform(0.0, 1.0, size=s) <= p)


@staged
def dropout(x, level: float, noise_shape=None, seed=None) -> Tensor:
    """Keras: `K.dropout(x, level, noise_shape=None, seed=None)`. Zeroes each value with
    probability `level` and scales the rest by `1 / (1 - level)`; `noise_shape` (broadcast
    against x) shares one decision along its size-1 axes. Gradients flow through the kept
    values."""
    x = as_tensor(x, "dropout")
    level = check_rate(level, "dropout", "level")
    noise_shape = x.shape if noise_shape is None else check_shape(noise_shape, "dropout",
                                                                  "noise_shape")
    try:
        fits = np.broadcast_shapes(noise_shape, x.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"dropout: noise_shape {noise_shape} does not broadcast against x of "
                         f"shape {x.shape}") from None
    if level == 0.0:
        return x
    with devices.device(x.device):
        keep = random_uniform(noise_shape, dtype=x.dtype, seed=seed)
    mask = ops_math.cast(ops_math.greater_equal(keep, level), x.dtype) * (1.0 / (1.0 - level))
    return x * mask
