"""Plücker ray embeddings (CameraCtrl-style camera conditioning)."""

from __future__ import annotations

import torch

from ._backend import back, to_torch
from .cameras import _as4x4


def pixel_rays(K_px, c2w, height: int, width: int):
    """World-frame rays through the pixel centres (u + 0.5, v + 0.5).

    Args:
        K_px: (F, 3, 3) intrinsics in pixels at (height, width).
        c2w: (F, 4, 4) OpenCV camera-to-world.
    Returns:
        origins (F, height, width, 3) and unit directions (F, height, width, 3), world frame.
    """
    K, np_in = to_torch(K_px)
    pose = _as4x4(to_torch(c2w)[0].to(K))
    v, u = torch.meshgrid(
        torch.arange(height, dtype=K.dtype, device=K.device) + 0.5,
        torch.arange(width, dtype=K.dtype, device=K.device) + 0.5,
        indexing="ij",
    )
    pix = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # (H, W, 3)
    cam_dirs = pix @ torch.linalg.inv(K).transpose(-1, -2)[:, None]  # (F, H, W, 3)
    dirs = cam_dirs @ pose[:, None, :3, :3].transpose(-1, -2)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = pose[:, None, None, :3, 3].expand_as(dirs)
    return back(origins, np_in), back(dirs, np_in)


def plucker_embedding(K, c2w, height: int, width: int):
    """Per-pixel Plücker coordinates [o x d, d] of the ray through each pixel centre.

    Args:
        K: (F, 3, 3) pixel intrinsics at (height, width).
        c2w: (F, 4, 4) OpenCV camera-to-world, usually relative to the first frame.
    Returns:
        (F, 6, height, width): channels 0-2 the moment o x d, channels 3-5 the unit direction d,
        both in the world frame. numpy in -> numpy out, torch in -> torch out.
    """
    K_t, np_in = to_torch(K)
    o, d = pixel_rays(K_t, to_torch(c2w)[0].to(K_t), height, width)
    emb = torch.cat([torch.linalg.cross(o, d, dim=-1), d], dim=-1).permute(0, 3, 1, 2)
    return back(emb.contiguous(), np_in)
