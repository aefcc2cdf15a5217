"""Dispatch overhead on tiny tensors: gpubk against NumPy in one run (CPU).

Usage: python bench/dispatch.py
Small models are decided by what each op costs beyond its arithmetic; the target is at most
1.5 us per gpubk op that records nothing.
"""
from __future__ import annotations

import numpy as np

import gpubk as K
from timing import time_calls


def _numpy_softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _torch_cases():
    """PyTorch CPU's own figures for the same calls, when it is installed."""
    try:
        import torch
    except ImportError:
        return None
    a, m, s = torch.ones(4), torch.ones((4, 4)), torch.ones((2, 4))
    return [lambda: a + a, lambda: m @ m, lambda: torch.softmax(s, dim=-1)]


def main() -> None:
    with K.device("cpu"):
        a, b = np.ones(4, np.float32), np.ones(4, np.float32)
        m, n = np.ones((4, 4), np.float32), np.ones((4, 4), np.float32)
        s = np.ones((2, 4), np.float32)
        x, y = K.constant(a), K.constant(b)
        mx, my, sx = K.constant(m), K.constant(n), K.constant(s)
        cases = [
            ("x + y, shape (4,)", lambda: a + b, lambda: x + y),
            ("K.dot, (4, 4) x (4, 4)", lambda: m @ n, lambda: K.dot(mx, my)),
            ("K.softmax, (2, 4)", lambda: _numpy_softmax(s), lambda: K.softmax(sx)),
        ]
        torch_cases = _torch_cases() or [None] * len(cases)
        print("microseconds per call: best round (median round); overhead = gpubk - numpy")
        print(f"{'op':<26}{'numpy':>16}{'gpubk':>16}{'overhead':>18}{'torch':>16}")
        for (name, ref, ours), torch_fn in zip(cases, torch_cases):
            fns = {"numpy": ref, "gpubk": ours}
            if torch_fn is not None:
                fns["torch"] = torch_fn
            times = time_calls(fns, number=20_000)
            (np_med, np_best, _), (k_med, k_best, _) = times["numpy"], times["gpubk"]
            line = (f"{name:<26}{np_best * 1e6:>8.2f} ({np_med * 1e6:5.2f})"
                    f"{k_best * 1e6:>8.2f} ({k_med * 1e6:5.2f})"
                    f"{(k_best - np_best) * 1e6:>10.2f} ({(k_med - np_med) * 1e6:5.2f})")
            if "torch" in times:
                t_med, t_best, _ = times["torch"]
                line += f"{t_best * 1e6:>8.2f} ({t_med * 1e6:5.2f})"
            print(line)


if __name__ == "__main__":
    main()
