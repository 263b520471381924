"""Why do late frames of sampled videos dissolve? Per-frame denoiser error by noise level, along the sampling
path and without the conditioning frame (issue 37 item 1).

    python -m vid3d.tasks.dissolve CKPT [hydra data overrides ...] [--clips 16] [--json F]

Conventions: latents x0 (B, F, C, h, w) of the clips (frames in [-1, 1], the model's ``encode``); errors are
latent mean squared errors, reported per frame index (mean over clips, channels and latent pixels). Frame 0
is the conditioning frame. Everything uses one seed, the same noise for every variant of a measurement.

1. **One step** (``one_step_frame_errors``): ``|D(x0 + sigma n; sigma) - x0|^2`` per frame at each sigma of a
   grid, beside the share of the recipe's training noise levels at or below that sigma
   (``train_sigma_cdf``: the checkpoint's ``P_mean``/``P_std`` log-normal mixed with the high-noise one).
   Identity (``D = x``) would read ``sigma^2``: a denoiser worse than that at low sigma adds error.
2. **The sampling path** (``path_frame_errors``): the probability-flow ODE solved with Euler on
   ``karras_sigmas(steps, sigma_min, sigma_max, rho)`` (no guidance); at every step the error of the estimate
   ``x0_hat = D(x; sigma_i)`` per frame, and the final sample's. Where the estimate's error is smallest is
   the sigma at which stopping would be closest to the truth in MSE.
3. **The conditioning frame** (``conditioning_ablation``): the one-step error per frame with the
   conditioning latent (SVD's frame-0 latent concatenated to every frame) as given, replaced by Gaussian
   noise of the same mean and std, or by another clip's (a cyclic shift): how much the frame-0 path still
   informs each frame at each sigma.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from vid3d.data.frames import as_unit_range

ONE_STEP_SIGMAS = (0.002, 0.02, 0.1, 0.3, 0.6, 1.0, 2.0, 5.0, 20.0, 80.0)
ABLATION_SIGMAS = (0.1, 0.3, 1.0, 5.0)


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def train_sigma_cdf(
    sigma: float,
    P_mean: float,
    P_std: float,
    high_fraction: float = 0.0,
    P_mean_high: float = 1.6,
    P_std_high: float = 0.3,
) -> float:
    """P(sigma_train <= sigma) under ``vid3d.models.edm.sample_train_sigma``'s mixture:
    ``(1 - f) Phi((ln s - P_mean) / P_std) + f Phi((ln s - P_mean_high) / P_std_high)``."""
    if sigma <= 0:
        return 0.0
    ls = math.log(sigma)
    low = _phi((ls - P_mean) / P_std)
    high = _phi((ls - P_mean_high) / P_std_high) if high_fraction > 0 else 0.0
    return (1.0 - high_fraction) * low + high_fraction * high


def model_train_sigma_cdf(model: Any, sigma: float) -> float:
    """``train_sigma_cdf`` with a ``CameraVideoDiffusion``'s stored training noise settings."""
    f, pm_h, ps_h = getattr(model, "sigma_high", (0.0, 1.6, 0.3))
    return train_sigma_cdf(sigma, model.P_mean, model.P_std, f, pm_h, ps_h)


