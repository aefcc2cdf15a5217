"""Timing helpers shared by the benchmarks: median of repeats, with the spread.

Implementations are timed interleaved (one run of each per round), so that the slow drifts of a
shared machine hit them alike and their ratio stays meaningful."""
from __future__ import annotations

import statistics
import time


def time_calls(fns: dict, number: int, repeats: int = 9) -> dict:
    """For each named `fn()`: (median, best) seconds per call over `repeats` rounds of `number`
    calls, and the spread (max - min) / median over the rounds.

    On a shared virtual machine the best round is the steadier estimate of what a call costs
    for calls of a few microseconds (noise only ever adds time); report both."""
    for fn in fns.values():
        fn()  # warm-up
    runs = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            runs[name].append((time.perf_counter() - start) / number)
    result = {}
    for name, times in runs.items():
        median = statistics.median(times)
        result[name] = (median, min(times), (max(times) - min(times)) / median)
    return result
