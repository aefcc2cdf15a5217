"""Every elementwise primitive declares a scalar formula (kernels/formulas.py), the one body
from which kernels are generated; compiled with Numba, each equals its primitive's array
implementation on values that include zeros of both signs, halves, infinities and NaN (the
activations' formulas are checked against their kernels in test_generated_kernels.py)."""
import gc
import importlib
import pkgutil

import numba
import numpy as np
import pytest

import gpubk
import gpubk.ops
from gpubk import devices
from gpubk.core.primitive import Primitive
from gpubk.kernels import formulas, generate

VALUES = np.array([-np.inf, -7.25, -2.5, -1.5, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 1.5, 2.5, 3.0,
                   7.25, 1e30, np.inf, np.nan])


def _elementwise_primitives() -> dict:
    """Every elementwise primitive gpubk declares (backward ones are held by their forward's
    vjp only: the garbage collector's list finds them all; a test's own are left out)."""
    for info in pkgutil.iter_modules(gpubk.ops.__path__):
        importlib.import_module(f"gpubk.ops.{info.name}")
    return {o.name: o for o in gc.get_objects() if isinstance(o, Primitive) and o.elementwise
            and o.impl.__module__.startswith("gpubk.")}


PRIMITIVES = _elementwise_primitives()


def test_every_elementwise_primitive_has_a_formula():
    assert len(PRIMITIVES) > 40
    missing = sorted(name for name, p in PRIMITIVES.items() if name not in formulas.SCALAR)
    assert not missing
    assert PRIMITIVES["relu"].formula() is formulas.relu_forward
    assert PRIMITIVES["tanh_grad"].formula() is formulas.tanh_backward
    with pytest.raises(TypeError, match="sum: not an elementwise primitive"):
        gpubk.ops.reduce.sum_p.formula()


def _compiled(formula, arity: int):
    """The formula as kernels compile it for the CPU (generate.scalar: NumPy's division
    semantics, the fastmath exp and log), applied elementwise by a Numba loop."""
    f = generate.scalar(formula, "cpu")
    if arity == 1:
        def loop(a, out):
            for i in range(a.size):
                out[i] = f(a[i])
    elif arity == 2:
        def loop(a, b, out):
            for i in range(a.size):
                out[i] = f(a[i], b[i])
    else:
        def loop(a, b, c, out):
            for i in range(a.size):
                out[i] = f(a[i], b[i], c[i])
    return numba.njit(error_model="numpy")(loop)


UNARY = ["negative", "abs", "sign", "exp", "log", "sqrt", "square", "sin", "cos", "round",
         "stop_gradient"]
BINARY = ["add", "subtract", "multiply", "divide", "mod", "floordiv", "pow", "maximum",
          "minimum", *formulas.COMPARISONS]
TRANSCENDENTAL = {"exp", "log", "sin", "cos", "pow"}  # libm, fastmath and NumPy: an ulp or so


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", UNARY + BINARY + ["clip", "where", "cast"])
def test_the_formula_is_the_primitive_on_every_kind_of_value(name, dtype):
    p = PRIMITIVES[name]
    device = devices.parse("cpu")
    a, b = (v.reshape(-1).astype(dtype) for v in np.meshgrid(VALUES, VALUES))
    params = {}
    if name in UNARY or name == "cast":
        inputs = [VALUES.astype(dtype)]
        params = {"dtype": np.dtype(dtype)} if name == "cast" else {}
    elif name == "clip":
        inputs = [a, np.full_like(a, -1.5), b]  # bounds crossing too: np.clip's order
    elif name == "where":
        inputs = [a > 0, a, b]
    else:
        inputs = [a, b]
    with np.errstate(all="ignore"):
        want = np.asarray(p.impl(device, *inputs, **params))
    out = np.empty(want.shape, want.dtype)
    _compiled(p.formula(), len(inputs))(*inputs, out)
    if name in TRANSCENDENTAL:
        np.testing.assert_allclose(out, want, rtol=4 * np.finfo(dtype).eps, atol=0)
    else:
        np.testing.assert_array_equal(out, want)
    if want.dtype.kind == "f" and name != "clip":  # signed zeros too (np.clip's SIMD min and
        number = ~np.isnan(want)                    # max return either zero of a tie)
        np.testing.assert_array_equal(np.signbit(out[number]), np.signbit(want[number]))
