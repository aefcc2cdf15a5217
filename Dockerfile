# gpubk on an NVIDIA GPU:
#   docker build -t gpubk . && docker run --gpus all gpubk
# trains the demo on the GPU; `docker run --gpus all gpubk python3 -m gpubk bench --quick`
# benchmarks the kernels.
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.12.* python3-pip=24.* \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/gpubk
# Pinned dependencies first (a layer that survives code changes), then gpubk itself.
RUN python3 -m pip install --no-cache-dir --break-system-packages \
    numpy==2.2.6 numba==0.61.2 numba-cuda==0.15.2 cupy-cuda12x==13.4.1 \
    scikit-learn==1.6.1 matplotlib==3.10.3
COPY pyproject.toml README.md ./
COPY gpubk ./gpubk
COPY kernels ./kernels
COPY bench ./bench
RUN python3 -m pip install --no-cache-dir --break-system-packages --no-deps .

ENV GPUBK_DEVICE=gpu
CMD ["python3", "-m", "gpubk", "demo", "--device", "gpu"]
