"""K.function's plan (plan.py): common subexpressions computed once, shapes known statically
folded to constants, impure nodes (random draws, updates, loops) left alone, and the results
equal to evaluating every node as built (NumPy references)."""
import numpy as np

import gpubk as K


def _notes(f) -> list:
    return [step.note for step in f._plan]


def test_a_common_subexpression_is_computed_once(rng):
    x = K.placeholder(shape=(None, 3))
    w = K.variable(rng.standard_normal((3, 2)))
    a = K.exp(K.dot(x, w))
    b = K.exp(K.dot(x, w))  # the same ops again: merged
    f = K.function([x], [a + b, K.sum(a * b)])
    notes = _notes(f)
    assert notes.count("same as " + a.args[0].name) == 1  # the second dot
    assert notes.count("same as " + a.name) == 1          # the second exp
    xv = rng.standard_normal((4, 3)).astype(np.float32)
    e = np.exp(xv @ K.eval(w))
    got = f([xv])
    np.testing.assert_allclose(got[0], 2 * e, rtol=1e-6)
    np.testing.assert_allclose(got[1], np.sum(e * e), rtol=1e-5)
    text = f.plan()
    assert "2 merged as common subexpressions" in text and f"same as {a.name}" in text


def test_params_tell_nodes_apart_and_slices_compare(rng):
    x = K.placeholder(shape=(None, 4))
    outs = [K.sum(x, axis=0), K.sum(x, axis=1), x[:, 1:3], x[:, 1:3], x[:, 0:2]]
    f = K.function([x], outs)
    assert sum(n.startswith("same as") for n in _notes(f)) == 1  # only the repeated slice
    xv = rng.standard_normal((2, 4)).astype(np.float32)
    for got, want in zip(f([xv]), [xv.sum(0), xv.sum(1), xv[:, 1:3], xv[:, 1:3], xv[:, 0:2]]):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_shapes_known_statically_are_folded():
    x = K.placeholder(shape=(2, 3))
    y = K.placeholder(shape=(None, 3))
    size = K.cast(K.prod(K.shape(x)), "float32")  # 6, known when the function is made
    f = K.function([x, y], [K.sum(x) / size, K.shape(y)])
    notes = _notes(f)
    assert notes.count("folded") == 3  # shape(x), prod, cast
    got = f([np.full((2, 3), 3.0, np.float32), np.zeros((5, 3), np.float32)])
    np.testing.assert_allclose(got[0], 3.0)
    np.testing.assert_array_equal(got[1], [5, 3])  # y's batch is known only when fed


def test_random_draws_updates_and_loops_are_never_merged_or_folded():
    x = K.placeholder(shape=(2,))
    a, b = K.random_uniform((2,), seed=1), K.random_uniform((2,), seed=1)
    v = K.variable(np.zeros(2))
    f = K.function([x], [x + a, x + b], updates=[K.update_add(v, x), K.update_add(v, x)])
    assert not any(_notes(f))
    first, second = f([np.zeros(2, np.float32)])
    np.testing.assert_array_equal(first, second)  # the same seed: the same stream of draws
    np.testing.assert_array_equal(K.eval(v), [0.0, 0.0])  # x was 0
    f([np.ones(2, np.float32)])
    np.testing.assert_array_equal(K.eval(v), [2.0, 2.0])  # both updates ran
    redraw = f([np.zeros(2, np.float32)])
    assert not np.array_equal(redraw[0], first)  # a new draw per call
