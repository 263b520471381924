"""Epipolar geometry between two OpenCV cameras."""

from __future__ import annotations

import torch

from ._backend import back, to_torch
from .cameras import _as4x4, invert_rigid


def skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix: skew(a) @ b = a x b."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*v.shape[:-1], 3, 3)


def relative_pose_1_to_2(c2w1, c2w2) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, t) mapping camera-1 coordinates to camera-2 coordinates: X2 = R X1 + t. Torch in/out."""
    T = to_torch(invert_rigid(_as4x4(c2w2)))[0] @ _as4x4(c2w1)
    return T[..., :3, :3], T[..., :3, 3]


def fundamental_matrix(K1, c2w1, K2, c2w2):
    """Fundamental matrix F (3, 3) with x2^T F x1 = 0 for homogeneous pixel coordinates.

    Args:
        K1, K2: (..., 3, 3) pixel intrinsics of camera 1 and 2.
        c2w1, c2w2: (..., 4, 4) OpenCV camera-to-world poses.
    Pixel coordinates follow vid3d's convention (pixel (u, v) has centre (u + 0.5, v + 0.5)); the same
    convention must be used for x1 and x2. When the two camera centres coincide (pure rotation or no
    motion) there is no epipolar geometry and F is the zero matrix: callers must handle that case.
    """
    K1t, np_in = to_torch(K1)
    c1, K2t, c2 = (to_torch(m)[0].to(K1t) for m in (c2w1, K2, c2w2))
    R, t = relative_pose_1_to_2(c1, c2)
    E = skew(t) @ R
    F = torch.linalg.inv(K2t).transpose(-1, -2) @ E @ torch.linalg.inv(K1t)
    return back(F, np_in)


def epipolar_lines(F, points1):
    """Lines l2 = F x1 in image 2 for pixel points (..., N, 2) of image 1, normalised so that
    a^2 + b^2 = 1 (then |l . x2| is the pixel distance of x2 from the line). Returns (..., N, 3).
    Degenerate lines (F = 0) come back as all zeros."""
    Ft, np_in = to_torch(F)
    x = to_torch(points1)[0].to(Ft)
    xh = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
    lines = xh @ Ft.transpose(-1, -2)
    norm = lines[..., :2].norm(dim=-1, keepdim=True)
    return back(torch.where(norm > 1e-12, lines / norm.clamp_min(1e-12), torch.zeros_like(lines)), np_in)