def frame_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(F,) float64 mean squared error per frame index of two (B, F, ...) tensors (mean over the rest)."""
    d = (a.double() - b.double()).pow(2)
    return d.transpose(0, 1).flatten(1).mean(1)


def clip_inputs(
    model: Any, clips: Sequence[dict], seed: int = 0
) -> tuple[torch.Tensor, dict[str, Any], torch.Tensor]:
    """(x0 (B, F, C, h, w) latents, the condition dict with the clips' own cameras, frames (B, F, 3, H, W))
    for dataset items with ``frames``, ``K_px`` and ``c2w``."""
    frames = torch.stack([as_unit_range(c["frames"]).float() for c in clips])
    K = torch.stack([c["K_px"].float() for c in clips])
    c2w = torch.stack([c["c2w"].float() for c in clips])
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        x0 = model.encode(frames)
        cond = model.conditioning(frames[:, 0], train=False, generator=g)
        cond.update(model.prepare_cameras(K, c2w, tuple(x0.shape[-2:]), tuple(frames.shape[-2:])))
    return x0, cond, frames


def detail_ratio(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Fine detail of ``x`` over ``ref`` (both (..., h, w)): the mean squared difference of vertically and
    horizontally adjacent pixels, frame 0 left out (it is the conditioning frame). 1: as much high-frequency
    energy as ``ref``; below 1: blurrier; above 1: rougher (speckle)."""

    def energy(z: torch.Tensor) -> float:
        z = z[:, 1:].double()
        vertical = (z[..., 1:, :] - z[..., :-1, :]).pow(2).mean()
        return float(vertical + (z[..., 1:] - z[..., :-1]).pow(2).mean())

    return energy(x) / energy(ref)


@torch.no_grad()
def one_step_frame_errors(
    model: Any, x0: torch.Tensor, cond: dict, sigmas: Sequence[float], seed: int = 0
) -> torch.Tensor:
    """(S, F) error of ``D(x0 + sigma n; sigma)`` per sigma and frame; one unit noise n for every sigma."""
    n = torch.randn(x0.shape, generator=torch.Generator().manual_seed(int(seed)))
    return torch.stack([frame_mse(model.denoise(x0 + s * n, float(s), cond), x0) for s in sigmas])


@torch.no_grad()
def path_frame_errors(
    model: Any,
    x0: torch.Tensor,
    cond: dict,
    sigmas: torch.Tensor,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Euler on ``sigmas`` ((N + 1,), ending at 0), no guidance, from ``sigmas[0] * n``.

    Returns {"sigma": (N,), "estimate": (N, F) error of D(x; sigma_i) per step and frame, "final": (F,) the
    sample's error (= the last estimate's), "noise_ratio": (N,) |x - D|^2 / sigma^2 (1: the state holds
    exactly the scheduled noise; below 1: the model reads some of it as content; an exact denoiser of
    x0 + sigma n reads 1 - MMSE / sigma^2), "detail": (N,) the estimate's fine detail over the truth's
    (``detail_ratio``: below 1 is blur)}.
    """
    x = torch.randn(x0.shape, generator=torch.Generator().manual_seed(int(seed))).double() * sigmas[0]
    est, ratio, detail = [], [], []
    for i in range(len(sigmas) - 1):
        s = float(sigmas[i])
        d = model.denoise(x.float(), s, cond).double()
        est.append(frame_mse(d, x0))
        ratio.append(float((x - d).pow(2).mean()) / s**2)
        detail.append(detail_ratio(d, x0))
        x = x + (float(sigmas[i + 1]) - s) * (x - d) / s
    return {
        "sigma": sigmas[:-1].clone(),
        "estimate": torch.stack(est),
        "final": frame_mse(x, x0),
        "noise_ratio": torch.tensor(ratio, dtype=torch.float64),
        "detail": torch.tensor(detail, dtype=torch.float64),
    }


@torch.no_grad()
def conditioning_ablation(
    model: Any, x0: torch.Tensor, cond: dict, sigmas: Sequence[float], seed: int = 0
) -> dict[str, torch.Tensor]:
    """{variant: (S, F) one-step error} with the conditioning latent as given ("frame 0"), replaced by noise
    of its own mean and std ("noise"), or by the next clip's ("another clip's", B >= 2)."""
    c = cond["cond_latent"]
    g = torch.Generator().manual_seed(int(seed) + 1)
    noise = c.mean() + c.std() * torch.randn(c.shape, generator=g)
    variants = {"frame 0": c, "noise": noise}
    if c.shape[0] >= 2:
        variants["another clip's"] = torch.roll(c, -1, dims=0)
    return {k: one_step_frame_errors(model, x0, {**cond, "cond_latent": v}, sigmas, seed)
            for k, v in variants.items()}


def _row(values: Sequence[float], fmt: str = "{:.4f}") -> str:
    return " ".join(fmt.format(float(v)) for v in values)


def diagnose(
    model: Any,
    clips: Sequence[dict],
    steps: int = 25,
    sigma_min: float = 0.002,
    sigma_max: float = 700.0,
    rho: float = 7.0,
    seed: int = 0,
) -> dict[str, Any]:
    """All three measurements (module docstring) as a JSON-ready record."""
    from vid3d.sampling.samplers import karras_sigmas

    x0, cond, _ = clip_inputs(model, clips, seed)
    copy = frame_mse(x0[:, :1].expand_as(x0), x0)
    one = one_step_frame_errors(model, x0, cond, ONE_STEP_SIGMAS, seed)
    path = path_frame_errors(model, x0, cond, karras_sigmas(steps, sigma_min, sigma_max, rho), seed)
    abl = conditioning_ablation(model, x0, cond, ABLATION_SIGMAS, seed)
    return {
        "clips": len(clips),
        "frames": int(x0.shape[1]),
        "copy_frame0": copy.tolist(),
        "one_step": {
            f"{s:g}": {"train_cdf": model_train_sigma_cdf(model, s), "frames": one[i].tolist()}
            for i, s in enumerate(ONE_STEP_SIGMAS)
        },
        "path": {
            "schedule": {"steps": steps, "sigma_min": sigma_min, "sigma_max": sigma_max, "rho": rho},
            "sigma": path["sigma"].tolist(),
            "train_cdf": [model_train_sigma_cdf(model, float(s)) for s in path["sigma"]],
            "estimate": path["estimate"].tolist(),
            "noise_ratio": path["noise_ratio"].tolist(),
            "detail": path["detail"].tolist(),
            "final": path["final"].tolist(),
        },
        "conditioning": {
            k: {f"{s:g}": v[i].tolist() for i, s in enumerate(ABLATION_SIGMAS)} for k, v in abl.items()
        },
    }


def report_lines(rec: dict[str, Any]) -> list[str]:
    """The record as text tables (per-frame columns 0 .. F-1)."""
    f = rec["frames"]
    frames = " ".join(f"{'f' + str(i):>6}" for i in range(f))
    out = [f"{rec['clips']} clips, {f} frames; latent MSE per frame (frame 0 = the conditioning frame)",
           f"copy frame 0               {_row(rec['copy_frame0'], '{:6.4f}')}",
           "", "1. one step D(x0 + sigma n): error per frame; train<=: share of training sigmas at or below",
           "  (1-err/s^2: what |x-D|^2/s^2 reads on these inputs, to compare with the path's)",
           f"{'sigma':>8} {'train<=':>8} {'sigma^2':>9} {'1-err/s^2':>9} {frames}"]
    for s, r in rec["one_step"].items():
        implied = 1 - sum(r["frames"]) / len(r["frames"]) / float(s) ** 2
        out.append(f"{s:>8} {r['train_cdf']:8.4f} {float(s) ** 2:9.4g} {implied:9.3f} "
                   f"{_row(r['frames'], '{:6.4f}')}")
    p = rec["path"]
    sch = p["schedule"]
    out += ["", f"2. Euler path ({sch['steps']} steps, sigma {sch['sigma_max']:g} -> {sch['sigma_min']:g}, "
            f"rho {sch['rho']:g}, no guidance): error of x0_hat = D(x; sigma) per frame",
            f"{'sigma':>8} {'train<=':>8} {'|x-D|^2/s^2':>11} {'detail':>6} {frames}"]
    for s, c, r, dt, e in zip(p["sigma"], p["train_cdf"], p["noise_ratio"], p["detail"], p["estimate"],
                              strict=True):
        out.append(f"{s:8.3f} {c:8.4f} {r:11.3f} {dt:6.3f} {_row(e, '{:6.4f}')}")
    out.append(f"{'sample':>8} {'':8} {'':11} {'':6} {_row(p['final'], '{:6.4f}')}")
    best = [min(range(len(p["sigma"])), key=lambda i, j=j: p["estimate"][i][j]) for j in range(f)]
    out.append("sigma of the best estimate per frame: " + " ".join(f"{p['sigma'][i]:.3g}" for i in best))
    out += ["", "3. conditioning latent as given / noise / another clip's: one-step error per frame"]
    for k, by_sigma in rec["conditioning"].items():
        for s, e in by_sigma.items():
            out.append(f"{k:>15} sigma {s:>4} {_row(e, '{:6.4f}')}")
    return out
