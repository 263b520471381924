"""Rotation utilities (pure tensor math)."""

from __future__ import annotations

import torch

from ._backend import back, to_torch


def rotation_angle_between(R_a, R_b):
    """Geodesic angle in radians between rotations (..., 3, 3), the angle of M = R_a R_b^T:

        theta = atan2(|v|, (tr(M) - 1) / 2),  v = (M32 - M23, M13 - M31, M21 - M12) / 2  (|v| = sin theta)

    the same angle as arccos((tr(M) - 1) / 2) for exact rotations, but without arccos's loss of precision
    near 0 (arccos(1 - e) ~ sqrt(2 e): float64 round-off alone reads ~1e-8 rad there) and never NaN.
    """
    a, np_in = to_torch(R_a)
    b = to_torch(R_b)[0].to(a)
    m = a @ b.transpose(-1, -2)
    cos = (m.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    v = torch.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1
    )
    return back(torch.atan2(torch.linalg.vector_norm(v, dim=-1) / 2, cos), np_in)


def project_to_so3(R):
    """The rotation nearest to each (..., 3, 3) matrix in the Frobenius norm: U diag(1, 1, det(U V^T)) V^T
    from R = U S V^T. Camera files store near-orthonormal rotations (RealEstate10K: |R R^T - I| ~ 1e-7);
    projecting first makes R^T an exact inverse and a trajectory against itself read 0."""
    r, np_in = to_torch(R)
    u, _, vh = torch.linalg.svd(r)
    d = torch.linalg.det(u @ vh)
    fix = torch.ones_like(r[..., 0, :])
    fix[..., 2] = d
    return back((u * fix[..., None, :]) @ vh, np_in)


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
