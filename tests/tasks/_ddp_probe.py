"""A callback for the DDP test (loaded by train.py through PYTHONPATH): every training batch's rank, step,
clip ids and frame strides, one JSON line per batch in ``<out>/rank<k>.jsonl``."""

import json
from pathlib import Path

import lightning as L


class BatchProbe(L.Callback):
    def __init__(self, out: str) -> None:
        self.out = Path(out)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        idx = batch["frame_indices"]
        rec = {
            "rank": trainer.global_rank,
            "step": int(trainer.global_step),
            "clips": list(batch["clip_id"]),
            "strides": [int(s) for s in (idx[:, 1] - idx[:, 0]).tolist()],
        }
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / f"rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
