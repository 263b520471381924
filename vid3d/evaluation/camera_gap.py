"""Camera sensitivity: does a model use its camera input at all?

On held-out clips, the denoiser's error at fixed noise levels σ with each clip's **own** cameras is
compared with the error on the same clips with the cameras of **another** clip (a cyclic shift of the
clips: clip i gets clip i+1's intrinsics and camera-to-world poses) and with a **static** camera (every
frame at frame 0's pose). Latents, conditioning and noise are identical in the three variants, so the
only difference is the camera input:

    error_v(σ)           = mean over clips, frames, latent pixels of ‖D(x0 + σ n; σ, c, cameras_v) − x0‖²
    camera_gap@σ         = error_permuted(σ) / error_own(σ)
    camera_gap_static@σ  = error_static(σ) / error_own(σ)

A gap above 1 means the clip's own cameras help the denoiser; exactly 1 means the camera input does not
reach the output (``model=svd``, or a camera encoder whose output is zero). This is a first signal that
the camera path is used, long before samples look right. σ is in the EDM latent scale (x0 in [-1, 1]
pixels scaled by the VAE's scaling factor); ``DEFAULT_SIGMAS`` spans detail (0.2), structure (1) and
layout (5).

The same measurement takes two more camera variants (``DIRECTION_VARIANTS``, issue 14), which ask whether
a model knows WHICH WAY its camera moves or only HOW MUCH: **mirrored** (every pose relative to frame 0
conjugated by diag(-1, 1, 1): the same distances and angles, the sideways motion and the turns reversed)
and **reversed** (every pose relative to frame 0 inverted: the same magnitude, the opposite motion). A
model that only knows the amount of motion reads the same error with them as with its own cameras.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from vid3d.data.frames import as_unit_range

from . import tables

DEFAULT_SIGMAS = (0.2, 1.0, 5.0)
VARIANTS = ("own", "permuted", "static")
DIRECTION_VARIANTS = ("own", "mirrored", "reversed", "permuted", "static")
ALL_VARIANTS = DIRECTION_VARIANTS


def camera_variants(
    K_px: torch.Tensor, c2w: torch.Tensor, variants: Sequence[str] = VARIANTS
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The cameras of each variant (module docstring) for a batch of clips.

    Args:
        K_px: (B, F, 3, 3) pixel intrinsics; c2w: (B, F, 4, 4) OpenCV camera-to-world.
        variants: names from ``ALL_VARIANTS``; "permuted" gives clip i clip i+1's cameras (B >= 2).
    Returns:
        {variant: (K_px (B, F, 3, 3), c2w (B, F, 4, 4))}; frame 0's pose is unchanged except in "permuted".
    """
    unknown = [v for v in variants if v not in ALL_VARIANTS]
    if unknown:
        raise ValueError(f"unknown camera variant(s) {unknown}; choose from {list(ALL_VARIANTS)}")
    b = c2w.shape[0]
    first = c2w[:, :1]
    rel = torch.linalg.inv(first) @ c2w  # poses relative to frame 0 (frame 0 = identity)
    m = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=c2w.dtype, device=c2w.device))
    shift = torch.roll(torch.arange(b, device=c2w.device), -1)  # clip i takes clip i+1's cameras
    make = {
        "own": lambda: (K_px, c2w),
        "mirrored": lambda: (K_px, first @ (m @ rel @ m)),
        "reversed": lambda: (K_px, first @ torch.linalg.inv(rel)),
        "permuted": lambda: (K_px[shift], c2w[shift]),
        "static": lambda: (K_px, first.expand_as(c2w)),
    }
    return {v: make[v]() for v in variants}


def _key(variant: str, sigma: float) -> str:
    return f"{variant}@{sigma:g}"


@torch.no_grad()
def camera_gap_errors(
    model: Any,
    batch: Mapping[str, torch.Tensor],
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    seed: int = 0,
    variants: Sequence[str] = VARIANTS,
) -> dict[str, torch.Tensor]:
    """Per-clip denoising errors for the camera variants (default: own, permuted, static).

    Args:
        model: a ``CameraVideoDiffusion`` (any camera encoder / attention, ``svd`` included).
        batch: {"frames": (B, F, 3, H, W) in [-1, 1] (or uint8 0..255), "K_px": (B, F, 3, 3) pixel
            intrinsics, "c2w": (B, F, 4, 4) OpenCV camera-to-world}; B >= 2 (cameras are permuted across
            clips).
        sigmas: noise levels (EDM scale).
        seed: the noise and conditioning draws (the same for every variant).
        variants: camera variants (:func:`camera_variants`).
    Returns:
        {"<variant>@σ": (B,) float64 per-clip mean squared error of the x0 estimate}.
    """
    frames, K_px, c2w = batch["frames"], batch["K_px"], batch["c2w"]
    b = frames.shape[0]
    if b < 2:
        raise ValueError(f"camera gap needs at least 2 clips (cameras are permuted across clips), got {b}")
    dev = next(model.parameters()).device
    frames, K_px, c2w = as_unit_range(frames.to(dev)).float(), K_px.to(dev).float(), c2w.to(dev).float()
    was_training = model.training
    model.eval()
    try:
        gen = torch.Generator(device=dev).manual_seed(int(seed))
        latents = model.encode(frames, generator=gen)
        cond = model.conditioning(frames[:, 0], train=False, generator=gen)
        noise = torch.randn(latents.shape, generator=gen, device=dev, dtype=latents.dtype)
        prepared = {
            v: model.prepare_cameras(k, c, latents.shape[-2:], image_hw=frames.shape[-2:])
            for v, (k, c) in camera_variants(K_px, c2w, variants).items()
        }
        out: dict[str, torch.Tensor] = {}
        for sigma in sigmas:
            x = latents + float(sigma) * noise
            for variant in prepared:
                d = model.denoise(x, float(sigma), cond, prepared[variant])
                err = (d.double() - latents.double()).pow(2).flatten(1).mean(1)
                out[_key(variant, sigma)] = err.cpu()
    finally:
        model.train(was_training)
    return out


