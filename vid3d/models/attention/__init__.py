"""Cross-frame attention for camera-controlled video diffusion: epipolar band attention (exact, without a
dense mask; a dense-mask fast path on small grids) and full spatio-temporal attention, attached to a
diffusers spatio-temporal UNet by hooks."""

from .cami2v import band_mask_cami2v
from .dense import (
    DEFAULT_DENSE_MASK_MAX_ELEMENTS,
    SharedMask,
    band_mask,
    build_shared_mask,
    distinct_samples,
    shared_mask_attention,
    use_dense_mask,
)
from .epipolar import (
    band_candidates,
    choose_method,
    epipolar_attention,
    epipolar_mask_dense,
    line_distance,
    masked_attention_dense,
    pair_geometry,
    pixel_centres,
    window_size,
)
from .modules import (
    AttentionAdapter,
    CrossFrameAttention,
    EpipolarAttention,
    attach_epipolar_attention,
    attach_full_attention,
    no_attention,
    transformer_levels,
)

__all__ = [
    "DEFAULT_DENSE_MASK_MAX_ELEMENTS",
    "AttentionAdapter",
    "CrossFrameAttention",
    "EpipolarAttention",
    "attach_epipolar_attention",
    "attach_full_attention",
    "no_attention",
    "SharedMask",
    "band_candidates",
    "band_mask_cami2v",
    "band_mask",
    "build_shared_mask",
    "choose_method",
    "distinct_samples",
    "epipolar_attention",
    "epipolar_mask_dense",
    "line_distance",
    "masked_attention_dense",
    "pair_geometry",
    "pixel_centres",
    "shared_mask_attention",
    "transformer_levels",
    "use_dense_mask",
    "window_size",
]
