"""Connectionist temporal classification: Keras 2's ctc_label_dense_to_sparse, ctc_batch_cost
(differentiable: the forward algorithm in log space, written with gpubk ops) and ctc_decode
(greedy). The blank is the last class, as in Keras.

`ctc_batch_cost` and `ctc_decode` read labels and lengths on the host, so they are composite
primitives: their impl runs on tensors (the cost records itself on the tape as it goes), and on
symbolic inputs they stage a node whose shape comes from abstract evaluation. The cost's staged
gradient reruns the cost while recording and differentiates it when the graph is evaluated.
"""
from __future__ import annotations

import collections

import numpy as np

from ..config import epsilon
from ..core.primitive import Primitive, as_input, bind_composite, is_symbolic
from ..tensor import Tensor, as_tensor
from .creation import ones_like, zeros_like
from .math import exp, log, maximum, where
from .nn import log_softmax
from .shape import concatenate, expand_dims
from .validate import check_int, type_name


def _host_ints(value, func: str, name: str, batch: int, high: int) -> np.ndarray:
    """Per-sample lengths (shape (batch,) or (batch, 1)) as int64 in [0, high]."""
    array = np.asarray(as_tensor(value, func).numpy())
    if array.size != batch or array.ndim > 2:
        raise ValueError(f"{func}: {name} of shape {array.shape}; expected one value per "
                         f"sample ({batch},) or ({batch}, 1)")
    array = array.reshape(-1)
    if array.dtype.kind not in "iu" or bool(((array < 0) | (array > high)).any()):
        raise ValueError(f"{func}: {name} must be integers in [0, {high}], got "
                         f"{array.tolist()}")
    return array.astype(np.int64)


def _ranked(value, func: str, name: str, rank: int) -> Tensor:
    """`value` as a tensor (or a symbolic one) of rank `rank`, or a ValueError."""
    t = as_input(value, func)
    if t.ndim != rank:
        raise ValueError(f"{func}: {name} must have rank {rank}, got shape {t.shape}")
    return t


SparseTensor = collections.namedtuple("SparseTensor", "indices values dense_shape")
SparseTensor.__doc__ = """A sparse tensor as TensorFlow's: (N, rank) indices, N values, shape."""


def ctc_label_dense_to_sparse(labels, label_lengths) -> SparseTensor:
    """Keras: `K.ctc_label_dense_to_sparse(labels, label_lengths)`. The first
    `label_lengths[i]` labels of each row, as a SparseTensor (gpubk has no sparse tensors:
    a named tuple of NumPy arrays with TensorFlow's fields)."""
    func = "ctc_label_dense_to_sparse"
    if is_symbolic(labels) or is_symbolic(label_lengths):
        raise TypeError(f"{func}: expected values, got a symbolic tensor; its result holds NumPy "
                        "arrays, which a graph cannot compute")
    labels = np.asarray(_ranked(labels, func, "labels", 2).numpy())
    lengths = _host_ints(label_lengths, func, "label_lengths", labels.shape[0], labels.shape[1])
    keep = np.arange(labels.shape[1])[None, :] < lengths[:, None]
    indices = np.argwhere(keep).astype(np.int64)
    return SparseTensor(indices, labels[keep], np.array(labels.shape, dtype=np.int64))


def _log_add(a: Tensor, b: Tensor) -> Tensor:
    """log(exp(a) + exp(b)), stable; -inf (with zero gradients, not NaN) where both are -inf."""
    top = maximum(a, b)
    finite = top > -np.inf
    safe = where(finite, top, zeros_like(top))
    total = exp(a - safe) + exp(b - safe)
    return where(finite, safe + log(where(finite, total, ones_like(total))), top)


