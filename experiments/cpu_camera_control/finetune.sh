#!/usr/bin/env bash
# Stage 1 of the CPU route (issue 14): camera layers fine-tuned on the tiny backbone of
# experiments/tiny_backbone/run.sh under the freeze policy (camera encoder + epipolar + temporal layers
# train; the rest is the frozen "pretrained" backbone), as the paper does on SVD.
#   BACKBONE=outputs/experiments/tiny_backbone/pipe experiments/cpu_camera_control/finetune.sh [overrides]
# Its checkpoints name no registered backbone (the backbone is your folder): sample/eval them with
# pretrained.source=$BACKBONE, or SVD_PATH=$BACKBONE in the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-outputs/experiments/cpu_camera_control/finetune}
BACKBONE=${BACKBONE:-outputs/experiments/tiny_backbone/pipe}
export WANDB_MODE=offline
"$PY" train.py experiment=demo model=${MODEL:-epipolar} model/backbone=svd model.backbone.source="$(realpath "$BACKBONE")" \
  'module.trainable=[camera_encoder,epipolar,temporal]' \
  data.build.num_train=60 data.build.num_test=4 data.build.height=72 data.build.width=128 \
  data.height=32 data.width=48 data.num_frames=8 data.datamodule.batch_size=4 data.datamodule.num_workers=0 \
  module.optimizer.lr=${LR:-1e-3} module.warmup_steps=100 model.P_mean=-0.4 model.P_std=1.6 \
  trainer.max_steps=${MAX_STEPS:-20000} +trainer.max_time=${MAX_TIME:-00:00:30:00} trainer.log_every_n_steps=50 \
  logger=csv callbacks.media.every_n_steps=0 callbacks.camera_gap.every_n_steps=${GAP_EVERY:-250} \
  callbacks.checkpoint.every_n_train_steps=1000 torch_threads=${THREADS:-1} \
  hydra.run.dir="$OUT" "$@"
