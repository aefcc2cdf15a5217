"""Kernels compiled from scalar formulas (`formulas.py`): the machinery every target shares.

`scalar(fn, target)` compiles a formula for a target: `"cpu"`, a Numba function for the CPU
twins, in which `math.exp`, `math.log1p` and `math.expm1` are `fastmath`'s vectorisable ones
(`CPU_MATH`), or `"cuda"`, a CUDA device function calling the native `math.*` (numba-cuda is
imported only then). The formula's own code object is reused with a target's globals: its
`math`, and each helper of formulas.py it calls, compiled for the same target.

`instantiate(template, name, fn, target)` makes a kernel out of a loop template (a function
whose global `formula` is the scalar function it applies per element: the CPU twins' loops are
in `elementwise.py`, the CUDA kernels' in `cuda/elementwise.py`) and the formula `fn`: one
kernel per (primitive, direction) instead of one kernel branching on an op code.

Numba's on-disk cache (`cache=True`) finds a function's entries by its source file, qualified
name and line, then by its bytecode and closure: not by its globals. Every kernel generated from
one template has the template's file, line and bytecode, so `instantiate` names each one
`<name>__<identity>`, a hash of the bytecode of the formula and of the helpers it calls, of the
target and of this file: each generated kernel has its own cache entries, and an edited formula
or compile option gets new ones (the cache itself only checks the template's source file).
"""
from __future__ import annotations

import functools
import hashlib
import math
import types

from . import fastmath, formulas

# `math` for the CPU twins: Python's math with the vectorisable exp, log, log1p, expm1 and tanh
# (Numba compiles math.exp to a scalar libm call that stops the loop from vectorising).
CPU_MATH = types.ModuleType(f"{__name__}.CPU_MATH", "math for the CPU twins: see generate.py")
CPU_MATH.__dict__.update({k: v for k, v in vars(math).items() if not k.startswith("_")})
for _name in ("exp", "log", "log1p", "expm1", "tanh"):
    setattr(CPU_MATH, _name, getattr(fastmath, _name))

# Compile options of scalar functions on the CPU, and of the loops that apply them (into which
# LLVM inlines them): NumPy's error model, as on the GPU (a division by zero is inf, not an
# exception), and no fast-math flag, not even "contract": a multiply-add fused into one rounding
# moves kinks (hard_sigmoid's 0.2 * x + 0.5 is below 0 at x = -2.5 as an FMA). The fastmath
# functions keep their own flags wherever they are inlined.
CPU_SCALAR_OPTIONS = {"error_model": "numpy"}

TARGETS = ("cpu", "cuda")

with open(__file__, "rb") as _file:  # part of each generated kernel's identity (`identity`)
    _THIS_FILE = hashlib.sha256(_file.read()).hexdigest()


def _helpers(fn) -> dict:
    """The functions of formulas.py that `fn` calls: name -> function."""
    return {name: value for name in fn.__code__.co_names
            if isinstance(value := fn.__globals__.get(name), types.FunctionType)
            and value.__module__ == formulas.__name__}


@functools.cache
def scalar(fn, target: str):
    """`fn`, a scalar formula of formulas.py, compiled for `target` ("cpu" or "cuda")."""
    if target == "cpu":
        from numba import njit  # noqa: PLC0415
        jit, target_math = njit(**CPU_SCALAR_OPTIONS), CPU_MATH
    elif target == "cuda":
        from numba import cuda  # noqa: PLC0415 (the CPU path needs no numba-cuda)
        jit, target_math = cuda.jit(device=True), math
    else:
        raise ValueError(f"unknown target {target!r}; expected one of {TARGETS}")
    namespace = {**fn.__globals__, "math": target_math,
                 **{name: scalar(helper, target) for name, helper in _helpers(fn).items()}}
    rebuilt = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__,
                                 fn.__closure__)
    rebuilt.__qualname__, rebuilt.__doc__ = fn.__qualname__, fn.__doc__
    return jit(rebuilt)


@functools.cache
def fingerprint(fn) -> str:
    """A hash of what `fn` computes: its bytecode, constants and names, and those of the
    helpers it calls (12 hex digits)."""
    code = fn.__code__
    digest = hashlib.sha256()
    for part in (code.co_code, repr(code.co_consts).encode(), repr(code.co_names).encode(),
                 repr(code.co_varnames).encode()):
        digest.update(part)
    for name, helper in sorted(_helpers(fn).items()):
        digest.update(f"{name}={fingerprint(helper)}".encode())
    return digest.hexdigest()[:12]


def identity(fn, target: str) -> str:
    """What a kernel generated from `fn` for `target` is, for Numba's cache (12 hex digits):
    the fingerprint of `fn`, the target, and this file (its compile options, CPU_MATH)."""
    key = f"{fingerprint(fn)} {target} {_THIS_FILE}".encode()
    return hashlib.sha256(key).hexdigest()[:12]


def instantiate(template, name: str, fn, target: str):
    """A copy of the loop `template` whose global `formula` is `fn` compiled for `target`,
    named `name` (its stable name: `relu_forward`) and qualified `name__<identity>`, its own
    entry in Numba's cache. Returns the plain function: the caller jits it."""
    namespace = {**template.__globals__, "formula": scalar(fn, target)}
    kernel = types.FunctionType(template.__code__, namespace, name, template.__defaults__,
                                template.__closure__)
    kernel.__qualname__ = f"{name}__{identity(fn, target)}"
    kernel.__doc__ = f"{template.__doc__ or ''} Generated from formulas.{fn.__name__}.".strip()
    return kernel


def param_types(formula: formulas.Formula, float_type: str) -> str:
    """The Numba type of the kernels' parameter tuple for `formula`, as a signature string:
    floats in `float_type`, flags `boolean` ("Tuple(())" for none)."""
    by_name = {p.name: p for p in formulas.PARAMS}
    names = ["boolean" if by_name[n].is_flag else float_type for n in formula.params]
    return f"Tuple(({', '.join(names)}{',' if len(names) == 1 else ''}))"
