# gpubk on an NVIDIA GPU:
#   docker build -t gpubk . && docker run --gpus all gpubk
# trains the demo on the GPU; `docker run --gpus all gpubk gpubk bench --quick --device gpu`
# benchmarks the kernels, and `docker run --gpus all gpubk gpubk info` reports the device.
#
# The CUDA runtime image has no libNVVM, which Numba needs to compile the kernels: the `cuda12`
# extra brings it (numba-cuda[cu12]: libNVVM, NVRTC and nvJitLink from pip) with CuPy. The pins
# satisfy pyproject.toml's ranges and resolve together (pip, Python 3.12, manylinux wheels).
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.12.* python3-pip=24.* \
    && rm -rf /var/lib/apt/lists/*

# Pinned dependencies first (a layer that survives code changes), then gpubk itself.
RUN python3 -m pip install --no-cache-dir --break-system-packages \
    numpy==2.4.6 numba==0.68.1 "numba-cuda[cu12]==0.30.4" cupy-cuda12x==14.2.0 \
    scikit-learn==1.9.1 matplotlib==3.11.2
COPY pyproject.toml README.md /tmp/gpubk-src/
COPY gpubk /tmp/gpubk-src/gpubk
COPY kernels /tmp/gpubk-src/kernels
COPY bench /tmp/gpubk-src/bench
RUN python3 -m pip install --no-cache-dir --break-system-packages --no-deps /tmp/gpubk-src \
    && rm -rf /tmp/gpubk-src

# Run from a folder without the sources, so that Python imports the installed package (with
# gpubk.kernels), never a source folder that lacks it.
WORKDIR /workspace
ENV GPUBK_DEVICE=gpu
CMD ["gpubk", "demo", "--device", "gpu"]
