#!/usr/bin/env bash
# GPU checks for a machine with an NVIDIA GPU, CuPy, Numba and numba-cuda already installed:
# installs nothing from the network, runs the tests marked `gpu` and `gpubk bench` on the GPU,
# and ends within 8 minutes (each step has its own timeout).
#   bash bench/gpu_check.sh [OUTPUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-/tmp/gpubk-gpu-check}}"
mkdir -p "$out"

# gpubk without pip: the package, with kernels/ placed where it installs (gpubk.kernels).
stage=$(mktemp -d)
cp -r gpubk "$stage/gpubk"
cp -r kernels "$stage/gpubk/kernels"
cp -r bench "$stage/gpubk/bench"
export PYTHONPATH="$stage${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export NUMBA_CACHE_DIR="$stage/numba-cache"

python3 -c "import cupy, numba, gpubk as K; print('gpubk on', K.get_device(), \
'| cupy', cupy.__version__, '| numba', numba.__version__)" 2>&1 | tee "$out/info.txt"

status=0
timeout 270 python3 -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tee "$out/tests.txt"
status=$(( status || PIPESTATUS[0] ))
timeout 170 python3 -m gpubk bench --quick --device gpu --json "$out/bench.json" \
    --plot "$out/bench.png" 2>&1 | tee "$out/bench.txt"
status=$(( status || PIPESTATUS[0] ))
rm -rf "$stage"
exit "$status"
