"""Fusion in K.function, CPU: `python bench/fusion.py`.

A chain of 7 elementwise ops, `((x * 2 + 1) * x - 3) / (x * x + 1)`, compiled with K.function:
fused (one generated loop) against unfused (the same plan with fusion off), NumPy eager, and a
copy of the input (the memory-bandwidth ceiling), over 16M float32; then fused against unfused
over sizes from 1K to 1M elements, where fusion starts to pay (fuse.MIN_SIZE). Fastest of
repeated runs, in milliseconds; compare the ratios, not times across runs."""
import timeit

import numpy as np

import gpubk as K
from gpubk import fuse


def best(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e3


def chain(x):
    return ((x * 2.0 + 1.0) * x - 3.0) / (x * x + 1.0)


def main() -> None:
    x = K.placeholder(shape=(None,), dtype="float32")
    f = K.function([x], [chain(x)])
    big = np.random.default_rng(0).standard_normal(1 << 24).astype(np.float32)
    f([big])  # compiles the loop
    fused = best(lambda: f([big]), 5)
    limit, fuse.MIN_SIZE = fuse.MIN_SIZE, 1 << 60
    unfused = best(lambda: f([big]), 5)
    fuse.MIN_SIZE = limit
    numpy = best(lambda: chain(big), 5)
    copy = best(big.copy, 5)
    print(f"7-op chain, 16M float32: fused {fused:.2f} ms, unfused {unfused:.2f} ms, "
          f"NumPy {numpy:.2f} ms, copy {copy:.2f} ms")
    print(f"  fused vs NumPy {numpy / fused:.1f}x, vs unfused {unfused / fused:.1f}x, "
          f"{copy / fused:.0%} of the copy's bandwidth")
    print(f"{'elements':>10} {'fused ms':>9} {'unfused ms':>11} {'unfused/fused':>14}")
    for size in [1 << k for k in range(10, 21, 2)]:
        small = big[:size].copy()
        fuse.MIN_SIZE = 0
        a = best(lambda: f([small]), 200)
        fuse.MIN_SIZE = 1 << 60
        b = best(lambda: f([small]), 200)
        print(f"{size:10} {a:9.4f} {b:11.4f} {b / a:14.2f}")
    fuse.MIN_SIZE = limit


if __name__ == "__main__":
    main()
