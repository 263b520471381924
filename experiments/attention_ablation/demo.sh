#!/usr/bin/env bash
# Attention ablation, demo size: Plücker camera encoder with epipolar, full or no extra attention.
source "$(dirname "$0")/../common.sh"
"$PYTHON" train.py -m model=epipolar model/attention=epipolar,full,none post_eval=camera \
  "${SIZE[@]}" "${SWEEP[@]}" "$@"
"$PYTHON" -m vid3d.report "$OUT/sweep" --out "$OUT/report"
