#!/usr/bin/env bash
# Interval-curriculum ablation, demo size: linear 2->10 curriculum vs uniform [2, 10] frame intervals.
source "$(dirname "$0")/../common.sh"
"$PYTHON" train.py -m model=plucker data/interval=linear,uniform post_eval=camera "${SIZE[@]}" "${SWEEP[@]}" "$@"
"$PYTHON" -m vid3d.report "$OUT/sweep" --out "$OUT/report"
