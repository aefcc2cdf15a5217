"""Random tensors and dropout: seeded and reproducible on a device (the same seed gives the same
numbers on the same device); without a seed, one is drawn from NumPy's global generator, as
Keras does, so `np.random.seed` makes a script repeatable."""
from __future__ import annotations

import numpy as np

from .. import devices
from ..config import floatx
from ..dtypes import as_dtype
from ..symbolic import traced
from ..tensor import Tensor, as_tensor


def draw(func: str, shape, dtype, seed, sample) -> Tensor:
    """`sample(generator, shape)` on the current device, cast to `dtype` (default floatx)."""
    if seed is None:
        seed = np.random.randint(10_000_000)
    dev = devices.current()
    dtype = as_dtype(dtype or floatx(), func)
    with dev.context():
        data = sample(dev.xp.random.RandomState(int(seed)), check_shape(shape, func))
    return Tensor(data.astype(dtype), dev)


def random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None)`.
    Values drawn uniformly from [minval, maxval)."""
    return draw("random_uniform", shape, dtype, seed,
                lambda rng, s: rng.uniform(minval, maxval, size=s))


def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None)`."""
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


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None)`. Normal
    values within two standard deviations of the mean."""
    return draw("truncated_normal", shape, dtype, seed,
                lambda rng, s: _truncated(rng, s, mean, stddev))


def random_bernoulli(shape, p=0.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_bernoulli(shape, p=0.0, dtype=None, seed=None)`. 1 with probability p
    (a uniform draw <= p), else 0."""
    return draw("random_bernoulli", shape, dtype, seed,
                lambda rng, s: rng.uniform(0.0, 1.0, size=s) <= p)


def random_binomial(shape, p=0.0, dtype=None, seed=None) -> Tensor:
    """Keras: `K.random_binomial(shape, p=0.0, dtype=None, seed=None)`: Keras 2's deprecated
    name for `random_bernoulli`, with the same values."""
    return draw("random_binomial", shape, dtype, seed,
                lambda rng, s: rng.uniform(0.0, 1.0, size=s) <= p)


@traced
def dropout(x, level: float, noise_shape=None, seed=None) -> Tensor:
    """Keras: `K.dropout(x, level, noise_shape=None, seed=None)`. Zeroes each value with
    probability `level` and scales the rest by `1 / (1 - level)`; `noise_shape` (broadcast
    against x) shares one decision along its size-1 axes. Gradients flow through the kept
    values."""
    x = as_tensor(x, "dropout")
    if not 0.0 <= level < 1.0:
        raise ValueError(f"dropout: level must be in [0, 1), got {level}")
    if level == 0.0:
        return x
    with devices.device(x.device):
        keep = random_uniform(x.shape if noise_shape is None else tuple(noise_shape),
                              dtype=x.dtype, seed=seed)
    mask = ops_math.cast(ops_math.greater_equal(keep, level), x.dtype) * (1.0 / (1.0 - level))
    return x * mask


from .creation import check_shape  # noqa: E402  (creation imports this module)
from . import math as ops_math  # noqa: E402  (a module: it may be mid-import here)
