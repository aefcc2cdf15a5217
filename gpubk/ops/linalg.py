"""Matrix products: `matmul` (NumPy's `@`) and Keras's `dot`; cuBLAS through CuPy on a GPU."""
from __future__ import annotations

from ..autodiff import record
from ..tensor import Tensor
from .math import operands, sum_to


def _matmul_grad(g, y, needs, a, b):
    return (sum_to(matmul(g, swap_last_axes(b)), a.shape) if needs[0] else None,
            sum_to(matmul(swap_last_axes(a), g), b.shape) if needs[1] else None)


def matmul(x, y) -> Tensor:
    """Matrix product with NumPy's `@` rules: batch dimensions broadcast; a 1-D operand is a
    vector (a row on the left, a column on the right)."""
    x, y = operands(x, y, "matmul")
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"matmul: operands of shapes {x.shape} and {y.shape}; expected rank "
                         ">= 1 (use * for scalars)")
    if x.ndim == 1 or y.ndim == 1:  # as matrices, then drop the added axes
        x2 = reshape(x, (1,) + x.shape) if x.ndim == 1 else x
        y2 = reshape(y, y.shape + (1,)) if y.ndim == 1 else y
        out = matmul(x2, y2)
        shape = out.shape
        if x.ndim == 1:
            shape = shape[:-2] + shape[-1:]
        if y.ndim == 1:
            shape = shape[:-1]
        return reshape(out, shape)
    if x.shape[-1] != y.shape[-2]:
        raise ValueError(f"matmul: shapes {x.shape} and {y.shape} do not match; expected "
                         f"x.shape[-1] == y.shape[-2] ({x.shape[-1]} != {y.shape[-2]})")
    try:
        data = x.data @ y.data
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {x.shape} and {y.shape} do not "
                         "broadcast") from None
    if x._rg or y._rg:
        return record(data, (x, y), _matmul_grad, (x, y))
    return Tensor(data, x.device)


def dot(x, y) -> Tensor:
    """Keras: `K.dot(x, y)`. Multiplies two tensors of rank >= 2.

    2-D times 2-D is the matrix product. With a higher rank, the last axis of `x` is contracted
    with the second-to-last of `y`, as Keras does: `(2, 3, 4) . (4, 5) -> (2, 3, 5)` and
    `(2, 3) . (4, 3, 5) -> (2, 4, 5)` (shape `x.shape[:-1] + y.shape[:-2] + y.shape[-1:]`).
    """
    x, y = operands(x, y, "dot")
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError(f"dot: got shapes {x.shape} and {y.shape}; expected tensors of rank "
                         ">= 2 (Keras's K.dot rejects 1-D inputs)")
    if x.shape[-1] != y.shape[-2]:
        raise ValueError(f"dot: shapes {x.shape} ({x.dtype.name}) and {y.shape} "
                         f"({y.dtype.name}) do not match; expected x.shape[-1] == y.shape[-2] "
                         f"({x.shape[-1]} != {y.shape[-2]})")
    if x.ndim == 2 and y.ndim == 2:
        return matmul(x, y)
    # Fold x into rows and y (its contracted axis first) into columns: one large GEMM.
    k = x.shape[-1]
    pattern = [y.ndim - 2] + [i for i in range(y.ndim) if i != y.ndim - 2]
    rows = reshape(x, (-1, k))
    cols = reshape(permute_dimensions(y, pattern), (k, -1))
    return reshape(matmul(rows, cols), x.shape[:-1] + y.shape[:-2] + y.shape[-1:])


from .shape import permute_dimensions, reshape, swap_last_axes  # noqa: E402
