#!/usr/bin/env bash
# Recipe exploration for a vid3d-trained model that uses its camera on a CPU (issue 14). One train.py run per
# recipe, time-boxed (MAX_TIME, default 20 min each), camera gap on the 4 held-out test clips every GAP_EVERY
# steps (<run>/camera_gap.jsonl). Usage: experiments/cpu_camera_control/explore.sh R1 [R2 ...]
# Results are written up by hand in experiments/cpu_camera_control/README.md (numbers from camera_gap.jsonl).
# RESUME=1 continues each recipe's run in place (its last checkpoint); MAX_TIME counts the whole run, so give
# it the new total (e.g. RESUME=1 MAX_TIME=00:01:15:00 explore.sh H1). INIT=<ckpt> starts each recipe from a
# checkpoint's trained weights (init_from). ARGS="k=v ..." appends overrides to every recipe, e.g. a longer
# resumed run: RESUME=1 ARGS="trainer.max_steps=20000 callbacks.checkpoint.every_n_train_steps=500".
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-outputs/experiments/cpu_camera_control/explore}
MAX_TIME=${MAX_TIME:-00:00:20:00}
GAP_EVERY=${GAP_EVERY:-500}
export WANDB_MODE=offline
# 60 training scenes rendered at 72x128 (cheaper than the demo's 144x256; crops to the training size)
DATA=(data.build.num_train=60 data.build.num_test=4 data.build.height=72 data.build.width=128
      data.datamodule.num_workers=0 torch_threads=${THREADS:-1})
COMMON=(experiment=demo logger=csv callbacks.media.every_n_steps=0 callbacks.checkpoint.every_n_train_steps=1000
        callbacks.camera_gap.every_n_steps=$GAP_EVERY +trainer.max_time=$MAX_TIME trainer.log_every_n_steps=50)
# smoother scenes (texture_scale 4) with 16 held-out test clips for a less noisy camera gap
SMOOTH="data.build.texture_scale=4.0 data.build.num_test=16 data.root=data_cache/smooth4_60x48_72x128_t16_s0
        callbacks.camera_gap.num_clips=16"
