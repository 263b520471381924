"""Sample videos during training: every N steps, a video generated along a training clip's trajectory
from its first frame, beside the ground truth, with the camera trajectory drawn.

Logged to W&B (``media/sample``: GT | generated as a ``wandb.Video``; ``media/trajectory``: the plot as a
``wandb.Image``) when the trainer has a WandbLogger -- online or offline, so an offline run holds the media
for ``wandb sync``. Whatever the logger, the mp4 and PNG are also written to ``<run dir>/media/``. Runs on
global rank 0 only, with its own seeded generator (training randomness is untouched), in eval mode and
without gradients; a failure is logged as a warning and training goes on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger

from vid3d.data.frames import as_unit_range

log = logging.getLogger(__name__)


class TrainingMediaLogger(L.Callback):
    """Args: every_n_steps (0 disables); num_steps: ODE steps of the sampler (few: it is a preview);
    guidance: constant CFG scale (1.0: no unconditional pass); fps; out_dir: where files go (default
    ``trainer.default_root_dir/media``); seed: the preview noise."""

    def __init__(
        self,
        every_n_steps: int = 500,
        num_steps: int = 8,
        guidance: float = 1.0,
        fps: int = 6,
        out_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.every_n_steps, self.num_steps = int(every_n_steps), int(num_steps)
        self.guidance, self.fps, self.seed = float(guidance), int(fps), int(seed)
        self.out_dir = out_dir
        self.logged_steps: list[int] = []

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = int(trainer.global_step)
        if self.every_n_steps <= 0 or step % self.every_n_steps or not trainer.is_global_zero:
            return
        if step in self.logged_steps or not isinstance(batch, dict) or "frames" not in batch:
            return
        try:
            self.log_media(trainer, pl_module.model, batch, step)
        except Exception as e:  # noqa: BLE001 - a preview must never stop training
            log.warning("training media at step %d failed: %s: %s", step, type(e).__name__, e)

    @torch.no_grad()
    def render(self, model: torch.nn.Module, batch: dict) -> tuple[np.ndarray, np.ndarray]:
        """(side-by-side GT | generated video (F, H, 2W, 3) uint8, trajectory plot (S, S, 3) uint8)."""
        from vid3d.sampling.video_sampler import VideoSampler, to_uint8
        from vid3d.viz import plot_trajectory, side_by_side

        frames = as_unit_range(batch["frames"][:1]).float()
        K_px, c2w = batch["K_px"][:1].float(), batch["c2w"][:1].float()
        dev = next(model.parameters()).device
        gen = torch.Generator(device=dev).manual_seed(self.seed)
        sampler = VideoSampler(
            num_steps=self.num_steps, guidance_min=self.guidance, guidance_max=self.guidance
        )
        was_training = model.training
        model.eval()
        try:
            pdtype = next(model.parameters()).dtype
            with torch.autocast(dev.type, dtype=pdtype, enabled=pdtype != torch.float32):
                video = sampler(model, frames[:, 0].to(dev), K_px.to(dev), c2w.to(dev), generator=gen)
        finally:
            model.train(was_training)
        gt = to_uint8(frames[0].cpu())
        gen_u8 = to_uint8(video[0].float().cpu())
        both = side_by_side([gt, gen_u8], gap=4, labels=["ground truth", "generated"], frame_numbers=True)
        plot = plot_trajectory({"trajectory": c2w[0].cpu()}, title="camera trajectory", size_px=256)
        return both, plot

    def log_media(self, trainer: Any, model: torch.nn.Module, batch: dict, step: int) -> None:
        from vid3d.viz import write_video

        both, plot = self.render(model, batch)
        out = Path(self.out_dir or Path(trainer.default_root_dir) / "media")
        out.mkdir(parents=True, exist_ok=True)
        write_video(out / f"step_{step:07d}.mp4", both, fps=self.fps)
        import imageio.v3 as iio

        from vid3d.atomic import atomic_target

        with atomic_target(out / f"step_{step:07d}_trajectory.png") as tmp:
            iio.imwrite(tmp, plot, extension=".png")
        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                import wandb

                clip = batch.get("clip_id", ["?"])[0]
                lg.experiment.log(
                    {
                        "media/sample": wandb.Video(
                            np.ascontiguousarray(both.transpose(0, 3, 1, 2)),
                            fps=self.fps,
                            format="mp4",
                            caption=f"step {step}, {clip}: ground truth | generated",
                        ),
                        "media/trajectory": wandb.Image(plot, caption=f"{clip} camera trajectory"),
                        "trainer/global_step": step,
                    }
                )
        self.logged_steps.append(step)
