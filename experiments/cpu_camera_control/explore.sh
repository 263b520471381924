#!/usr/bin/env bash
# Recipe exploration for a vid3d-trained model that uses its camera on a CPU (issue 14): one train.py run per
# recipe of conf/experiment/cpu/ (`experiment=cpu/<recipe>`), time-boxed (MAX_TIME, default 20 min each),
# with the camera gap on the held-out test clips every 500 steps (<run>/camera_gap.jsonl).
#   experiments/cpu_camera_control/explore.sh r1 [hx3 ...]
# Results: the table in experiments/cpu_camera_control/README.md. RESUME=1 continues each recipe's run in
# place (its last checkpoint); MAX_TIME counts the whole run, so give it the new total (RESUME=1
# MAX_TIME=00:01:15:00 explore.sh h1). INIT=<ckpt> starts each recipe from a checkpoint's trained weights
# (init_from). ARGS="k=v ..." appends overrides to every recipe, e.g. a longer resumed run:
# RESUME=1 ARGS="trainer.max_steps=20000 callbacks.checkpoint.every_n_train_steps=500".
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-outputs/experiments/cpu_camera_control/explore}
export WANDB_MODE=offline
for r in "$@"; do
  [ -f "conf/experiment/cpu/$r.yaml" ] || { echo "unknown recipe $r (conf/experiment/cpu/*.yaml)" >&2; exit 2; }
  EXTRA=(+trainer.max_time="${MAX_TIME:-00:00:20:00}" logger=csv torch_threads="${THREADS:-1}")
  [ "${RESUME:-0}" = 1 ] && EXTRA+=(resume="$OUT/$r")
  [ -n "${INIT:-}" ] && EXTRA+=(init_from="$INIT")
  read -r -a A <<< "${ARGS:-}"
  EXTRA+=("${A[@]}")
  echo "== $r: experiment=cpu/$r ${EXTRA[*]}"
  mkdir -p "$(dirname "$OUT")"
  "$PY" train.py "experiment=cpu/$r" "${EXTRA[@]}" hydra.run.dir="$OUT/$r" >> "$OUT.$r.log" 2>&1 \
    || echo "$r failed: $OUT.$r.log"
  tail -n 3 "$OUT/$r/camera_gap.jsonl" 2>/dev/null | cut -c1-400
done
