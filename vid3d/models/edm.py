"""EDM noise, Stable Video Diffusion preconditioning, training sigmas, loss and the Karras schedule.

Conventions:
- Continuous-sigma ("variance exploding") noise: x_sigma = x_0 + n, n ~ N(0, sigma^2 I).
- SVD preconditioning (v-prediction network with EDM's c_noise, sigma_data = 1):
      c_skip  = 1 / (sigma^2 + 1)
      c_out   = -sigma / sqrt(sigma^2 + 1)
      c_in    = 1 / sqrt(sigma^2 + 1)
      c_noise = 0.25 * ln(sigma)
  Denoiser D(x; sigma) = c_skip * x + c_out * F(c_in * x; c_noise).
- Training sigma ~ exp(P_mean + P_std * N(0, 1)) (optionally mixed with a high-noise log-normal, see
  ``sample_train_sigma``); loss weight lambda(sigma) = (sigma^2 + 1) / sigma^2.
- Sigmas are tensors of shape (B,) (one per sample); helpers broadcast them against (B, ...) data.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

SIGMA_DATA = 1.0


def append_dims(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append trailing singleton dims to ``t`` (B,) until it has ``ndim`` dims, for broadcasting."""
    if t.ndim > ndim:
        raise ValueError(f"cannot broadcast a {t.ndim}-d tensor to {ndim} dims")
    return t.reshape(*t.shape, *([1] * (ndim - t.ndim)))


def svd_precond(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD preconditioning coefficients for noise levels ``sigma`` (any shape, > 0).

    Returns (c_skip, c_out, c_in, c_noise), each with the shape and dtype of ``sigma``.
    """
    sigma = torch.as_tensor(sigma)
    if not sigma.is_floating_point():
        sigma = sigma.double()
    s2p1 = sigma**2 + SIGMA_DATA**2
    c_skip = SIGMA_DATA**2 / s2p1
    c_out = -sigma * SIGMA_DATA / s2p1.sqrt()
    c_in = 1.0 / s2p1.sqrt()
    c_noise = 0.25 * sigma.log()
    return c_skip, c_out, c_in, c_noise


def sample_train_sigma(
    n: int,
    P_mean: float = 0.7,
    P_std: float = 1.6,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    high_fraction: float = 0.0,
    P_mean_high: float = 1.6,
    P_std_high: float = 0.3,
) -> torch.Tensor:
    """Log-normal training noise levels: (n,) with ln(sigma) ~ N(P_mean, P_std^2).

    ``high_fraction`` > 0 makes it a two-component mixture: each level is drawn with probability
    ``high_fraction`` from ln(sigma) ~ N(P_mean_high, P_std_high^2) (default: sigma ~ 3..8, where the noisy
    frames hide the motion and only the camera can explain it), else from N(P_mean, P_std^2). With
    ``high_fraction`` = 0 the draws are exactly the single log-normal's (same generator calls).
    """
    if not 0.0 <= high_fraction <= 1.0:
        raise ValueError(f"high_fraction must be in [0, 1], got {high_fraction}")
    gen_device = generator.device if generator is not None else device
    z = torch.randn(n, generator=generator, device=gen_device, dtype=dtype)
    log_sigma = P_mean + P_std * z
    if high_fraction > 0:
        high = torch.rand(n, generator=generator, device=gen_device, dtype=dtype) < high_fraction
        log_sigma = torch.where(high, P_mean_high + P_std_high * z, log_sigma)
    return log_sigma.exp().to(device=device if device is not None else z.device)


def loss_weight(sigma: torch.Tensor) -> torch.Tensor:
    """EDM loss weight lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2."""
    return (sigma**2 + SIGMA_DATA**2) / (sigma * SIGMA_DATA) ** 2


def edm_loss(
    denoiser: Callable[..., torch.Tensor],
    x0: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    **cond,
) -> torch.Tensor:
    """Per-sample weighted denoising loss.

    Args:
        denoiser: D(x, sigma, **cond) -> estimate of x0, same shape as x.
        x0: (B, ...) clean data.
        sigma: (B,) noise levels.
        noise: (B, ...) standard normal noise (scaled by sigma here).
    Returns:
        (B,) loss_b = lambda(sigma_b) * mean over elements of (D(x0 + sigma_b * noise) - x0)^2.
    """
    if sigma.shape != x0.shape[:1]:
        raise ValueError(f"sigma must have shape ({x0.shape[0]},), got {tuple(sigma.shape)}")
    x_noisy = x0 + append_dims(sigma, x0.ndim).to(x0.dtype) * noise
    d = denoiser(x_noisy, sigma, **cond)
    mse = (d.float() - x0.float()).pow(2).flatten(1).mean(dim=1)
    return loss_weight(sigma.float()) * mse


def karras_sigmas(
    n: int,
    sigma_min: float = 0.002,
    sigma_max: float = 700.0,
    rho: float = 7.0,
    append_zero: bool = True,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Karras et al. (2022) sampling schedule, decreasing from sigma_max to sigma_min.

    sigma_i = (sigma_max^(1/rho) + i/(n-1) * (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, i = 0..n-1,
    followed by a final 0 when ``append_zero`` (shape (n + 1,), else (n,)). Defaults are SVD's range.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    if append_zero:
        sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    return sigmas.to(dtype)
