"""Lightning's progress bar replaced by one counted in optimiser steps against the run's total.

Lightning's default bar counts batches of an epoch (``Epoch 0/-2`` with ``max_epochs=-1``) and, where stdout
is not a terminal, shows nothing until it closes. ``StepProgress`` counts ``trainer.global_step`` against
``max_steps`` (or the steps the epochs give): a tqdm bar on a terminal, and in a log a plain line
(``train 240/2000 (12.0%) | 8.00 step/s | elapsed 0:00:30 | ETA 0:03:40 | epoch 0, train/loss 0.1234``)
every ``every_n`` steps / ``every_s`` seconds (vid3d/progress.py; ``progress.*`` settings). Rank zero only.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from lightning.pytorch.callbacks.progress import ProgressBar

from vid3d.progress import Progress, settings

__all__ = ["StepProgress", "total_steps"]

DEFAULT_EVERY_N = 50


def total_steps(trainer: Any) -> int | None:
    """Optimiser steps the fit will end at: ``max_steps`` when set, else what the epochs give; None when
    unbounded (``max_steps=-1, max_epochs=-1``)."""
    if trainer.max_steps is not None and trainer.max_steps > 0:
        return int(trainer.max_steps)
    try:
        total = float(trainer.estimated_stepping_batches)
    except Exception:  # no dataloader length (iterable dataset)
        return None
    return int(total) if math.isfinite(total) else None


class StepProgress(ProgressBar):
    """The training progress bar/lines (see module docstring).

    Args:
        every_n: a line every N steps; None: ``progress.every_n``, else 50.
    """

    def __init__(self, every_n: int | None = None) -> None:
        super().__init__()
        self.every_n = every_n
        self._enabled = True
        self.progress: Progress | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.write(" ".join(str(a) for a in args))
        else:
            print(*args, **kwargs, flush=True)

    def _note(self, trainer: Any, pl_module: Any) -> str:
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        parts = [f"epoch {trainer.current_epoch}"]
        for k, v in metrics.items():
            parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
        return ", ".join(parts)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        opts = settings() if self.every_n is None else replace(settings(), every_n=self.every_n)
        self.progress = Progress("train", total_steps(trainer), unit="step", start=trainer.global_step,
                                 default_every_n=DEFAULT_EVERY_N, opts=opts)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        p = self.progress
        if p is not None and trainer.global_step != p.count:  # an optimiser step (not an accumulation)
            p.set(trainer.global_step, note=self._note(trainer, pl_module))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)
