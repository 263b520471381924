"""Log the camera-sensitivity diagnostic during training (``val/camera_gap@σ``).

Every N steps, on held-out clips (the data option's test clips; never used to choose anything), the
denoiser's error with each clip's own cameras vs another clip's cameras and a static camera
(``vid3d.evaluation.camera_gap``). A gap that rises above 1 is the first sign that the camera path is
used; ``model=svd`` reads exactly 1. Logged to every Lightning logger (W&B, CSV) and appended to
``<run dir>/camera_gap.jsonl``. Rank 0 only, eval mode, no gradients, its own seeded noise (training
randomness untouched); a failure is a warning, never the end of training.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig

from vid3d.evaluation.camera_gap import DEFAULT_SIGMAS, measure_camera_gap

log = logging.getLogger(__name__)


class CameraGapLogger(L.Callback):
    """Args: dataset: the held-out dataset's config (instantiated on first use, so an unused logger costs
    nothing) or a dataset; every_n_steps (0 disables); num_clips (>= 2); sigmas; seed; batch_size;
    at_start: also measure before the first step of a run that starts at step 0 (the gap of the weights a
    run starts from, e.g. ``init_from``; a resumed run is not measured again)."""

    def __init__(
        self,
        dataset: Any = None,
        every_n_steps: int = 500,
        num_clips: int = 4,
        sigmas: Sequence[float] = DEFAULT_SIGMAS,
        seed: int = 0,
        batch_size: int = 4,
        at_start: bool = False,
    ) -> None:
        super().__init__()
        self.dataset_spec = dataset
        self.every_n_steps, self.num_clips = int(every_n_steps), int(num_clips)
        self.sigmas, self.seed, self.batch_size = tuple(float(s) for s in sigmas), int(seed), int(batch_size)
        self.at_start = bool(at_start)
        self._samples: list | None = None
        self.logged_steps: list[int] = []

    def samples(self) -> list:
        if self._samples is None:
            ds = self.dataset_spec
            if isinstance(ds, (Mapping, DictConfig)):  # a config (a plain dict or Hydra's): build it
                from hydra.utils import instantiate

                ds = instantiate(ds)
            n = min(len(ds), self.num_clips)
            self._samples = [ds[i] for i in range(n)]
        return self._samples

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self.at_start and int(trainer.global_step) == 0:
            self.measure(trainer, pl_module, 0)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = int(trainer.global_step)
        if step % max(self.every_n_steps, 1) == 0:
            self.measure(trainer, pl_module, step)

    def measure(self, trainer: Any, pl_module: Any, step: int) -> None:
        """Measure and log the gap at ``step`` (rank 0, once per step, not when switched off)."""
        if self.every_n_steps <= 0 or self.dataset_spec is None:
            return
        if step in self.logged_steps or not trainer.is_global_zero:
            return
        self.logged_steps.append(step)
        try:
            samples = self.samples()
            if len(samples) < 2:
                log.warning("camera gap: fewer than 2 held-out clips, not measured")
                self.every_n_steps = 0
                return
            gap = measure_camera_gap(pl_module.model, samples, self.sigmas, self.seed, self.batch_size)
        except Exception as e:  # noqa: BLE001 - a diagnostic must never stop training
            log.warning("camera gap at step %d failed: %s: %s", step, type(e).__name__, e)
            return
        metrics = {f"val/{k}": v for k, v in gap.items() if k.startswith(("camera_gap", "error_"))}
        for lg in trainer.loggers:
            lg.log_metrics(metrics, step=step)
        path = Path(trainer.default_root_dir) / "camera_gap.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:  # one line per measurement; a torn last line is skipped by readers
            f.write(json.dumps({"step": step, **gap}) + "\n")
        log.info(
            "step %d camera gap: %s",
            step,
            {k: round(v, 4) for k, v in gap.items() if k.startswith("camera_gap@")},
        )
