"""One training step of an MLP 784-512-512-10 (relu, softmax crossentropy, SGD) on a batch of
256 float32, on the CPU: gpubk (K.gradients + K.update_sub) against the same step written by hand
in NumPy, and PyTorch CPU where installed, in one run.

Usage: python bench/mlp_step.py [--steps N]
Target: gpubk within 1.2x of hand-written NumPy.
"""
from __future__ import annotations

import argparse

import numpy as np

import gpubk as K
from timing import time_calls

SIZES = (784, 512, 512, 10)
BATCH = 256
LR = 0.01


def _init(rng):
    weights = [(rng.standard_normal((n, m)) * np.sqrt(2.0 / n)).astype(np.float32)
               for n, m in zip(SIZES[:-1], SIZES[1:])]
    biases = [np.zeros(m, np.float32) for m in SIZES[1:]]
    return weights, biases


def gpubk_step(x, t, params):
    """Forward, loss, K.gradients, SGD update."""
    h = x
    for i in range(0, len(params) - 2, 2):
        h = K.relu(K.dot(h, params[i]) + params[i + 1])
    logits = K.dot(h, params[-2]) + params[-1]
    loss = K.mean(K.categorical_crossentropy(t, K.softmax(logits)))
    for p, g in zip(params, K.gradients(loss, params)):
        K.update_sub(p, LR * g)
    return loss


def numpy_step(x, t, weights, biases):
    """The same step by hand: forward keeping activations, backward, in-place update."""
    acts = [x]
    for w, b in zip(weights[:-1], biases[:-1]):
        acts.append(np.maximum(acts[-1] @ w + b, 0))
    logits = acts[-1] @ weights[-1] + biases[-1]
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -(t * log_p).sum(axis=1).mean()
    grad = (np.exp(log_p) - t) / len(x)
    for i in range(len(weights) - 1, -1, -1):
        gw, gb = acts[i].T @ grad, grad.sum(axis=0)
        if i:
            grad = (grad @ weights[i].T) * (acts[i] > 0)
        weights[i] -= LR * gw
        biases[i] -= LR * gb
    return loss


def torch_step_factory(weights, biases, x, t):
    try:
        import torch
    except ImportError:
        return None
    params = []
    for w, b in zip(weights, biases):
        params += [torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)]
    tx, tt = torch.tensor(x), torch.tensor(t)

    def step():
        h = tx
        for i in range(0, len(params) - 2, 2):
            h = torch.relu(h @ params[i] + params[i + 1])
        logits = h @ params[-2] + params[-1]
        loss = -(tt * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= LR * g
        return loss
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="steps per timing round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    t = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], BATCH)]
    weights, biases = _init(rng)

    with K.device("cpu"):
        params = []
        for w, b in zip(weights, biases):
            params += [K.variable(w), K.variable(b)]
        kx, kt = K.constant(x), K.constant(t)
        np_w, np_b = [w.copy() for w in weights], [b.copy() for b in biases]
        # Same start, same step: the first losses agree.
        first_k = float(gpubk_step(kx, kt, params))
        first_np = numpy_step(x, t, np_w, np_b)
        assert abs(first_k - first_np) < 1e-4 * abs(first_np), (first_k, first_np)

        fns = {"numpy (by hand)": lambda: numpy_step(x, t, np_w, np_b),
               "gpubk": lambda: gpubk_step(kx, kt, params)}
        torch_step = torch_step_factory(weights, biases, x, t)
        if torch_step is not None:
            fns["torch"] = torch_step
        times = time_calls(fns, number=args.steps, repeats=args.rounds)

    base_med, base_best, _ = times["numpy (by hand)"]
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32, one SGD step on the CPU")
    print(f"{'implementation':<18}{'median ms':>11}{'best ms':>10}{'spread':>8}"
          f"{'/ numpy (median)':>18}{'/ numpy (best)':>16}")
    for name, (med, best, spread) in times.items():
        print(f"{name:<18}{med * 1e3:>11.2f}{best * 1e3:>10.2f}{spread:>8.0%}"
              f"{med / base_med:>18.2f}{best / base_best:>16.2f}")


if __name__ == "__main__":
    main()
