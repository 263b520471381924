#!/usr/bin/env bash
# Camera control on RealEstate10K, demo size: every camera-conditioning variant (and the no-camera SVD
# control) trained and scored on the embedded synthetic set, merged into one table.
source "$(dirname "$0")/../common.sh"
"$PYTHON" train.py -m model=epipolar,plucker,rt,svd post_eval=camera "${SIZE[@]}" "${SWEEP[@]}" "$@"
"$PYTHON" -m vid3d.report "$OUT/sweep" --out "$OUT/report"
