#!/usr/bin/env bash
# Stages gpubk as `pip install .` lays it out, without pip: the package, with kernels/ and bench/
# placed where they install (gpubk.kernels, gpubk.bench), in the folder given.
#   bash bench/stage.sh DIR    (then PYTHONPATH=DIR, from any folder but the repository root,
#                               or with PYTHONSAFEPATH=1 there)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: bash bench/stage.sh DIR}
mkdir -p "$dest"
cp -r "$repo/gpubk" "$dest/gpubk"
cp -r "$repo/kernels" "$dest/gpubk/kernels"
cp -r "$repo/bench" "$dest/gpubk/bench"
find "$dest/gpubk" -name __pycache__ -prune -exec rm -rf {} +
