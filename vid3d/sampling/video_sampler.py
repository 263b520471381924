"""Generate a video along a camera trajectory with a trained model: ``VideoSampler`` (a sampler with
classifier-free guidance around the model's denoiser; ``conf/sampler/``).

Conventions: images in [-1, 1], (B, 3, H, W); intrinsics ``K_px`` (B, F, 3, 3) in pixels at (H, W);
``c2w`` (B, F, 4, 4) OpenCV camera-to-world (made relative to the first frame by the model). Frame 0 is
the conditioning image's camera.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from vid3d.config_schema import SamplerOptions

from .guidance import cfg_denoiser, frame_guidance
from .sampler_settings import sampler_options
from .samplers import SOLVERS, initial_noise, karras_sigmas

Solver = Callable[..., torch.Tensor]
_DEFAULT = SamplerOptions()  # the defaults' one place (vid3d/config_schema.py)


class VideoSampler:
    """Probability-flow ODE sampling with classifier-free guidance (conditional and unconditional passes
    batched together).

    The arguments are ``vid3d.config_schema.SamplerOptions`` (keys, defaults and meaning), checked by
    ``vid3d.sampling.sampler_settings`` (a value out of bounds raises ``SamplerSettingsRefused``, one line);
    ``self.options`` holds them. ``solver`` is a name of ``vid3d.sampling.samplers.SOLVERS`` or a sampler
    function ``solver(denoiser, x_T, sigmas, progress=...)`` of one's own (``options.solver`` is then
    "custom"). :meth:`from_options` builds one from a ``SamplerOptions``.

    Execution options (``SamplerNode`` in the config; not stored with an exported model, and they change the
    video only by float rounding):
        cache_conditions: compute what does not change between steps once per video (the camera encoder's
            features, the attention cameras' cache check; ``model.sampling_cache``); False recomputes them
            at every step (the reference path of benchmarks/sampling_step.py).
        autocast: None (float32) or "bf16" / "fp16": the denoiser steps run under ``torch.autocast`` in that
            dtype (camera geometry stays float32/float64; the ODE state float64). For GPUs.
        compile_unet: None, or a ``torch.compile`` backend ("inductor" on a GPU; "eager" only checks
            that the UNet traces): the UNet is compiled in place (``nn.Module.compile``: parameters and
            state-dict keys unchanged) before the first video; the first call pays the compilation
            (minutes for the tiny UNet on a CPU).
    """

    def __init__(
        self,
        solver: str | Solver = _DEFAULT.solver,
        num_steps: int = _DEFAULT.num_steps,
        sigma_min: float = _DEFAULT.sigma_min,
        sigma_max: float = _DEFAULT.sigma_max,
        rho: float = _DEFAULT.rho,
        guidance_min: float = _DEFAULT.guidance_min,
        guidance_max: float = _DEFAULT.guidance_max,
        eta: float = _DEFAULT.eta,
        cache_conditions: bool = True,
        autocast: str | None = None,
        compile_unet: str | None = None,
    ) -> None:
        if autocast is not None and autocast not in AUTOCAST_DTYPES:
            raise ValueError(
                f"sampler autocast must be null or one of {sorted(AUTOCAST_DTYPES)}, got {autocast!r}"
            )
        self.cache_conditions, self.autocast = bool(cache_conditions), autocast
        self.compile_unet = None if compile_unet in (None, False) else str(compile_unet)
        given = {"num_steps": num_steps, "sigma_min": sigma_min, "sigma_max": sigma_max, "rho": rho,
                 "guidance_min": guidance_min, "guidance_max": guidance_max, "eta": eta}
        if isinstance(solver, str):
            given["solver"] = solver
        elif not callable(solver):
            raise TypeError(f"VideoSampler: solver must be a name in {sorted(SOLVERS)} or a function, "
                            f"got {type(solver).__name__}")
        elif eta != 0:
            raise ValueError("VideoSampler: eta applies to solver='ddim' only, not to a solver function")
        opts = sampler_options(given, "sampler")
        if isinstance(solver, str):
            fn = SOLVERS[opts.solver]
            self.solver = functools.partial(fn, eta=opts.eta) if opts.eta else fn
        else:
            self.solver = solver
            opts.solver = next((k for k, f in SOLVERS.items() if f is solver), "custom")
        self.options = opts
        self.num_steps = opts.num_steps
        self.sigma_min, self.sigma_max, self.rho = opts.sigma_min, opts.sigma_max, opts.rho
        self.guidance_min, self.guidance_max = opts.guidance_min, opts.guidance_max

    @classmethod
    def from_options(cls, options: SamplerOptions) -> VideoSampler:
        """A sampler with these options (``dataclasses.replace(SamplerOptions(), num_steps=8)``, ...)."""
        return cls(**{f: getattr(options, f) for f in options.__dataclass_fields__})

    @torch.no_grad()
    def __call__(
        self,
        model: nn.Module,
        first_frame: Float[Tensor, "batch 3 H W"],
        K_px: Float[Tensor, "batch frame 3 3"],
        c2w: Float[Tensor, "batch frame 4 4"],
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        progress: Callable[[int, int], None] | None = None,
        known_frames: Mapping[int, Float[Tensor, "batch 3 H W"]] | None = None,
    ) -> Float[Tensor, "batch frame 3 H W"]:
        """Returns frames (B, F, 3, H, W) in [-1, 1]; frame 0 re-generated (not copied) from the image.

        Args:
            first_frame: (B, 3, H, W) conditioning image in [-1, 1] (the camera of frame 0).
            K_px, c2w: (B, F, 3, 3) / (B, F, 4, 4), see the module docstring.
            generator: all randomness (conditioning noise augmentation, initial noise) comes from it, so
                a seed gives the same video. A sequence of B generators: sample b's randomness comes from
                generator b alone, drawn in the order one video of batch 1 draws it, so each video of a
                batch is the video its generator gives alone (to float rounding of the batched forward).
            known_frames: optional ``{frame index: images (B, 3, H, W) in [-1, 1]}`` pinned by
                *replacement* (training-free; see :func:`replacement_denoiser`). Used for interpolation
                with the last frame given: ``{F - 1: last_image}``. Negative indices count from the end.
        """
        b, f = c2w.shape[:2]
        H, W = first_frame.shape[-2:]
        ds = model.downscale
        if H % ds or W % ds:
            raise ValueError(f"image size {H}x{W} is not divisible by the model's downscale {ds}")
        h, w = H // ds, W // ds
        gens = _per_item(generator, b)
        if gens is None:
            cond = model.conditioning(first_frame, train=False, generator=generator)
        else:  # each item's conditioning noise from its own generator, as alone
            parts = [
                model.conditioning(first_frame[i : i + 1], train=False, generator=g)
                for i, g in enumerate(gens)
            ]
            cond = {k: torch.cat([p[k] for p in parts], dim=0) for k in parts[0]}
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
        shape = (f, model.latent_channels, h, w)
        if gens is None:
            x_T = initial_noise((b, *shape), self.sigma_max, generator, first_frame.device)
        else:
            x_T = torch.cat([initial_noise((1, *shape), self.sigma_max, g, first_frame.device) for g in gens])
        if known_frames:
            index, known = _known_latents(model, known_frames, b, f, (H, W), x_T)
            noise = x_T[:, index] / float(sigmas[0])
            x_T[:, index] = known + float(sigmas[0]) * noise  # the known frames start on their ODE path
            denoiser = replacement_denoiser(denoiser, known, index, noise)
        unet = model.unet
        if self.compile_unet is not None and getattr(unet, "_vid3d_compiled", None) != self.compile_unet:
            unet.compile(backend=self.compile_unet)  # in place: parameters and state dict keys unchanged
            unet._vid3d_compiled = self.compile_unet
        with contextlib.ExitStack() as stack:
            if self.cache_conditions and hasattr(model, "sampling_cache"):
                stack.enter_context(model.sampling_cache())
            if self.autocast is not None:
                dtype = AUTOCAST_DTYPES[self.autocast]
                stack.enter_context(torch.autocast(device_type=first_frame.device.type, dtype=dtype))
            latents = self.solver(denoiser, x_T, sigmas, progress=progress)
        return model.decode(latents.float()).clamp(-1, 1)


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _per_item(
    generator: torch.Generator | Sequence[torch.Generator] | None, b: int
) -> list[torch.Generator] | None:
    """None for one generator (or none); the list for a sequence of generators, which must hold B."""
    if generator is None or isinstance(generator, torch.Generator):
        return None
    gens = list(generator)
    if len(gens) != b or not all(isinstance(g, torch.Generator) for g in gens):
        raise ValueError(f"generator: expected one torch.Generator or a sequence of {b} (one per video), "
                         f"got {len(gens)} items")
    return gens


def _known_latents(
    model: nn.Module,
    known_frames: Mapping[int, torch.Tensor],
    b: int,
    f: int,
    image_hw: tuple[int, int],
    like: torch.Tensor,
) -> tuple[list[int], torch.Tensor]:
    """Frame indices (sorted, non-negative) and their clean latents (B, K, C, h, w)."""
    items = {}
    for i, img in known_frames.items():
        j = int(i) % f if -f <= int(i) < f else None
        if j is None:
            raise ValueError(f"known frame index {i} is outside the {f} frames of the trajectory")
        if img.ndim != 4 or img.shape[0] != b or tuple(img.shape[-2:]) != tuple(image_hw):
            raise ValueError(
                f"known frame {i}: expected images ({b}, 3, {image_hw[0]}, {image_hw[1]}), "
                f"got {tuple(img.shape)}"
            )
        items[j] = img
    index = sorted(items)
    images = torch.stack([items[j] for j in index], dim=1).to(like.device)
    return index, model.encode(images).to(like.dtype)


def replacement_denoiser(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    known: torch.Tensor,
    index: list[int],
    noise: torch.Tensor,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Pin frames whose clean latents are known, by replacement (training-free).

    The model conditions on the first frame only; other known frames (the last frame, for
    interpolation) are imposed during sampling. At every denoiser evaluation at noise level ``sigma``
    the latents of the known frames in ``x`` are *replaced* by the known clean latents noised to that
    level, ``z + sigma * n`` (one fixed ``n`` per frame, drawn with the initial noise), so the other
    frames are denoised next to a correctly noised copy of the known frames; and the denoiser returns
    ``z`` for those frames. With ``D = z`` an Euler/Heun/DDIM(eta=0) step maps ``z + s_i n`` exactly
    to ``z + s_{i+1} n`` (``VideoSampler`` starts those frames at ``z + sigma_max n``), so the state
    of the known frames is the known latent noised to the current sigma at every step, and the final
    sample (sigma = 0) holds ``z`` exactly there.

    Args:
        denoiser: ``(x (B, F, C, h, w), sigma (B,)) -> D``.
        known: (B, K, C, h, w) clean latents of frames ``index`` (K entries).
        noise: (B, K, C, h, w) unit noise for them.
    """

    def wrapped(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        x = x.clone()
        x[:, index] = known.to(x.dtype) + s * noise.to(x.dtype)
        d = denoiser(x, sigma).clone()
        d[:, index] = known.to(d.dtype)
        return d

    return wrapped


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) in [-1, 1] -> (..., H, W, 3) uint8; uint8 frames (0..255, as a dataset with
    ``frames_dtype="uint8"`` gives them) are only moved to channels-last."""
    if frames.dtype == torch.uint8:
        return frames.detach().cpu().movedim(-3, -1).contiguous().numpy()
    x = ((frames.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3).float() / 127.5 - 1
