"""Matrix products: `matmul` (NumPy's `@`) and Keras's `dot`; cuBLAS through CuPy on a GPU."""
from __future__ import annotations

import math

from ..autodiff import record
from ..symbolic import traced
from ..tensor import Tensor
from .math import operands, sum_to
from .validate import check_int


def _matmul_grad(g, y, needs, a, b):
    return (sum_to(matmul(g, swap_last_axes(b)), a.shape) if needs[0] else None,
            sum_to(matmul(swap_last_axes(a), g), b.shape) if needs[1] else None)


def _matrix_product(x: Tensor, y: Tensor) -> Tensor:
    """`x @ y` for operands of rank >= 2 whose inner dimensions were checked."""
    try:
        data = x.data @ y.data
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {x.shape} and {y.shape} do not "
                         "broadcast") from None
    if x._rg or y._rg:
        return record(data, (x, y), _matmul_grad, (x, y))
    return Tensor(data, x.device)


def _inner_mismatch(func: str, x: Tensor, y: Tensor) -> ValueError:
    return ValueError(f"{func}: shapes {x.shape} ({x.dtype.name}) and {y.shape} "
                      f"({y.dtype.name}) do not match; expected x.shape[-1] == y.shape[-2] "
                      f"({x.shape[-1]} != {y.shape[-2]})")


@traced
def matmul(x, y) -> Tensor:
    """Matrix product with NumPy's `@` rules: batch dimensions broadcast; a 1-D operand is a
    vector (a row on the left, a column on the right)."""
    x, y = operands(x, y, "matmul")
    xs, ys = x.data.shape, y.data.shape
    if len(xs) >= 2 and len(ys) >= 2:
        if xs[-1] != ys[-2]:
            raise _inner_mismatch("matmul", x, y)
        return _matrix_product(x, y)
    if not xs or not ys:
        raise ValueError(f"matmul: operands of shapes {xs} and {ys}; expected rank >= 1 "
                         "(use * for scalars)")
    # A vector operand: make it a matrix, multiply, then drop the added axis.
    out = matmul(reshape(x, (1,) + xs) if len(xs) == 1 else x,
                 reshape(y, ys + (1,)) if len(ys) == 1 else y)
    shape = out.shape
    if len(xs) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(ys) == 1:
        shape = shape[:-1]
    return reshape(out, shape)


@traced
def dot(x, y) -> Tensor:
    """Keras: `K.dot(x, y)`. Multiplies two tensors of rank >= 2.

    2-D times 2-D is the matrix product. With a higher rank, the last axis of `x` is contracted
    with the second-to-last of `y`, as Keras does: `(2, 3, 4) . (4, 5) -> (2, 3, 5)` and
    `(2, 3) . (4, 3, 5) -> (2, 4, 5)` (shape `x.shape[:-1] + y.shape[:-2] + y.shape[-1:]`).
    """
    x, y = operands(x, y, "dot")
    xs, ys = x.data.shape, y.data.shape
    if len(xs) < 2 or len(ys) < 2:
        raise ValueError(f"dot: got shapes {xs} and {ys}; expected tensors of rank >= 2 "
                         "(Keras's K.dot rejects 1-D inputs)")
    if xs[-1] != ys[-2]:
        raise _inner_mismatch("dot", x, y)
    if len(xs) == 2 and len(ys) == 2:
        return _matrix_product(x, y)
    # Fold x into rows and y (its contracted axis first) into columns: one large GEMM.
    k = xs[-1]
    pattern = [len(ys) - 2] + [i for i in range(len(ys)) if i != len(ys) - 2]
    rows = reshape(x, (math.prod(xs[:-1]), k))
    cols = reshape(permute_dimensions(y, pattern), (k, math.prod(ys[:-2] + ys[-1:])))
    return reshape(_matrix_product(rows, cols), xs[:-1] + ys[:-2] + ys[-1:])


@traced
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
    if x.shape[0] != y.shape[0]:
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
    if not (0 <= a0 < x_ndim and 0 <= a1 < y_ndim) or x.shape[a0] != y.shape[a1]:
        raise ValueError(f"batch_dot: cannot contract axis {a0} of {x.shape} with axis {a1} of "
                         f"{y.shape}; expected equal sizes")
    if x_ndim == 2:
        x, a0 = expand_dims(x, 1), a0 + 1
    if y_ndim == 2:
        y = expand_dims(y, 2)
    # x: the contracted axis last; y: the contracted axis at 1.
    x = permute_dimensions(x, [i for i in range(x.ndim) if i != a0] + [a0])
    y = permute_dimensions(y, [0, a1] + [i for i in range(1, y.ndim) if i != a1])
    x_mid, y_trail = x.shape[1:-1], y.shape[2:]
    # explicit sizes, not -1: NumPy cannot infer -1 for an empty batch
    result = matmul(reshape(x, (x.shape[0], math.prod(x_mid), x.shape[-1])),
                    reshape(y, (y.shape[0], y.shape[1], math.prod(y_trail))))
    result = reshape(result, (result.shape[0],) + x_mid + y_trail)
    if x_ndim == 2:
        return squeeze(result, 1)
    if y_ndim == 2:
        return squeeze(result, -1)
    return result


from .shape import expand_dims, permute_dimensions, reshape, squeeze, swap_last_axes  # noqa: E402