def summarize_camera_gap(errors: Iterable[Mapping[str, torch.Tensor]]) -> dict[str, float]:
    """Gaps from per-clip errors of one or more batches (each clip weighs the same).

    Returns {"camera_gap@σ", "camera_gap_static@σ", "error_own@σ", "error_permuted@σ",
    "error_static@σ", "n_clips"}.
    """
    merged: dict[str, list[torch.Tensor]] = {}
    for e in errors:
        for k, v in e.items():
            merged.setdefault(k, []).append(v.reshape(-1).double())
    if not merged:
        raise ValueError("no camera-gap errors to summarise")
    means = {k: torch.cat(v).mean().item() for k, v in merged.items()}
    sigmas = sorted({k.split("@", 1)[1] for k in means}, key=float)
    out: dict[str, float] = {"n_clips": float(torch.cat(next(iter(merged.values()))).numel())}
    for s in sigmas:
        own = means[f"own@{s}"]
        for v in VARIANTS:
            out[f"error_{v}@{s}"] = means[f"{v}@{s}"]
        out[f"camera_gap@{s}"] = means[f"permuted@{s}"] / own if own > 0 else float("nan")
        out[f"camera_gap_static@{s}"] = means[f"static@{s}"] / own if own > 0 else float("nan")
    return out


LABELS = {"permuted": "another clip's", "static": "static", "mirrored": "mirrored", "reversed": "reversed"}


def variant_ratios(errors: Mapping[str, torch.Tensor]) -> dict[str, dict[str, dict[str, float | int]]]:
    """Per-variant readings from :func:`camera_gap_errors`'s per-clip errors (one batch of n clips).

    Returns {"σ" (as ``f"{σ:g}"``): {variant: {"error": mean error, "ratio": error / own error,
    "own_lower": clips (of n) where the own cameras' error is lower}}}.
    """
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for key, err in errors.items():
        variant, sigma = key.split("@", 1)
        own = errors[f"own@{sigma}"]
        out.setdefault(sigma, {})[variant] = {
            "error": float(err.mean()),
            "ratio": float(err.mean() / own.mean()),
            "own_lower": int((err > own).sum()),
        }
    return out


def measure_direction_gap(
    model: Any, samples: Sequence[Mapping[str, Any]], sigmas: Sequence[float] = (5.0,), seed: int = 0
) -> dict[str, Any]:
    """:func:`variant_ratios` of every ``DIRECTION_VARIANTS`` camera on ``samples`` (>= 2 clips of one size,
    one batch, one noise draw): {"clips": n, "sigmas": {"σ": {variant: {error, ratio, own_lower}}}}."""
    errors = camera_gap_errors(model, stack_clips(samples), sigmas, seed, DIRECTION_VARIANTS)
    return {"clips": len(samples), "sigmas": variant_ratios(errors)}


def direction_gap_lines(record: Mapping[str, Any]) -> list[str]:
    """:func:`measure_direction_gap`'s record as a table per σ (ratio to own; clips where own is lower)."""
    n, lines = record["clips"], []
    for sigma, row in record["sigmas"].items():
        lines.append(f"sigma {sigma}, {n} clips: latent MSE of the one-step estimate (ratio to own; clips "
                     "where own is lower)")
        for v, r in row.items():
            name = LABELS.get(v, v)
            lines.append(f"  {name:<15} {r['error']:.5f}  1.0000" if v == "own" else
                         f"  {name:<15} {r['error']:.5f}  {r['ratio']:.4f}  {r['own_lower']}/{n}")
    return lines


def stack_clips(samples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Dataset samples (each {"frames", "K_px", "c2w", ...}) -> one batch of those three keys."""
    return {k: torch.stack([torch.as_tensor(s[k]) for s in samples]) for k in ("frames", "K_px", "c2w")}


def measure_camera_gap(
    model: Any,
    samples: Sequence[Mapping[str, Any]],
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    seed: int = 0,
    batch_size: int = 4,
) -> dict[str, float]:
    """:func:`summarize_camera_gap` over ``samples`` (at least 2 clips of one size), in batches of
    ``batch_size`` (>= 2; a last batch of 1 clip joins the previous one)."""
    n = len(samples)
    if n < 2:
        raise ValueError(f"camera gap needs at least 2 clips, got {n}")
    bs = max(2, int(batch_size))
    starts = list(range(0, n, bs))
    if n - starts[-1] < 2:
        starts.pop()
    bounds = [*starts, n]
    errors = [
        camera_gap_errors(model, stack_clips(samples[a:b]), sigmas, seed + i)
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]
    return summarize_camera_gap(errors)


def camera_gap_markdown(gaps: Mapping[str, Mapping[str, float]]) -> str:
    """A table: method | camera_gap@σ ... | static gap@σ ... (one row per method)."""
    if not gaps:
        return ""
    sigmas = sorted(
        {k.split("@", 1)[1] for g in gaps.values() for k in g if k.startswith("camera_gap@")}, key=float
    )
    head = [f"gap@{s}" for s in sigmas] + [f"static gap@{s}" for s in sigmas]
    rows = [
        [name, str(int(g["n_clips"]))]
        + [tables.fmt(g[f"camera_gap{kind}@{s}"], 4) for kind in ("", "_static") for s in sigmas]
        for name, g in gaps.items()
    ]
    return "\n".join(tables.markdown(tables.Table(["method", "clips", *head], rows)))
