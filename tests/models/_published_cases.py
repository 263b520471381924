"""Seeded tiny cases of the published camera models, shared by their tests and by the side-by-side runs.

Every weight and input is drawn here from a seeded generator (parameters in sorted-name order, so the
numbers do not depend on the order diffusers creates modules in). The side-by-side run (benchmarks/README.md,
"Published camera models") wrote these same weights in the peers' layouts, ran the peers' own modules on them
and recorded the outputs' statistics; the tests compare vid3d's outputs with those records.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

# an SVD-shaped UNet at a tiny size: attention at every level but the deepest, two layers per block
UNET = dict(
    in_channels=8,
    out_channels=4,
    block_out_channels=(32, 64, 64),
    down_block_types=(
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "DownBlockSpatioTemporal",
    ),
    up_block_types=(
        "UpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
    ),
    layers_per_block=2,
    cross_attention_dim=32,
    num_attention_heads=(2, 4, 4),
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=24,
)
B, F, H, W = 2, 5, 64, 96  # image size; latents at H / 8 x W / 8


def fill(modules: dict[str, nn.Module], seed: int, gain: dict[str, float] | None = None) -> None:
    """Every parameter of ``modules`` from one generator, in sorted-name order: N(0, s^2 / fan_in) for
    matrices (s = 0.2, or ``gain[name]`` for the module of that name), N(0, 0.1^2) else."""
    g = torch.Generator().manual_seed(seed)
    named = sorted((m, f"{m}.{n}", p) for m, mod in modules.items() for n, p in mod.named_parameters())
    with torch.no_grad():
        for m, _, p in named:
            if p.ndim > 1:
                s = (gain or {}).get(m, 0.2)
                p.copy_(s * torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def tiny_unet() -> nn.Module:
    from diffusers import UNetSpatioTemporalConditionModel

    return UNetSpatioTemporalConditionModel(**UNET).eval()


def cameras() -> tuple[torch.Tensor, torch.Tensor]:
    """K_px (B, F, 3, 3) at the image size and c2w (B, F, 4, 4): a yaw of 0..0.5 rad with a sideways and
    backward move (clip 1 also moves up), frame 0 the identity."""
    K = torch.tensor([[0.9 * W, 0.0, 0.5 * W + 1.5], [0.0, 1.1 * H, 0.5 * H - 2.0], [0.0, 0.0, 1.0]])
    ang = torch.linspace(0, 0.5, F)
    c2w = torch.eye(4).repeat(B, F, 1, 1)
    c2w[:, :, 0, 0] = torch.cos(ang)
    c2w[:, :, 0, 2] = torch.sin(ang)
    c2w[:, :, 2, 0] = -torch.sin(ang)
    c2w[:, :, 2, 2] = torch.cos(ang)
    c2w[:, :, 0, 3] = torch.linspace(0, 0.7, F)
    c2w[:, :, 2, 3] = torch.linspace(0, -0.4, F)
    c2w[1, :, 1, 3] = torch.linspace(0, 0.3, F)
    return K.expand(B, F, 3, 3).clone(), c2w


def unet_inputs(seed: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "sample": torch.randn(B, F, 8, H // 8, W // 8, generator=g),
        "ehs": torch.randn(B, 1, 32, generator=g),
        "ids": torch.tensor([[6.0, 127.0, 0.02]]).repeat(B, 1),
        "t": torch.full((B,), 0.37),
    }


def cameractrl_case():
    """(unet, encoder attached, inputs, K at the latent size, c2w) of the seeded CameraCtrl case."""
    from vid3d.models.published.cameractrl import CameraCtrlEncoder

    unet = tiny_unet()
    enc = CameraCtrlEncoder.from_unet(unet, downscale_factor=8, max_frames=14)
    fill({"unet": unet, "enc": enc}, seed=1, gain={"enc": 2.0})  # a camera effect well above float noise
    enc.attach(unet)
    K, c2w = cameras()
    K_lat = K.clone()
    K_lat[..., :2, :] /= 8
    return unet.eval(), enc.eval(), unet_inputs(), K_lat, c2w


def motionctrl_case():
    """(unet, encoder attached, RT (B, F, 12)) of the seeded MotionCtrl case (its transformers compared)."""
    from vid3d.models.published.motionctrl import MotionCtrlEncoder

    unet = tiny_unet()
    enc = MotionCtrlEncoder.from_unet(unet)
    fill({"unet": unet, "enc": enc}, seed=1)
    enc.attach(unet)
    _, c2w = cameras()
    return unet.eval(), enc.eval(), enc.prepare(None, c2w, H // 8, W // 8)


def transformer_inputs(channels: int, seed: int = 3) -> dict[str, torch.Tensor]:
    """Inputs of one spatio-temporal transformer at (H / 16, W / 16): x, context, image_only_indicator."""
    g = torch.Generator().manual_seed(seed + channels)
    return {
        "x": torch.randn(B * F, channels, H // 16, W // 16, generator=g),
        "ctx": torch.randn(B * F, 1, 32, generator=g),
        "ioi": torch.zeros(B, F),
    }
