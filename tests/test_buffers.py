"""The buffer plan of K.function (gpubk/buffers.py): values written into buffers kept between
calls, shared where lifetimes do not overlap; nothing a caller, a view or another call holds is
ever written. Every value is checked against NumPy float64."""
import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import gpubk as K
from gpubk import buffers
from gpubk.ops.shape import reshape_p


@pytest.fixture
def keep_all(monkeypatch):
    """On the host, small values are written into kept buffers too (else only from 32 MB)."""
    monkeypatch.setattr(buffers, "HOST_MIN_BYTES", 0)


def _size(device: str) -> int:
    return 8 if device == "sim" else 4096  # large enough to fuse on the CPU; the simulator is slow


def _buffers_of(f) -> list:
    """(node name, buffer number) of the plan's steps that write into a kept buffer."""
    return re.findall(r"^\s+\d+\s+(\S+) .*buffer (\d+)\]", f.plan(), re.MULTILINE)


def _staged(n: int):
    """a = 2x + 1; b = 3 reshape(a) - 1; d = reshape(b) / 2 + 2, each a fused group (a reshape
    ends a group): a is dead once b is computed (a reshape may be a view, so a lives until b
    reads it), so d may take a's buffer; b's overlaps both."""
    x = K.placeholder(shape=(n,))
    a = x * 2.0 + 1.0
    b = K.reshape(a, (2, n // 2)) * 3.0 - 1.0
    d = K.reshape(b, (n,)) * 0.5 + 2.0
    return x, d


def _staged_numpy(x):
    """float32 at each stage, as the graph rounds it (float64 within each stage)."""
    a = (x.astype(np.float64) * 2 + 1).astype(np.float32)
    b = (a.astype(np.float64) * 3 - 1).astype(np.float32)
    return (b.astype(np.float64) * 0.5 + 2).astype(np.float32)


def test_values_with_disjoint_lifetimes_share_a_buffer(kernel_device, keep_all):
    n = _size(kernel_device)
    x, d = _staged(n)
    f = K.function([x], [d])
    written = [number for _, number in _buffers_of(f)]  # a's, b's and d's, in order
    assert len(written) == 3 and written[0] == written[2] != written[1]
    assert "3 values planned into 2 buffers kept between calls" in f.plan()
    rng = np.random.default_rng(0)
    for _ in range(3):
        xs = rng.standard_normal(n).astype(np.float32)
        np.testing.assert_allclose(f([xs])[0], _staged_numpy(xs), rtol=1e-6)


def test_results_the_caller_keeps_are_never_written_again(kernel_device, keep_all):
    n = _size(kernel_device)
    x, d = _staged(n)
    f = K.function([x], [d])
    xs = [np.full(n, float(i), np.float32) for i in range(3)]
    kept = [f([v])[0] for v in xs]
    for v, got in zip(xs, kept):
        np.testing.assert_allclose(got, _staged_numpy(v), rtol=1e-6)


def test_a_dropped_result_s_buffer_is_written_again_on_the_host(keep_all):
    n = 4096
    x, d = _staged(n)
    f = K.function([x], [d])
    first = f([np.ones(n, np.float32)])[0]
    address = first.ctypes.data
    del first
    again = f([np.zeros(n, np.float32)])[0]
    assert again.ctypes.data == address  # the same memory, no new allocation
    np.testing.assert_allclose(again, _staged_numpy(np.zeros(n)), rtol=1e-6)


def test_host_values_below_the_threshold_are_left_to_the_allocator():
    n = 4096
    x, d = _staged(n)
    f = K.function([x], [d])
    f([np.ones(n, np.float32)])
    assert "(0 bytes kept)" in f.plan()
    assert 4 * n < buffers.HOST_MIN_BYTES


def test_a_training_step_keeps_its_buffers_across_calls(kernel_device, keep_all):
    """The kept buffers are the same objects from one call to the next (stable addresses), and
    the step's values stay right: a linear layer's squared error and its SGD update."""
    n, m = (4, 3) if kernel_device == "sim" else (64, 64)
    rng = np.random.default_rng(1)
    w0 = (rng.standard_normal((m, m)) * 0.1).astype(np.float32)
    w = K.variable(w0)
    x, t = K.placeholder(shape=(n, m)), K.placeholder(shape=(n, m))
    loss = K.sum(K.square(K.dot(x, w) - t))
    (g,) = K.gradients(loss, [w])
    f = K.function([x, t], [loss], updates=[(w, w - 0.01 * g)])
    want = w0.astype(np.float64)
    ids = None
    for _ in range(3):
        xs, ts = rng.standard_normal((n, m)), rng.standard_normal((n, m))
        r = xs @ want - ts
        (got,) = f([xs.astype(np.float32), ts.astype(np.float32)])
        np.testing.assert_allclose(got, np.sum(r * r), rtol=1e-4)
        want = want - 0.01 * (2 * xs.T @ r)
        np.testing.assert_allclose(K.get_value(w), want, rtol=1e-4, atol=1e-5)
        now = {key: id(b) for key, b in f._workspace.buffers.items()}
        assert now
        assert ids is None or now == ids

        ids = now


def test_the_reference_count_guards_a_view_the_plan_missed(kernel_device, keep_all,
                                                          monkeypatch):
    """Were the plan wrong about a view (a reshape said to be new memory), the buffer it shares
    with is still never written while the view lives: its reference count shows the view."""
    monkeypatch.setattr(reshape_p, "may_view", False)
    n = _size(kernel_device)
    x, y = K.placeholder(shape=(n,)), K.placeholder(shape=(n,))
    a = x * 2.0 + 1.0
    v = K.reshape(K.reshape(a, (2, n // 2)), (n,))  # a view of a's buffer, read last
    b = y * 3.0 + 1.0  # planned into a's buffer: the plan thinks a dead after the reshape
    f = K.function([x, y], [v * b - 0.5, b])
    written = [number for _, number in _buffers_of(f)]  # a's, b's, the output's
    assert written[0] == written[1]
    xs, ys = np.linspace(-1, 1, n, dtype=np.float32), np.linspace(2, 3, n, dtype=np.float32)
    for _ in range(2):
        got, got_b = f([xs, ys])
        x64, y64 = xs.astype(np.float64), ys.astype(np.float64)
        # were b written over a, v would read 3y + 1: off by far more than rounding
        np.testing.assert_allclose(got, (2 * x64 + 1) * (3 * y64 + 1) - 0.5, rtol=1e-6,
                                   atol=1e-6)
        np.testing.assert_allclose(got_b, 3 * y64 + 1, rtol=1e-6)


def test_a_call_while_another_holds_the_workspace_allocates_its_own(kernel_device, keep_all):
    n = _size(kernel_device)
    x, d = _staged(n)
    f = K.function([x], [d])
    f([np.ones(n, np.float32)])
    held = {}
    assert f._workspace.lend_to(held)  # as another thread's call would
    kept = {key: id(b) for key, b in held.items()}
    xs = np.full(n, 3.0, np.float32)
    np.testing.assert_allclose(f([xs])[0], _staged_numpy(xs), rtol=1e-6)
    assert {key: id(b) for key, b in held.items()} == kept  # untouched, not taken back
    f._workspace.keep(held)
    np.testing.assert_allclose(f([xs])[0], _staged_numpy(xs), rtol=1e-6)


def test_calls_from_threads_each_get_their_own_values(keep_all):
    n = 4096
    x, d = _staged(n)
    f = K.function([x], [d])
    errors = []

    def work(value: float) -> None:
        xs = np.full(n, value, np.float32)
        want = _staged_numpy(xs)
        for _ in range(30):
            got = f([xs])[0]
            if not np.allclose(got, want, rtol=1e-6):
                errors.append((value, got[:3]))
    threads = [threading.Thread(target=work, args=(float(v),)) for v in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


def test_an_error_during_a_call_gives_the_workspace_back(keep_all):
    n = 4096
    x = K.placeholder(shape=(n,))
    labels = K.placeholder(shape=(4,), dtype="int32")
    a = x * 2.0 + 1.0
    loss = K.sparse_categorical_crossentropy(labels, K.reshape(a[:12], (4, 3)))
    f = K.function([x, labels], [K.reshape(a, (n,)) * 0.5 + 1.0, loss])
    xs = np.zeros(n, np.float32)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        f([xs, np.array([0, 1, 2, 7], np.int32)])  # a label out of range, found mid-call
    got, ce = f([xs, np.array([0, 1, 2, 0], np.int32)])
    np.testing.assert_allclose(got, np.full(n, 1.5), rtol=1e-7)
    np.testing.assert_allclose(ce, np.full(4, np.log(3.0)), rtol=1e-6)
    assert f._workspace.lend_to({})  # free again


def test_a_value_a_common_subexpression_repeats_keeps_its_buffer(keep_all):
    """a2 is a (merged): a's buffer lives as long as a2 is read, so d gets a buffer of its own,
    and every kept buffer is the same object from one call to the next."""
    x, y = K.placeholder(shape=(64, 64)), K.placeholder(shape=(64, 64))
    e = K.exp(K.square(x))
    a, a2 = K.tanh(e), K.tanh(e)
    d = K.tanh(K.square(y))
    f = K.function([x, y], [K.sin(a), K.sum(K.dot(a2, d))])
    written = dict(_buffers_of(f))
    assert len(set(written.values())) == len(written)  # a's, d's and sin's: none shared
    xs, ys = np.full((64, 64), 0.5, np.float32), np.full((64, 64), 0.25, np.float32)
    kept = None
    for _ in range(3):
        sin_a, total = f([xs, ys])
        now = {key: id(b) for key, b in f._workspace.buffers.items()}
        assert kept is None or now == kept
        kept = now
    ta, td = np.tanh(np.exp(0.25)), np.tanh(0.0625)
    np.testing.assert_allclose(sin_a, np.sin(ta), rtol=1e-6)
    np.testing.assert_allclose(total, 64 ** 3 * ta * td, rtol=1e-5)


def test_a_product_s_buffer_is_said_to_be_a_gpu_s_and_the_host_keeps_none(keep_all):
    x = K.placeholder(shape=(None, 8))
    f = K.function([x], [K.dot(x, K.variable(np.eye(8, dtype=np.float32)))])
    assert "[buffer 1 on a GPU]" in f.plan()
    with K.device("cpu"):
        np.testing.assert_array_equal(f([np.ones((2, 8), np.float32)])[0], np.ones((2, 8)))
    assert f._workspace.buffers == {}


def test_plan_can_be_read_while_another_thread_calls(keep_all):
    n = 4096
    x, d = _staged(n)
    f = K.function([x], [d])
    done, errors = threading.Event(), []

    def calls():
        xs = np.ones(n, np.float32)
        while not done.is_set():
            f([xs])
    worker = threading.Thread(target=calls)
    worker.start()
    try:
        for _ in range(2000):
            try:
                f.plan()
            except RuntimeError as error:  # "dictionary changed size during iteration"
                errors.append(error)
    finally:
        done.set()
        worker.join()
    assert errors == []


_TRACED_IMPORT = """
import sys
def tracer(frame, event, arg):
    frame.f_locals  # a debugger's view of the locals: one more reference to each
    return tracer
sys.{hook}(tracer)
from gpubk import buffers
sys.{hook}(None)
print(buffers._ALONE)
"""


@pytest.mark.parametrize("hook", ["settrace", "setprofile"])
def test_the_reference_count_is_calibrated_without_a_tracer(hook):
    """Imported under a trace or profile function that reads each frame's locals, the
    calibration still counts one holder: else a result the caller keeps would look free and be
    written over."""
    code = textwrap.dedent(_TRACED_IMPORT).replace("{hook}", hook)
    traced = subprocess.run([sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=120, check=True)
    assert int(traced.stdout.split()[-1]) == buffers._ALONE


def test_clear_session_drops_the_kept_buffers_and_the_function_still_works(keep_all):
    n = 4096
    x, d = _staged(n)
    f = K.function([x], [d])
    xs = np.full(n, 2.0, np.float32)
    f([xs])
    assert f._workspace.nbytes() >= 2 * 4 * n  # b's buffer and the output's
    K.clear_session()
    assert f._workspace.nbytes() == 0
    np.testing.assert_allclose(f([xs])[0], _staged_numpy(xs), rtol=1e-6)
    assert f._workspace.nbytes() >= 2 * 4 * n


def test_an_update_s_value_gets_no_kept_buffer(keep_all):
    """A variable both returned and updated is not written in place, so its new value is a
    plain fused group: still no kept buffer (the variable takes the array), and the variable's
    value is never written over by a later call."""
    n = 4096
    v = K.variable(np.zeros(n, np.float32))
    x = K.placeholder(shape=(n,))
    new = v * 0.5 + x
    f = K.function([x], [v, x * 2.0 + 1.0], updates=[(v, new)])
    buffered = [step.node for step in f._plan if step.buffer is not None]
    assert len(buffered) == 1 and buffered[0] is not new  # the output's group only
    for step in range(1, 4):
        f([np.ones(n, np.float32)])
        held = K.get_value(v)
        np.testing.assert_allclose(held, np.full(n, 2 - 2.0 ** (1 - step)), rtol=1e-7)
