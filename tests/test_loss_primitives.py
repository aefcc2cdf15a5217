"""sparse_categorical_crossentropy and ctc_batch_cost / ctc_decode as declared primitives.

On placeholders they build nodes whose shapes come from abstract evaluation; the targets' and
labels' host checks run when the graph is evaluated; `K.gradients` stages their backward (a
graph of primitives: no tape when the function runs). References: NumPy float64 formulas (a
log-space CTC forward recursion written here) and their finite differences.
"""
import numpy as np
import pytest

import gpubk as K
from gpubk.core.primitive import Primitive
from gpubk.symbolic import Placeholder, Symbol, topological_symbols

from gradcheck import numeric_gradient

EPS = 1e-7  # Keras's default epsilon


def _nodes(outputs) -> list:
    return [s for s in topological_symbols([o for o in outputs if isinstance(o, Symbol)])
            if not isinstance(s, Placeholder)]


def _ops(outputs) -> set:
    return {getattr(s.op, "__name__", s.op) for s in _nodes(outputs)}


def _staged(outputs) -> bool:
    """Whether every node is a declared primitive (no tape fallback, no traced op)."""
    return all(isinstance(s.op, Primitive) for s in _nodes(outputs))


# -- sparse categorical crossentropy --------------------------------------------------------------
def _log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _sparse_cce_np(labels, output, from_logits, ignore_class=None):
    """Keras 2: probabilities clipped to [eps, 1 - eps], logged and renormalised; from logits,
    -log softmax at the label; 0 where the label is `ignore_class`."""
    labels = np.asarray(labels).reshape(-1)
    logits = output if from_logits else np.log(np.clip(output, EPS, 1 - EPS))
    safe = np.where(labels == ignore_class, 0, labels)
    loss = -_log_softmax(logits)[np.arange(len(labels)), safe]
    return np.where(labels == ignore_class, 0.0, loss)


def _sparse_case(rng, rows, classes, from_logits):
    z = rng.standard_normal((rows, classes))
    if from_logits:
        return z
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True) * rng.uniform(0.5, 1.5, (rows, 1))


@pytest.mark.parametrize("target_shape", [(None,), (None, 1)])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ignore_class", [None, -1, 2])
def test_sparse_crossentropy_on_placeholders_matches_numpy(target_shape, from_logits,
                                                           ignore_class, rng):
    target = K.placeholder(shape=target_shape, dtype="int32")
    output = K.placeholder(shape=(None, 4), dtype="float64")
    loss = K.sparse_categorical_crossentropy(target, output, from_logits=from_logits,
                                             ignore_class=ignore_class)
    assert K.int_shape(loss) == (None,) and _staged([loss])
    assert "sparse_targets" in _ops([loss])
    f = K.function([target, output], [loss])
    for rows in (5, 3):  # two feeds, two batch sizes
        labels = rng.integers(0, 4, rows)
        if ignore_class is not None:
            labels[1] = ignore_class
        out = _sparse_case(rng, rows, 4, from_logits)
        (got,) = f([labels.reshape((rows,) + target_shape[1:]), out])
        want = _sparse_cce_np(labels, out, from_logits, ignore_class)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        if ignore_class is not None:
            assert got[1] == 0.0


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ignore_class", [None, -1, 1])
def test_sparse_crossentropy_gradient_is_staged_and_matches_finite_differences(
        from_logits, ignore_class, rng):
    target = K.placeholder(shape=(None, 1), dtype="int32")
    output = K.placeholder(shape=(None, 3), dtype="float64")
    loss = K.sparse_categorical_crossentropy(target, output, from_logits=from_logits,
                                             ignore_class=ignore_class)
    weights = K.placeholder(shape=(None,), dtype="float64")  # a gradient g other than ones
    (grad,) = K.gradients(K.sum(loss * weights), [output])
    assert _staged([grad]), _ops([grad])
    f = K.function([target, output, weights], [grad])
    for rows in (4, 6):
        labels = rng.integers(0, 3, (rows, 1))
        if ignore_class is not None:
            labels[0, 0] = ignore_class
        out = _sparse_case(rng, rows, 3, from_logits)
        if not from_logits:  # away from the clip's kinks
            out = np.clip(out, 0.02, 0.98)
        w = rng.uniform(0.5, 2.0, rows)
        (got,) = f([labels, out, w])
        want = numeric_gradient(lambda o: float(np.sum(
            w * _sparse_cce_np(labels, o, from_logits, ignore_class))), [out], 0)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
        if ignore_class is not None:
            np.testing.assert_array_equal(got[0], 0.0)


