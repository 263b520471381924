# Sourced by every experiments/*/demo.sh. Environment knobs:
#   PYTHON      interpreter (default: .venv/bin/python if present, else python)
#   OUT         output folder of the demo (default: outputs/experiments/<entry>)
#   DEMO_SIZE   the overrides that make a run demo-sized (default below: a few minutes per job on a CPU);
#               the tests pass a tinier one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
ENTRY="$(basename "$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)")"
OUT="${OUT:-outputs/experiments/$ENTRY}"
# demo size: the embedded synthetic set (12 train / 4 test clips), 8 frames at 128x192, every weight
# trains (random-init backbone), 100 steps, 10-step sampler; COLMAP estimates the poses as in the full
# protocol (DEMO_SIZE="... post_eval.pose=gt" swaps in the ground-truth plumbing check).
read -r -a SIZE <<< "${DEMO_SIZE:-torch_threads=2 data.num_frames=8 data.height=128 data.width=192 \
data.datamodule.batch_size=1 data.datamodule.num_workers=0 module.trainable=[all] module.warmup_steps=20 \
module.optimizer.lr=5e-4 trainer.max_steps=100 post_eval.sampler_steps=10 post_eval.pose=colmap}"
export WANDB_MODE="${WANDB_MODE:-offline}"
# one folder per job, named by its number (override_dirname can exceed the file-name limit)
SWEEP=(hydra.sweep.dir="$OUT/sweep" 'hydra.sweep.subdir=${hydra.job.num}')
