"""Stable Video Diffusion image conditioning.

A condition dict (flat, every tensor with leading batch dim B, so condition dicts can be
concatenated along dim 0 for classifier-free guidance):

    encoder_hidden_states  (B, 1, D)     CLIP image embedding of the first frame (cross-attention)
    cond_latent            (B, C, h, w)  *unscaled* VAE latent (distribution mode) of the noise-augmented
                                         first frame (image + sigma_c * N(0, I)); the denoiser repeats
                                         it over frames and concatenates it to c_in * x along channels
    added_time_ids         (B, 3)        [fps_id, motion_bucket_id, sigma_c] (SVD micro-conditioning;
                                         fps_id is "fps - 1" as in the diffusers SVD pipeline)

Training: sigma_c = exp(N(noise_aug_mean, noise_aug_std^2)) per sample (defaults -3.0, 0.5) and with
probability ``cond_dropout`` a sample's CLIP embedding and cond latent are both zeroed. Sampling: fixed
sigma_c (default 0.02), no dropout. The unconditional variant zeroes both (as the diffusers pipeline
does for CFG) and keeps ``added_time_ids`` and every other key (e.g. camera inputs) unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_CONDITION_KEYS = ("encoder_hidden_states", "cond_latent")


@dataclass
class SVDConditioningConfig:
    """Hyper-parameters of SVD conditioning (defaults follow SVD / the diffusers pipeline)."""

    fps_id: float = 6.0  # the pipeline's default fps=7, minus 1
    motion_bucket_id: float = 127.0
    noise_aug_mean: float = -3.0  # training: ln sigma_c ~ N(mean, std^2)
    noise_aug_std: float = 0.5
    sample_noise_aug: float = 0.02  # sampling: fixed sigma_c
    cond_dropout: float = 0.15  # training: P(zero CLIP embedding and cond latent)


def clip_preprocess(images: torch.Tensor, size: int = 224) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 3, size, size) CLIP input.

    Resizes (no crop, like the SVD pipeline) with antialiased bicubic interpolation in [-1, 1]
    (the pipeline uses its own Gaussian-blur antialiasing), maps to [0, 1], then CLIP-normalises.
    """
    x = images.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    x = ((x + 1.0) / 2.0).clamp(0.0, 1.0)
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def encode_clip_image(image_encoder: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """CLIP ``image_embeds`` of (B, 3, H, W) images in [-1, 1] -> (B, 1, D) encoder_hidden_states."""
    size = int(image_encoder.config.image_size)
    dtype = next(image_encoder.parameters()).dtype
    pix = clip_preprocess(images, size).to(dtype)
    return image_encoder(pixel_values=pix).image_embeds.unsqueeze(1).to(images.dtype)


def sample_cond_sigma(
    n: int, mean: float = -3.0, std: float = 0.5, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Training noise-augmentation levels (n,): sigma_c = exp(mean + std * N(0, 1))."""
    gdev = generator.device if generator is not None else device
    return (mean + std * torch.randn(n, generator=generator, device=gdev)).exp().to(device or gdev)


def added_time_ids(fps_id: float, motion_bucket_id: float, cond_sigma: torch.Tensor) -> torch.Tensor:
    """(B,) sigma_c -> (B, 3) [fps_id, motion_bucket_id, sigma_c]."""
    b = cond_sigma.shape[0]
    fps = torch.full((b,), float(fps_id), device=cond_sigma.device, dtype=cond_sigma.dtype)
    mb = torch.full((b,), float(motion_bucket_id), device=cond_sigma.device, dtype=cond_sigma.dtype)
    return torch.stack([fps, mb, cond_sigma], dim=1)


def build_conditioning(
    backbone: torch.nn.Module,
    first_frame: torch.Tensor,
    train: bool,
    cfg: SVDConditioningConfig,
    generator: torch.Generator | None = None,
    cond_sigma: torch.Tensor | float | None = None,
) -> dict[str, torch.Tensor]:
    """SVD condition dict (see module docstring) for first frames (B, 3, H, W) in [-1, 1].

    Args:
        backbone: a vid3d Backbone (uses ``vae`` and ``image_encoder``, both run without grad).
        train: sample sigma_c and apply condition dropout (else fixed sigma_c, no dropout).
        generator: RNG for sigma_c, augmentation noise and dropout (on first_frame's device).
        cond_sigma: override sigma_c (float or (B,)).
    """
    if first_frame.ndim != 4 or first_frame.shape[1] != 3:
        raise ValueError(f"first_frame must be (B, 3, H, W), got {tuple(first_frame.shape)}")
    b, dev = first_frame.shape[0], first_frame.device
    if cond_sigma is None:
        if train:
            cond_sigma = sample_cond_sigma(b, cfg.noise_aug_mean, cfg.noise_aug_std, generator, dev)
        else:
            cond_sigma = torch.full((b,), cfg.sample_noise_aug, device=dev)
    cond_sigma = torch.as_tensor(cond_sigma, device=dev, dtype=first_frame.dtype).expand(b).clone()
    with torch.no_grad():
        ehs = encode_clip_image(backbone.image_encoder, first_frame)
        noise = torch.randn(
            first_frame.shape, generator=generator, device=generator.device if generator else dev
        )
        aug = first_frame + cond_sigma.view(b, 1, 1, 1) * noise.to(first_frame)
        cond_latent = backbone.vae.encode_latents(aug, sample=False, scaled=False)
    if train and cfg.cond_dropout > 0:
        u = torch.rand(b, generator=generator, device=generator.device if generator else dev).to(dev)
        keep = (u >= cfg.cond_dropout).to(first_frame.dtype)
        ehs = ehs * keep.view(b, 1, 1)
        cond_latent = cond_latent * keep.view(b, 1, 1, 1)
    return {
        "encoder_hidden_states": ehs,
        "cond_latent": cond_latent,
        "added_time_ids": added_time_ids(cfg.fps_id, cfg.motion_bucket_id, cond_sigma),
    }


def unconditional(cond: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of ``cond`` with the CLIP embedding and the cond latent zeroed (CFG's negative branch)."""
    out = dict(cond)
    for k in IMAGE_CONDITION_KEYS:
        if k not in out:
            raise KeyError(f"condition dict lacks {k!r} (has {sorted(out)})")
        out[k] = torch.zeros_like(out[k])
    return out
