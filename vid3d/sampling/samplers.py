"""EDM samplers (Karras et al. 2022) and DDIM in the sigma parameterisation.

Noise model (variance exploding / EDM): ``x = x0 + sigma * n`` with ``n ~ N(0, I)``. A *denoiser* is
any callable ``denoiser(x, sigma) -> D(x; sigma)`` returning the estimate of ``x0``:

- ``x``: (B, ...) any trailing shape (vid3d uses (B, F, C, h, w) latents), any float dtype.
- ``sigma``: (B,) noise level of each batch element (same value for every element here).
- returns a tensor shaped like ``x``.

The probability-flow ODE is ``dx/dsigma = (x - D(x; sigma)) / sigma``. Every solver below integrates
it from ``sigmas[0]`` down to ``sigmas[-1]`` (usually 0). The state and the update are kept in float64
(float32 on MPS, which has no float64); the denoiser is called with ``x`` cast to the input dtype and
the result is returned in the input dtype.

``progress(done, total)`` is called after each step with the number of steps done (1-based) and the
total number of steps (``len(sigmas) - 1``); sample.py reports it (vid3d/progress.py: a bar, or lines in a
log).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from vid3d.models.edm import karras_sigmas as _edm_karras_sigmas

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ProgressFn = Callable[[int, int], None]
# shapes where tensors cross into and out of a solver (jaxtyping; checked at run time by tests only)
Latents = Float[Tensor, "batch *shape"]
Sigmas = Float[Tensor, " n_plus_1"] | Sequence[float]

__all__ = [
    "Denoiser",
    "ProgressFn",
    "SOLVERS",
    "denoiser_calls",
    "initial_noise",
    "karras_sigmas",
    "sample_ddim",
    "sample_dpmpp_2m",
    "sample_edm_euler",
    "sample_edm_heun",
]


def karras_sigmas(
    n: int,
    sigma_min: float = 0.002,
    sigma_max: float = 700.0,
    rho: float = 7.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Karras et al. (2022) eq. 5 noise levels with a trailing 0: float64 tensor of shape (n + 1,).

    ``sigma_i = (sigma_max^(1/rho) + i / (n - 1) * (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho`` for
    i = 0 .. n-1, then ``sigma_n = 0``; ``n`` is the number of sampler steps (denoiser evaluations for
    Euler/DDIM) and ``n == 1`` gives ``[sigma_max, 0]``. ``vid3d.models.edm.karras_sigmas`` (the single
    implementation) with the samplers' defaults: the trailing 0 and float64.
    """
    sig = _edm_karras_sigmas(n, sigma_min, sigma_max, rho, append_zero=True, dtype=torch.float64)
    return sig.to(device) if device is not None else sig


