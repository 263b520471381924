#!/usr/bin/env bash
# The CPU result table (issue 14): model=svd | rt | plucker | epipolar trained with the CPU recipe, each
# scored by the camera benchmark (COLMAP poses, PSNR vs ground truth on frames 1..N, camera gap), merged
# into one table with CIs by vid3d.report: a small-scale version of the paper's comparison.
#
# Two lanes of two models each run side by side (one torch thread per job, so both cores are used);
# each lane is a Hydra multirun. Environment knobs:
#   STEPS     training steps per model (default 3000: ~50 minutes in all on 2 cores)
#   RECIPE    the training/eval overrides (default: the recipe below); the tests pass a tiny one
#   OUT       output folder (default outputs/experiments/cpu_camera_control)
# Output: $OUT/report/report.{md,csv,tex} (and each job's eval/ under $OUT/sweep/<lane>/<job>).
source "$(dirname "$0")/../common.sh"
STEPS="${STEPS:-3000}"
# The recipe: HX3 of the README (conf/experiment/cpu/hx3.yaml: 8 frames at 32x48 with a factor-2 pixel
# autoencoder, smoother synthetic scenes, 60 training / 16 test scenes, batch 4, Adam 1e-3, every weight
# trains, 70% of the steps at high sigma), each lane's models in place of its epipolar attention; scored on
# the 16 test clips with the camera benchmark's COLMAP protocol and a 25-step Euler sampler.
DEFAULT_RECIPE="experiment=cpu/hx3 trainer.max_steps=$STEPS logger=csv post_eval=camera post_eval.pose=colmap \
post_eval.sampler_steps=25"
read -r -a RECIPE <<< "${RECIPE:-$DEFAULT_RECIPE}"
mkdir -p "$OUT"
# build the data set once, before the lanes start (both would otherwise render it)
"$PYTHON" -c "
import sys
from hydra import compose, initialize_config_dir
from vid3d.config import CONFIG_DIR
from vid3d.tasks.common import prepare_data
with initialize_config_dir(str(CONFIG_DIR), version_base='1.3'):
    prepare_data(compose('train', overrides=sys.argv[1:]))
" "${RECIPE[@]}"
lane() {  # lane <name> <models>
  "$PYTHON" train.py -m "model=$2" "${RECIPE[@]}" hydra.sweep.dir="$OUT/sweep/$1" 'hydra.sweep.subdir=${hydra.job.num}' \
    "${@:3}" > "$OUT/lane_$1.log" 2>&1
}
lane a svd,plucker "$@" & A=$!
lane b rt,epipolar "$@" & B=$!
status=0
wait "$A" || { status=$?; echo "lane a failed: $OUT/lane_a.log" >&2; }
wait "$B" || { status=$?; echo "lane b failed: $OUT/lane_b.log" >&2; }
"$PYTHON" -m vid3d.report "$OUT/sweep" --out "$OUT/report"
exit "$status"
