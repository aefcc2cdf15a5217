"""Declared primitives: the README's recipe for a new op, the kernel-backed backward primitives
(second derivatives), abstract evaluation against eager results, and bind's rules."""
import contextlib
import re
import types
from pathlib import Path

import numpy as np
import pytest

import gpubk as K
from gpubk import backends, kernels
from gpubk.core.primitive import broadcast_shapes
from gpubk.ops import math as ops_math, nn
from gradcheck import check_hessian_vector_products

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_recipe_for_a_new_op_works(rng):
    text = README.read_text()
    block = re.search(r"To add an op.*?```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    exec("from gpubk.core.primitive import Primitive, as_input, bind, same_as_input\n"
         "from gpubk import square\n" + block, namespace)
    cube = namespace["cube"]
    a = rng.standard_normal((3, 4))
    x = K.variable(a, dtype="float64")
    np.testing.assert_allclose(K.eval(cube(x)), a ** 3, rtol=1e-12)
    np.testing.assert_allclose(K.eval(K.gradients(K.sum(cube(x)), [x])[0]), 3 * a ** 2,
                               rtol=1e-12)
    p = K.placeholder(shape=(None, 4), dtype="float64")
    assert K.int_shape(cube(p)) == (None, 4)  # abstract evaluation: nothing computed
    np.testing.assert_allclose(K.function([p], [cube(p)])([a])[0], a ** 3, rtol=1e-12)


def test_activation_codes_match_the_kernels():
    """nn declares its primitives without importing the kernels (import time): the codes it
    uses must be the kernels'."""
    assert nn._USES_OUTPUT == kernels.elementwise.USES_OUTPUT
    x = K.constant(np.linspace(-3.0, 3.0, 13), "float64")
    for name in ("relu", "sigmoid", "hard_sigmoid", "tanh", "elu", "softplus", "softsign"):
        code = getattr(kernels.elementwise, name.upper())
        params = (1.0,) if name == "elu" else ()  # K.elu's default alpha
        np.testing.assert_array_equal(
            K.eval(getattr(K, name)(x)),
            kernels.elementwise.forward(x.device, code, x.numpy(), *params))


