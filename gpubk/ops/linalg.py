"""Matrix products: `matmul` (NumPy's `@`), Keras's `dot` and `batch_dot`; cuBLAS through CuPy
on a GPU. Two declared primitives (core/primitive.py):

- `matmul`: NumPy's `@` on operands of rank >= 2 (batch dimensions broadcast);
- `dot_general`: contracts axes of x with axes of y, with optional batch axes (XLA's
  dot_general): the result has the batch axes, then x's free axes, then y's, each in order.
  `dot` (beyond 2-D x 2-D, which is `matmul`), `batch_dot` and the convolutions (ops/conv.py)
  are this product; it runs as one GEMM (a batched one with batch axes), its operands reshaped
  without a copy wherever their layout allows, and its vjp is two more of it, so it can be
  differentiated again and works on shapes with unknown (None) dimensions.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..core.primitive import Primitive, bind, broadcast_shapes, is_symbolic
from ..tensor import Tensor
from .math import operands, sum_to
from .shape import expand_dims, permute_dimensions, squeeze, swap_last_axes
from .validate import check_int


# -- matmul ----------------------------------------------------------------------------------
def _inner_mismatch(func: str, x, y) -> ValueError:
    return ValueError(f"{func}: shapes {x.shape} ({x.dtype.name}) and {y.shape} "
                      f"({y.dtype.name}) do not match; expected x.shape[-1] == y.shape[-2] "
                      f"({x.shape[-1]} != {y.shape[-2]}){_building(func, x, y)}")


def _building(func: str, *operands_) -> str:
    """For an error raised while building a graph node: which symbolic inputs it was built on."""
    symbolic = [s for s in operands_ if is_symbolic(s)]
    if not symbolic:
        return ""
    return (f" (building {func} on symbolic input "
            f"{', '.join(repr(s.name) + ' ' + str(s.shape) for s in symbolic)})")


def _batch_mismatch(x, y) -> ValueError:
    return ValueError(f"matmul: batch dimensions of {x.shape} and {y.shape} do not "
                      f"broadcast{_building('matmul', x, y)}")


def _matmul_abstract(x, y):
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError(f"matmul: operands of shapes {x.shape} and {y.shape}; expected "
                         "rank >= 2")
    k, k2 = x.shape[-1], y.shape[-2]
    if k is not None and k2 is not None and k != k2:
        raise _inner_mismatch("matmul", x, y)
    try:
        batch = broadcast_shapes("matmul", x.shape[:-2], y.shape[:-2])
    except ValueError:
        raise _batch_mismatch(x, y) from None
    return batch + (x.shape[-2], y.shape[-1]), np.result_type(x.dtype, y.dtype)


def _matmul_vjp(g, y, needs, a, b):
    return (sum_to(matmul(g, swap_last_axes(b)), a) if needs[0] else None,
            sum_to(matmul(swap_last_axes(a), g), b) if needs[1] else None)


matmul_p = Primitive("matmul")
matmul_p.def_impl(lambda device, a, b: a @ b)
matmul_p.def_abstract(_matmul_abstract)
matmul_p.def_impl_into(lambda device, out, a, b: device.xp.matmul(a, b, out=out),
                       lambda a, b: (a.shape[0], b.shape[1])
                       if a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype else None)
matmul_p.def_vjp(_matmul_vjp, saves=(0, 1))


def matmul(x, y) -> Tensor:
    """Matrix product with NumPy's `@` rules: batch dimensions broadcast; a 1-D operand is a
    vector (a row on the left, a column on the right)."""
    x, y = operands(x, y, "matmul")
    xs, ys = x.shape, y.shape
    if len(xs) >= 2 and len(ys) >= 2:
        if xs[-1] != ys[-2] and xs[-1] is not None and ys[-2] is not None:
            raise _inner_mismatch("matmul", x, y)
        try:
            return bind(matmul_p, x, y)
        except ValueError:  # eagerly: NumPy's message, about batch dimensions that differ
            raise _batch_mismatch(x, y) from None
    if not xs or not ys:
        raise ValueError(f"matmul: operands of shapes {xs} and {ys}; expected rank >= 1 "
                         "(use * for scalars)")
    # A vector operand: make it a matrix, multiply, then drop the added axis.
    out = matmul(expand_dims(x, 0) if len(xs) == 1 else x,
                 expand_dims(y, -1) if len(ys) == 1 else y)
    if len(xs) == 1:
        out = squeeze(out, out.ndim - 2)
    if len(ys) == 1:
        out = squeeze(out, out.ndim - 1)
    return out


# -- dot_general -----------------------------------------------------------------------------
def _free_axes(ndim: int, contract: tuple, batch: tuple) -> tuple:
    return tuple(i for i in range(ndim) if i not in contract and i not in batch)


def _layout(ndim: int, batch: tuple, free: tuple, contract: tuple, contract_last: bool):
    """How an operand becomes a (batch, free, contract) (`contract_last`) or (batch, contract,
    free) matrix stack: "view" (its axes are in that order already), "swap" (in the other order:
    a reshape, then a transposing view, which BLAS reads as it is), or the axis order to copy it
    into."""
    wanted = batch + free + contract if contract_last else batch + contract + free
    swapped = batch + contract + free if contract_last else batch + free + contract
    identity = tuple(range(ndim))
    return "view" if wanted == identity else "swap" if swapped == identity else wanted


@functools.lru_cache(maxsize=512)
def _plan(nda: int, ndb: int, contract: tuple, batch: tuple) -> tuple:
    """What a dot_general of operands of ranks nda and ndb does, worked out once per signature:
    each operand's (batch, free, contract) axes and layout."""
    (ca, cb), (ba, bb) = contract, batch
    fa, fb = _free_axes(nda, ca, ba), _free_axes(ndb, cb, bb)
    return ((ba, fa, ca, _layout(nda, ba, fa, ca, True)),
            (bb, fb, cb, _layout(ndb, bb, fb, cb, False)))


