"""Generate a video along a camera trajectory with a trained model (the sampling pipeline).

Conventions: images in [-1, 1], (B, 3, H, W); intrinsics ``K_px`` (B, F, 3, 3) in pixels at (H, W);
``c2w`` (B, F, 4, 4) OpenCV camera-to-world (made relative to the first frame by the model). Frame 0 is
the conditioning image's camera.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .guidance import cfg_denoiser, frame_guidance
from .samplers import initial_noise, karras_sigmas, sample_edm_euler

Solver = Callable[..., torch.Tensor]


class VideoSampler:
    """Probability-flow ODE sampling with classifier-free guidance (conditional and unconditional passes
    batched together).

    Args:
        solver: a sampler function ``solver(denoiser, x_T, sigmas, progress=...)`` (EDM Euler/Heun, DDIM).
        num_steps: ODE steps on the Karras schedule between ``sigma_max`` and ``sigma_min`` (then 0).
        sigma_min, sigma_max, rho: the schedule (SVD: 0.002, 700, 7).
        guidance_min, guidance_max: per-frame guidance rising linearly from min (frame 0) to max (last
            frame), SVD-style; equal values give constant guidance; 1.0 disables the unconditional pass.
    """

    def __init__(
        self,
        solver: Solver = sample_edm_euler,
        num_steps: int = 25,
        sigma_min: float = 0.002,
        sigma_max: float = 700.0,
        rho: float = 7.0,
        guidance_min: float = 1.0,
        guidance_max: float = 3.0,
    ) -> None:
        self.solver = solver
        self.num_steps = int(num_steps)
        self.sigma_min, self.sigma_max, self.rho = float(sigma_min), float(sigma_max), float(rho)
        self.guidance_min, self.guidance_max = float(guidance_min), float(guidance_max)

    @torch.no_grad()
    def __call__(
        self,
        model: nn.Module,
        first_frame: torch.Tensor,
        K_px: torch.Tensor,
        c2w: torch.Tensor,
        generator: torch.Generator | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Returns frames (B, F, 3, H, W) in [-1, 1]; frame 0 re-generated (not copied) from the image."""
        b, f = c2w.shape[:2]
        H, W = first_frame.shape[-2:]
        ds = model.downscale
        if H % ds or W % ds:
            raise ValueError(f"image size {H}x{W} is not divisible by the model's downscale {ds}")
        h, w = H // ds, W // ds
        cond = model.conditioning(first_frame, train=False)
        cond.update(model.prepare_cameras(K_px, c2w, (h, w), (H, W)))
        uncond = model.unconditional(cond)
        if self.guidance_min == self.guidance_max:
            scale: float | torch.Tensor = self.guidance_min
        else:
            scale = frame_guidance(f, self.guidance_min, self.guidance_max).to(first_frame.device)
        denoiser = cfg_denoiser(lambda x, s, c: model.denoise(x, s, c), cond, uncond, scale)
        sigmas = karras_sigmas(
            self.num_steps, self.sigma_min, self.sigma_max, self.rho, device=first_frame.device
        )
        x_T = initial_noise(
            (b, f, model.latent_channels, h, w), self.sigma_max, generator, first_frame.device
        )
        latents = self.solver(denoiser, x_T, sigmas, progress=progress)
        return model.decode(latents).clamp(-1, 1)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) in [-1, 1] -> (..., H, W, 3) uint8."""
    x = ((frames.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3).float() / 127.5 - 1
