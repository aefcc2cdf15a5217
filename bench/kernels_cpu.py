"""Softmax, log-softmax, crossentropy (from probabilities and from logits) and activations on the
CPU, forward and forward+backward, through gpubk's public API: against naive NumPy, PyTorch CPU
where installed, and the copy bandwidth measured in the same run.

Usage: python bench/kernels_cpu.py [--quick]
Targets: at least 5x naive NumPy, faster than PyTorch, at least 50% of copy bandwidth (gpubk's
own output allocations included) for the row ops on (4096, 4096) and (65536, 128) float32; an
activation over 16M floats at least as fast as NumPy.
"""
from __future__ import annotations

import argparse

import numpy as np

import gpubk as K
import formulas as f
from timing import time_calls

try:
    import torch
except ImportError:
    torch = None


def _np_probs_loss(t, p, eps=np.float32(1e-7)):
    q = np.clip(p / p.sum(axis=-1, keepdims=True), eps, 1 - eps)
    return -(t * np.log(q)).sum(axis=-1)


def _np_probs_grad(t, p, g, eps=np.float32(1e-7)):
    total = p.sum(axis=-1, keepdims=True)
    q = p / total
    inside = (q >= eps) & (q <= 1 - eps)
    a = np.where(inside, -t / q, 0)
    return g[:, None] * (a - (a * q).sum(axis=-1, keepdims=True)) / total


def _torch_grad(fn, x, dy):
    x = x.detach().requires_grad_()
    return torch.autograd.grad(fn(x), x, dy)[0]


def row_cases(x, t, dy, g):
    """(name, bytes moved, {implementation: callable}) for the row ops on x (rows, classes)."""
    kx, kt, kdy, kg = K.constant(x), K.constant(t), K.constant(dy), K.constant(g)
    p = np.abs(x) + np.float32(0.1)
    kp = K.constant(p)
    n = x.nbytes
    cases = [
        ("softmax fwd", 2 * n, {
            "gpubk": lambda: K.softmax(kx),
            "numpy": lambda: f.softmax(np, x)}),
        ("softmax fwd+bwd", 5 * n, {
            "gpubk": lambda: f.gpubk_grad(K.softmax, kx, kdy),
            "numpy": lambda: f.softmax_grad(f.softmax(np, x), dy)}),
        ("log_softmax fwd", 2 * n, {
            "gpubk": lambda: K.log_softmax(kx),
            "numpy": lambda: f.log_softmax(np, x)}),
        ("log_softmax fwd+bwd", 5 * n, {
            "gpubk": lambda: f.gpubk_grad(K.log_softmax, kx, kdy),
            "numpy": lambda: (lambda y: dy - np.exp(y) * dy.sum(-1, keepdims=True))(
                f.log_softmax(np, x))}),
        ("cce probs fwd", 2 * n, {
            "gpubk": lambda: K.categorical_crossentropy(kt, kp),
            "numpy": lambda: _np_probs_loss(t, p)}),
        ("cce probs fwd+bwd", 5 * n, {
            "gpubk": lambda: f.gpubk_grad(lambda q: K.categorical_crossentropy(kt, q), kp, kg),
            "numpy": lambda: (_np_probs_loss(t, p), _np_probs_grad(t, p, g))}),
        ("cce logits fwd", 2 * n, {
            "gpubk": lambda: K.categorical_crossentropy(kt, kx, from_logits=True),
            "numpy": lambda: -(t * f.log_softmax(np, x)).sum(-1)}),
        ("cce logits fwd+bwd", 5 * n, {
            "gpubk": lambda: f.gpubk_grad(
                lambda z: K.categorical_crossentropy(kt, z, from_logits=True), kx, kg),
            "numpy": lambda: f.logits_loss_and_grad(np, t, x, g)}),
    ]
    if torch is not None:
        tx, tt, tdy, tg, tp = (torch.from_numpy(a) for a in (x, t, dy, g, p))
        nnf = torch.nn.functional
        torch_impls = [
            lambda: torch.softmax(tx, -1),
            lambda: _torch_grad(lambda z: torch.softmax(z, -1), tx, tdy),
            lambda: torch.log_softmax(tx, -1),
            lambda: _torch_grad(lambda z: torch.log_softmax(z, -1), tx, tdy),
            lambda: -(tt * torch.log(torch.clamp(tp / tp.sum(-1, keepdim=True), 1e-7,
                                                 1 - 1e-7))).sum(-1),
            lambda: _torch_grad(lambda q: -(tt * torch.log(torch.clamp(
                q / q.sum(-1, keepdim=True), 1e-7, 1 - 1e-7))).sum(-1), tp, tg),
            lambda: nnf.cross_entropy(tx, tt, reduction="none"),
            lambda: _torch_grad(lambda z: nnf.cross_entropy(z, tt, reduction="none"), tx, tg),
        ]
        for case, impl in zip(cases, torch_impls):
            case[2]["torch"] = impl
    return cases


