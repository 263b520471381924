"""Bounds on every number a stored model config holds, so a received file cannot hang or exhaust memory.

A checkpoint or pipeline folder names sizes (channels, layers, heads, levels...) that vid3d turns into
tensors. Types alone do not stop ``layers_per_block: 1000000`` (builds layers until memory runs out) or
``unet_channels: [1000000]`` (asks for terabytes). ``bound_problem`` is called by
``vid3d.models.schema`` on every field after its type check, before anything is built:

- a field listed in ``BOUNDS`` (by ``(target, field)`` first, then by field name: the same name means
  the same kind of size across vid3d's classes) has every number in it within ``[lo, hi]`` and, for a
  list, at most ``max_len`` entries;
- any other number (e.g. inside ``camera_encoder_kwargs``) must lie within ``DEFAULT_BOUND``;
- every float must be finite (NaN and inf are refused everywhere).

The limits are generous (about twice the largest real model vid3d loads, SVD: channels 320..1280,
2 layers per block, 4 levels, 1024-dim cross-attention), so no trained model is refused; they bound the
number of modules, so building never hangs. Memory is bounded separately: ``tiny_backbone_parameters``
counts a stored tiny backbone on the ``meta`` device (no memory, well under a second at the limits) and
``schema.build_model`` refuses one above ``MAX_BACKBONE_PARAMETERS`` before the real build (an
exported folder's component configs: ``COMPONENT_BOUNDS`` and ``backbone_folder_parameters``).
``tests/adversarial/test_adversarial_received.py`` checks that every numeric parameter of every allowed
``_target_`` has an entry here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bound:
    """Every number in the value within [lo, hi]; a list has at most ``max_len`` entries."""

    lo: float
    hi: float
    max_len: int | None = None


_M = "vid3d.models"
_CHANNELS = Bound(1, 2560, max_len=6)  # per level; SVD: 320, 640, 1280, 1280
# by field name: the same name is the same kind of size in every vid3d class that has it
BOUNDS: dict[str, Bound] = {
    # tiny backbone
    "unet_channels": _CHANNELS,
    "layers_per_block": Bound(1, 8),  # SVD: 2
    "heads": Bound(1, 64, max_len=6),  # attention heads (an int, or one per level)
    "cross_attention_dim": Bound(1, 4096),  # SVD: 1024
    "seed": Bound(0, 2**63 - 1),
    "addition_time_embed_dim": Bound(1, 1024),  # SVD: 256
    "clip_hidden": Bound(1, 4096),
    "clip_patch": Bound(1, 1024),
    "cross_attn_levels": Bound(0, 1, max_len=6),  # booleans, one per level
    # camera encoders
    "hidden_channels": _CHANNELS,
    "in_channels": Bound(1, 64),
    "hidden": Bound(1, 4096),
    "in_features": Bound(1, 1024),
    # published camera models (vid3d/models/published): CameraCtrl's Plücker maps at 8x the latent size,
    # its feature scale; MotionCtrl's 12 numbers per frame ([R | t])
    "downscale_factor": Bound(1, 64),
    "scale": Bound(-1e3, 1e3),
    "pose_dim": Bound(1, 64),
    "num_res_blocks": Bound(1, 8),  # CameraCtrl: 2 per level
    "kernel": Bound(1, 7),  # CameraCtrl's residual-block kernel: 1
    "max_frames": Bound(1, 1024),  # frame positions (SVD 14, SVD-XT 25)
    # VAEs
    "factor": Bound(1, 16),  # pixel VAE: 3 * factor^2 latent channels
    "channels": Bound(1, 1024, max_len=6),
    "latent_channels": Bound(1, 64),
    # cross-frame attention
    "band_width": Bound(1e-6, 1e4),  # pixels
    "levels": Bound(0, 15, max_len=16),
    "min_baseline": Bound(0, 1e3),
    "max_chunk_bytes": Bound(1, 2**36),  # 64 GiB: a chunk budget, not an allocation
    "dense_mask_max_elements": Bound(0, 2**33),
    "registers": Bound(0, 256),
    # CameraVideoDiffusion's EDM and conditioning settings
    "P_mean": Bound(-20, 20),
    "P_std": Bound(0, 20),
    "sigma_high_fraction": Bound(0, 1),
    "P_mean_high": Bound(-20, 20),
    "P_std_high": Bound(0, 20),
    "cond_dropout": Bound(0, 1),
    "noise_aug_mean": Bound(-20, 20),
    "noise_aug_std": Bound(0, 20),
    "sample_noise_aug": Bound(0, 1e3),
    "fps_id": Bound(0, 1e4),
    "motion_bucket_id": Bound(0, 1e4),
}
# (target, field) entries override the name table where one class uses a name differently
TARGET_BOUNDS: dict[tuple[str, str], Bound] = {}
# numbers under a name with no entry (free-form ``*_kwargs`` maps): finite and of modest size
DEFAULT_BOUND = Bound(-(2**20), 2**20, max_len=64)


def bound_for(target: str, field: str) -> Bound | None:
    """The declared bound of ``field`` of ``target`` (None: not declared; DEFAULT_BOUND applies)."""
    return TARGET_BOUNDS.get((target, field), BOUNDS.get(field))


def _numbers(value: Any) -> list[float | int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v)]
    return []


def bound_problem(value: Any, bound: Bound | None) -> str | None:
    """What is wrong with ``value`` under ``bound`` (None: nothing). Pure: no I/O, nothing built."""
    b = bound or DEFAULT_BOUND
    if isinstance(value, (list, tuple)) and b.max_len is not None and len(value) > b.max_len:
        return f"{len(value)} entries, at most {b.max_len} allowed"
    for x in _numbers(value):
        if isinstance(x, float) and not math.isfinite(x):
            return f"{x!r} is not a finite number"
        if not b.lo <= x <= b.hi:
            return f"{x!r:.40} is outside the allowed range [{b.lo:g}, {b.hi:g}]"
    return None


# SVD-XT's backbone (UNet + VAE + CLIP image encoder) has 2.25e9 parameters (9 GB in float32)
MAX_BACKBONE_PARAMETERS = 3_000_000_000


def tiny_backbone_parameters(node: dict[str, Any]) -> int:
    """Parameters of the tiny backbone a validated ``build_tiny_backbone`` node describes, counted on a
    model built on the ``meta`` device (no memory allocated, no weights initialised)."""
    import functools

    import torch

    from vid3d.models.backbone import build_tiny_backbone
    from vid3d.models.vae import PixelUnshuffleAutoencoder, tiny_kl_autoencoder

    kwargs = {k: v for k, v in node.items() if not k.startswith("_")}
    vae = kwargs.pop("vae", None)
    if isinstance(vae, dict):  # validated: one of the two VAE targets, as a partial
        fn = PixelUnshuffleAutoencoder if vae["_target_"].endswith("PixelUnshuffleAutoencoder") else (
            tiny_kl_autoencoder)
        vae = functools.partial(fn, **{k: v for k, v in vae.items() if not k.startswith("_")})
    with torch.device("meta"):
        backbone = build_tiny_backbone(vae=vae, **kwargs)
    return sum(p.numel() for p in backbone.parameters())


# Numbers in the diffusers / transformers ``config.json`` of a backbone folder's components (unet, vae,
# image_encoder) and in the pixel VAE's file: an exported pipeline folder is received data too.
# SVD-XT: UNet channels 320..1280 on 4 levels, 2 layers; CLIP ViT-H: 1280 hidden, 5120 MLP, 32 layers.
COMPONENT_BOUNDS: dict[str, Bound] = {
    "block_out_channels": _CHANNELS,
    "down_block_types": Bound(0, 0, max_len=6),
    "up_block_types": Bound(0, 0, max_len=6),
    "layers_per_block": Bound(1, 8, max_len=6),
    "transformer_layers_per_block": Bound(1, 8, max_len=6),
    "num_attention_heads": Bound(1, 64, max_len=6),
    "attention_head_dim": Bound(1, 1024, max_len=6),
    "cross_attention_dim": Bound(1, 4096, max_len=6),
    "in_channels": Bound(1, 2 * 3 * 16**2),  # the UNet takes two pixel-VAE latents of factor <= 16
    "out_channels": Bound(1, 3 * 16**2),
    "latent_channels": Bound(1, 64),
    "num_channels": Bound(1, 64),
    "sample_size": Bound(1, 8192),
    "num_frames": Bound(1, 1024),
    "addition_time_embed_dim": Bound(1, 1024),
    "projection_class_embeddings_input_dim": Bound(1, 8192),
    "hidden_size": Bound(1, 4096),
    "intermediate_size": Bound(1, 16384),
    "num_hidden_layers": Bound(1, 64),
    "projection_dim": Bound(1, 4096),
    "image_size": Bound(1, 4096),
    "patch_size": Bound(1, 1024),
    "norm_num_groups": Bound(1, 256),
    "factor": BOUNDS["factor"],
}
MAX_CONFIG_DEPTH = 6


def component_config_problem(config: Any, depth: int = 0) -> tuple[str, str] | None:
    """(field, what is wrong) for the first number of a component ``config.json`` out of its bound
    (``COMPONENT_BOUNDS`` by key, else ``DEFAULT_BOUND``; nested mappings checked the same way), or
    None. Pure: nothing is built."""
    if depth > MAX_CONFIG_DEPTH:
        return "(nesting)", f"nested deeper than {MAX_CONFIG_DEPTH} levels"
    if not isinstance(config, dict):
        return "(top level)", f"expected a JSON object, got {type(config).__name__}"
    for key, value in config.items():
        if isinstance(value, dict):
            inner = component_config_problem(value, depth + 1)
            if inner is not None:
                return f"{key}.{inner[0]}", inner[1]
            continue
        problem = bound_problem(value, COMPONENT_BOUNDS.get(key))
        if problem is not None:
            return str(key), problem
    return None


def backbone_folder_parameters(configs: dict[str, dict[str, Any]]) -> int:
    """Parameters of the backbone that the component configs ``{"unet": ..., "vae": ..., "image_encoder":
    ...}`` (as read from a folder's ``config.json`` files, bounds already checked) describe, counted on
    models built on the ``meta`` device (no memory allocated). Absent components count 0."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    models = []
    with torch.device("meta"):
        if "unet" in configs:
            models.append(UNetSpatioTemporalConditionModel.from_config(configs["unet"]))
        if "vae" in configs:
            models.append(AutoencoderKLTemporalDecoder.from_config(configs["vae"]))
        if "image_encoder" in configs:
            models.append(CLIPVisionModelWithProjection(CLIPVisionConfig(**configs["image_encoder"])))
    return sum(p.numel() for m in models for p in m.parameters())
