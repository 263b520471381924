"""What the camera input changes, as pictures: one clip denoised in one step with different cameras.

At a noise level where the frames are hidden (σ = 5 by default), the denoiser's estimate D(x0 + σ n) of a
clip, with the same noise for every camera variant, is decoded to pixels. A model that follows its camera
has the smallest error with the clip's own cameras; one that ignores it gives the same estimate whatever the
cameras. Used by the positive control (``vid3d.evaluation.positive_control``) and by
``experiments/cpu_camera_control/show_camera_effect.py`` for a trained checkpoint.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vid3d.atomic import atomic_write_bytes


@torch.no_grad()
def one_step_estimates(
    model: Any,
    frames: torch.Tensor,
    cameras: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    sigma: float = 5.0,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Decoded one-step estimates of one clip with each camera set.

    Args:
        model: a ``CameraVideoDiffusion``.
        frames: (F, 3, H, W) in [-1, 1], the clip.
        cameras: {name: (K_px (F, 3, 3), c2w (F, 4, 4) OpenCV camera-to-world)}.
        sigma: the noise level (EDM latent scale); the same noise for every camera set.
    Returns:
        ({name: decoded estimate (F, 3, H, W)}, {name: latent mean squared error against the clip's latents}).
    """
    model.eval()
    x0 = model.encode(frames[None], generator=generator)
    cond = model.conditioning(frames[None, 0], train=False, generator=generator)
    x = x0 + sigma * torch.randn(x0.shape, generator=generator)
    decoded, errors = {}, {}
    for name, (K, c2w) in cameras.items():
        cams = model.prepare_cameras(K[None], c2w[None], x0.shape[-2:], image_hw=frames.shape[-2:])
        d = model.denoise(x, torch.full((1,), float(sigma)), {**cond, **cams})
        decoded[name] = model.decode(d)[0]
        errors[name] = float((d - x0).pow(2).mean())
    return decoded, errors


def strip(x: torch.Tensor) -> np.ndarray:
    """(F, 3, H, W) in [-1, 1] -> (H, F * W, 3) uint8: the frames left to right."""
    f, _, h, w = x.shape
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(2, 0, 3, 1).reshape(h, f * w, 3).numpy()


def error_strip(estimate: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """|estimate - truth| x 3 as a strip (black = exact; both (F, 3, H, W) in [-1, 1])."""
    return strip((estimate - truth).abs() * 3 - 1)


def panel(truth: torch.Tensor, decoded: Mapping[str, torch.Tensor]) -> np.ndarray:
    """Rows: the ground truth, each estimate, then each estimate's error (``error_strip``)."""
    rows = [strip(truth), *(strip(e) for e in decoded.values())]
    rows += [error_strip(e, truth) for e in decoded.values()]
    return np.concatenate(rows)


ROW_LABELS = (
    "ground truth",
    "estimate, own cameras",
    "estimate, other clip's cameras",
    "|error| x3, own cameras",
    "|error| x3, other's cameras",
)


@torch.no_grad()
def save_camera_effect(model: Any, clips: list[dict], path: Path, sigma: float = 5.0) -> dict:
    """PNG figure for the clip moving most to the left and the one moving most to the right (by frame 1's
    camera x): an image panel per clip (rows ``ROW_LABELS``: ground truth, the one-step estimate at ``sigma``
    with its own cameras and with the other clip's, then each estimate's error), frames left to right, and a
    plot of the per-frame mean absolute error with own vs other cameras.

    Args:
        clips: samples {"frames" (F, 3, H, W) in [-1, 1], "c2w" (F, 4, 4), "K_px" (F, 3, 3)}.
    Returns {"rows": ROW_LABELS, "frames": F, "clips": [{"speed": v, "error_own": [F], "error_other": [F]}]}
    (errors in [-1, 1] pixel units, mean over pixels and channels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    speeds = [float(c["c2w"][1, 0, 3]) for c in clips]
    pair = [clips[int(np.argmin(speeds))], clips[int(np.argmax(speeds))]]
    g = torch.Generator().manual_seed(0)
    panels, record = [], []
    for i, clip in enumerate(pair):
        other = pair[1 - i]
        decoded, _ = one_step_estimates(
            model,
            clip["frames"],
            {"own": (clip["K_px"], clip["c2w"]), "other": (other["K_px"], other["c2w"])},
            sigma,
            g,
        )
        panels.append(panel(clip["frames"], decoded))
        err = [(e - clip["frames"]).abs().mean(dim=(1, 2, 3)).tolist() for e in decoded.values()]
        record.append({"speed": float(clip["c2w"][1, 0, 3]), "error_own": err[0], "error_other": err[1]})

    f, _, h, w = pair[0]["frames"].shape
    fig = Figure(figsize=(13, 5.2), dpi=100)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 0.8]})
    for ax, pic, rec in zip(axes[:2], panels, record, strict=True):
        ax.imshow(pic, interpolation="nearest")
        ax.set_title(
            f"clip moving {'left' if rec['speed'] < 0 else 'right'} (camera x {rec['speed']:+.2f}/frame)",
            fontsize=10,
        )
        ax.set_xticks([(k + 0.5) * w - 0.5 for k in range(f)], [str(k) for k in range(f)])
        ax.set_xlabel("frame")
        ax.set_yticks([(r + 0.5) * h - 0.5 for r in range(len(ROW_LABELS))], ROW_LABELS, fontsize=8)
    axes[1].set_yticklabels([])
    ax = axes[2]
    for rec, color in zip(record, ("tab:blue", "tab:orange"), strict=True):
        side = "left" if rec["speed"] < 0 else "right"
        ax.plot(range(f), rec["error_own"], "-o", color=color, label=f"moving {side}: own cameras")
        ax.plot(
            range(f), rec["error_other"], "--s", color=color, label=f"moving {side}: other clip's cameras"
        )
    ax.set_xticks(range(f))
    ax.set_xlabel("frame")
    ax.set_ylabel("mean |estimate - ground truth| (pixels in [-1, 1])")
    ax.set_title("mean error per frame", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle(
        f"Camera effect: one-step denoising at sigma {sigma:g} of held-out toy clips, with each "
        "clip's own cameras and with the other clip's",
        fontsize=11,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    atomic_write_bytes(path, buf.getvalue())
    return {"rows": list(ROW_LABELS), "frames": f, "clips": record}
