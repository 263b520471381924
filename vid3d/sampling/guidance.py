"""Classifier-free guidance (Ho & Salimans 2022) for EDM denoisers, with SVD-style per-frame scales.

Guided estimate: ``D = D_u + w * (D_c - D_u)`` where ``D_c``/``D_u`` are the conditional and
unconditional denoiser outputs. Both passes run in ONE batched call of the model (the batch is
``[uncond; cond]`` along dim 0, then split).

Latent layout is (B, F, C, h, w); a per-frame scale (F,) broadcasts over dim 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .samplers import Denoiser

# denoise_fn(x (N, F, C, h, w), sigma (N,), cond: dict[str, Tensor | None | Any]) -> (N, F, C, h, w)
DenoiseFn = Callable[[torch.Tensor, torch.Tensor, dict[str, Any]], torch.Tensor]

__all__ = ["DenoiseFn", "cfg_denoiser", "frame_guidance", "merge_conditions"]


def frame_guidance(num_frames: int, min_scale: float = 1.0, max_scale: float = 3.0) -> torch.Tensor:
    """Guidance scale rising linearly across frames (as in SVD): float32 (num_frames,).

    Frame 0 gets ``min_scale`` and the last frame ``max_scale`` (a single frame gets ``min_scale``).
    """
    if num_frames < 1:
        raise ValueError(f"frame_guidance: num_frames must be >= 1, got {num_frames}")
    return torch.linspace(min_scale, max_scale, num_frames, dtype=torch.float32)


def merge_conditions(uncond: Mapping[str, Any], cond: Mapping[str, Any]) -> dict[str, Any]:
    """Concatenate two condition dicts along dim 0 as ``[uncond; cond]``.

    Both dicts must have the same keys. Tensor values are concatenated (leading batch dim); a key that
    is None in both stays None; other non-tensor values must be equal in both and are passed through.
    """
    if set(cond) != set(uncond):
        raise ValueError(
            f"cond and uncond must have the same keys; only in cond: {sorted(set(cond) - set(uncond))}, "
            f"only in uncond: {sorted(set(uncond) - set(cond))}"
        )
    out: dict[str, Any] = {}
    for key in cond:
        c, u = cond[key], uncond[key]
        if c is None and u is None:
            out[key] = None
        elif isinstance(c, torch.Tensor) and isinstance(u, torch.Tensor):
            if c.shape[1:] != u.shape[1:]:
                raise ValueError(
                    f"condition {key!r}: cond shape {tuple(c.shape)} and uncond shape "
                    f"{tuple(u.shape)} differ beyond the batch dim"
                )
            out[key] = torch.cat([u, c], dim=0)
        elif isinstance(c, torch.Tensor) or isinstance(u, torch.Tensor) or c is None or u is None:
            raise ValueError(f"condition {key!r}: cond is {type(c).__name__}, uncond is {type(u).__name__}")
        elif c == u:
            out[key] = c
        else:
            raise ValueError(f"condition {key!r}: non-tensor values differ ({c!r} vs {u!r})")
    return out


def _scale_tensor(scale: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Broadcastable scale: scalar -> (), (F,) -> (1, F, 1, ...), (B, F) -> (B, F, 1, ...)."""
    w = torch.as_tensor(scale, device=x.device)
    if w.ndim == 0:
        return w
    if x.ndim < 2:
        raise ValueError(f"per-frame guidance needs x with a frame dim (B, F, ...), got {tuple(x.shape)}")
    F = x.shape[1]
    if w.ndim == 1 and w.shape[0] == F:
        return w.reshape(1, F, *([1] * (x.ndim - 2)))
    if w.ndim == 2 and w.shape == x.shape[:2]:
        return w.reshape(*w.shape, *([1] * (x.ndim - 2)))
    raise ValueError(
        f"guidance scale of shape {tuple(w.shape)} does not fit x of shape {tuple(x.shape)}; "
        "expected a float, (F,) or (B, F)"
    )


def _combine(d_u: torch.Tensor, d_c: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``d_u + w (d_c - d_u)``, exact at the endpoints: w = 0 gives d_u and w = 1 gives d_c bit-for-bit
    (for w >= 0.5 it is evaluated as ``d_c - (1 - w)(d_c - d_u)``)."""
    w = w.to(d_c.dtype)
    diff = d_c - d_u
    return torch.where(w < 0.5, d_u + w * diff, d_c - (1 - w) * diff)


def cfg_denoiser(
    denoise_fn: DenoiseFn,
    cond: Mapping[str, Any],
    uncond: Mapping[str, Any],
    scale: float | torch.Tensor,
) -> Denoiser:
    """Wrap ``denoise_fn(x, sigma, cond_dict)`` into a guided ``denoiser(x, sigma)`` for the samplers.

    Args:
        denoise_fn: model denoiser ``(x (N, F, C, h, w), sigma (N,), cond dict) -> D (N, F, C, h, w)``.
        cond, uncond: dicts of tensors with leading batch dim B (None values allowed, see
            :func:`merge_conditions`); concatenated once, here, as ``[uncond; cond]``.
        scale: guidance weight ``w``: a float, a (F,) per-frame tensor (e.g. :func:`frame_guidance`)
            or a (B, F) tensor. ``w = 1`` is the conditional model, ``w = 0`` the unconditional one.
    Returns:
        ``denoiser(x (B, F, C, h, w), sigma (B,)) -> D_u + w (D_c - D_u)``, one ``denoise_fn`` call per
        evaluation with batch 2B. A plain float ``scale == 1`` skips the unconditional half and runs
        only the conditional batch (B).
    """
    cond = dict(cond)
    merged = merge_conditions(uncond, cond)
    only_cond = not isinstance(scale, torch.Tensor) and float(scale) == 1.0

    def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if only_cond:
            return denoise_fn(x, sigma, cond)
        out = denoise_fn(torch.cat([x, x], dim=0), torch.cat([sigma, sigma], dim=0), merged)
        d_u, d_c = out.chunk(2, dim=0)
        return _combine(d_u, d_c, _scale_tensor(scale, x))

    return denoiser
