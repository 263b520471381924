#!/usr/bin/env bash
# Stage 0 of the CPU camera-control route (issue 14): a tiny image-to-video backbone of the SVD architecture
# (conf/model/backbone/tiny.yaml), trained WITHOUT cameras (model=svd, every weight) on the embedded
# synthetic set, then exported as a diffusers SVD-layout folder that `model/backbone=svd
# model.backbone.source=<folder>` loads like Stable Video Diffusion. Camera layers then fine-tune on it under
# the freeze policy (experiments/cpu_camera_control/).
#   experiments/tiny_backbone/run.sh                  # MAX_TIME (default 75 min) on THREADS (default 1) threads
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-outputs/experiments/tiny_backbone}
export WANDB_MODE=offline
"$PY" train.py experiment=demo model=svd module.trainable=[all] \
  data.build.num_train=60 data.build.num_test=4 data.build.height=72 data.build.width=128 \
  data.height=32 data.width=48 data.num_frames=8 data.datamodule.batch_size=4 data.datamodule.num_workers=0 \
  module.optimizer.lr=1e-3 module.warmup_steps=100 model.P_mean=-0.4 model.P_std=1.6 \
  trainer.max_steps=${MAX_STEPS:-20000} +trainer.max_time=${MAX_TIME:-00:01:15:00} trainer.log_every_n_steps=50 \
  logger=csv callbacks.media.every_n_steps=0 callbacks.camera_gap.every_n_steps=0 \
  callbacks.checkpoint.every_n_train_steps=1000 torch_threads=${THREADS:-1} seed=${SEED:-0} \
  hydra.run.dir="$OUT/train" "$@"
"$PY" -m vid3d.sampling.pipeline ckpt="$OUT/train" out="$OUT/pipe" height=32 width=48
du -sh "$OUT/pipe"/{unet,vae,image_encoder}
