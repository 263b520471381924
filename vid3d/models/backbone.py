"""The SVD backbone: spatio-temporal UNet, autoencoder and CLIP image encoder.

``Backbone`` bundles the three modules built from the same classes Stable Video Diffusion uses
(diffusers ``UNetSpatioTemporalConditionModel``, ``AutoencoderKLTemporalDecoder``; transformers
``CLIPVisionModelWithProjection``) or, for CPU work, a tiny random-initialised copy of each (with an
optional lossless pixel-unshuffle autoencoder). Folder layout (= the diffusers SVD repo layout):

    {folder}/unet/            UNetSpatioTemporalConditionModel.save_pretrained
    {folder}/vae/             AutoencoderKLTemporalDecoder.save_pretrained, or
                              vid3d_pixel_vae.json {"factor": f} for the pixel stand-in
    {folder}/image_encoder/   CLIPVisionModelWithProjection.save_pretrained

Pretrained weights are named by a registry entry (``weights: svd | svd_xt``, ``vid3d.weights``) or by the
user's ``source`` (a local folder or a hub id). A hub id is fetched with ``vid3d.weights.fetch_hub_files``
(the files of ``vid3d.weights.svd_files``) into the standard Hugging Face cache on first use and read from
there afterwards, offline too; without a network one line says what is missing and how to fetch it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from vid3d.atomic import atomic_dir
from vid3d.weights.svd import resolve_svd_source

from .vae import PixelUnshuffleAutoencoder, TemporalVAEAdapter

PIXEL_VAE_FILE = "vid3d_pixel_vae.json"
CLIP_IMAGE_SIZE = 224  # the SVD pipeline resizes the conditioning image to 224 x 224
SUBFOLDERS = ("unet", "vae", "image_encoder")


class Backbone(nn.Module):
    """UNet + autoencoder adapter + CLIP image encoder.

    Attributes:
        unet: UNetSpatioTemporalConditionModel with in_channels = 2 * latent_channels
            (noisy latent ++ conditioning-image latent) and out_channels = latent_channels.
        vae: PixelUnshuffleAutoencoder or TemporalVAEAdapter (see vid3d.models.vae).
        image_encoder: CLIPVisionModelWithProjection; ``image_embeds`` dim = UNet cross_attention_dim.
    """

    def __init__(self, unet: nn.Module, vae: nn.Module, image_encoder: nn.Module) -> None:
        super().__init__()
        self.unet = unet
        self.vae = vae
        self.image_encoder = image_encoder
        lc = int(unet.config.out_channels)
        if int(unet.config.in_channels) != 2 * lc:
            raise ValueError(f"UNet in_channels {unet.config.in_channels} != 2 * out_channels {lc}")
        if vae.latent_channels != lc:
            raise ValueError(f"VAE latent channels {vae.latent_channels} != UNet out_channels {lc}")

    @property
    def latent_channels(self) -> int:
        return int(self.unet.config.out_channels)

    @property
    def downscale(self) -> int:
        """Spatial factor between images and latents."""
        return int(self.vae.downscale)

    @property
    def block_out_channels(self) -> tuple[int, ...]:
        return tuple(self.unet.config.block_out_channels)

    @property
    def clip_image_size(self) -> int:
        return int(self.image_encoder.config.image_size)


def build_tiny_backbone(
    vae: Callable[[], nn.Module] | None = None,
    unet_channels: tuple[int, ...] = (32, 64),
    layers_per_block: int = 1,
    heads: int | tuple[int, ...] | None = None,
    cross_attention_dim: int = 32,
    seed: int = 0,
    addition_time_embed_dim: int = 16,
    clip_hidden: int = 32,
    clip_patch: int = 32,
    cross_attn_levels: tuple[bool, ...] | None = None,
) -> Backbone:
    """Random-initialised tiny SVD-architecture backbone (deterministic for a given ``seed``).

    Args:
        vae: a factory of the autoencoder, called under the seed (Hydra: a partial from
            ``conf/model/backbone/vae/``): ``PixelUnshuffleAutoencoder`` (factor f: latent 3 * f^2
            channels; the default, f = 4) or ``vae.tiny_kl_autoencoder`` (SVD's VAE class, random init).
        unet_channels: UNet block_out_channels; channels must be multiples of 32 (GroupNorm groups).
        heads: attention heads per level (default channels // 16).
        cross_attn_levels: per level, whether it is a cross-attention block (spatial + temporal
            transformers). Default (CPU speed): every level but the finest (level 0), so attention runs
            at 1/2 latent resolution and below (the mid block always has attention). SVD's own pattern,
            all levels but the deepest, is ``(True, False)`` for two levels (~1.5x slower here).
    """
    levels = len(unet_channels)
    if heads is None:
        heads = tuple(max(1, c // 16) for c in unet_channels)
    elif isinstance(heads, int):
        heads = (heads,) * levels
    heads = tuple(int(h) for h in heads)
    if cross_attn_levels is None:
        cross_attn_levels = tuple(i > 0 for i in range(levels)) if levels > 1 else (True,)
    cross_attn_levels = tuple(bool(c) for c in cross_attn_levels)
    if len(cross_attn_levels) != levels or len(heads) != levels:
        raise ValueError(
            f"cross_attn_levels and heads need {levels} entries, got {cross_attn_levels}, {heads}"
        )
    down = tuple(
        "CrossAttnDownBlockSpatioTemporal" if ca else "DownBlockSpatioTemporal" for ca in cross_attn_levels
    )
    up = tuple(
        "CrossAttnUpBlockSpatioTemporal" if ca else "UpBlockSpatioTemporal"
        for ca in reversed(cross_attn_levels)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae = PixelUnshuffleAutoencoder(4) if vae is None else vae()
        lc = ae.latent_channels
        unet = UNetSpatioTemporalConditionModel(
            in_channels=2 * lc,
            out_channels=lc,
            down_block_types=down,
            up_block_types=up,
            block_out_channels=tuple(unet_channels),
            addition_time_embed_dim=addition_time_embed_dim,
            projection_class_embeddings_input_dim=3 * addition_time_embed_dim,
            layers_per_block=layers_per_block,
            cross_attention_dim=cross_attention_dim,
            num_attention_heads=tuple(heads),
        )
        clip_cfg = CLIPVisionConfig(
            hidden_size=clip_hidden,
            intermediate_size=2 * clip_hidden,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=CLIP_IMAGE_SIZE,
            patch_size=clip_patch,
            projection_dim=cross_attention_dim,
        )
        image_encoder = CLIPVisionModelWithProjection(clip_cfg)
    return _frozen_eval_aux(Backbone(unet, ae, image_encoder))


def _frozen_eval_aux(bb: Backbone) -> Backbone:
    """VAE and CLIP are never trained here: eval mode (no dropout) and requires_grad False."""
    for m in (bb.vae, bb.image_encoder):
        m.eval()
        m.requires_grad_(False)
    return bb


def _missing_component_error(source: str, sub: str, err: Exception | None) -> FileNotFoundError:
    where = os.path.join(source, sub)
    msg = (
        f"{where}: cannot load the SVD '{sub}' component (expected a diffusers/transformers folder with "
        f"config.json and weights; for the pixel VAE stand-in, {PIXEL_VAE_FILE})"
    )
    if err is not None:
        msg += f": {type(err).__name__}: {err}"
    return FileNotFoundError(msg)


def load_svd_backbone(
    source: str | os.PathLike | None = None,
    revision: str | None = None,
    torch_dtype: torch.dtype | None = None,
    local_files_only: bool = False,
    variant: str | None = None,
    weights: str | None = None,
) -> Backbone:
    """Load unet / vae / image_encoder from a diffusers SVD folder or hub repository.

    Args:
        source: a local folder with the layout in the module docstring, or a hub id such as
            "stabilityai/stable-video-diffusion-img2vid-xt" (downloaded once into the HF cache). None: the
            repository of registry entry ``weights``. Chosen by the user's config only: a stored config
            (a checkpoint, an exported folder) cannot name it (``vid3d.models.schema``).
        revision: branch, tag or commit of a hub source (None: the registry's, else "main").
        local_files_only: True never touches the network (the HF cache or the folder only).
        variant: e.g. "fp16" (the ``*.fp16.safetensors`` files); torch_dtype: passed to ``from_pretrained``.
        weights: a ``vid3d.weights`` registry name ("svd", "svd_xt"): which pretrained backbone this is.
    Raises:
        FileNotFoundError naming ``{source}/{subfolder}`` when a component cannot be found/loaded;
        ``vid3d.weights.WeightsUnavailable`` (one line) when hub files are missing and cannot be fetched.
    """
    source = resolve_svd_source(source, weights, revision, local_files_only, variant)
    is_dir = os.path.isdir(source)
    # safetensors only: a folder named by a checkpoint must not make from_pretrained unpickle a .bin; the
    # folder is local by now, so from_pretrained never goes online
    kw: dict = {"local_files_only": True, "use_safetensors": True}
    if torch_dtype is not None:
        kw["torch_dtype"] = torch_dtype
    if variant is not None:
        kw["variant"] = variant

    def load(cls, sub: str):
        if not (is_dir and os.path.isfile(os.path.join(source, sub, "config.json"))):
            raise _missing_component_error(source, sub, None)
        try:
            return cls.from_pretrained(source, subfolder=sub, **kw)
        except (OSError, ValueError) as e:
            raise _missing_component_error(source, sub, e) from e

    unet = load(UNetSpatioTemporalConditionModel, "unet")
    pixel_cfg = os.path.join(source, "vae", PIXEL_VAE_FILE)
    if is_dir and os.path.isfile(pixel_cfg):
        with open(pixel_cfg) as f:
            ae: nn.Module = PixelUnshuffleAutoencoder(int(json.load(f)["factor"]))
    else:
        ae = TemporalVAEAdapter(load(AutoencoderKLTemporalDecoder, "vae"))
    image_encoder = load(CLIPVisionModelWithProjection, "image_encoder")
    return _frozen_eval_aux(Backbone(unet, ae, image_encoder))


def save_backbone(backbone: Backbone, folder: str | os.PathLike) -> Path:
    """Write ``backbone`` as a diffusers-style SVD folder (atomically: temp folder, then rename)."""
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        backbone.unet.save_pretrained(tmp / "unet")
        if isinstance(backbone.vae, PixelUnshuffleAutoencoder):
            (tmp / "vae").mkdir()
            (tmp / "vae" / PIXEL_VAE_FILE).write_text(json.dumps({"factor": backbone.vae.factor}))
        else:
            backbone.vae.vae.save_pretrained(tmp / "vae")
        backbone.image_encoder.save_pretrained(tmp / "image_encoder")
    return folder
