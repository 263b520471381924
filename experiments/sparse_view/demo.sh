#!/usr/bin/env bash
# Sparse view at small / large overlap, demo size: train one model (scored on camera control too), then
# the sparse-view benchmark on its last checkpoint, one job per overlap bucket, merged into one table.
source "$(dirname "$0")/../common.sh"
"$PYTHON" train.py model=epipolar post_eval=camera "${SIZE[@]}" hydra.run.dir="$OUT/train" "$@"
# the eval config takes the data overrides only (no module./trainer./post_eval. keys)
EVAL_SIZE=()
for o in "${SIZE[@]}"; do
  case "$o" in data.*|torch_threads=*) EVAL_SIZE+=("$o") ;; post_eval.sampler_steps=*) EVAL_SIZE+=("sampler.num_steps=${o#*=}") ;; esac
done
# EVAL_ARGS: extra eval.py overrides. The default gaps (6..47 frames, 6 targets) suit the demo set's
# 48-frame clips (both buckets have pairs); for 12-frame clips use
# EVAL_ARGS="overlap.gaps=[2,3,4,5,6,7,8,9,10,11] overlap.num_targets=1" (a gap needs num_targets + 1
# frames). A bucket with no pair is reported with n = 0 (EMPTY BUCKETS in the table), not an error.
read -r -a EXTRA <<< "${EVAL_ARGS:-}"
"$PYTHON" eval.py -m overlap=small,large ckpt="$OUT/train/checkpoints/last.ckpt" "${EVAL_SIZE[@]}" "${EXTRA[@]}" \
  hydra.sweep.dir="$OUT/sparse" 'hydra.sweep.subdir=${hydra.job.num}'
"$PYTHON" -m vid3d.report "$OUT/sparse" --out "$OUT/sparse_report"
