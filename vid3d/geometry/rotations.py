"""Rotation utilities (pure tensor math)."""

from __future__ import annotations

import torch

from ._backend import back, to_torch


def rotation_angle_between(R_a, R_b):
    """Geodesic angle in radians between rotations (..., 3, 3): arccos((tr(R_a R_b^T) - 1) / 2).

    The arccos argument is clamped to [-1, 1] so round-off never produces NaN.
    """
    a, np_in = to_torch(R_a)
    b = to_torch(R_b)[0].to(a)
    tr = (a @ b.transpose(-1, -2)).diagonal(dim1=-2, dim2=-1).sum(-1)
    return back(torch.arccos(((tr - 1) / 2).clamp(-1.0, 1.0)), np_in)


def axis_angle_to_matrix(axis, angle):
    """Rodrigues: unit-normalised axis (..., 3) and angle in radians (...,) -> rotation (..., 3, 3)."""
    ax, np_in = to_torch(axis)
    th = to_torch(angle)[0].to(ax)
    ax = ax / ax.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x, y, z = ax.unbind(-1)
    zero = torch.zeros_like(x)
    Kx = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*ax.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=ax.dtype, device=ax.device).expand_as(Kx)
    s, c = torch.sin(th)[..., None, None], torch.cos(th)[..., None, None]
    return back(eye + s * Kx + (1 - c) * (Kx @ Kx), np_in)


def look_at_c2w(eye, target, up=(0.0, -1.0, 0.0)):
    """OpenCV camera-to-world (4, 4) at ``eye`` looking at ``target``; ``up`` is world up (default -y,
    matching OpenCV's y-down camera axis in a y-down world)."""
    e, np_in = to_torch(eye)
    t = to_torch(target)[0].to(e)
    u = to_torch(up)[0].to(e)
    z = t - e
    z = z / z.norm(dim=-1, keepdim=True)
    x = torch.linalg.cross(-u.expand_as(z), z, dim=-1)
    x = x / x.norm(dim=-1, keepdim=True)
    y = torch.linalg.cross(z, x, dim=-1)
    c2w = torch.zeros(*e.shape[:-1], 4, 4, dtype=e.dtype, device=e.device)
    c2w[..., :3, 0], c2w[..., :3, 1], c2w[..., :3, 2], c2w[..., :3, 3] = x, y, z, e
    c2w[..., 3, 3] = 1
    return back(c2w, np_in)
