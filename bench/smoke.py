"""A one-minute check that each kernel family runs on a device and agrees with NumPy: the first
stage of bench/gpu_check.sh, so that a lent GPU's minutes are not spent benchmarking a kernel
that does not compile or computes garbage.

    python3 -m gpubk.bench.smoke [--device gpu]

Prints one line per check (max relative error against a float64 NumPy reference) and exits 1
if any check fails. Runs on any device (cpu, sim, gpu): the tests run it on cpu and sim.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import gpubk as K

from . import formulas as f

CLASSES = 33  # more than a warp, not a power of two


def _checks(rng, rows: int) -> list:
    """(name, gpubk computation, float64 reference) for each kernel family, forward and
    backward, on float32 inputs."""
    x = rng.standard_normal((rows, CLASSES))
    t = np.eye(CLASSES)[rng.integers(0, CLASSES, rows)]
    p = np.abs(x) + 0.1

    def grad(fn, a):
        v = K.variable(a, dtype="float32")
        return K.gradients(K.sum(fn(v)), [v])[0]

    def loss_grad(reference, a):
        eps = 1e-6
        return np.array([[(reference(a + eps * e.reshape(a.shape)) -
                           reference(a - eps * e.reshape(a.shape))).sum() / (2 * eps)
                          for e in np.eye(a.size)]]).reshape(a.shape)

    target = K.constant(t, dtype="float32")
    small = x[:4, :5]  # finite differences of the loss references: a small block is enough
    return [
        ("softmax", lambda: K.softmax(K.constant(x, dtype="float32")), f.softmax(np, x)),
        ("softmax grad", lambda: grad(lambda v: K.softmax(v) * K.constant(x, "float32"), x),
         f.softmax_grad(f.softmax(np, x), x)),
        ("log_softmax", lambda: K.log_softmax(K.constant(x, dtype="float32")),
         f.log_softmax(np, x)),
        ("crossentropy from probabilities",
         lambda: K.categorical_crossentropy(target, K.constant(p, dtype="float32")),
         f.probs_loss(np, t, p)),
        ("crossentropy from logits",
         lambda: K.categorical_crossentropy(target, K.constant(x, dtype="float32"), True),
         f.logits_loss(np, t, x)),
        ("crossentropy from logits grad",
         lambda: grad(lambda v: K.categorical_crossentropy(
             K.constant(t[:4, :5], "float32"), v, True), small),
         loss_grad(lambda z: f.logits_loss(np, t[:4, :5], z), small)),
        ("sigmoid", lambda: K.sigmoid(K.constant(x, dtype="float32")), 1 / (1 + np.exp(-x))),
        ("elu grad", lambda: grad(K.elu, x), np.where(x > 0, 1.0, np.exp(x))),
        ("relu grad", lambda: grad(K.relu, x), (x > 0) * 1.0),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m gpubk.bench.smoke",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, sim, gpu or gpu:N")
    parser.add_argument("--rows", type=int, default=64, help="rows of the inputs (>= 4)")
    args = parser.parse_args(argv)
    failed = 0
    with K.device(args.device or K.get_device()):
        print(f"smoke: device {K.get_device()}, float32 inputs of shape "
              f"({args.rows}, {CLASSES})")
        for name, compute, want in _checks(np.random.default_rng(0), args.rows):
            start = time.perf_counter()
            try:
                got = K.eval(compute()).astype(np.float64)
                error = float(np.max(np.abs(got - want) / (np.abs(want) + 1e-3)))
                ok = got.shape == want.shape and error < 1e-4
                detail = f"max relative error {error:.1e}"
            except Exception as err:  # a kernel that fails to compile is a finding
                ok, detail = False, f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
            failed += not ok
            print(f"  {'ok  ' if ok else 'FAIL'} {name:<34} {detail} "
                  f"({time.perf_counter() - start:.2f} s)")
    print(f"smoke: {failed} failure(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
