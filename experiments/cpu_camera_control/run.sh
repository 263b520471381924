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
# The recipe (experiments/cpu_camera_control/README.md): 8 frames at 32x48 with a factor-2 pixel
# autoencoder (latents 16x24), smoother synthetic scenes (texture_scale 4), 60 training / 16 test scenes,
# batch 4, Adam 1e-3, every weight trains (random-init backbone); training noise: 70% of the steps at high
# sigma (ln sigma ~ N(1.6, 0.3^2), where only the camera explains the motion) and 30% from ln sigma ~
# N(-0.4, 1.6^2) (the low-noise detail samples need): recipe HX3 of the README, session 4. Scored on the 16
# test clips with the camera benchmark's COLMAP protocol and a 25-step Euler sampler.
DATA_ROOT='data.root=${paths.data_dir}/smooth4_60x48_72x128_t16_s0'  # a Hydra interpolation, not bash
DEFAULT_RECIPE="experiment=demo torch_threads=1 data.height=32 data.width=48 \
data.build.num_train=60 data.build.num_test=16 data.build.height=72 data.build.width=128 \
data.build.texture_scale=4.0 $DATA_ROOT \
model.backbone.vae.factor=2 data.datamodule.batch_size=4 module.optimizer.lr=1e-3 module.warmup_steps=100 \
model.P_mean=-0.4 model.P_std=1.6 model.sigma_high_fraction=0.7 trainer.max_steps=$STEPS trainer.log_every_n_steps=50 \
callbacks.media.every_n_steps=0 callbacks.checkpoint.every_n_train_steps=1000 callbacks.camera_gap.every_n_steps=500 \
callbacks.camera_gap.num_clips=16 logger=csv post_eval=camera post_eval.pose=colmap post_eval.sampler_steps=25"
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