def activation_cases(x):
    kx = K.constant(x)
    cases = [("sigmoid fwd", 2 * x.nbytes, {"gpubk": lambda: K.sigmoid(kx),
                                            "numpy": lambda: 1 / (1 + np.exp(-x))}),
             ("relu fwd", 2 * x.nbytes, {"gpubk": lambda: K.relu(kx),
                                         "numpy": lambda: np.maximum(x, 0)}),
             ("elu fwd", 2 * x.nbytes, {"gpubk": lambda: K.elu(kx),
                                        "numpy": lambda: np.where(x > 0, x, np.expm1(x))})]
    if torch is not None:
        tx = torch.from_numpy(x)
        for case, impl in zip(cases, [lambda: torch.sigmoid(tx), lambda: torch.relu(tx),
                                      lambda: torch.nn.functional.elu(tx)]):
            case[2]["torch"] = impl
    return cases


def report(title, x, cases, rounds):
    out = np.empty_like(x)
    copies = time_calls({"copyto": lambda: np.copyto(out, x), "copy": lambda: x.copy()},
                        number=1, repeats=rounds)
    copy_bw = 2 * x.nbytes / copies["copyto"][0]
    alloc_bw = 2 * x.nbytes / copies["copy"][0]
    print(f"\n{title}: copy {copy_bw / 1e9:.1f} GB/s into an existing array, "
          f"{alloc_bw / 1e9:.1f} GB/s into a new one (median of {rounds})")
    print(f"{'op':<22}{'impl':<7}{'median ms':>10}{'spread':>8}{'GB/s':>7}{'% copy':>8}"
          f"{'x numpy':>9}{'x torch':>9}")
    for name, nbytes, impls in cases:
        times = time_calls(impls, number=1, repeats=rounds)
        for impl, (median, _, spread) in times.items():
            vs_torch = f"{times['torch'][0] / median:>9.2f}" if "torch" in times else ""
            print(f"{name:<22}{impl:<7}{median * 1e3:>10.2f}{spread:>8.0%}"
                  f"{nbytes / median / 1e9:>7.1f}{nbytes / median / copy_bw:>8.0%}"
                  f"{times['numpy'][0] / median:>9.2f}{vs_torch}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller sizes")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    rng = np.random.default_rng(0)
    shapes = [(1024, 1024), (8192, 128)] if args.quick else [(4096, 4096), (65536, 128)]
    with K.device("cpu"):
        for shape in shapes:
            x = rng.standard_normal(shape).astype(np.float32)
            t = np.eye(shape[1], dtype=np.float32)[rng.integers(0, shape[1], shape[0])]
            dy = rng.standard_normal(shape).astype(np.float32)
            g = rng.standard_normal(shape[0]).astype(np.float32)
            K.softmax(K.constant(x))  # first call compiles (or loads the cached kernels)
            report(f"{shape} float32", x, row_cases(x, t, dy, g), rounds)
        x = rng.standard_normal(1 << 22 if args.quick else 1 << 24).astype(np.float32)
        report(f"{x.size} float32 elements", x, activation_cases(x), rounds)


if __name__ == "__main__":
    main()
