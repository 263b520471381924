#!/usr/bin/env bash
# Stage 2 of the CPU camera model (issue 37 item 2): experiment=cpu/stage2 (64x96, from the committed 32x48
# model's weights) into RUN_DIR, outside the repository. Run it again after any interruption (kill -9
# included): it resumes from the run's newest complete checkpoint (written every 100 steps).
#   RUN_DIR=/work/runs/stage2 NPROC=1 THREADS=1 bash experiments/cpu_camera_control/stage2.sh [overrides]
# NPROC=2: Lightning DDP over gloo, one process per core, per-process batch BATCH (default 4 / NPROC, so the
# batch per step stays stage 1's 4). THREADS: torch threads per process. NICE: niceness (default 10).
# Extra arguments are train.py overrides (e.g. trainer.max_steps=4000). Keep NPROC across resumes (the clip
# order is sharded by rank): the script refuses a change. Output: RUN_DIR/train.out (this script's log),
# RUN_DIR/camera_gap.jsonl (held-out camera gap every 250 steps), RUN_DIR/csv/, RUN_DIR/checkpoints/.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
RUN_DIR=${RUN_DIR:-/work/runs/stage2}
NPROC=${NPROC:-1}
THREADS=${THREADS:-1}
BATCH=${BATCH:-$((4 / NPROC))}
case "$RUN_DIR" in /*) ;; *) RUN_DIR="$PWD/$RUN_DIR" ;; esac
case "$(realpath -m "$RUN_DIR")/" in "$PWD"/*)
  echo "stage2.sh: RUN_DIR=$RUN_DIR is inside the repository; give a folder outside it" >&2; exit 2 ;;
esac
mkdir -p "$RUN_DIR"
if [ -f "$RUN_DIR/nproc" ] && [ "$(cat "$RUN_DIR/nproc")" != "$NPROC" ]; then
  echo "stage2.sh: $RUN_DIR was started with NPROC=$(cat "$RUN_DIR/nproc"); resume it with the same NPROC" >&2
  exit 2
fi
echo "$NPROC" > "$RUN_DIR/nproc"

ARGS=(experiment=cpu/stage2 torch_threads="$THREADS" data.datamodule.batch_size="$BATCH")
if [ "$NPROC" -gt 1 ]; then
  # gloo on the CPU; find_unused_parameters: with module.trainable=[all] some weights get no gradient on a
  # step (DDP refuses that otherwise)
  ARGS+=(trainer=ddp trainer.accelerator=cpu trainer.devices="$NPROC" trainer.precision=32
         trainer.strategy.find_unused_parameters=true)
fi
# resume when the run has a complete checkpoint (a file torn by a kill is not one)
if PYTHONPATH=$PWD "$PY" -c "import sys; from vid3d.models.checkpoint import newest_complete_checkpoint as n; \
n(sys.argv[1])" "$RUN_DIR" 2>/dev/null; then
  ARGS+=(resume="$RUN_DIR")
  echo "== $(date -u +%FT%TZ) resuming $RUN_DIR (NPROC=$NPROC THREADS=$THREADS)" | tee -a "$RUN_DIR/train.out"
else
  echo "== $(date -u +%FT%TZ) starting $RUN_DIR (NPROC=$NPROC THREADS=$THREADS)" | tee -a "$RUN_DIR/train.out"
fi
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" WANDB_MODE=offline PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec nice -n "${NICE:-10}" "$PY" train.py "${ARGS[@]}" "$@" hydra.run.dir="$RUN_DIR" >> "$RUN_DIR/train.out" 2>&1
