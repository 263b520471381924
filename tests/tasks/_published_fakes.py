"""Released checkpoints in the peers' layouts, from random weights, for the tiny backbone (by the inverse key
maps of vid3d/models/published/*_keys.py)."""

from __future__ import annotations

import torch

from vid3d.models.backbone import build_tiny_backbone
from vid3d.models.published.cameractrl import CameraCtrlEncoder
from vid3d.models.published.cameractrl_keys import vid3d_to_cameractrl
from vid3d.models.published.motionctrl import MotionCtrlEncoder
from vid3d.models.published.motionctrl_keys import vid3d_to_motionctrl
from vid3d.models.video_diffusion import CameraVideoDiffusion


def fake_cameractrl(path, frames: int = 14, seed: int = 0) -> dict[str, torch.Tensor]:
    """A CameraCtrl-SVD release for the tiny backbone with random weights; returns them by vid3d name."""
    model = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder=CameraCtrlEncoder.from_unet)
    g = torch.Generator().manual_seed(seed)
    state = {
        f"camera_encoder.{k}": 0.05 * torch.randn(v.shape, generator=g)
        for k, v in model.camera_encoder.state_dict().items()
    }
    torch.save(vid3d_to_cameractrl(state, model.camera_encoder.block_paths, frames), path)
    return state


def fake_motionctrl(path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A MotionCtrl-SVD release (whole-engine layout, some of SVD's own weights too) for the tiny backbone."""
    model = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder=MotionCtrlEncoder.from_unet)
    sd = model.state_dict()
    g = torch.Generator().manual_seed(seed)
    state = {
        k: sd[k] + 0.05 * torch.randn(sd[k].shape, generator=g)
        for k in sd
        if k.startswith("camera_encoder.")
        or (".temporal_transformer_blocks." in k and (".attn2." in k or ".norm2." in k))
    }
    out = vid3d_to_motionctrl(state, model.unet, model.camera_encoder.block_paths)
    out["state_dict"]["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(3)
    out["state_dict"]["first_stage_model.decoder.conv_in.weight"] = torch.zeros(3)
    torch.save(out, path)
    return state
