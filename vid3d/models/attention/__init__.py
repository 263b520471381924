"""Cross-frame attention for camera-controlled video diffusion: epipolar band attention (exact, without a
dense mask) and full spatio-temporal attention, attached to a diffusers spatio-temporal UNet by hooks."""

from .epipolar import (
    band_candidates,
    choose_method,
    epipolar_attention,
    epipolar_mask_dense,
    line_distance,
    masked_attention_dense,
    pair_geometry,
    pixel_centres,
    rescale_K,
    window_size,
)
from .modules import AttentionAdapter, CrossFrameAttention, attach_attention, transformer_levels

__all__ = [
    "AttentionAdapter",
    "CrossFrameAttention",
    "attach_attention",
    "band_candidates",
    "choose_method",
    "epipolar_attention",
    "epipolar_mask_dense",
    "line_distance",
    "masked_attention_dense",
    "pair_geometry",
    "pixel_centres",
    "rescale_K",
    "transformer_levels",
    "window_size",
]