def initial_noise(
    shape: Sequence[int],
    sigma_max: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``x_T = sigma_max * n``, n ~ N(0, I) of ``shape``, drawn from ``generator`` (reproducible).

    The noise is drawn on the generator's device (so a seed gives the same noise whatever ``device``)
    and moved to ``device`` (default: the generator's device, CPU without a generator).
    """
    gen_device = generator.device if generator is not None else (device or "cpu")
    n = torch.randn(tuple(shape), generator=generator, device=gen_device, dtype=dtype)
    return (n * sigma_max).to(device if device is not None else gen_device)


# ----------------------------------------------------------------------------------------------------
# helpers


def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _check_sigmas(sigmas: torch.Tensor | Sequence[float], device: torch.device) -> torch.Tensor:
    s = torch.as_tensor(sigmas, dtype=_work_dtype(device)).to(device)
    if s.ndim != 1 or s.numel() < 2:
        raise ValueError(f"sigmas must be a 1-D sequence of >= 2 noise levels, got shape {tuple(s.shape)}")
    if bool((s < 0).any()) or bool((s[1:] > s[:-1]).any()):
        raise ValueError("sigmas must be non-negative and non-increasing (e.g. karras_sigmas(n))")
    if float(s[0]) <= 0:
        raise ValueError("sigmas[0] must be > 0")
    return s


class _Caller:
    """Calls the denoiser with (x in the model dtype, sigma as (B,)) and returns D in the work dtype."""

    def __init__(self, denoiser: Denoiser, x_like: torch.Tensor):
        self.denoiser = denoiser
        self.dtype = x_like.dtype
        self.sigma_dtype = torch.promote_types(x_like.dtype, torch.float32)
        self.batch = x_like.shape[0]

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sig = sigma.to(self.sigma_dtype).expand(self.batch)
        out = self.denoiser(x.to(self.dtype), sig)
        if out.shape != x.shape:
            raise ValueError(f"denoiser returned shape {tuple(out.shape)} for input {tuple(x.shape)}")
        return out.to(x.dtype)


def _prepare(x_T: torch.Tensor, sigmas) -> tuple[torch.Tensor, torch.Tensor]:
    if x_T.ndim < 1:
        raise ValueError("x_T must have a leading batch dimension")
    s = _check_sigmas(sigmas, x_T.device)
    return x_T.to(s.dtype), s


# ----------------------------------------------------------------------------------------------------
# samplers


@torch.no_grad()
def sample_edm_euler(
    denoiser: Denoiser,
    x_T: Latents,
    sigmas: Sigmas,
    progress: ProgressFn | None = None,
) -> Latents:
    """First-order (Euler) integration of the probability-flow ODE.

    Per step i: ``d = (x - D(x; s_i)) / s_i``; ``x <- x + (s_{i+1} - s_i) * d``. With ``s_n = 0`` the
    last step returns ``D(x; s_{n-1})``. ``len(sigmas) - 1`` denoiser calls.

    Args:
        denoiser: ``(x (B, ...), sigma (B,)) -> D (B, ...)``.
        x_T: (B, ...) initial sample at noise level ``sigmas[0]`` (e.g. ``initial_noise``).
        sigmas: (n + 1,) non-increasing noise levels, e.g. ``karras_sigmas(n)``.
        progress: optional ``progress(done, total)`` callback after each step.
    Returns:
        (B, ...) sample at ``sigmas[-1]`` in ``x_T``'s dtype.
    """
    x, s = _prepare(x_T, sigmas)
    D = _Caller(denoiser, x_T)
    total = s.numel() - 1
    for i in range(total):
        d = (x - D(x, s[i])) / s[i]
        x = x + (s[i + 1] - s[i]) * d
        if progress is not None:
            progress(i + 1, total)
    return x.to(x_T.dtype)


@torch.no_grad()
def sample_edm_heun(
    denoiser: Denoiser,
    x_T: Latents,
    sigmas: Sigmas,
    progress: ProgressFn | None = None,
) -> Latents:
    """Deterministic second-order Heun sampler (Karras et al. 2022, Algorithm 2 with S_churn = 0).

    Per step i: Euler predictor ``x' = x + (s_{i+1} - s_i) d_i``; if ``s_{i+1} != 0`` the trapezoidal
    corrector ``x <- x + (s_{i+1} - s_i) (d_i + d'_i) / 2`` with ``d'_i = (x' - D(x'; s_{i+1})) / s_{i+1}``;
    a step to ``s_{i+1} = 0`` stays Euler. Denoiser calls: ``2 (len(sigmas) - 1) - 1`` when the
    schedule ends at 0. Arguments and return as in :func:`sample_edm_euler`.
    """
    x, s = _prepare(x_T, sigmas)
    D = _Caller(denoiser, x_T)
    total = s.numel() - 1
    for i in range(total):
        h = s[i + 1] - s[i]
        d = (x - D(x, s[i])) / s[i]
        x_pred = x + h * d
        if float(s[i + 1]) > 0:
            d_next = (x_pred - D(x_pred, s[i + 1])) / s[i + 1]
            x = x + h * 0.5 * (d + d_next)
        else:
            x = x_pred
        if progress is not None:
            progress(i + 1, total)
    return x.to(x_T.dtype)


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    x_T: Latents,
    sigmas: Sigmas,
    progress: ProgressFn | None = None,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> Latents:
    """DDIM (Song et al. 2021) written in the VE/EDM sigma parameterisation.

    With ``x0_hat = D(x_i; s_i)`` and ``eps_hat = (x_i - x0_hat) / s_i``, one step to ``s_{i+1}`` is

        c = eta * s_{i+1} * sqrt(s_i^2 - s_{i+1}^2) / s_i        (clamped to <= s_{i+1})
        x_{i+1} = x0_hat + sqrt(s_{i+1}^2 - c^2) * eps_hat + c * z,   z ~ N(0, I) from ``generator``.

    This is DDIM's update after mapping VP to VE (``x_ve = x_vp / sqrt(alpha_bar)``,
    ``sigma^2 = (1 - alpha_bar) / alpha_bar``); DDIM's stochastic std becomes ``c`` above.

    eta = 0 (default, deterministic): ``x_{i+1} = x0_hat + s_{i+1} * (x_i - x0_hat) / s_i``, which is
    algebraically the Euler step of the probability-flow ODE, so on the same sigmas it matches
    :func:`sample_edm_euler` up to float64 round-off (tested). eta = 1 is ancestral sampling; eta > 0
    draws noise from ``generator`` on the generator's device, then moves it to ``x``'s device (same
    generator state -> same result).

    Args and return as in :func:`sample_edm_euler`; ``eta`` >= 0.
    """
    if eta < 0:
        raise ValueError(f"sample_ddim: eta must be >= 0, got {eta}")
    x, s = _prepare(x_T, sigmas)
    D = _Caller(denoiser, x_T)
    total = s.numel() - 1
    for i in range(total):
        s_cur, s_next = s[i], s[i + 1]
        x0_hat = D(x, s_cur)
        eps_hat = (x - x0_hat) / s_cur
        if eta > 0 and float(s_next) > 0:
            c = eta * s_next * torch.sqrt(s_cur**2 - s_next**2) / s_cur
            c = torch.minimum(c, s_next)
            z_device = generator.device if generator is not None else x.device
            z = torch.randn(x.shape, generator=generator, device=z_device, dtype=x.dtype).to(x.device)
            x = x0_hat + torch.sqrt(s_next**2 - c**2) * eps_hat + c * z
        else:
            x = x0_hat + s_next * eps_hat
        if progress is not None:
            progress(i + 1, total)
    return x.to(x_T.dtype)


@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: Denoiser,
    x_T: Latents,
    sigmas: Sigmas,
    progress: ProgressFn | None = None,
) -> Latents:
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2): deterministic second-order multistep.

    In the EDM parameterisation (alpha = 1) with ``lambda = -log sigma`` and ``h_i = lambda_{i+1} - lambda_i
    = log(s_i / s_{i+1})``, the exact solution of the ODE written in the data prediction D is
    ``x_{i+1} = (s_{i+1} / s_i) x_i + s_{i+1} * integral of e^lambda D over [lambda_i, lambda_{i+1}]``; with
    D held constant that is the first-order step ``x_{i+1} = (s_{i+1}/s_i) x_i - expm1(-h_i) D_i`` (= DDIM /
    Euler), and 2M replaces D_i by the linear extrapolation from the previous step's D:

        r_i = h_{i-1} / h_i,    D'_i = (1 + 1 / (2 r_i)) D_i - 1 / (2 r_i) D_{i-1}
        x_{i+1} = (s_{i+1} / s_i) x_i - expm1(-h_i) D'_i

    The first step (no previous D) and a step to ``s_{i+1} = 0`` (h infinite: ``x_{i+1} = D_i``) are first
    order, as in the paper's and k-diffusion's ``sample_dpmpp_2m``. One denoiser call per step
    (``len(sigmas) - 1``); global error O(h^2). Arguments and return as in :func:`sample_edm_euler`.
    """
    x, s = _prepare(x_T, sigmas)
    D = _Caller(denoiser, x_T)
    total = s.numel() - 1
    d_prev, h_prev = None, None
    for i in range(total):
        s_cur, s_next = s[i], s[i + 1]
        d = D(x, s_cur)
        if float(s_next) == 0:
            x = d
        else:
            h = torch.log(s_cur / s_next)
            d_used = d
            if d_prev is not None and float(h_prev) > 0:  # h_prev == 0: a repeated sigma, no slope
                r = h_prev / h
                d_used = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * d_prev
            x = (s_next / s_cur) * x - torch.expm1(-h) * d_used
            d_prev, h_prev = d, h
        if progress is not None:
            progress(i + 1, total)
    return x.to(x_T.dtype)


SOLVERS: dict[str, Callable[..., torch.Tensor]] = {
    "edm_euler": sample_edm_euler,
    "edm_heun": sample_edm_heun,
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
}


def denoiser_calls(solver: str, num_steps: int) -> int:
    """Denoiser evaluations of ``solver`` (a ``SOLVERS`` name) over ``karras_sigmas(num_steps)`` (ends at 0):
    ``num_steps`` for Euler, DDIM and DPM-Solver++(2M), ``2 num_steps - 1`` for Heun (no corrector on the
    step to 0). With classifier-free guidance each call is one batched network pass over twice the batch."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r} (one of {sorted(SOLVERS)})")
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return 2 * num_steps - 1 if solver == "edm_heun" else num_steps