def ctc_batch_cost(y_true, y_pred, input_length, label_length) -> Tensor:
    """Keras: `K.ctc_batch_cost(y_true, y_pred, input_length, label_length)`.

    Arguments:
        y_true: (batch, max_label_length) integer labels.
        y_pred: (batch, time, classes) softmax outputs; the blank is the last class.
        input_length: (batch, 1) time steps used per sample.
        label_length: (batch, 1) labels used per sample.

    Returns:
        (batch, 1): -log p(labels | y_pred), with Keras's `log(y_pred + epsilon)` renormalised
        over the classes (TensorFlow's ctc_loss softmaxes its inputs). Differentiable in y_pred.
        On symbolic inputs, labels and lengths are checked when the graph is evaluated.
    """
    func = "ctc_batch_cost"
    y_pred = _ranked(y_pred, func, "y_pred", 3)
    y_true = _ranked(y_true, func, "y_true", 2)
    if None not in (y_true.shape[0], y_pred.shape[0]):
        _check_batch(y_true.shape, y_pred.shape)
    return bind_composite(ctc_batch_cost_p, y_true, y_pred, as_input(input_length, func),
                          as_input(label_length, func))


def _check_batch(labels_shape: tuple, y_pred_shape: tuple) -> None:
    if labels_shape[0] != y_pred_shape[0]:
        raise ValueError(f"ctc_batch_cost: y_true of shape {labels_shape} and y_pred of shape "
                         f"{y_pred_shape}; expected the same batch size")


def _ctc_cost(y_true: Tensor, y_pred: Tensor, input_length: Tensor,
              label_length: Tensor) -> Tensor:
    """ctc_batch_cost on tensors of the right ranks: the labels and lengths read on the host,
    the forward recursion written with gpubk ops (recorded on the tape as it runs)."""
    func = "ctc_batch_cost"
    labels = np.asarray(y_true.numpy())
    batch, steps, classes = y_pred.shape
    blank = classes - 1
    _check_batch(labels.shape, y_pred.shape)
    in_len = _host_ints(input_length, func, "input_length", batch, steps)
    lab_len = _host_ints(label_length, func, "label_length", batch, labels.shape[1])
    used = np.arange(labels.shape[1])[None, :] < lab_len[:, None]
    # Keras casts the labels to int32 (its OCR example feeds float32 labels): whole numbers.
    whole = labels.dtype.kind in "iu" or labels.dtype.kind == "f" and \
        bool((labels[used] == np.floor(labels[used])).all())
    if not whole or bool(((labels < 0) | (labels >= blank))[used].any()):
        raise ValueError(f"{func}: y_true labels must be integers in [0, {blank}) (class "
                         f"{blank} is the blank)")
    labels = labels.astype(np.int64)
    log_p = log_softmax(log(y_pred + epsilon()), axis=-1)  # (batch, time, classes)
    # The extended labels: blank, l1, blank, l2, ..., blank (2L + 1 states).
    width = 2 * labels.shape[1] + 1
    extended = np.full((batch, width), blank, dtype=np.int64)
    extended[:, 1::2] = labels
    valid = np.arange(width)[None, :] < (2 * lab_len + 1)[:, None]
    skip = np.zeros((batch, width), dtype=bool)  # s - 2 -> s allowed: a label unlike s - 2's
    skip[:, 2:] = (extended[:, 2:] != blank) & (extended[:, 2:] != extended[:, :-2])
    xp = y_pred.device.xp
    rows = xp.asarray(np.repeat(np.arange(batch)[:, None], width, axis=1))
    gather = xp.asarray(extended)
    dev = y_pred.device
    never = Tensor(dev.put(np.full((batch, width), -np.inf, y_pred.dtype)), dev)
    valid_t = Tensor(dev.put(valid), dev)
    skip_t = Tensor(dev.put(skip), dev)
    start = np.zeros((batch, width), dtype=bool)
    start[:, :2] = True
    alpha = where(Tensor(dev.put(start & valid), dev), log_p[:, 0][rows, gather], never)
    final = alpha
    for t in range(1, steps):
        shifted1 = concatenate([never[:, :1], alpha[:, :-1]], axis=1)
        shifted2 = concatenate([never[:, :2], alpha[:, :-2]], axis=1)
        total = _log_add(_log_add(alpha, shifted1), where(skip_t, shifted2, never))
        alpha = where(valid_t, total + log_p[:, t][rows, gather], never)
        done = Tensor(dev.put((in_len == t + 1)[:, None]), dev)
        final = where(done, alpha, final)
    last = Tensor(dev.put(np.stack([2 * lab_len, 2 * lab_len - 1], axis=1).clip(0)), dev)
    ends = final[xp.arange(batch)[:, None], last.data]
    ends = where(Tensor(dev.put(np.stack([np.ones(batch, bool), lab_len > 0], axis=1)), dev),
                 ends, never[:, :2])
    return -expand_dims(_log_add(ends[:, 0], ends[:, 1]), 1)


