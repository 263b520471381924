#!/usr/bin/env bash
# The committed CPU-trained camera model (assets/cpu_camera_control/) on the 16 held-out clips it never saw:
# one-step error at sigma 5 with its own cameras vs mirrored / reversed / another clip's / static cameras
# (python -m vid3d.tasks.direction_gap). Renders the 16 clips first (data=synthetic_heldout600: scenes
# 600-615, ~15 s), ~30 s in all on one CPU thread.
#   experiments/cpu_camera_control/check_asset.sh [asset.safetensors] [--sigma 1 5] [--clips 16]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
ASSET=${1:-assets/cpu_camera_control/epipolar_32x48_hx3big.safetensors}
shift $(( $# > 0 ? 1 : 0 ))
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$PY" -m vid3d.tasks.direction_gap "$ASSET" data=synthetic_heldout600 "$@"
