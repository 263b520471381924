"""Positive control for camera learning (issue 14): clips whose motion is set by the camera alone.

    python experiments/cpu_camera_control/toy_shift.py [--encoder plucker] [--pixel-factor 2] [--steps 3000]

Every clip is a smooth random pattern (sums of sinusoids) seen by a camera translating sideways at a random
speed v (-1..1 scene units per frame, identity rotation): frame k is frame 0 shifted by round(p v k) pixels,
p = ``--pixels-per-unit`` (default 6: up to 18 px by frame 3; 2 keeps every step within one latent pixel at
pixel factor 2).
Nothing but the camera tells the model which way and how far the content moves, so a model that uses its
camera input must show a camera gap (vid3d/evaluation/camera_gap.py) above 1 on held-out clips; the SVD
architecture (tiny, random init, every weight trains) is the one the CPU recipes use. Prints the gap and
the denoising error every ``--every`` steps. ``--out DIR`` also writes ``toy_shift.json`` (every printed
row) and ``camera_effect.png``: for held-out clips moving left and right, the ground truth, the model's
one-step estimate at sigma 5 with the clip's own cameras and with the other clip's, and the two
estimates' errors (frames left to right), beside a plot of the error per frame with own vs other cameras: a
model that follows its camera has the darker error row and the lower curve with its own cameras.

Fast recipe (the camera is learned in ~200 steps, ~1.5 CPU minutes): ``--pixels-per-unit 2 --p-mean 1.6
--p-std 0.3`` (training noise sigma ~ 3..8, where the motion is hidden and only the camera explains it).
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import time
from pathlib import Path

import numpy as np
import torch

H, W, F = 32, 48, 4
PIXELS_PER_UNIT = 6.0
FOCAL_PX = 40.0


def toy_clip(rng: np.random.Generator, pixels_per_unit: float = PIXELS_PER_UNIT) -> dict[str, torch.Tensor]:
    """{"frames" (F, 3, H, W) in [-1, 1], "c2w" (F, 4, 4) OpenCV camera-to-world, "K_px" (F, 3, 3)}."""
    yy, xx = np.mgrid[0:H, 0 : W + 40]
    phase, freq = rng.uniform(0, 6, 3), rng.uniform(0.1, 0.3, 3)
    pattern = np.stack([0.8 * np.sin(xx * freq[c] + phase[c]) for c in range(3)]) * np.cos(yy * 0.1)[None]
    v = rng.uniform(-1, 1)
    if not 0 < pixels_per_unit <= PIXELS_PER_UNIT:
        raise ValueError(f"pixels_per_unit must be in (0, {PIXELS_PER_UNIT}], got {pixels_per_unit}")
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
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from vid3d.evaluation.camera_gap import measure_camera_gap
    from vid3d.models.backbone import build_tiny_backbone
    from vid3d.models.vae import PixelUnshuffleAutoencoder
    from vid3d.models.video_diffusion import CameraVideoDiffusion

    backbone = build_tiny_backbone(
        vae=functools.partial(PixelUnshuffleAutoencoder, a.pixel_factor),
        unet_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=32,
        seed=0,
    )
    model = CameraVideoDiffusion(
        backbone,
        camera_encoder=a.encoder,
        P_mean=a.p_mean,
        P_std=a.p_std,
        sigma_high_fraction=a.high_fraction,
        name=a.encoder,
    )
    rng = np.random.default_rng(0)
    held_out = [toy_clip(rng, a.pixels_per_unit) for _ in range(8)]
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    gen, t0 = torch.Generator().manual_seed(1), time.perf_counter()
    rows = []
    for step in range(a.steps + 1):
        if step % a.every == 0 or step == a.steps:
            gap = measure_camera_gap(model, held_out, (1.0, 5.0), seed=0)
            cols = ("error_own@1", "error_own@5", "camera_gap@1", "camera_gap@5", "camera_gap_static@5")
            print(
                f"step {step:5d} {time.perf_counter() - t0:6.0f}s "
                + " ".join(f"{k}={gap[k]:.4f}" for k in cols),
                flush=True,
            )
            rows.append({"step": step, "seconds": round(time.perf_counter() - t0, 1), **gap})
        if step == a.steps:
            break
        clips = [toy_clip(rng, a.pixels_per_unit) for _ in range(a.batch)]
        batch = {k: torch.stack([c[k] for c in clips]) for k in clips[0]}
        model.train()
        loss, _ = model.training_loss(batch, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "toy_shift.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()},
                                                          "rows": rows}, indent=1))
        save_camera_effect(model, held_out, a.out / "camera_effect.png")
        print(f"wrote {a.out / 'toy_shift.json'} and {a.out / 'camera_effect.png'}")
    return 0


ROW_LABELS = (
    "ground truth",
    "estimate, own cameras",
    "estimate, other clip's cameras",
    "|error| x3, own cameras",
    "|error| x3, other's cameras",
)


@torch.no_grad()
def save_camera_effect(model, clips: list[dict], path: Path, sigma: float = 5.0) -> dict:
    """PNG figure: for the held-out clip moving most to the left and the one moving most to the right, an
    image panel with rows = ground truth, the one-step estimate at ``sigma`` with its own cameras and with
    the other clip's, then each estimate's error |estimate - ground truth| x 3 (black = exact), frames left
    to right; and a plot of the per-frame mean absolute error with own vs other cameras (a model that
    follows its camera has the lower own-camera curve and the darker own-camera error row).

    Returns {"rows": ROW_LABELS, "frames": F, "clips": [{"speed": v, "error_own": [F], "error_other": [F]}]}
    (errors in [-1, 1] pixel units, mean over pixels and channels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from vid3d.atomic import atomic_write_bytes

    def strip(x: torch.Tensor) -> np.ndarray:  # (F, 3, H, W) in [-1, 1] -> (H, F * W, 3) uint8
        return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(2, 0, 3, 1).reshape(H, -1, 3).numpy()

    speeds = [float(c["c2w"][1, 0, 3]) for c in clips]
    pair = [clips[int(np.argmin(speeds))], clips[int(np.argmax(speeds))]]
    model.eval()
    g = torch.Generator().manual_seed(0)
    panels, record = [], []
    for i, clip in enumerate(pair):
        frames = clip["frames"][None]
        x0 = model.encode(frames, generator=g)
        cond = model.conditioning(frames[:, 0], train=False, generator=g)
        x = x0 + sigma * torch.randn(x0.shape, generator=g)
        est = []
        for cam_clip in (clip, pair[1 - i]):
            cams = model.prepare_cameras(cam_clip["K_px"][None], cam_clip["c2w"][None], x0.shape[-2:],
                                         image_hw=frames.shape[-2:])
            est.append(model.decode(model.denoise(x, torch.full((1,), sigma), {**cond, **cams}))[0])
        gt = frames[0]
        rows = [strip(gt), *(strip(e) for e in est), *(strip((e - gt).abs() * 3 - 1) for e in est)]
        panels.append(np.concatenate(rows))
        err = [(e - gt).abs().mean(dim=(1, 2, 3)).tolist() for e in est]
        record.append({"speed": float(clip["c2w"][1, 0, 3]), "error_own": err[0], "error_other": err[1]})

    fig = Figure(figsize=(13, 5.2), dpi=100)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 0.8]})
    f = len(pair[0]["frames"])
    for ax, panel, rec in zip(axes[:2], panels, record):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(f"clip moving {'left' if rec['speed'] < 0 else 'right'} "
                     f"(camera x {rec['speed']:+.2f}/frame)", fontsize=10)
        ax.set_xticks([(k + 0.5) * W - 0.5 for k in range(f)], [str(k) for k in range(f)])
        ax.set_xlabel("frame")
        ax.set_yticks([(r + 0.5) * H - 0.5 for r in range(len(ROW_LABELS))], ROW_LABELS, fontsize=8)
    axes[1].set_yticklabels([])
    ax = axes[2]
    for rec, color in zip(record, ("tab:blue", "tab:orange")):
        side = "left" if rec["speed"] < 0 else "right"
        ax.plot(range(f), rec["error_own"], "-o", color=color, label=f"moving {side}: own cameras")
        ax.plot(range(f), rec["error_other"], "--s", color=color,
                label=f"moving {side}: other clip's cameras")
    ax.set_xticks(range(f))
    ax.set_xlabel("frame")
    ax.set_ylabel("mean |estimate - ground truth| (pixels in [-1, 1])")
    ax.set_title("mean error per frame", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle(f"Camera effect: one-step denoising at sigma {sigma:g} of held-out toy clips, with each "
                 "clip's own cameras and with the other clip's", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    atomic_write_bytes(path, buf.getvalue())
    return {"rows": list(ROW_LABELS), "frames": f, "clips": record}


if __name__ == "__main__":
    raise SystemExit(main())
