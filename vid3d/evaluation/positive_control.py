"""Positive control for camera learning (issue 14): clips whose motion is set by the camera alone.

    python -m vid3d.evaluation.positive_control [--encoder plucker] [--steps 3000] [--out DIR] [...]

Every clip is a smooth random pattern (sums of sinusoids) seen by a camera translating sideways at a random
speed v (-1..1 scene units per frame, identity rotation): frame k is frame 0 shifted by round(p v k) pixels,
p = ``--pixels-per-unit`` (default 6: up to 18 px by frame 3; 2 keeps every step within one latent pixel at
pixel factor 2). Nothing but the camera tells the model which way and how far the content moves, so a model
that uses its camera input must show a camera gap (``camera_gap.py``) above 1 on held-out clips; the SVD
architecture (tiny, random init, every weight trains) is the one the CPU recipes use. Prints the gap and the
denoising error every ``--every`` steps. ``--out DIR`` also writes ``toy_shift.json`` (every printed row)
and ``camera_effect.png`` (``camera_effect.save_camera_effect``).

Fast recipe (the camera is learned in ~200 steps, ~1.5 CPU minutes): ``--pixels-per-unit 2 --p-mean 1.6
--p-std 0.3`` (training noise sigma ~ 3..8, where the motion is hidden and only the camera explains it).
Results and the commands that reproduce them: experiments/cpu_camera_control/README.md.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vid3d.atomic import atomic_write_json

from .camera_effect import save_camera_effect
from .camera_gap import measure_camera_gap

H, W, F = 32, 48, 4
PIXELS_PER_UNIT = 6.0
FOCAL_PX = 40.0
GAP_COLUMNS = ("error_own@1", "error_own@5", "camera_gap@1", "camera_gap@5", "camera_gap_static@5")


def toy_clip(rng: np.random.Generator, pixels_per_unit: float = PIXELS_PER_UNIT) -> dict[str, torch.Tensor]:
    """{"frames" (F, 3, H, W) in [-1, 1], "c2w" (F, 4, 4) OpenCV camera-to-world, "K_px" (F, 3, 3)}."""
    if not 0 < pixels_per_unit <= PIXELS_PER_UNIT:
        raise ValueError(f"pixels_per_unit must be in (0, {PIXELS_PER_UNIT}], got {pixels_per_unit}")
    yy, xx = np.mgrid[0:H, 0 : W + 40]
    phase, freq = rng.uniform(0, 6, 3), rng.uniform(0.1, 0.3, 3)
    pattern = np.stack([0.8 * np.sin(xx * freq[c] + phase[c]) for c in range(3)]) * np.cos(yy * 0.1)[None]
    v = rng.uniform(-1, 1)
    shifts = np.round(np.arange(F) * v * pixels_per_unit).astype(int)  # |shift| <= 18 < 20 px margin
    frames = np.stack([pattern[:, :, 20 + s : 20 + s + W] for s in shifts])
    c2w = np.tile(np.eye(4), (F, 1, 1))
    c2w[:, 0, 3] = np.arange(F) * v  # the camera moves +x: the content moves left in the image
    K = np.array([[FOCAL_PX, 0, W / 2], [0, FOCAL_PX, H / 2], [0, 0, 1]])
    return {
        "frames": torch.tensor(frames, dtype=torch.float32),
        "c2w": torch.tensor(c2w, dtype=torch.float32),
        "K_px": torch.tensor(np.broadcast_to(K, (F, 3, 3)).copy(), dtype=torch.float32),
    }


def toy_model(
    encoder: str = "plucker",
    pixel_factor: int = 2,
    p_mean: float = -0.4,
    p_std: float = 1.6,
    high_fraction: float = 0.0,
) -> Any:
    """The tiny random-init SVD-architecture ``CameraVideoDiffusion`` the CPU recipes train (seeded)."""
    torch.manual_seed(0)
    from vid3d.models.backbone import build_tiny_backbone
    from vid3d.models.vae import PixelUnshuffleAutoencoder
    from vid3d.models.video_diffusion import CameraVideoDiffusion

    backbone = build_tiny_backbone(
        vae=functools.partial(PixelUnshuffleAutoencoder, pixel_factor),
        unet_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=32,
        seed=0,
    )
    return CameraVideoDiffusion(
        backbone,
        camera_encoder=encoder,
        P_mean=p_mean,
        P_std=p_std,
        sigma_high_fraction=high_fraction,
        name=encoder,
    )


def train_positive_control(
    model: Any,
    steps: int,
    every: int,
    lr: float = 1e-3,
    batch: int = 4,
    pixels_per_unit: float = PIXELS_PER_UNIT,
    on_row: Callable[[dict], None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Train ``model`` on fresh toy clips for ``steps`` Adam steps; the camera gap on 8 held-out toy clips
    at σ 1 and 5 at step 0, every ``every`` steps and at the end.

    Returns (rows [{"step", "seconds", **measure_camera_gap(...)}], the held-out clips); ``on_row`` sees
    each row as it is measured."""
    rng = np.random.default_rng(0)
    held_out = [toy_clip(rng, pixels_per_unit) for _ in range(8)]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen, t0 = torch.Generator().manual_seed(1), time.perf_counter()
    rows: list[dict] = []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            gap = measure_camera_gap(model, held_out, (1.0, 5.0), seed=0)
            rows.append({"step": step, "seconds": round(time.perf_counter() - t0, 1), **gap})
            if on_row is not None:
                on_row(rows[-1])
        if step == steps:
            break
        clips = [toy_clip(rng, pixels_per_unit) for _ in range(batch)]
        model.train()
        loss, _ = model.training_loss(
            {k: torch.stack([c[k] for c in clips]) for k in clips[0]}, generator=gen
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return rows, held_out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", default="plucker", choices=["plucker", "rt"])
    p.add_argument("--pixel-factor", type=int, default=2)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--every", type=int, default=200)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--pixels-per-unit", type=float, default=PIXELS_PER_UNIT)
    p.add_argument("--p-mean", type=float, default=-0.4, help="training ln(sigma) mean")
    p.add_argument("--p-std", type=float, default=1.6, help="training ln(sigma) std (0: one sigma)")
    p.add_argument("--high-fraction", type=float, default=0.0, help="share of sigmas from N(1.6, 0.3^2)")
    p.add_argument("--out", type=Path, default=None, help="write toy_shift.json and camera_effect.png here")
    a = p.parse_args(argv)
    if a.steps < 0 or a.every < 1:
        p.error(f"--steps must be >= 0 and --every >= 1, got {a.steps} and {a.every}")
    torch.set_num_threads(1)
    model = toy_model(a.encoder, a.pixel_factor, a.p_mean, a.p_std, a.high_fraction)

    def show(row: dict) -> None:
        print(
            f"step {row['step']:5d} {row['seconds']:6.0f}s "
            + " ".join(f"{k}={row[k]:.4f}" for k in GAP_COLUMNS),
            flush=True,
        )

    rows, held_out = train_positive_control(model, a.steps, a.every, a.lr, a.batch, a.pixels_per_unit, show)
    if a.out is not None:
        atomic_write_json(
            a.out / "toy_shift.json", {"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows}
        )
        save_camera_effect(model, held_out, a.out / "camera_effect.png")
        print(f"wrote {a.out / 'toy_shift.json'} and {a.out / 'camera_effect.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
