"""Timers: `perf_counter` on the CPU, CUDA events on the GPU; median of repeats, and spread."""
from __future__ import annotations

import statistics
import time

TARGET_ROUND_S = 0.02  # calls per round are chosen so that a round lasts about this long


def _calls_per_round(fn, sync) -> int:
    start = time.perf_counter()
    fn()
    sync()
    once = time.perf_counter() - start
    return max(1, min(10_000, int(TARGET_ROUND_S / max(once, 1e-7))))


def measure(fn, repeats: int, gpu=None) -> tuple[float, float]:
    """(median seconds per call, spread = (max - min) / median) over `repeats` rounds.

    With `gpu` (the CuPy module), each round is bracketed by CUDA events on the current stream
    (after the device has finished the warm-up), so asynchronous launches are timed fully."""
    sync = gpu.cuda.Device().synchronize if gpu is not None else (lambda: None)
    fn()  # warm-up: compiles, caches, allocates
    sync()
    number = _calls_per_round(fn, sync)
    runs = []
    for _ in range(repeats):
        if gpu is None:
            start = time.perf_counter()
            for _ in range(number):
                fn()
            runs.append((time.perf_counter() - start) / number)
        else:
            begin, end = gpu.cuda.Event(), gpu.cuda.Event()
            begin.record()
            for _ in range(number):
                fn()
            end.record()
            end.synchronize()
            runs.append(gpu.cuda.get_elapsed_time(begin, end) / 1e3 / number)
    median = statistics.median(runs)
    return median, (max(runs) - min(runs)) / median if median > 0 else 0.0
