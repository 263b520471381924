"""Do SAMPLED videos follow their cameras? The camera gap asked of whole sampling runs (issue 14).

From each clip's first frame one video is sampled per camera variant, with the same seed (so the same
initial noise) for every variant:

- ``own``: the clip's own intrinsics and camera-to-world poses;
- ``another``: another clip's (a cyclic shift: clip i takes clip i+1's), so B >= 2;
- ``static``: every frame at frame 0's pose.

Each video is scored against the clip's ground truth on frames 1..F-1 (frame 0 is the conditioning image):
the per-clip mean squared error in [-1, 1]. A model whose samples follow their cameras has the lowest error
with its own cameras; ``error_another / error_own`` (means over clips) is the sampled-video camera gap (1 for
a model without camera input). ``experiments/cpu_camera_control/sample_gap.py`` prints it;
``benchmarks/sampling_quality.py`` measures it against the sampler's cost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

VARIANTS = ("own", "another", "static")


def variant_cameras(
    K_px: torch.Tensor, c2w: torch.Tensor, variants: Sequence[str] = VARIANTS
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{variant: (K_px (B, F, 3, 3), c2w (B, F, 4, 4))} for the clips' own cameras (B, F, ...)."""
    b = c2w.shape[0]
    if "another" in variants and b < 2:
        raise ValueError(f"the 'another' variant needs at least 2 clips (cameras are swapped), got {b}")
    shift = torch.roll(torch.arange(b, device=c2w.device), -1)
    table = {
        "own": (K_px, c2w),
        "another": (K_px[shift], c2w[shift]),
        "static": (K_px, c2w[:, :1].expand_as(c2w).clone()),
    }
    unknown = [v for v in variants if v not in table]
    if unknown:
        raise ValueError(f"unknown camera variants {unknown} (known: {list(table)})")
    return {v: table[v] for v in variants}


@torch.no_grad()
def sample_variants(
    model: Any,
    sampler: Callable[..., torch.Tensor],
    frames: torch.Tensor,
    K_px: torch.Tensor,
    c2w: torch.Tensor,
    variants: Sequence[str] = VARIANTS,
    seed: int = 0,
    known_frames: Mapping[int, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """{variant: sampled video (B, F, 3, H, W) in [-1, 1]} from ``frames[:, 0]``, each with
    ``torch.Generator().manual_seed(seed)`` (the same noise for every variant).

    Args:
        sampler: a ``VideoSampler`` (``sampler(model, first_frame, K_px, c2w, generator=, known_frames=)``).
        frames: (B, F, 3, H, W) ground truth in [-1, 1]; K_px (B, F, 3, 3) pixels; c2w (B, F, 4, 4) OpenCV.
    """
    out = {}
    for v, (k, c) in variant_cameras(K_px, c2w, variants).items():
        g = torch.Generator().manual_seed(int(seed))
        out[v] = sampler(model, frames[:, 0], k, c, generator=g, known_frames=known_frames)
    return out


def frame_errors(video: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """(B,) float64 mean squared error over frames 1..F-1, pixels and channels (both (B, F, 3, H, W) in
    [-1, 1])."""
    if video.shape != frames.shape:
        raise ValueError(f"video {tuple(video.shape)} and ground truth {tuple(frames.shape)} differ in shape")
    return (video[:, 1:].double() - frames[:, 1:].double()).pow(2).flatten(1).mean(1)
