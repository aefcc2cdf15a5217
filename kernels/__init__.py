"""Custom kernels, installed as `gpubk.kernels`: Numba CUDA kernels with their launchers, and
Numba CPU twins where they beat NumPy, one module per op family. Ops fall back to plain array
code (NumPy or CuPy) for any family that has no kernel here yet."""