def _as_matrices(xp, a, plan: tuple, contract_last: bool):
    """`a` as a (batch, rows, columns) stack (no batch axis when there is none) per `plan`."""
    batch, free, contract, layout = plan
    shape = a.shape
    f, k = math.prod([shape[i] for i in free]), math.prod([shape[i] for i in contract])
    lead = (math.prod([shape[i] for i in batch]),) if batch else ()
    if layout == "swap":
        m = a.reshape(lead + ((k, f) if contract_last else (f, k)))
        return xp.swapaxes(m, -1, -2)
    if layout != "view":
        a = xp.transpose(a, layout)
    return a.reshape(lead + ((f, k) if contract_last else (k, f)))


def _dot_general_impl(device, a, b, *, contract, batch):
    if a.ndim == 2 and b.ndim == 2 and not batch[0] and len(contract[0]) == 1:
        # a matrix product, either operand transposed
        return (a if contract[0][0] == 1 else a.T) @ (b if contract[1][0] == 0 else b.T)
    pa, pb = _plan(a.ndim, b.ndim, contract, batch)
    out = _as_matrices(device.xp, a, pa, True) @ _as_matrices(device.xp, b, pb, False)
    return out.reshape(tuple([a.shape[i] for i in pa[0]] + [a.shape[i] for i in pa[1]]
                             + [b.shape[i] for i in pb[1]]))


def _joint(func: str, what: str, x, y, i: int, j: int):
    """The size of axis i of x paired with axis j of y: equal where both are known."""
    n, m = x.shape[i], y.shape[j]
    if n is not None and m is not None and n != m:
        raise ValueError(f"{func}: cannot {what} axis {i} of {x.shape} with axis {j} of "
                         f"{y.shape}; expected equal sizes{_building(func, x, y)}")
    return m if n is None else n


def _dot_general_abstract(x, y, *, contract, batch):
    (ca, cb), (ba, bb) = contract, batch
    for i, j in zip(ca, cb):
        _joint("dot_general", "contract", x, y, i, j)
    shape = tuple(_joint("dot_general", "batch", x, y, i, j) for i, j in zip(ba, bb))
    shape += tuple(x.shape[i] for i in _free_axes(x.ndim, ca, ba))
    shape += tuple(y.shape[i] for i in _free_axes(y.ndim, cb, bb))
    return shape, np.result_type(x.dtype, y.dtype)


def _pattern(axes: tuple):
    """The permutation that puts axes that are an operand's `axes`, in that order, back in the
    operand's order (None if they are)."""
    pattern = tuple(axes.index(i) for i in range(len(axes)))
    return None if pattern == tuple(range(len(axes))) else pattern


@functools.lru_cache(maxsize=512)
def _vjp_plan(nda: int, ndb: int, ndg: int, contract: tuple, batch: tuple) -> tuple:
    """The products giving each operand's gradient (JAX's transpose rule): g has the result's
    axes (batch, x's free, y's free); x's gradient is g times y over y's free axes, y's is x times
    g over x's free axes; each then permuted into its operand's axis order."""
    (ca, cb), (ba, bb) = contract, batch
    fa, fb = _free_axes(nda, ca, ba), _free_axes(ndb, cb, bb)
    nb, nfa = len(ba), len(fa)
    g_batch, g_fa, g_fb = tuple(range(nb)), tuple(range(nb, nb + nfa)), \
        tuple(range(nb + nfa, ndg))
    # g . y: (batch, x's free, y's remaining = contracted axes, ascending -> x's partners)
    x_axes = ba + fa + tuple(ca[cb.index(j)] for j in sorted(cb))
    # x . g: (batch, x's remaining = contracted axes, ascending -> y's partners, y's free)
    y_axes = bb + tuple(cb[ca.index(i)] for i in sorted(ca)) + fb
    return (((g_fb, fb), (g_batch, bb), _pattern(x_axes)),
            ((fa, g_fa), (ba, g_batch), _pattern(y_axes)))


