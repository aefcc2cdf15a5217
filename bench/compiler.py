"""K.function's compiler against eager gpubk, raw NumPy and (where installed) PyTorch eager:
`python bench/compiler.py [--device cpu]`.

1. A 22-op graph on batch-8 tensors (three dense layers, a softmax crossentropy, an L2 penalty
   and a squared error), called 2,000 times: per call, compiled against the same ops in raw
   NumPy and eagerly in gpubk (targets: within 1.5x of NumPy, at least 2x faster than eager).
2. A 7-op elementwise chain over 16M float32: compiled (one fused kernel) against NumPy,
   PyTorch and a copy of the input (targets: 12x NumPy, 70% of the copy's bandwidth, faster
   than PyTorch). The caller drops each result, so the compiled call writes into the buffer it
   kept from the call before (gpubk/buffers.py; also timed writing a new array each call); a
   copy into a new array and into an existing one show both floors.
3. An SGD step of an MLP 784-512-512-10 on a batch of 256, compiled with placeholders and
   updates against the eager step and PyTorch's (targets: no slower than eager, within 1.05x
   of PyTorch).

Fastest of repeated runs; compare the ratios (one run, one machine), not times across runs.
On a GPU (`--device gpu`) the functions are fed device tensors and return NumPy arrays, as
K.function does (the chain's 64 MB output crosses PCIe); NumPy and PyTorch stay on the CPU.
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np

import gpubk as K
from gpubk import buffers

try:
    import torch
except ImportError:  # optional: its rows say so
    torch = None


def fed(array):
    """What a function is fed: the array itself on the host, a tensor on another device (so
    that a call does not copy its inputs over PCIe)."""
    return array if K.get_device() == "cpu" else K.constant(array, dtype=array.dtype)


def best(fn, number: int, repeat: int = 7) -> float:
    """Seconds per call: the fastest of `repeat` runs of `number` calls."""
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


# -- 1: the 22-op graph --------------------------------------------------------------------------
SIZES = (16, 32, 32, 4)


def weights(rng) -> list:
    """w1, b1, w2, b2, w3, b3 of the 22-op graph, float32."""
    out = []
    for n, m in zip(SIZES[:-1], SIZES[1:]):
        out += [(rng.standard_normal((n, m)) / np.sqrt(n)).astype(np.float32),
                (rng.standard_normal(m) * 0.1).astype(np.float32)]
    return out


def graph_22(x, t, w1, b1, w2, b2, w3, b3):
    """22 ops with gpubk: dot, add, relu; dot, add, tanh; dot, add, softmax; crossentropy,
    mean; square, sum, square, sum, add, multiply; subtract, square, mean; add, add."""
    h1 = K.relu(K.dot(x, w1) + b1)
    h2 = K.tanh(K.dot(h1, w2) + b2)
    y = K.softmax(K.dot(h2, w3) + b3)
    ce = K.mean(K.categorical_crossentropy(t, y))
    reg = (K.sum(K.square(w1)) + K.sum(K.square(w2))) * 1e-3
    se = K.mean(K.square(y - t))
    return ce + reg + se


def graph_22_numpy(x, t, w1, b1, w2, b2, w3, b3):
    """The same 22 ops in raw NumPy, as one would write them (softmax and the crossentropy
    from the logits, as Keras computes a crossentropy of a softmax)."""
    h1 = np.maximum(x @ w1 + b1, 0)
    h2 = np.tanh(h1 @ w2 + b2)
    z = h2 @ w3 + b3
    shifted = z - z.max(-1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(-1, keepdims=True)
    y = e / total
    ce = np.mean(np.sum(t * (np.log(total) - shifted), -1))
    reg = (np.sum(np.square(w1)) + np.sum(np.square(w2))) * np.float32(1e-3)
    se = np.mean(np.square(y - t))
    return ce + reg + se


def small_graph(rng) -> None:
    batch = 8
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    t = np.eye(SIZES[-1], dtype=np.float32)[np.arange(batch) % SIZES[-1]]
    ws = weights(rng)
    variables = [K.variable(w) for w in ws]
    xp, tp = K.placeholder(shape=(None, SIZES[0])), K.placeholder(shape=(None, SIZES[-1]))
    f = K.function([xp, tp], graph_22(xp, tp, *variables))
    K.clear_session()
    kx, kt = K.constant(x), K.constant(t)
    want = graph_22_numpy(x, t, *ws)
    got, eager_value = f([x, t]), K.eval(graph_22(kx, kt, *variables))
    np.testing.assert_allclose([got, eager_value], [want, want], rtol=1e-5)
    feeds = [fed(x), fed(t)]
    compiled = best(lambda: f(feeds), 2000)
    numpy_time = best(lambda: graph_22_numpy(x, t, *ws), 2000)
    eager = best(lambda: graph_22(kx, kt, *variables), 500)
    print(f"22-op graph, batch 8 (us per call): compiled {compiled * 1e6:.1f}, raw NumPy "
          f"{numpy_time * 1e6:.1f}, eager gpubk {eager * 1e6:.1f}")
    print(f"  compiled / NumPy {compiled / numpy_time:.2f}x (target <= 1.5x); eager / compiled "
          f"{eager / compiled:.2f}x (target >= 2x)")


# -- 2: the 7-op chain ---------------------------------------------------------------------------
def chain(x):
    return ((x * 2.0 + 1.0) * x - 3.0) / (x * x + 1.0)


def long_chain(rng) -> None:
    x = K.placeholder(shape=(None,), dtype="float32")
    f = K.function([x], chain(x))
    K.clear_session()
    big = rng.standard_normal(1 << 24).astype(np.float32)
    feeds = [fed(big)]
    np.testing.assert_allclose(f(feeds), chain(big), rtol=1e-5, atol=1e-6)
    compiled = best(lambda: f(feeds), 5, 5)
    unkept = ""
    if K.get_device() == "cpu":  # the same call writing a new array each time
        kept_from, buffers.HOST_MIN_BYTES = buffers.HOST_MIN_BYTES, float("inf")
        try:
            unkept = f" (into a new array each call {best(lambda: f(feeds), 5, 5) * 1e3:.2f})"
        finally:
            buffers.HOST_MIN_BYTES = kept_from
    numpy_time = best(lambda: chain(big), 3, 5)
    copy = best(big.copy, 5, 5)
    kept = np.empty_like(big)
    copy_into = best(lambda: np.copyto(kept, big), 5, 5)
    line = (f"7-op chain, 16M float32 (ms): compiled {compiled * 1e3:.2f}{unkept}, NumPy "
            f"{numpy_time * 1e3:.2f}, copy {copy * 1e3:.2f} (into an existing array "
            f"{copy_into * 1e3:.2f})")
    if torch is not None:
        tx = torch.from_numpy(big)
        torch_time = best(lambda: chain(tx), 3, 5)
        line += f", PyTorch {torch_time * 1e3:.2f}"
    print(line)
    tail = (f"  NumPy / compiled {numpy_time / compiled:.1f}x (target >= 12x); "
            f"{copy / compiled:.0%} of the copy's bandwidth (target >= 70%), "
            f"{copy_into / compiled:.0%} of the copy into an existing array")
    if torch is not None:
        tail += f"; PyTorch / compiled {torch_time / compiled:.2f}x (target > 1)"
    print(tail + ("" if torch is not None else "; PyTorch not installed"))


# -- 3: the MLP step -----------------------------------------------------------------------------
MLP = (784, 512, 512, 10)


def mlp_loss(x, t, params):
    h = x
    for w in params[:-1]:
        h = K.relu(K.dot(h, w))
    return K.mean(K.categorical_crossentropy(t, K.softmax(K.dot(h, params[-1]))))


def mlp_step(rng, batch: int = 256, lr: float = 0.01) -> None:
    x = rng.standard_normal((batch, MLP[0])).astype(np.float32)
    t = np.eye(MLP[-1], dtype=np.float32)[rng.integers(0, MLP[-1], batch)]
    ws = [(rng.standard_normal((n, m)) * np.sqrt(2.0 / n)).astype(np.float32)
          for n, m in zip(MLP[:-1], MLP[1:])]
    compiled_params = [K.variable(w) for w in ws]
    xp, tp = K.placeholder(shape=(None, MLP[0])), K.placeholder(shape=(None, MLP[-1]))
    loss = mlp_loss(xp, tp, compiled_params)
    step = K.function([xp, tp], [loss], updates=[
        (p, p - lr * g) for p, g in zip(compiled_params, K.gradients(loss, compiled_params))])
    K.clear_session()
    eager_params = [K.variable(w) for w in ws]
    kx, kt = K.constant(x), K.constant(t)

    def eager_step():
        value = mlp_loss(kx, kt, eager_params)
        for p, g in zip(eager_params, K.gradients(value, eager_params)):
            K.update_sub(p, lr * g)
    # one step each from the same weights agrees before timing
    step([x, t])
    eager_step()
    for a, b in zip(compiled_params, eager_params):
        np.testing.assert_allclose(K.get_value(a), K.get_value(b), rtol=1e-4, atol=1e-6)
    feeds = [fed(x), fed(t)]
    compiled = best(lambda: step(feeds), 20)
    eager = best(eager_step, 20)
    line = f"MLP 784-512-512-10 SGD step, batch {batch} (ms): compiled {compiled * 1e3:.2f}, " \
           f"eager {eager * 1e3:.2f}"
    tail = f"  eager / compiled {eager / compiled:.2f}x (target >= 1)"
    if torch is not None:
        tws = [torch.tensor(w, requires_grad=True) for w in ws]
        tx, labels = torch.from_numpy(x), torch.from_numpy(t.argmax(-1))

        def torch_step():
            h = tx
            for w in tws[:-1]:
                h = torch.relu(h @ w)
            value = torch.nn.functional.cross_entropy(h @ tws[-1], labels)
            grads = torch.autograd.grad(value, tws)
            with torch.no_grad():
                for w, g in zip(tws, grads):
                    w -= lr * g
        torch_time = best(torch_step, 20)
        line += f", PyTorch {torch_time * 1e3:.2f}"
        tail += f"; compiled / PyTorch {compiled / torch_time:.2f}x (target <= 1.05x)"
    print(line)
    print(tail + ("" if torch is not None else "; PyTorch not installed"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="a gpubk device (default: gpubk's)")
    parser.add_argument("--only", default="graph,chain,mlp",
                        help="comma-separated: graph, chain, mlp")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = {"graph": small_graph, "chain": long_chain, "mlp": mlp_step}
    with K.device(args.device or K.get_device()):
        for name in args.only.split(","):
            cases[name](rng)
    if torch is not None:
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
