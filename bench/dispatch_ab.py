"""Eager dispatch and K.function calls of two checkouts, A/B: `python bench/dispatch_ab.py BASE NEW`.

BASE and NEW are repository roots (e.g. `git worktree add /tmp/base <commit>`, then link
`/tmp/base/gpubk/kernels` to `/tmp/base/kernels` so that the checkout imports its own kernels).
Each runs in its own process, alternating three times in one time window; the table shows the
fastest of 7 repeats per case, in microseconds, and NEW/BASE. On a shared machine, compare the
ratio column, not times across runs."""
import json
import subprocess
import sys
import tempfile

CODE = r'''
import sys, timeit, json, numpy as np
sys.path.insert(0, sys.argv[1])
import gpubk as K
assert K.__file__.startswith(sys.argv[1]), K.__file__
x = K.constant(np.ones(4, np.float32)); y = K.constant(np.ones(4, np.float32))
w = K.variable(np.ones((4, 4), np.float32))
a = np.ones(4, np.float32); b = np.ones(4, np.float32)
def t(f, n=50000): return min(timeit.repeat(f, number=n, repeat=7)) / n * 1e6
out = {"numpy a+b": t(lambda: a + b), "x + y": t(lambda: x + y), "x * 2.0": t(lambda: x * 2.0),
       "K.exp": t(lambda: K.exp(x)), "K.sum": t(lambda: K.sum(x)), "K.relu": t(lambda: K.relu(x)),
       "K.softmax": t(lambda: K.softmax(K.reshape(x, (2, 2))), 20000),
       "dense gradient": t(lambda: K.gradients(K.sum(K.dot(K.reshape(x, (1, 4)), w)), [w]), 5000)}
p = K.placeholder(shape=(None, 4))
f = K.function([p], [K.sum(K.relu(K.dot(p, w) * 2.0 + 1.0)), K.softmax(K.dot(p, w))])
feed = [np.ones((8, 4), np.float32)]
out["K.function call"] = t(lambda: f(feed), 5000)
# A compiled training step: an MLP 32-64-10 with symbolic gradients and SGD updates.
rng = np.random.default_rng(0)
xs, ys = K.placeholder(shape=(None, 32)), K.placeholder(shape=(None, 10))
w1 = K.variable(rng.standard_normal((32, 64)) * 0.1)
w2 = K.variable(rng.standard_normal((64, 10)) * 0.1)
loss = K.mean(K.categorical_crossentropy(ys, K.softmax(K.dot(K.relu(K.dot(xs, w1)), w2))))
g1, g2 = K.gradients(loss, [w1, w2])
step = K.function([xs, ys], [loss], updates=[(w1, w1 - 0.01 * g1), (w2, w2 - 0.01 * g2)])
batch = [rng.standard_normal((16, 32)).astype(np.float32),
         np.eye(10, dtype=np.float32)[np.arange(16) % 10]]
out["training step"] = t(lambda: step(batch), 1000)
# The same for a recurrent model: K.rnn over 8 steps of unknown length, tanh cell of 16 units.
seq = K.placeholder(shape=(None, None, 8))
wx, wh = K.variable(rng.standard_normal((8, 16)) * 0.3), K.variable(rng.standard_normal((16, 16)) * 0.3)
def cell(x_t, states):
    h = K.tanh(K.dot(x_t, wx) + K.dot(states[0], wh))
    return h, [h]
last, _, _ = K.rnn(cell, seq, [K.zeros((K.shape(seq)[0], 16))])
rnn_loss = K.mean(K.square(last))
gx, gh = K.gradients(rnn_loss, [wx, wh])
rnn_step = K.function([seq], [rnn_loss], updates=[(wx, wx - 0.01 * gx), (wh, wh - 0.01 * gh)])
seq_batch = [rng.standard_normal((16, 8, 8)).astype(np.float32)]
out["rnn training step"] = t(lambda: rnn_step(seq_batch), 200)
print(json.dumps(out))
'''
def run(root: str) -> dict:
    """The timings of one checkout, in a process of its own (outside any checkout)."""
    result = subprocess.run([sys.executable, "-c", CODE, root], capture_output=True, text=True,
                            cwd=tempfile.gettempdir())
    if result.returncode:
        raise SystemExit(f"{root}: {result.stderr[-2000:]}")
    return json.loads(result.stdout)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.splitlines()[0])
    base, new = sys.argv[1], sys.argv[2]
    rows = {}
    for i in range(3):
        for name, root in (("base", base), ("new", new)):
            for k, v in run(root).items():
                rows.setdefault(k, {}).setdefault(name, []).append(v)
    print(f"{'case':18} {'base us':>9} {'new us':>9} {'new/base':>9}")
    for k, d in rows.items():
        b, n = min(d["base"]), min(d["new"])
        print(f"{k:18} {b:9.2f} {n:9.2f} {n / b:9.2f}")


if __name__ == "__main__":
    main()