def test_sparse_crossentropy_checks_symbolic_targets_when_evaluated(rng):
    target = K.placeholder(shape=(None,), dtype="float32")  # whole floats are class indices
    output = K.placeholder(shape=(None, 3), dtype="float64")
    loss = K.sparse_categorical_crossentropy(target, output, from_logits=True)  # builds
    f = K.function([target, output], [loss])
    z = rng.standard_normal((2, 3))
    np.testing.assert_allclose(f([np.array([0.0, 2.0]), z])[0],
                               _sparse_cce_np([0, 2], z, True), rtol=1e-12)
    message = r"^sparse_categorical_crossentropy: targets must be whole class indices in \[0, 3\)$"
    for bad in ([0.0, 3.0], [-1.0, 1.0], [0.5, 1.0]):
        with pytest.raises(ValueError, match=message):
            f([np.array(bad), z])
    with pytest.raises(ValueError, match=r"target of shape \(3,\) for output of shape \(2, 3\)"):
        f([np.zeros(3), z])


def test_sparse_crossentropy_shape_errors_when_building_and_unknown_classes(rng):
    with pytest.raises(ValueError, match=r"target of shape \(4,\) for output of shape \(3, 2\)"):
        K.sparse_categorical_crossentropy(K.placeholder(shape=(4,), dtype="int32"),
                                          K.placeholder(shape=(3, 2)))
    # Classes on axis 1 of a rank-3 output whose every dimension is unknown.
    target = K.placeholder(shape=(None, None), dtype="int64")
    output = K.placeholder(ndim=3, dtype="float64")
    loss = K.sparse_categorical_crossentropy(target, output, from_logits=True, axis=1)
    assert K.int_shape(loss) == (None, None)
    z = rng.standard_normal((2, 5, 3))
    labels = rng.integers(0, 5, (2, 3))
    (got,) = K.function([target, output], [loss])([labels, z])
    want = -np.take_along_axis(_log_softmax(np.moveaxis(z, 1, -1)), labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(got, want, rtol=1e-12)


# -- CTC ------------------------------------------------------------------------------------------
def _ctc_cost_np(y_pred, labels, steps):
    """-log p(labels | y_pred[:steps]) by the forward recursion in log space over the extended
    labels (blank, l1, blank, ..., blank), the blank the last class, on Keras's inputs:
    log(y_pred + eps) renormalised by a log-softmax over the classes."""
    log_p = _log_softmax(np.log(y_pred[:steps] + EPS))
    blank = y_pred.shape[-1] - 1
    ext = [blank]
    for c in labels:
        ext += [int(c), blank]
    alpha = np.full(len(ext), -np.inf)
    alpha[0] = log_p[0, blank]
    if len(ext) > 1:
        alpha[1] = log_p[0, ext[1]]
    for t in range(1, steps):
        new = np.full_like(alpha, -np.inf)
        for s in range(len(ext)):
            total = alpha[s]
            if s > 0:
                total = np.logaddexp(total, alpha[s - 1])
            if s > 1 and ext[s] != blank and ext[s] != ext[s - 2]:
                total = np.logaddexp(total, alpha[s - 2])
            new[s] = total + log_p[t, ext[s]]
        alpha = new
    return -(np.logaddexp(alpha[-1], alpha[-2]) if len(ext) > 1 else alpha[-1])


def _ctc_batch_np(y_pred, labels, input_length, label_length):
    return np.array([_ctc_cost_np(y_pred[b], labels[b, :label_length[b, 0]],
                                  input_length[b, 0]) for b in range(len(y_pred))])


def _ctc_placeholders(max_labels: int, classes: int) -> tuple:
    """Labels, y_pred, input_length, label_length; batch and time unknown."""
    return (K.placeholder(shape=(None, max_labels), dtype="int32"),
            K.placeholder(shape=(None, None, classes), dtype="float64"),
            K.placeholder(shape=(None, 1), dtype="int32"),
            K.placeholder(shape=(None, 1), dtype="int32"))


# Two feeds: other batch sizes, numbers of steps and lengths; repeated labels (the skip rule
# does not apply), an empty label sequence, steps beyond a sample's input_length.
CTC_FEEDS = [
    (np.array([[0, 1, 1], [2, 0, 0]]), 6, np.array([[6], [4]]), np.array([[3], [1]])),
    (np.array([[1, 2, 0], [0, 0, 0], [2, 2, 1]]), 7, np.array([[5], [7], [7]]),
     np.array([[2], [0], [3]])),
]


def test_ctc_batch_cost_on_placeholders_matches_a_log_space_recursion(rng):
    labels, y_pred, input_length, label_length = _ctc_placeholders(3, 4)
    cost = K.ctc_batch_cost(labels, y_pred, input_length, label_length)
    assert K.int_shape(cost) == (None, 1) and cost.op.name == "ctc_batch_cost"
    f = K.function([labels, y_pred, input_length, label_length], [cost])
    for lab, steps, n, m in CTC_FEEDS:
        y = rng.dirichlet(np.ones(4), size=(len(lab), steps))
        (got,) = f([lab, y, n, m])
        np.testing.assert_allclose(got[:, 0], _ctc_batch_np(y, lab, n, m), rtol=1e-10)
        eager = K.ctc_batch_cost(K.constant(lab, "int32"), K.constant(y, "float64"),
                                 K.constant(n, "int32"), K.constant(m, "int32"))
        np.testing.assert_allclose(got, K.eval(eager), rtol=1e-12)


def test_ctc_batch_cost_gradient_is_a_staged_node_matching_finite_differences(rng):
    labels, y_pred, input_length, label_length = _ctc_placeholders(3, 4)
    cost = K.ctc_batch_cost(labels, y_pred, input_length, label_length)
    # A square, so that the gradient reaching the cost is not ones.
    (grad,) = K.gradients(K.sum(K.square(cost)), [y_pred])
    assert "recomputed_grad" in _ops([grad]) and "ctc_batch_cost" in _ops([grad])
    assert K.int_shape(grad) == (None, None, 4) and grad.dtype == np.float64
    f = K.function([labels, y_pred, input_length, label_length], [grad])
    for lab, steps, n, m in CTC_FEEDS:
        y = rng.dirichlet(np.ones(4), size=(len(lab), steps))
        (got,) = f([lab, y, n, m])
        want = numeric_gradient(
            lambda q: float(np.sum(_ctc_batch_np(q, lab, n, m) ** 2)), [y], 0)
        assert got.shape == y.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_ctc_batch_cost_gradient_through_a_softmax_of_logits(rng):
    """y_pred computed in the graph (its value is no leaf when the function runs)."""
    labels, _, input_length, label_length = _ctc_placeholders(2, 3)
    logits = K.placeholder(shape=(None, None, 3), dtype="float64")
    cost = K.ctc_batch_cost(labels, K.softmax(logits), input_length, label_length)
    (grad,) = K.gradients(K.sum(cost), [logits])
    assert "recomputed_grad" in _ops([grad])
    f = K.function([labels, logits, input_length, label_length], [grad])
    lab, n, m = np.array([[0, 1], [1, 1]]), np.array([[5], [5]]), np.array([[2], [2]])
    z = rng.standard_normal((2, 5, 3))

    def loss_np(z):
        y = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
        return float(np.sum(_ctc_batch_np(y, lab, n, m)))
    np.testing.assert_allclose(f([lab, z, n, m])[0], numeric_gradient(loss_np, [z], 0),
                               rtol=1e-5, atol=1e-7)


def test_ctc_batch_cost_gives_no_gradient_to_labels_and_lengths():
    labels = K.placeholder(shape=(None, 2))  # float32 labels, as Keras's OCR example feeds
    y_pred = K.placeholder(shape=(None, None, 3))
    lengths = K.placeholder(shape=(None, 1))
    cost = K.ctc_batch_cost(labels, y_pred, lengths, lengths)
    assert K.gradients(K.sum(cost), [labels, lengths]) == [None, None]


def test_ctc_batch_cost_second_derivative_matches_finite_differences(rng):
    labels, y_pred, input_length, label_length = _ctc_placeholders(2, 3)
    cost = K.ctc_batch_cost(labels, y_pred, input_length, label_length)
    (grad,) = K.gradients(K.sum(cost), [y_pred])
    v = rng.standard_normal((2, 4, 3))
    (hv,) = K.gradients(K.sum(grad * K.constant(v, dtype="float64")), [y_pred])
    lab, n, m = np.array([[0, 1], [1, 1]]), np.array([[4], [3]]), np.array([[2], [2]])
    y = rng.dirichlet(np.ones(3), size=(2, 4))
    got = K.function([labels, y_pred, input_length, label_length], [hv])([lab, y, n, m])[0]

    def directional(q):  # <grad(q), v>, the gradient checked by the tests above
        qv = K.variable(q, dtype="float64")
        cost = K.ctc_batch_cost(K.constant(lab, "int32"), qv, K.constant(n, "int32"),
                                K.constant(m, "int32"))
        (g,) = K.gradients(K.sum(cost), [qv])
        return float(np.sum(K.eval(g) * v))
    np.testing.assert_allclose(got, numeric_gradient(directional, [y], 0), rtol=1e-5,
                               atol=1e-6)


def test_ctc_checks_labels_and_lengths_when_evaluated(rng):
    labels, y_pred, input_length, label_length = _ctc_placeholders(2, 3)
    f = K.function([labels, y_pred, input_length, label_length],
                   [K.ctc_batch_cost(labels, y_pred, input_length, label_length)])
    y = rng.dirichlet(np.ones(3), size=(2, 4))
    with pytest.raises(ValueError, match=r"^ctc_batch_cost: y_true labels must be integers in "
                                         r"\[0, 2\) \(class 2 is the blank\)$"):
        f([np.array([[0, 2], [1, 0]]), y, np.array([[4], [4]]), np.array([[2], [1]])])
    with pytest.raises(ValueError, match=r"^ctc_batch_cost: input_length must be integers in "
                                         r"\[0, 4\], got \[5, 4\]$"):
        f([np.array([[0, 1], [1, 0]]), y, np.array([[5], [4]]), np.array([[2], [1]])])
    with pytest.raises(ValueError, match="expected the same batch size"):
        K.ctc_batch_cost(K.placeholder(shape=(3, 2)), K.placeholder(shape=(2, None, 3)),
                         input_length, label_length)


def test_ctc_decode_is_a_composite_node_with_keras_structure():
    y_pred = K.placeholder(shape=(None, None, 4))
    (decoded,), log_prob = K.ctc_decode(y_pred, K.placeholder(shape=(None,), dtype="int32"))
    assert decoded.dtype == np.int64 and K.int_shape(decoded) == (None, None)
    assert log_prob.dtype == np.float32 and K.int_shape(log_prob) == (None, 1)
    call = decoded.args[0]
    assert call is log_prob.args[0] and call.op.name == "ctc_decode"
