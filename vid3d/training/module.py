"""LightningModule wrapping a camera-controlled video diffusion model for training."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch import nn

from vid3d.models.freeze import apply_freeze_policy


def linear_warmup(warmup_steps: int) -> Callable[[int], float]:
    """LR multiplier rising linearly from 1/warmup_steps to 1 over ``warmup_steps`` steps, then 1."""

    def factor(step: int) -> float:
        return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)

    return factor


class CameraDiffusionModule(L.LightningModule):
    """Trains ``model.training_loss`` (EDM denoising loss) on the parameters the freeze policy leaves on.

    Args:
        model: a ``vid3d.models.video_diffusion.CameraVideoDiffusion``.
        optimizer: partial optimiser factory (Hydra ``_partial_: true``), called with the trainable params.
        trainable: freeze-policy groups that train (e.g. ``[camera_encoder, epipolar, temporal]``).
        warmup_steps: linear learning-rate warm-up length in optimiser steps.
        seed: noise and σ for step ``k`` come from a generator seeded with ``(seed, k)``, so the loss of a
            step does not depend on how many steps ran in this process (exact resume).
        model_config: the composed model config (plain dict), stored in checkpoints so sample/eval can
            rebuild the model; frozen weights are referenced by it, not copied.
        gradient_checkpointing: recompute the UNet's block activations in the backward pass
            (``CameraVideoDiffusion.enable_gradient_checkpointing``: diffusers' checkpointed blocks, with the
            camera state restored on recomputation): less activation memory, ~30% more compute.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        trainable: Sequence[str] = ("camera_encoder", "epipolar", "temporal"),
        warmup_steps: int = 0,
        seed: int = 0,
        model_config: dict | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.warmup_steps = warmup_steps
        self.seed = seed
        self.model_config = model_config or {}
        # [H, W, frames] of the training clips (set by tasks/train.py): stored in checkpoints, so an export
        # records the size the model was trained at
        self.train_size: list[int] | None = None
        self.trainable_groups = apply_freeze_policy(model, list(trainable))
        self.strict_loading = False  # checkpoints hold only trained weights
        self._t_last: float | None = None
        self.gradient_checkpointing = bool(gradient_checkpointing)
        if self.gradient_checkpointing:
            model.enable_gradient_checkpointing()

    def trainable_names(self) -> set[str]:
        return {f"model.{n}" for names in self.trainable_groups.values() for n in names}

    def _step_generator(self) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.seed * 1_000_003 + int(self.global_step))
        return gen

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, logs = self.model.training_loss(batch, generator=self._step_generator())
        bsz = batch["frames"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bsz)
        for k, v in logs.items():
            self.log(f"train/{k}", v, batch_size=bsz)
        now = time.perf_counter()
        if self._t_last is not None:
            self.log("train/samples_per_s", bsz / max(now - self._t_last, 1e-9), batch_size=bsz)
        self._t_last = now
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        norms = [
            p.grad.detach().norm() for g in optimizer.param_groups for p in g["params"] if p.grad is not None
        ]
        if norms:
            self.log("train/grad_norm", torch.stack(norms).norm())
        self.log("train/lr", optimizer.param_groups[0]["lr"])

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the freeze policy left no trainable parameters; check `module.trainable`")
        opt = self.optimizer_factory(params=params)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_warmup(self.warmup_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        keep = self.trainable_names()
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        checkpoint["vid3d"] = {"model_config": self.model_config, "trainable": sorted(keep)}
        if self.train_size:
            checkpoint["vid3d"]["image_size"] = [int(v) for v in self.train_size[:2]]
            checkpoint["vid3d"]["num_frames"] = int(self.train_size[2])

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        trainer = getattr(self, "_trainer", None)
        where = str(getattr(trainer, "ckpt_path", None) or "resumed checkpoint")
        if trainer is not None:
            # before Lightning restores callbacks: trainer/callback state is schema-checked data, and the
            # checkpoint paths in it are kept only inside the run's checkpoint folder
            from vid3d.training.checkpoint_state import check_resumed_state

            check_resumed_state(checkpoint, list(trainer.callbacks), where)
        stored = checkpoint.get("vid3d", {}).get("model_config")
        if stored:  # resume: a checkpoint whose config is not a vid3d model is refused
            from vid3d.models.schema import validate_model_config

            validate_model_config(stored, where)
        if "state_dict" not in checkpoint:  # DeepSpeed restores the module weights itself
            return
        missing = self.trainable_names() - set(checkpoint["state_dict"])
        if missing:
            raise ValueError(
                f"checkpoint lacks trained weights {sorted(missing)[:5]} (different model config?)"
            )
