"""The kernels on a GPU: softmax and the fused crossentropy from logits, forward and
forward+backward, through gpubk's API, against the same ops composed from CuPy ufuncs, PyTorch
where present, and the device copy bandwidth measured in the same run. CUDA events, after
warm-up; median of repeats. TF32 stays off (no matrix products here).

Usage: python bench/kernels_gpu.py [--quick]   (needs CuPy and a CUDA GPU)
Target: softmax and crossentropy forward+backward at 80% or more of the copy bandwidth, and
faster than the CuPy composition and than PyTorch.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

import formulas as f
import gpubk as K

try:
    import cupy as cp
except ImportError:
    sys.exit("kernels_gpu: CuPy is not installed; nothing to measure")
try:
    import torch
    torch = torch if torch.cuda.is_available() else None
except ImportError:
    torch = None


def gpu_time(fn, number: int, repeats: int) -> float:
    """Median seconds per call, timed with CUDA events on the current stream."""
    for _ in range(3):
        fn()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    runs = []
    for _ in range(repeats):
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        runs.append(cp.cuda.get_elapsed_time(start, end) / 1e3 / number)
    return statistics.median(runs)


def cases(x, t, dy, g):
    kx, kt, kdy, kg = (K.constant(a) for a in (x, t, dy, g))  # copies on the GPU
    n = x.nbytes
    table = [
        ("softmax fwd", 2 * n, {"gpubk": lambda: K.softmax(kx),
                                "cupy": lambda: f.softmax(cp, x)}),
        ("softmax fwd+bwd", 5 * n, {
            "gpubk": lambda: f.gpubk_grad(K.softmax, kx, kdy),
            "cupy": lambda: f.softmax_grad(f.softmax(cp, x), dy)}),
        ("cce logits fwd", 2 * n, {
            "gpubk": lambda: K.categorical_crossentropy(kt, kx, from_logits=True),
            "cupy": lambda: -(t * f.log_softmax(cp, x)).sum(-1)}),
        ("cce logits fwd+bwd", 5 * n, {
            "gpubk": lambda: f.gpubk_grad(
                lambda z: K.categorical_crossentropy(kt, z, from_logits=True), kx, kg),
            "cupy": lambda: f.logits_loss_and_grad(cp, t, x, g)}),
    ]
    if torch is not None:
        tx, tt, tdy, tg = (torch.as_tensor(a, device="cuda") for a in (x, t, dy, g))
        nnf = torch.nn.functional

        def grad(fn, a, d):
            a = a.detach().requires_grad_()
            return torch.autograd.grad(fn(a), a, d)[0]
        impls = [lambda: torch.softmax(tx, -1),
                 lambda: grad(lambda z: torch.softmax(z, -1), tx, tdy),
                 lambda: nnf.cross_entropy(tx, tt, reduction="none"),
                 lambda: grad(lambda z: nnf.cross_entropy(z, tt, reduction="none"), tx, tg)]
        for case, impl in zip(table, impls):
            case[2]["torch"] = impl
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats, number = (5, 5) if args.quick else (9, 20)
    print(f"device: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, "
          f"CuPy {cp.__version__}, torch {torch.__version__ if torch else 'absent'}")
    with K.device("gpu"):
        rng = cp.random.default_rng(0)
        big = rng.standard_normal(1 << 28, dtype=cp.float32)  # 1 GiB
        out = cp.empty_like(big)
        copy_bw = 2 * big.nbytes / gpu_time(lambda: cp.copyto(out, big), 5, repeats)
        del big, out
        print(f"copy bandwidth (device to device, read + write): {copy_bw / 1e9:.0f} GB/s")
        shapes = [(4096, 4096), (65536, 128), (1_000_000, 10)]
        if not args.quick:
            shapes += [(16384, 16384), (1 << 20, 1000)]
        print(f"{'shape':<16}{'op':<20}{'impl':<7}{'us':>10}{'GB/s':>8}{'% copy':>8}"
              f"{'x cupy':>8}{'x torch':>8}")
        for shape in shapes:
            x = rng.standard_normal(shape, dtype=cp.float32)
            t = cp.eye(shape[1], dtype=cp.float32)[rng.integers(0, shape[1], shape[0])]
            dy = rng.standard_normal(shape, dtype=cp.float32)
            g = rng.standard_normal(shape[0], dtype=cp.float32)
            for name, nbytes, impls in cases(x, t, dy, g):
                times = {k: gpu_time(fn, number, repeats) for k, fn in impls.items()}
                for impl, sec in times.items():
                    vs_torch = f"{times['torch'] / sec:>8.2f}" if "torch" in times else ""
                    print(f"{str(shape):<16}{name:<20}{impl:<7}{sec * 1e6:>10.1f}"
                          f"{nbytes / sec / 1e9:>8.0f}{nbytes / sec / copy_bw:>8.0%}"
                          f"{times['cupy'] / sec:>8.2f}{vs_torch}")
            del x, t, dy, g
            cp.get_default_memory_pool().free_all_blocks()
        a = rng.standard_normal(1 << 26, dtype=cp.float32)
        b = rng.standard_normal(1 << 26, dtype=cp.float32)
        add_time = gpu_time(lambda: a + b, number, repeats)
        print(f"binary add through CuPy's ufunc (the GPU path of K.add), 64M floats: "
              f"{3 * a.nbytes / add_time / 1e9:.0f} GB/s, "
              f"{3 * a.nbytes / add_time / copy_bw:.0%} of copy")


if __name__ == "__main__":
    np.random.seed(0)
    main()