SMOOTH = {
    "sigmoid": lambda x: K.sum(K.sigmoid(x) * x),
    "tanh": lambda x: K.sum(K.tanh(x) ** 2),
    "elu": lambda x: K.sum(K.elu(x, 0.7) * x),
    "softplus": lambda x: K.sum(K.softplus(x) * x),
    "softsign": lambda x: K.sum(K.softsign(x) * x),
    "log_softmax": lambda x: K.sum(K.log_softmax(x) * K.log_softmax(x * 0.5, axis=0)),
    "softmax": lambda x: K.sum(K.softmax(x) * x),
    "relu": lambda x: K.sum(K.relu(x, alpha=0.2) * x),
    "hard_sigmoid": lambda x: K.sum(K.hard_sigmoid(x) * x),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_second_derivatives_of_kernel_backed_primitives(name, kernel_device, rng):
    """The backward primitives' own vjps against finite differences, away from kinks (points
    at least 0.2 from 0 and from hard_sigmoid's ±2.5)."""
    a = rng.uniform(0.2, 2.0, (2, 4)) * rng.choice([-1.0, 1.0], (2, 4))
    check_hessian_vector_products(SMOOTH[name], [a], [rng.standard_normal(a.shape)])


CASES = [  # (function, input shapes): abstract evaluation against the eager result
    (lambda x, y: x + y, [(3, 1), (4,)]),
    (lambda x, y: x / y, [(2, 3), (1, 3)]),
    (lambda x, y: K.maximum(x, y), [(5,), (2, 1)]),
    (lambda x, y: K.greater(x, y), [(2, 3), (3,)]),
    (lambda x, y: K.where(x > 0, x, y), [(2, 3), (2, 3)]),
    (lambda x, y: K.cast(x, "int32"), [(4,), (1,)]),
    (lambda x, y: K.clip(x, -0.5, 0.5), [(2, 2), (1,)]),
    (lambda x, y: K.softmax(x), [(2, 5), (1,)]),
    (lambda x, y: K.log_softmax(x, axis=0), [(3, 4), (1,)]),
    (lambda x, y: K.relu(x, max_value=6.0), [(7,), (1,)]),
    (lambda x, y: K.elu(x), [(2, 3, 4), (1,)]),
    (lambda x, y: K.categorical_crossentropy(K.softmax(y), x, from_logits=True), [(3, 5), (3, 5)]),
    (lambda x, y: K.categorical_crossentropy(K.softmax(y), K.softmax(x)), [(3, 5), (3, 5)]),
    (lambda x, y: K.categorical_crossentropy(K.softmax(y, axis=1), K.softmax(x, axis=1), axis=1),
     [(2, 4, 3), (2, 4, 3)]),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_abstract_evaluation_matches_eager(case, rng):
    fn, shapes = CASES[case]
    values = [rng.standard_normal(s) for s in shapes]
    eager = fn(*[K.constant(v) for v in values])
    placeholders = [K.placeholder(shape=(None,) + s[1:]) for s in shapes]
    node = fn(*placeholders)
    assert node.dtype == eager.dtype
    assert len(node.shape) == eager.ndim
    got = K.function(placeholders, [node])(values)[0]
    np.testing.assert_array_equal(got, K.eval(eager))
    full = fn(*[K.placeholder(shape=s) for s in shapes])
    assert K.int_shape(full) == eager.shape


def test_broadcast_shapes_with_unknown_dims():
    assert broadcast_shapes("f", (None, 3), (4, 1)) == (4, 3)
    assert broadcast_shapes("f", (None, 1), (1,)) == (None, 1)
    assert broadcast_shapes("f", (2, None), (3,)) == (2, 3)
    with pytest.raises(ValueError, match=r"f: shapes \(2, 3\), \(4,\) do not broadcast"):
        broadcast_shapes("f", (2, 3), (4,))


def test_symbolic_errors_come_at_build_time():
    x = K.placeholder(shape=(None, 3), name="x")
    with pytest.raises(ValueError, match="add: shapes .* do not broadcast"):
        x + K.constant(np.ones(4))
    with pytest.raises(TypeError, match="relu: expected a float tensor, got int32"):
        K.relu(K.placeholder(shape=(2,), dtype="int32"))


def test_integer_results_and_piecewise_constant_ops_record_nothing():
    v = K.variable([1.5, -2.0], dtype="float64")
    for out in (K.cast(v, "int32"), v > 0, K.round(v), K.sign(v), v // 1.0):
        assert not out.requires_grad and out._node is None
    assert ops_math.multiply_p.saves == (0, 1) and ops_math.add_p.saves == ()


def test_an_op_runs_in_its_tensors_device_context():
    """bind enters the device's context where its array module is not NumPy (a tensor on gpu:1
    allocates on gpu:1), here through a registered backend whose array module wraps NumPy."""
    entered = []
    xp = types.SimpleNamespace(**{name: getattr(np, name) for name in dir(np)
                                  if not name.startswith("__")})
    backend = types.SimpleNamespace(
        KIND="wrapped", INDEXED=True, CUDA_KERNELS=False, open=lambda index: xp,
        put=lambda array, index: np.asarray(array), to_host=np.asarray,
        context=lambda index: entered.append(index) or contextlib.nullcontext(),
        stream=lambda index: None, scatter_add=lambda array, key, values: None)
    backends.register("wrapped", backend)
    try:
        with K.device("wrapped:1"):
            x = K.constant([1.0, 2.0])
        entered.clear()
        np.testing.assert_allclose(K.eval(K.exp(x) + x), np.exp([1.0, 2.0]) + [1.0, 2.0], rtol=1e-6)
        assert entered == [1, 1]  # exp, then add: each in the tensor's device context
        with K.device("cpu"):
            np.testing.assert_array_equal(K.eval(x * 2.0), [2.0, 4.0])  # x's device, not cpu
        assert entered == [1, 1, 1]
    finally:
        backends.unregister("wrapped")


def test_a_list_holding_symbolic_tensors_gets_a_clear_error():
    x = K.placeholder(shape=(None, 3))
    with pytest.raises(TypeError, match=r"sum: got a list holding symbolic tensors; expected a "
                                        r"tensor \(join them with K.stack"):
        K.sum([x, x])
    np.testing.assert_allclose(K.function([x], [K.sum(K.stack([x, x]))])([np.ones((2, 3))])[0],
                               12.0)
