# gpubk on an NVIDIA GPU: docker build -t gpubk . && docker run --gpus all gpubk
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.12.* python3-pip=24.* \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/gpubk
COPY pyproject.toml README.md ./
COPY gpubk ./gpubk
COPY kernels ./kernels
RUN python3 -m pip install --no-cache-dir --break-system-packages ".[cuda12]"

ENV GPUBK_DEVICE=gpu
CMD ["python3", "-m", "gpubk"]
