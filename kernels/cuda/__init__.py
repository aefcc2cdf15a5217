"""The CUDA kernels of each family (`softmax`, `crossentropy`, `elementwise`) and what they share
(`blocks`). Imported only when a GPU or the simulator runs them (`launch.cuda_family`), so that
gpubk's CPU path needs no numba-cuda."""
from numba.cuda.extending import overload

from ..precision import _like_typed, like

overload(like, target="cuda")(_like_typed)  # typed constants in the CUDA kernels too
