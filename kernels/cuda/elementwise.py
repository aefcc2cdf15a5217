"""The CUDA kernels of `gpubk.kernels.elementwise`: one thread per element (grid-stride), one
kernel per activation and direction, generated on first use from the activation's scalar formula
(formulas.py) compiled as a device function with the native `math.*` (generate.py).

Each kernel is a module attribute named `<activation>_<direction>` (`relu_forward`,
`sigmoid_backward`, ...), created when first looked up (`__getattr__` below), and listed in
`LAUNCHES` for the audit.
"""
from __future__ import annotations

from numba import cuda

from .. import generate
from ..formulas import ACTIVATIONS, DIRECTIONS


# Loop templates: `formula` is the activation's formula as a device function (set per kernel by
# generate.instantiate); `params` the tuple of its parameters, in the arrays' dtype.
def _forward(x, out, params):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = formula(x[i], *params)  # noqa: F821


def _backward(v, dy, dx, params):
    for i in range(cuda.grid(1), v.shape[0], cuda.gridsize(1)):
        dx[i] = formula(v[i], dy[i], *params)  # noqa: F821


_TEMPLATES = {"forward": _forward, "backward": _backward}
_KERNELS = {f"{f.name}_{direction}": (f, direction)
            for f in ACTIVATIONS for direction in DIRECTIONS}


def __getattr__(name: str):
    """The kernel `name` (`relu_forward`), generated on first use."""
    if name not in _KERNELS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    formula, direction = _KERNELS[name]
    kernel = cuda.jit(cache=True)(generate.instantiate(
        _TEMPLATES[direction], name, getattr(formula, direction), "cuda"))
    globals()[name] = kernel  # later lookups find the attribute
    return kernel


def _signature(formula, direction: str, t: str) -> str:
    arrays = 2 if direction == "forward" else 3
    return f"void({', '.join([f'{t}[::1]'] * arrays)}, {generate.param_types(formula, t)})"


# What the launchers pass (for the audit, gpubk.kernels.audit): flat contiguous arrays in the
# work dtype (float16 is computed in float32), and the tuple of the formula's parameters.
LAUNCHES = {name: [_signature(formula, direction, t) for t in ("float32", "float64")]
            for name, (formula, direction) in _KERNELS.items()}
