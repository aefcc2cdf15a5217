"""Random tensors and dropout: seeded and reproducible on a device (the same seed gives the same
numbers on the same device); without a seed, one is drawn from NumPy's global generator, as
Keras does, so `np.random.seed` makes a script repeatable.

In graph style, or given a shape known only when fed (`K.shape(x)`, `(K.shape(x)[0], 3)`), a
random op builds a node that draws new values each time it is evaluated, as TensorFlow 1 does in
each `session.run`: its seeds come from a stream started from the op's seed, so the sequence of
draws is reproducible. `dropout` of a symbolic tensor composes such a node with arithmetic."""
from __future__ import annotations

import numpy as np

from .. import devices
from ..config import floatx
from ..core import trace
from ..core.primitive import Primitive, as_input, broadcasts_to, device_of
from ..dtypes import as_dtype
from ..tensor import Tensor
from . import dims
from . import math as ops_math
from .query import shape as shape_of
from .validate import (
    check_int, check_number, check_probability, check_rate, check_shape, check_size)


class SeedStream:
    """The seeds of a random node: a new one at each evaluation, in a sequence fixed by the
    node's own seed."""

    __slots__ = ("seed", "_generator")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._generator = np.random.RandomState(seed)

    def next(self) -> int:
        return int(self._generator.randint(2 ** 31 - 1))

    def __repr__(self) -> str:
        return f"SeedStream({self.seed})"


def _seed(seed, func: str) -> int:
    """An op's seed: the one given, else one from NumPy's global generator (as Keras)."""
    return np.random.randint(10_000_000) if seed is None else check_int(seed, func, "seed")


def _sample(device, seed: int, shape: tuple, dtype, sample, func: str):
    """`sample(generator, shape)` on `device` from `seed`, cast to `dtype`."""
    check_size(shape, 8, func, device)  # the generators draw float64, then cast
    with device.context():
        data = sample(device.xp.random.RandomState(seed), shape)
    return data.astype(dtype, copy=False)


def draw(func: str, shape, dtype, seed, sample) -> Tensor:
    """`sample(generator, shape)` on the current device, cast to `dtype` (default floatx)."""
    seed = _seed(seed, func)
    dev = devices.current()
    dtype = as_dtype(dtype or floatx(), func)
    shape = check_shape(shape, func)
    return Tensor(_sample(dev, seed, shape, dtype, sample, func), dev)


def _random_impl(device, vector, *, func, dtype, seed, sample, known):
    shape = known if None not in known else dims.resolve(device, vector, func)  # no read back
    return _sample(device, seed.next(), shape, dtype, sample, func)


def _random_primitive(name: str) -> Primitive:
    """The node of a random op: its input the shape (known only when fed, or a constant), its
    params the draw (`sample`), the dtype and the stream of seeds; no vjp (nothing flows back to
    a shape)."""
    p = Primitive(name, effect="random")  # impure: never merged or folded
    p.def_impl(_random_impl)
    p.def_abstract(lambda vector, *, func, dtype, seed, sample, known: (known, dtype))
    return p


_PRIMITIVES = {name: _random_primitive(name) for name in (
    "random_uniform", "random_normal", "truncated_normal", "random_bernoulli",
    "random_binomial")}


def _random(func: str, shape, dtype, seed, sample):
    """A random op: a draw now (eager style, the shape known), else a node drawing at each
    evaluation."""
    parsed = dims.parse(shape, func)
    if parsed.__class__ is tuple and not trace.staging():
        return draw(func, parsed, dtype, seed, sample)
    stream = SeedStream(_seed(seed, func))
    dtype = as_dtype(dtype or floatx(), func)
    if parsed.__class__ is tuple:
        dev = devices.current()
        vector, known = Tensor(dev.put(np.asarray(parsed, dtype=np.int64)), dev), parsed
    else:
        vector, known = parsed.vector, parsed.known
    # Staged directly: in graph style a random op is a node even when nothing in it is symbolic
    # (as an op on a variable is), so that each evaluation draws anew.
    return trace.stage(_PRIMITIVES[func], (vector,), {
        "func": func, "dtype": dtype, "seed": stream, "sample": sample, "known": known})


def random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None)`.
    Values drawn uniformly from [minval, maxval)."""
    minval = check_number(minval, "random_uniform", "minval")
    maxval = check_number(maxval, "random_uniform", "maxval")
    return _random("random_uniform", shape, dtype, seed,
                   lambda rng, s: rng.uniform(minval, maxval, size=s))


def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None)`."""
    mean = check_number(mean, "random_normal", "mean")
    stddev = check_number(stddev, "random_normal", "stddev")
    return _random("random_normal", shape, dtype, seed,
                   lambda rng, s: rng.normal(mean, stddev, size=s))


def _truncated(rng, shape, mean, stddev):
    """Normal values, those beyond two standard deviations drawn again (as TensorFlow)."""
    values = rng.standard_normal(size=shape)
    outside = abs(values) > 2
    while bool(outside.any()):
        values[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = abs(values) > 2
    return values * stddev + mean


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None)`. Normal
    values within two standard deviations of the mean."""
    mean = check_number(mean, "truncated_normal", "mean")
    stddev = check_number(stddev, "truncated_normal", "stddev")
    return _random("truncated_normal", shape, dtype, seed,
                   lambda rng, s: _truncated(rng, s, mean, stddev))


def random_bernoulli(shape, p=0.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_bernoulli(shape, p=0.0, dtype=None, seed=None)`. 1 with probability p
    (a uniform draw <= p), else 0."""
    p = check_probability(p, "random_bernoulli", "p")
    return _random("random_bernoulli", shape, dtype, seed,
                   lambda rng, s: rng.uniform(0.0, 1.0, size=s) <= p)


def random_binomial(shape, p=0.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_binomial(shape, p=0.0, dtype=None, seed=None)`: Keras 2's deprecated
    name for `random_bernoulli`, with the same values."""
    p = check_probability(p, "random_binomial", "p")
    return _random("random_binomial", shape, dtype, seed,
                   lambda rng, s: rng.uniform(0.0, 1.0, size=s) <= p)


def dropout(x, level: float, noise_shape=None, seed=None) -> Tensor:
    """Keras: `K.dropout(x, level, noise_shape=None, seed=None)`. Zeroes each value with
    probability `level` and scales the rest by `1 / (1 - level)`; `noise_shape` (broadcast
    against x) shares one decision along its size-1 axes. Gradients flow through the kept
    values. Of a symbolic x (or in graph style), a new decision at each evaluation."""
    x = as_input(x, "dropout")
    level = check_rate(level, "dropout", "level")
    if noise_shape is None:
        known = x.shape
        noise_shape = shape_of(x) if None in known else known  # unknown dims: when fed
    else:
        noise_shape = dims.parse(noise_shape, "dropout", "noise_shape")
        known = noise_shape if noise_shape.__class__ is tuple else noise_shape.known
    if not broadcasts_to(known, x.shape):
        raise ValueError(f"dropout: noise_shape {known} does not broadcast against x of "
                         f"shape {x.shape}")
    if level == 0.0:
        return x
    with devices.device(device_of(x)):
        keep = random_uniform(noise_shape, dtype=x.dtype, seed=seed)
    mask = ops_math.cast(ops_math.greater_equal(keep, level), x.dtype) * (1.0 / (1.0 - level))
    return x * mask
