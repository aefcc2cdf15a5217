"""Custom kernels, installed as `gpubk.kernels`, one module per op family:

- `softmax`: row softmax and log-softmax, forward and backward;
- `crossentropy`: categorical crossentropy from probabilities, and fused softmax-crossentropy
  from logits, forward and backward;
- `elementwise`: activations and their gradients, whose CUDA kernels and CPU twins are
  generated (`generate.py`) from one scalar formula per activation (`formulas.py`).

Each family module holds the Numba CPU twins used where they beat NumPy, the plain array code
otherwise, and the launchers; its CUDA kernels (for CuPy arrays, or NumPy arrays under the CUDA
simulator) are in `cuda/<family>.py`, imported only when a GPU or the simulator runs them, so
that the CPU path needs no numba-cuda. `audit` compiles those for real GPUs (`gpubk kernels`).
Families load on first use (they import Numba), so `import gpubk` imports and compiles
nothing.
"""
import importlib

_FAMILIES = ("softmax", "crossentropy", "elementwise")


def __getattr__(name: str):
    if name in _FAMILIES:  # first use: import the family (later lookups find the attribute)
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