def _dot_general_vjp(g, out, needs, x, y, *, contract, batch):
    plan_x, plan_y = _vjp_plan(x.ndim, y.ndim, g.ndim, contract, batch)
    gx = gy = None
    if needs[0]:
        gx = bind(dot_general_p, g, y, contract=plan_x[0], batch=plan_x[1])
        if plan_x[2] is not None:
            gx = permute_dimensions(gx, plan_x[2])
    if needs[1]:
        gy = bind(dot_general_p, x, g, contract=plan_y[0], batch=plan_y[1])
        if plan_y[2] is not None:
            gy = permute_dimensions(gy, plan_y[2])
    return gx, gy


dot_general_p = Primitive("dot_general")
dot_general_p.def_impl(_dot_general_impl)
dot_general_p.def_abstract(_dot_general_abstract)
dot_general_p.def_vjp(_dot_general_vjp, saves=(0, 1))


def dot_general(x, y, contract: tuple, batch: tuple = ((), ())) -> Tensor:
    """The product of tensors (or symbolic tensors) `x` and `y` over the axis pairs
    `contract` = ((axes of x), (axes of y)), for each index of the batch axis pairs `batch`:
    the result has the batch axes, then x's other axes, then y's other axes, each in order.
    Axes are non-negative and paired sizes equal (the caller checks; unknown sizes pass)."""
    return bind(dot_general_p, x, y, contract=contract, batch=batch)


# -- Keras's products ------------------------------------------------------------------------
_NO_BATCH, _BATCH_AXIS = ((), ()), ((0,), (0,))


def dot(x, y) -> Tensor:
    """Keras: `K.dot(x, y)`. Multiplies two tensors of rank >= 2.

    2-D times 2-D is the matrix product. With a higher rank, the last axis of `x` is contracted
    with the second-to-last of `y`, as Keras does: `(2, 3, 4) . (4, 5) -> (2, 3, 5)` and
    `(2, 3) . (4, 3, 5) -> (2, 4, 5)` (shape `x.shape[:-1] + y.shape[:-2] + y.shape[-1:]`).
    """
    x, y = operands(x, y, "dot")
    xs, ys = x.shape, y.shape
    nx, ny = len(xs), len(ys)
    if nx < 2 or ny < 2:
        raise ValueError(f"dot: got shapes {xs} and {ys}; expected tensors of rank >= 2 "
                         f"(Keras's K.dot rejects 1-D inputs){_building('dot', x, y)}")
    if xs[-1] != ys[-2] and xs[-1] is not None and ys[-2] is not None:
        raise _inner_mismatch("dot", x, y)
    if nx == 2 and ny == 2:  # the matrix product (a Dense layer): the simplest primitive
        return bind(matmul_p, x, y)
    # x's last axis with y's second-to-last: the result has x's other axes, then y's
    return bind(dot_general_p, x, y, contract=((nx - 1,), (ny - 2,)), batch=_NO_BATCH)


def batch_dot(x, y, axes=None) -> Tensor:
    """Keras: `K.batch_dot(x, y, axes=None)`. For each sample of the batch (axis 0), the dot
    product of `x[i]` and `y[i]` over `axes` (an int, or a pair: one axis of x, one of y).

    Follows the current tf.keras rule: by default the last axis of x and the last (y of rank 2)
    or second-to-last axis of y; inputs of rank 2 become rank 3 first, so two `(B, D)` tensors
    give `(B, 1)`; the result has x's remaining axes, then y's.
    """
    x, y = operands(x, y, "batch_dot")
    x_ndim, y_ndim = x.ndim, y.ndim
    if x_ndim < 2 or y_ndim < 2:
        raise ValueError(f"batch_dot: shapes {x.shape} and {y.shape}; expected rank >= 2")
    b0, b1 = x.shape[0], y.shape[0]
    if b0 != b1 and b0 is not None and b1 is not None:
        raise ValueError(f"batch_dot: batch sizes differ: {x.shape} and {y.shape}")
    if axes is None:
        axes = [x_ndim - 1, y_ndim - 1] if y_ndim == 2 else [x_ndim - 1, y_ndim - 2]
    elif not isinstance(axes, (list, tuple)):
        axes = [check_int(axes, "batch_dot", "axes")] * 2
    if len(axes) != 2 or any(isinstance(a, (list, tuple)) for a in axes):
        raise ValueError(f"batch_dot: axes must be an int or a pair of ints (multiple target "
                         f"dimensions are not supported), got {axes!r}")
    a0, a1 = (check_int(a, "batch_dot", "axes") for a in axes)
    a0, a1 = (a + n if a < 0 else a for a, n in zip((a0, a1), (x_ndim, y_ndim)))
    if 0 in (a0, a1):
        raise ValueError("batch_dot: cannot contract over axis 0 (the batch axis)")
    if not (0 <= a0 < x_ndim and 0 <= a1 < y_ndim) or (
            x.shape[a0] != y.shape[a1] and x.shape[a0] is not None and y.shape[a1] is not None):
        raise ValueError(f"batch_dot: cannot contract axis {a0} of {x.shape} with axis {a1} of "
                         f"{y.shape}; expected equal sizes")
    result = bind(dot_general_p, x, y, contract=((a0,), (a1,)), batch=_BATCH_AXIS)
    if x_ndim == 2 and y_ndim == 2:  # (B, D) . (B, D): (B, 1), as Keras
        return expand_dims(result, 1)
    return result