# Its gradient (y_pred's only), staged by K.gradients of a symbolic loss, is a node that reruns
# the cost with recording on when evaluated (staged_backprop's recomputed gradient).
ctc_batch_cost_p = Primitive("ctc_batch_cost", composite=True, differentiable=(1,))
ctc_batch_cost_p.def_impl(_ctc_cost)
ctc_batch_cost_p.def_abstract(
    lambda y_true, y_pred, input_length, label_length: ((y_pred.shape[0], 1), y_pred.dtype))


def ctc_decode(y_pred, input_length, greedy: bool = True, beam_width: int = 100,
               top_paths: int = 1):
    """Keras: `K.ctc_decode(y_pred, input_length, greedy=True, beam_width=100, top_paths=1)`.

    Greedy decoding: the most likely class at each step, repeats merged, blanks (the last
    class) removed. Returns ([decoded (batch, longest) int64, padded with -1], log_prob
    (batch, 1)) where log_prob is minus the sum over steps of the largest log(y_pred + eps), as
    TensorFlow's greedy decoder reports it. On symbolic inputs the decoded length is unknown
    until the graph is evaluated. Beam search is not implemented yet: `greedy=False` raises
    NotImplementedError."""
    func = "ctc_decode"
    if not isinstance(greedy, (bool, np.bool_)):
        raise TypeError(f"{func}: greedy must be a bool, got {type_name(greedy)}")
    check_int(beam_width, func, "beam_width", 1)
    check_int(top_paths, func, "top_paths", 1)
    if not greedy:
        raise NotImplementedError("ctc_decode: beam search is not implemented in gpubk yet; "
                                  "use greedy=True")
    y_pred = _ranked(y_pred, func, "y_pred", 3)
    return bind_composite(ctc_decode_p, y_pred, as_input(input_length, func))


def _greedy_decode(y_pred: Tensor, input_length: Tensor) -> tuple:
    """ctc_decode on tensors, on the host: ([decoded], log_prob)."""
    func = "ctc_decode"
    probs = np.asarray(y_pred.numpy())
    lengths = _host_ints(input_length, func, "input_length", probs.shape[0], probs.shape[1])
    blank = probs.shape[2] - 1
    logs = np.log(probs + epsilon())
    best = logs.argmax(axis=2)
    sequences, scores = [], []
    for b in range(probs.shape[0]):
        path = best[b, :lengths[b]]
        merged = path[np.r_[True, path[1:] != path[:-1]]] if len(path) else path
        sequences.append(merged[merged != blank])
        scores.append(-logs[b, :lengths[b]].max(axis=1).sum())
    longest = max((len(s) for s in sequences), default=0)
    decoded = np.full((len(sequences), longest), -1, dtype=np.int64)
    for b, s in enumerate(sequences):
        decoded[b, :len(s)] = s
    dev = y_pred.device
    return ([Tensor(dev.put(decoded), dev)],
            Tensor(dev.put(np.asarray(scores, dtype=probs.dtype)[:, None]), dev))


def _decode_abstract(y_pred, input_length) -> tuple:
    """Keras's structure; the decoded length depends on the values (unknown until evaluated)."""
    batch = y_pred.shape[0]
    return [((batch, None), np.dtype(np.int64))], ((batch, 1), y_pred.dtype)


# No gradient (integer paths; their log probability is not differentiated, as in TF).
ctc_decode_p = Primitive("ctc_decode", composite=True, differentiable=())
ctc_decode_p.def_impl(_greedy_decode)
ctc_decode_p.def_abstract(_decode_abstract)