recipe() {
  case "$1" in
    # 32x48, 8 frames, batch 4, lr 1e-3, wide sigma (ln sigma ~ N(-0.4, 1.6^2)), Pluecker, interval 2->4
    R1) echo "model=plucker data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100" ;;
    # R1 with a larger frame interval (4 -> 8): more motion between frames, so the camera says more
    R2) echo "model=plucker data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100
              data.interval.start=4 data.interval.end=8" ;;
    # R1 with epipolar attention (cross-frame attention along epipolar lines can fetch the conditioning
    # frame's content from the displaced position: a warp, which additive Pluecker features cannot do)
    R3) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100" ;;
    # R1 / R3 on smoother scenes: the same 60 + 16 scenes and cameras with 4x larger texture features
    S1) echo "model=plucker data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100 $SMOOTH" ;;
    S3) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100 $SMOOTH" ;;
    S1svd) echo "model=svd data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100 $SMOOTH" ;;
    # S3 / S1 with a pixel-unshuffle factor of 2 instead of 4 (latents 16x24x12 instead of 8x12x48): a camera
    # motion of a few pixels is then a shift of latent pixels rather than a mixing of channels
    P3) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100 $SMOOTH
              model.backbone.vae.factor=2" ;;
    P1) echo "model=plucker data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100 $SMOOTH
              model.backbone.vae.factor=2" ;;
    # P1 trained at high noise only (ln sigma ~ N(1.6, 0.3^2), sigma ~ 3..8): where the noisy frames hide
    # the motion, so only the camera can explain it (toy_shift: the camera is learned in 250 steps there,
    # but needs ~3000 with the wide distribution)
    H1) echo "model=plucker data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=1.6 model.P_std=0.3 trainer.max_steps=6000 module.warmup_steps=100 $SMOOTH
              model.backbone.vae.factor=2" ;;
    # H1 with epipolar attention (cross-frame attention along epipolar lines can fetch content from where
    # the camera moved it: a warp that additive Pluecker features have to learn)
    H3) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=1.6 model.P_std=0.3 trainer.max_steps=6000 module.warmup_steps=100 $SMOOTH
              model.backbone.vae.factor=2" ;;
    # H3 with twice the frame interval (4 -> 8): larger camera motion between frames, which epipolar
    # attention can fetch from far away and convolutions cannot (session 4)
    H3w) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=1.6 model.P_std=0.3 trainer.max_steps=8000 module.warmup_steps=100 $SMOOTH
              model.backbone.vae.factor=2 data.interval.start=4 data.interval.end=8" ;;
    # H3's epipolar attention with 70% of the steps at high noise and 30% from the wide distribution:
    # the camera of H3 and the low-noise detail that samples need (X1 had 50% and learned the camera slowly)
    HX3) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 model.sigma_high_fraction=0.7 trainer.max_steps=8000
              module.warmup_steps=100 $SMOOTH model.backbone.vae.factor=2" ;;
    # HX3 continued at a 10x lower learning rate (session 5): start it from a plateau checkpoint with
    # INIT=<ckpt> (weights only; new optimiser), e.g. HX3's step 9000
    HX3lo) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-4
              model.P_mean=-0.4 model.P_std=1.6 model.sigma_high_fraction=0.7 trainer.max_steps=3000
              module.warmup_steps=10 $SMOOTH model.backbone.vae.factor=2" ;;
    # HX3 on ten times as many training scenes (600; same 16 held-out clips): session 5 found every recipe
    # fitting its 60 scenes from ~8k steps on
    HX3big) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 model.sigma_high_fraction=0.7 trainer.max_steps=12000
              module.warmup_steps=100 $SMOOTH model.backbone.vae.factor=2 data.build.num_train=600
              data.root=data_cache/smooth4_600x48_72x128_t16_s0" ;;
    # HX3big continued with 30% instead of 70% of the steps at high noise (session 7): more low-noise steps
    # for the end of the sampling path, where samples dissolve into coloured noise. Resume a copy of an
    # HX3big run dir (its optimiser state kept): cp -r <s>/HX3big <s>/HX3bigL; RESUME=1 ... explore.sh HX3bigL
    HX3bigL) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 model.sigma_high_fraction=0.3 trainer.max_steps=12000
              module.warmup_steps=100 $SMOOTH model.backbone.vae.factor=2 data.build.num_train=600
              data.root=data_cache/smooth4_600x48_72x128_t16_s0" ;;
    # HX3big with the UNet's transformers (and so the epipolar attention) at level 0 too: tokens at 16x24
    # (2 image px) instead of 8x12 (4 px), so the attention can say how far content moves (session 6)
    HX3big0) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 model.sigma_high_fraction=0.7 trainer.max_steps=12000
              module.warmup_steps=100 $SMOOTH model.backbone.vae.factor=2 data.build.num_train=600
              data.root=data_cache/smooth4_600x48_72x128_t16_s0 +model.backbone.cross_attn_levels=[true,true]" ;;
    # HX3big with 1.5x the camera motion, trained and evaluated alike: every clip at a fixed frame interval
    # of 6 (HX3big: 2->4 growing, held-out clips at 4); H3w showed training wider than the test clips hurts
    HX3bigW) echo "model=epipolar data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 model.sigma_high_fraction=0.7 trainer.max_steps=12000
              module.warmup_steps=100 $SMOOTH model.backbone.vae.factor=2 data.build.num_train=600
              data.root=data_cache/smooth4_600x48_72x128_t16_s0 data.interval.start=6 data.interval.end=6
              data.eval_interval=6" ;;
    # P1 with SVD's own training noise (ln sigma ~ N(0.7, 1.6^2)): half the steps above sigma 2
    M1) echo "model=plucker data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=0.7 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100 $SMOOTH
              model.backbone.vae.factor=2" ;;
    # P1 with half the sigmas from the high-noise component and half from P1's wide one (detail for sampling)
    X1) echo "model=plucker data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 model.sigma_high_fraction=0.5 trainer.max_steps=6000
              module.warmup_steps=100 $SMOOTH model.backbone.vae.factor=2" ;;
    # the control: R1 without a camera encoder
    R1svd) echo "model=svd data.height=32 data.width=48 data.datamodule.batch_size=4 module.optimizer.lr=1e-3
              model.P_mean=-0.4 model.P_std=1.6 trainer.max_steps=6000 module.warmup_steps=100" ;;
    *) echo "unknown recipe $1" >&2; exit 2 ;;
  esac
}
for r in "$@"; do
  read -r -a R <<< "$(recipe "$r" | tr "\n" " ")"
  echo "== $r: ${R[*]}"
  EXTRA=()
  [ "${RESUME:-0}" = 1 ] && EXTRA=(resume="$OUT/$r")
  [ -n "${INIT:-}" ] && EXTRA+=(init_from="$INIT")
  read -r -a A <<< "${ARGS:-}"
  EXTRA+=("${A[@]}")
  "$PY" train.py "${COMMON[@]}" "${DATA[@]}" "${R[@]}" "${EXTRA[@]}" hydra.run.dir="$OUT/$r" >> "$OUT.$r.log" 2>&1 \
    || echo "$r failed: $OUT.$r.log"
  tail -n 3 "$OUT/$r/camera_gap.jsonl" 2>/dev/null | cut -c1-400
done
