#!/usr/bin/env bash
# The GPU check, for a lent machine with an NVIDIA GPU and CuPy, numba-cuda, pytest (and PyTorch)
# already installed: installs nothing from the network and ends within 8 minutes (each stage has
# its own time limit). Cheapest and most telling first, so a run cut short still pays:
#   1 info    the device gpubk picks and why
#   2 smoke   one kernel of each family against NumPy (compiles them all; under a minute)
#   3 tests   the tests marked `gpu`
#   4 bench   the row ops at full sizes in float32, then float16, forward and forward+backward,
#             each against a copy of as many bytes (the ceiling at the same size)
#   5 latency tiny tensors (launch overhead), the elementwise chain, matmul, an MLP step
#   6 compiler K.function (fused CUDA kernels, in-place updates) against eager gpubk
# Each stage writes its output under OUTPUT_DIR as it goes (default $OUT, else
# /tmp/gpubk-gpu-check), plus summary.txt with every stage's exit status.
#   bash bench/gpu_check.sh [OUTPUT_DIR]
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-${OUT:-/tmp/gpubk-gpu-check}}" && cd "${1:-${OUT:-/tmp/gpubk-gpu-check}}" \
    && pwd)

# gpubk staged as it installs (bench/stage.sh), imported from there and never from the source
# folder (which lacks gpubk.kernels): PYTHONSAFEPATH keeps the current folder off sys.path, and
# the stages run from the output folder anyway.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
bash "$repo/bench/stage.sh" "$stage"
export PYTHONPATH="$stage${PYTHONPATH:+:$PYTHONPATH}" PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1
export NUMBA_CACHE_DIR="$stage/numba-cache"  # kernels compile once, in the smoke stage
unset NUMBA_ENABLE_CUDASIM GPUBK_DEVICE
cd "$out" || exit 1

ROW_OPS="copy,softmax,softmax+grad,log_softmax,log_softmax+grad,cce probs,cce probs+grad"
ROW_OPS="$ROW_OPS,cce logits,cce logits+grad"
: >summary.txt
status=0
stage() {  # stage NAME SECONDS COMMAND...: runs it, keeps its output, notes its exit status
    local name=$1 seconds=$2
    shift 2
    echo "== $name (at most ${seconds} s): $*" | tee "$name.txt"
    timeout "$seconds" "$@" 2>&1 | tee -a "$name.txt"
    local code=${PIPESTATUS[0]}
    echo "$name: exit $code$([ "$code" = 124 ] && echo ' (time limit)')" | tee -a summary.txt
    [ "$code" = 0 ] || status=1
}

stage 1-info 20 python3 -m gpubk info
stage 2-smoke 70 python3 -m gpubk.bench.smoke --device gpu
stage 3-tests 135 python3 -m pytest -q -m gpu -p no:cacheprovider "$repo/tests"
stage 4-bench-float32 80 python3 -m gpubk bench --device gpu --dtype float32 --only "$ROW_OPS" \
    --json bench-float32.json
stage 4-bench-float16 60 python3 -m gpubk bench --device gpu --dtype float16 --only "$ROW_OPS" \
    --json bench-float16.json
stage 5-latency 45 python3 -m gpubk bench --device gpu \
    --only "tiny ops,elementwise chain,matmul,mlp step,function: small graph" \
    --json bench-latency.json
stage 6-compiler 60 python3 -m gpubk.bench.compiler --device gpu
cat summary.txt
exit "$status"
