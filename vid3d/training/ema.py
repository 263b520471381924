"""Exponential moving average (EMA) of the trainable weights, as a Lightning callback.

shadow <- decay * shadow + (1 - decay) * weight after every optimiser step (from ``start_step``), kept in
float32 on the weights' device. The shadow is written into checkpoints as ``ema_state_dict`` (same
``model.``-prefixed names as ``state_dict``, trained weights only), restored on resume, and preferred by
``vid3d.models.checkpoint.load_model`` (sampling / evaluation) when present. ``decay`` warms up as
min(decay, (1 + n) / (10 + n)) over the first updates n so early shadows are not dominated by the init.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from vid3d.models.checkpoint import EMA_KEY


class EMACallback(L.Callback):
    def __init__(self, decay: float = 0.9999, start_step: int = 0, warmup: bool = True) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.start_step, self.warmup = float(decay), int(start_step), bool(warmup)
        self.shadow: dict[str, torch.Tensor] = {}
        self.num_updates = 0
        self._last_step = -1

    @staticmethod
    def _trainable(pl_module: L.LightningModule) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in pl_module.named_parameters() if p.requires_grad}

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    def on_fit_start(self, trainer: Any, pl_module: L.LightningModule) -> None:
        params = self._trainable(pl_module)
        if not self.shadow:
            self.shadow = {n: p.detach().float().clone() for n, p in params.items()}
        else:  # restored from a checkpoint: move next to the weights
            self.shadow = {n: t.to(params[n].device, torch.float32) for n, t in self.shadow.items()}

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Any, pl_module: L.LightningModule, *args: Any) -> None:
        step = int(trainer.global_step)
        if step == self._last_step or step <= self.start_step:  # accumulating, or not started
            return
        self._last_step = step
        d = self.current_decay()
        for n, p in self._trainable(pl_module).items():
            self.shadow[n].lerp_(p.detach().float(), 1.0 - d)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.num_updates = int(state_dict.get("num_updates", 0))

    def on_save_checkpoint(self, trainer: Any, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[EMA_KEY] = {n: t.detach().clone() for n, t in self.shadow.items()}

    def on_load_checkpoint(self, trainer: Any, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if EMA_KEY in checkpoint:
            self.shadow = {n: t.float() for n, t in checkpoint[EMA_KEY].items()}
        self._last_step = int(checkpoint.get("global_step", -1))
