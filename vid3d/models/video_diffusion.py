"""Camera-controlled Stable Video Diffusion: backbone + camera encoder (+ optional epipolar/full attention).

Shapes and conventions:
- frames (B, F, 3, H, W) in [-1, 1]; latents (B, F, C, h, w) in the *scaled* VAE latent space;
  h = H / f, w = W / f with f = ``backbone.downscale``.
- EDM noise x = x0 + sigma * n; SVD preconditioning (vid3d.models.edm):
  D(x; sigma) = c_skip x + c_out UNet(cat([c_in x, cond_latent], dim=2); c_noise).
- A *condition dict* is flat (so CFG can concatenate cond/uncond along dim 0 with
  ``vid3d.sampling.guidance.merge_conditions``): the SVD keys of vid3d.models.conditioning plus the
  camera keys returned by ``prepare_cameras``:
      cam_K_px  (B, F, 3, 3) pixel intrinsics at the latent resolution
      cam_c2w   (B, F, 4, 4) OpenCV camera-to-world relative to the first frame
      cam_input camera-encoder input ((B, F, 6, h, w) Plücker maps, (B, F, 12) [R | t]) or None
  ``denoise(x, sigma, cond, cameras)`` accepts cameras separately or already merged into ``cond``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.utils.checkpoint

from vid3d.data.frames import as_unit_range
from vid3d.geometry import relative_to_first

from .backbone import Backbone
from .camera_encoder import CameraEncoder, build_camera_encoder
from .conditioning import SVDConditioningConfig, build_conditioning
from .conditioning import unconditional as _unconditional
from .edm import append_dims, edm_loss, sample_train_sigma, svd_precond

CAMERA_KEYS = ("cam_K_px", "cam_c2w", "cam_input")
# Python shortcuts for CameraVideoDiffusion(attention="..."): the attach function of each choice (configs
# name the function itself as ``_target_``, conf/model/attention/)
ATTENTION_CHOICES = {
    "none": "no_attention",
    "epipolar": "attach_epipolar_attention",
    "full": "attach_full_attention",
}


def _attach_attention(unet: nn.Module, name: str, band_width: float | None, kwargs: dict):
    """Attach the attention of the shortcut ``name`` (see ``ATTENTION_CHOICES``)."""
    from vid3d.models import attention as attention_module

    if name == "none":
        return None
    attach = getattr(attention_module, ATTENTION_CHOICES[name])
    if band_width is not None and name == "epipolar":  # the only choice with a band
        kwargs = {**kwargs, "band_width": band_width}
    return attach(unet, **kwargs)


def _attention_name(factory: Callable) -> str:
    """The result-table name of an attention factory (a partial of an attach function): "epipolar", ..."""
    fn = getattr(factory, "func", factory)
    names = {v: k for k, v in ATTENTION_CHOICES.items()}
    return names.get(getattr(fn, "__name__", ""), "custom")


def _randn(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    dev = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=dev).to(device=like.device, dtype=like.dtype)


class CameraVideoDiffusion(nn.Module):
    """SVD backbone conditioned on a camera trajectory.

    Args:
        backbone: vid3d Backbone (tiny or loaded SVD).
        camera_encoder: "plucker" | "rt" | "none", a CameraEncoder instance, or a factory called with
            the UNet (Hydra: ``_target_: ...PluckerEncoder.from_unet`` with ``_partial_: true``).
        attention: a factory called with the UNet (Hydra: a partial of ``attach_epipolar_attention``,
            ``attach_full_attention`` or ``no_attention``), or one of those by name: "epipolar" | "full" |
            "none".
        band_width: with a name: the epipolar band width (None: its default).
        P_mean, P_std: training ln(sigma) ~ N(P_mean, P_std^2).
        sigma_high_fraction, P_mean_high, P_std_high: with probability ``sigma_high_fraction`` a training
            sigma comes from ln(sigma) ~ N(P_mean_high, P_std_high^2) instead (``edm.sample_train_sigma``):
            the camera is learned at high noise, where the frames hide the motion
            (experiments/cpu_camera_control/README.md: 10x fewer steps on the positive control).
        cond_dropout, noise_aug_mean, noise_aug_std, sample_noise_aug, fps_id, motion_bucket_id:
            SVD conditioning (see vid3d.models.conditioning.SVDConditioningConfig).
        latent_sample: encode training frames with a posterior sample instead of its mode (KL VAE only).
        camera_encoder_kwargs, attention_kwargs: extra constructor arguments.
        name: the method's name in result tables (e.g. "epipolar").
    """

    def __init__(
        self,
        backbone: Backbone,
        camera_encoder: str | CameraEncoder | Callable[[nn.Module], CameraEncoder] = "plucker",
        attention: str | Callable[[nn.Module], nn.Module | None] = "none",
        band_width: float | None = None,
        P_mean: float = 0.7,
        P_std: float = 1.6,
        sigma_high_fraction: float = 0.0,
        P_mean_high: float = 1.6,
        P_std_high: float = 0.3,
        cond_dropout: float = 0.15,
        noise_aug_mean: float = -3.0,
        noise_aug_std: float = 0.5,
        sample_noise_aug: float = 0.02,
        fps_id: float = 6.0,
        motion_bucket_id: float = 127.0,
        latent_sample: bool = False,
        camera_encoder_kwargs: Mapping[str, Any] | None = None,
        attention_kwargs: Mapping[str, Any] | None = None,
        name: str = "model",
    ) -> None:
        super().__init__()
        self.name = name
        self.backbone = backbone
        if isinstance(camera_encoder, str):
            camera_encoder = build_camera_encoder(
                camera_encoder, backbone.unet, **dict(camera_encoder_kwargs or {})
            )
        elif not isinstance(camera_encoder, nn.Module):
            camera_encoder = camera_encoder(backbone.unet)
        self.camera_encoder = camera_encoder
        self.camera_encoder.attach(backbone.unet)
        if callable(attention):
            self.attention = _attention_name(attention)
            self.attention_adapter = attention(backbone.unet)
        elif attention in ATTENTION_CHOICES:
            self.attention = attention
            self.attention_adapter = _attach_attention(
                backbone.unet, attention, band_width, dict(attention_kwargs or {})
            )
        else:
            raise ValueError(
                f"attention must be one of {sorted(ATTENTION_CHOICES)} or a factory, got {attention!r}"
            )
        if self.attention_adapter is not None and hasattr(self.attention_adapter, "image_per_latent"):
            self.attention_adapter.image_per_latent = int(backbone.downscale)
        self.P_mean, self.P_std = float(P_mean), float(P_std)
        self.sigma_high = (float(sigma_high_fraction), float(P_mean_high), float(P_std_high))
        self.latent_sample = bool(latent_sample)
        self.cond_cfg = SVDConditioningConfig(
            fps_id=fps_id,
            motion_bucket_id=motion_bucket_id,
            noise_aug_mean=noise_aug_mean,
            noise_aug_std=noise_aug_std,
            sample_noise_aug=sample_noise_aug,
            cond_dropout=cond_dropout,
        )

    def train(self, mode: bool = True) -> CameraVideoDiffusion:
        """Train/eval mode for the UNet and camera/attention modules; the VAE and CLIP stay in eval."""
        super().train(mode)
        self.backbone.vae.eval()
        self.backbone.image_encoder.eval()
        return self

    # ------------------------------------------------------------------ components
    @property
    def unet(self) -> nn.Module:
        return self.backbone.unet

    @property
    def latent_channels(self) -> int:
        return self.backbone.latent_channels

    @property
    def downscale(self) -> int:
        return self.backbone.downscale

    # ------------------------------------------------------------------ autoencoder
    @torch.no_grad()
    def encode(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, F, 3, H, W) in [-1, 1] -> scaled latents (B, F, C, H/f, W/f) (no grad)."""
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, F, 3, H, W), got {tuple(frames.shape)}")
        b, f = frames.shape[:2]
        z = self.backbone.vae.encode_latents(
            frames.flatten(0, 1), sample=self.latent_sample, generator=generator
        )
        return z.reshape(b, f, *z.shape[1:])

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, F, C, h, w) -> frames (B, F, 3, h f, w f), roughly in [-1, 1] (no grad)."""
        b, f = latents.shape[:2]
        x = self.backbone.vae.decode_latents(latents.flatten(0, 1), num_frames=f)
        return x.reshape(b, f, *x.shape[1:])

    # ------------------------------------------------------------------ conditions
    def prepare_cameras(
        self,
        K_px: torch.Tensor,
        c2w: torch.Tensor,
        latent_hw: tuple[int, int],
        image_hw: tuple[int, int] | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """Camera inputs at the latent resolution.

        Args:
            K_px: (B, F, 3, 3) pixel intrinsics at the image resolution.
            c2w: (B, F, 4, 4) OpenCV camera-to-world (made relative to frame 0 here; not scale-normalised).
            latent_hw: (h, w) latent size.
            image_hw: (H, W) image size; default (h * f, w * f) with f = ``downscale``.
        Returns:
            {"cam_K_px": (B, F, 3, 3) K scaled by (w / W, h / H), "cam_c2w": (B, F, 4, 4),
             "cam_input": encoder input or None}, float32.
        """
        if K_px.ndim != 4 or K_px.shape[-2:] != (3, 3) or c2w.shape[:2] != K_px.shape[:2]:
            raise ValueError(
                f"expected K_px (B, F, 3, 3) and c2w (B, F, 4, 4), "
                f"got {tuple(K_px.shape)}, {tuple(c2w.shape)}"
            )
        h, w = int(latent_hw[0]), int(latent_hw[1])
        H, W = image_hw if image_hw is not None else (h * self.downscale, w * self.downscale)
        scale = torch.tensor([w / W, h / H, 1.0], dtype=torch.float32, device=K_px.device)
        # Camera geometry stays float32 under mixed precision (autocast would hand cross products and
        # inverses half-precision operands).
        with torch.autocast(device_type=K_px.device.type, enabled=False):
            K_lat = K_px.float() * scale[:, None]
            c2w_rel = relative_to_first(c2w.float())
            cam_input = self.camera_encoder.prepare(K_lat, c2w_rel, h, w)
        return {"cam_K_px": K_lat, "cam_c2w": c2w_rel, "cam_input": cam_input}

    def conditioning(
        self,
        first_frame: torch.Tensor,
        train: bool,
        generator: torch.Generator | None = None,
        cond_sigma: torch.Tensor | float | None = None,
    ) -> dict[str, torch.Tensor]:
        """SVD condition dict for first frames (B, 3, H, W) in [-1, 1] (vid3d.models.conditioning)."""
        return build_conditioning(self.backbone, first_frame, train, self.cond_cfg, generator, cond_sigma)

    @staticmethod
    def unconditional(cond: Mapping[str, Any]) -> dict[str, Any]:
        """CFG negative branch: CLIP embedding and cond latent zeroed, cameras/time ids kept."""
        return _unconditional(cond)

    @contextlib.contextmanager
    def sampling_cache(self) -> Iterator[None]:
        """For a sampler's steps (no grad, fixed weights, the same condition tensors at every step): the
        camera encoder's features are computed once per camera input (and once for CFG's two equal halves,
        ``CameraEncoder.reuse_features``) and the attention cameras are taken as unchanged without copying
        or comparing them while they are the same tensors (``AttentionAdapter.reuse_cameras``)."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.camera_encoder.reuse_features())
            if self.attention_adapter is not None and hasattr(self.attention_adapter, "reuse_cameras"):
                stack.enter_context(self.attention_adapter.reuse_cameras())
            yield

    # ------------------------------------------------------------------ gradient checkpointing
    def _camera_state(self) -> tuple:
        """What the camera hooks read during one UNet forward (encoder features, attention cameras)."""
        adapter = self.attention_adapter
        return (
            self.camera_encoder._stash,
            None if adapter is None else adapter.get_state(),
        )

    @contextlib.contextmanager
    def _camera_state_restored(self, state: tuple) -> Iterator[None]:
        """Set the hooks' state to ``state`` for the body, then put back what was there."""
        previous = self._camera_state()
        stash, adapter_state = state
        self.camera_encoder._stash = stash
        if self.attention_adapter is not None:
            self.attention_adapter.set_state(adapter_state)
        try:
            yield
        finally:
            self.camera_encoder._stash = previous[0]
            if self.attention_adapter is not None:
                self.attention_adapter.set_state(previous[1])

    def enable_gradient_checkpointing(self) -> None:
        """Recompute the UNet's checkpointed blocks (diffusers' choice: ResNets, spatial transformer blocks)
        in backward, with non-reentrant ``torch.utils.checkpoint``.

        The camera features and attention cameras reach the UNet through hooks that read per-forward state,
        which is gone by the time backward recomputes a block. Each checkpointed call therefore captures that
        state when it first runs and restores it around its recomputation, so any hook that fires inside a
        checkpointed block sees the same cameras in both passes (tested: identical loss and gradients).
        """
        unet = self.backbone.unet
        if not getattr(unet, "_supports_gradient_checkpointing", False):
            raise ValueError(f"{type(unet).__name__} does not support gradient checkpointing")

        def checkpointed(module: nn.Module, *args):
            state = self._camera_state()

            def run(*inputs):
                with self._camera_state_restored(state):
                    return module(*inputs)

            return torch.utils.checkpoint.checkpoint(run, *args, use_reentrant=False)

        unet.enable_gradient_checkpointing(checkpointed)

    # ------------------------------------------------------------------ network
    def unet_forward(
        self, sample: torch.Tensor, c_noise: torch.Tensor, cond: Mapping[str, Any]
    ) -> torch.Tensor:
        """Raw UNet output F for ``sample`` (B, F, 2C, h, w) with camera hooks and attention cameras set."""
        unet = self.backbone.unet
        dtype = unet.dtype
        num_frames = sample.shape[1]
        adapter = self.attention_adapter
        with self.camera_encoder.active(cond.get("cam_input")):
            if adapter is not None:
                if cond.get("cam_K_px") is None or cond.get("cam_c2w") is None:
                    raise ValueError(
                        f"attention={self.attention!r} needs cam_K_px and cam_c2w in the condition"
                    )
                adapter.set_cameras(cond["cam_K_px"], cond["cam_c2w"], num_frames)
            try:
                out = unet(
                    sample.to(dtype),
                    c_noise.to(dtype),
                    encoder_hidden_states=cond["encoder_hidden_states"].to(dtype),
                    added_time_ids=cond["added_time_ids"].to(dtype),
                    return_dict=False,
                )[0]
            finally:
                if adapter is not None:
                    adapter.clear()
        return out.to(sample.dtype)

    def denoise(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor | float,
        cond: Mapping[str, Any],
        cameras: Mapping[str, Any] | None = None,
    ) -> torch.Tensor:
        """D(x; sigma) for noisy latents x (B, F, C, h, w) and sigma (B,) (or a scalar); returns x's shape."""
        c = {**cond, **(cameras or {})}
        if x.ndim != 5 or x.shape[2] != self.latent_channels:
            raise ValueError(f"x must be (B, F, {self.latent_channels}, h, w), got {tuple(x.shape)}")
        b, f = x.shape[:2]
        sigma = torch.as_tensor(sigma, device=x.device).to(x.dtype).reshape(-1).expand(b)
        c_skip, c_out, c_in, c_noise = svd_precond(sigma)
        cond_latent = c["cond_latent"].to(x.dtype)
        if cond_latent.shape != (b, *x.shape[2:]):
            raise ValueError(
                f"cond_latent {tuple(cond_latent.shape)} does not match x {tuple(x.shape)} (B, C, h, w)"
            )
        cond_latent = cond_latent[:, None].expand(b, f, *cond_latent.shape[1:])
        sample = torch.cat([append_dims(c_in, 5) * x, cond_latent], dim=2)
        out = self.unet_forward(sample, c_noise, c)
        return append_dims(c_skip, 5) * x + append_dims(c_out, 5) * out

    # ------------------------------------------------------------------ training
    def training_loss(
        self, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """EDM loss on a batch {frames (B, F, 3, H, W), K_px (B, F, 3, 3), c2w (B, F, 4, 4), ...}.

        ``frames``: float in [-1, 1], or uint8 0..255 (converted here: ``vid3d.data.frames.as_unit_range``).
        Returns (mean loss over the batch, logs {"sigma_mean", "loss_unweighted", "cond_dropped"}).
        """
        frames = as_unit_range(batch["frames"])
        latents = self.encode(frames, generator=generator)
        b = latents.shape[0]
        cond = self.conditioning(frames[:, 0], train=True, generator=generator)
        cams = self.prepare_cameras(
            batch["K_px"], batch["c2w"], latents.shape[-2:], image_hw=frames.shape[-2:]
        )
        gdev = generator.device if generator is not None else latents.device
        f, m, sd = self.sigma_high
        sigma = sample_train_sigma(
            b,
            self.P_mean,
            self.P_std,
            generator=generator,
            device=gdev,
            high_fraction=f,
            P_mean_high=m,
            P_std_high=sd,
        ).to(latents)
        noise = _randn(latents.shape, generator, latents)
        cache: dict[str, torch.Tensor] = {}

        def denoiser(xn: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            d = self.denoise(xn, s, cond, cams)
            cache["mse"] = (d.detach().float() - latents.float()).pow(2).mean()
            return d

        per_sample = edm_loss(denoiser, latents, sigma, noise)
        dropped = (cond["encoder_hidden_states"].flatten(1).abs().sum(1) == 0).float().mean()
        logs = {"sigma_mean": sigma.mean().detach(), "loss_unweighted": cache["mse"], "cond_dropped": dropped}
        return per_sample.mean(), logs
