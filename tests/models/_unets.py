"""A tiny diffusers spatio-temporal UNet for attention tests (two levels, 32/64 channels, seeded)."""

import torch


def tiny_spatiotemporal_unet(attention_at_both_levels: bool = False):
    """UNetSpatioTemporalConditionModel with 8 input / 4 output channels, cross-attention dim 32 and
    spatio-temporal transformers at level 0 (and level 1 too with ``attention_at_both_levels``)."""
    from diffusers import UNetSpatioTemporalConditionModel

    torch.manual_seed(0)
    down = "CrossAttnDownBlockSpatioTemporal" if attention_at_both_levels else "DownBlockSpatioTemporal"
    up = "CrossAttnUpBlockSpatioTemporal" if attention_at_both_levels else "UpBlockSpatioTemporal"
    return UNetSpatioTemporalConditionModel(
        sample_size=8, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", down),
        up_block_types=(up, "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32, num_attention_heads=(2, 4),
        projection_class_embeddings_input_dim=3 * 8, addition_time_embed_dim=8)
