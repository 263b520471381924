"""Test helper: tiny numpy ray caster of a textured room (box interior + spheres) along known poses.

Independent of vid3d.data.synthetic so the COLMAP test can run before/without it.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

from vid3d.geometry import axis_angle_to_matrix, intrinsics_matrix

ROOM_MIN = np.array([-3.0, -2.0, -3.0])
ROOM_MAX = np.array([3.0, 2.0, 6.0])
SPHERES = [  # (centre, radius)
    (np.array([-0.8, 0.3, 3.0]), 0.6),
    (np.array([1.0, -0.4, 3.8]), 0.7),
    (np.array([0.2, 0.9, 2.2]), 0.35),
]
TEX = 256
TEXELS_PER_M = 48.0


def _textures(seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros((count, TEX, TEX, 3))
    for i in range(count):
        for sigma, w in ((1.0, 0.5), (3.0, 1.0), (8.0, 1.0)):
            noise = gaussian_filter(rng.normal(size=(TEX, TEX, 3)), (sigma, sigma, 0), mode="wrap")
            out[i] += w * noise / noise.std()
    out = 1 / (1 + np.exp(-1.5 * out))  # squash to (0, 1) with strong contrast
    return out


def _sample(tex: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    coords = np.stack([(a * TEXELS_PER_M) % TEX, (b * TEXELS_PER_M) % TEX])
    return np.stack([map_coordinates(tex[..., c], coords, order=1, mode="grid-wrap") for c in range(3)], -1)


def render(
    c2w: np.ndarray, K_px: np.ndarray, height: int, width: int, seed: int = 0, ss: int = 2
) -> np.ndarray:
    """Render (n, H, W, 3) uint8 frames of the room for OpenCV camera-to-world poses (n, 4, 4)."""
    tex = _textures(seed, 6 + len(SPHERES))
    Hs, Ws = height * ss, width * ss
    v, u = np.meshgrid(np.arange(Hs) + 0.5, np.arange(Ws) + 0.5, indexing="ij")
    K = np.array(K_px, dtype=np.float64).copy()
    K[:2] *= ss
    pix = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3)
    dirs_cam = pix @ np.linalg.inv(K).T
    frames = []
    for pose in c2w:
        o = pose[:3, 3]
        d = dirs_cam @ pose[:3, :3].T
        # Room walls (from inside): exit distance along each axis.
        with np.errstate(divide="ignore", invalid="ignore"):
            t_axes = np.where(d > 0, (ROOM_MAX - o) / d, (ROOM_MIN - o) / d)
        t_axes[~np.isfinite(t_axes)] = np.inf
        axis = np.argmin(t_axes, axis=1)
        t = t_axes[np.arange(len(d)), axis]
        face = axis * 2 + (d[np.arange(len(d)), axis] > 0)
        hit = o + t[:, None] * d
        color = np.zeros((len(d), 3))
        for f in range(6):
            m = face == f
            other = [k for k in range(3) if k != f // 2]
            color[m] = _sample(tex[f], hit[m, other[0]], hit[m, other[1]]) * (0.7 + 0.06 * f)
        for s, (c, r) in enumerate(SPHERES):
            oc = o - c
            b = np.sum(d * oc, 1)
            dd = np.sum(d * d, 1)
            disc = b * b - dd * (np.sum(oc * oc) - r * r)
            ts = (-b - np.sqrt(np.maximum(disc, 0))) / dd
            m = (disc > 0) & (ts > 0) & (ts < t)
            t = np.where(m, ts, t)
            p = o + ts[m, None] * d[m] - c
            lon, lat = np.arctan2(p[:, 0], p[:, 2]), np.arcsin(np.clip(p[:, 1] / r, -1, 1))
            color[m] = _sample(tex[6 + s], lon * r * 1.5, lat * r * 1.5)
        img = color.reshape(height, ss, width, ss, 3).mean(axis=(1, 3))
        frames.append(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    return np.stack(frames)


def depth_map(c2w: np.ndarray, K_px: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) z-depth (metres, along the optical axis) of the room seen from one OpenCV camera-to-world
    pose (4, 4) at each pixel centre: the same walls and spheres as ``render``."""
    v, u = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    pix = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3)
    d = (pix @ np.linalg.inv(np.asarray(K_px, dtype=np.float64)).T) @ c2w[:3, :3].T  # camera z = 1
    o = c2w[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_axes = np.where(d > 0, (ROOM_MAX - o) / d, (ROOM_MIN - o) / d)
    t_axes[~np.isfinite(t_axes)] = np.inf
    t = t_axes.min(axis=1)
    for c, r in SPHERES:
        oc = o - c
        b, dd = np.sum(d * oc, 1), np.sum(d * d, 1)
        disc = b * b - dd * (np.sum(oc * oc) - r * r)
        ts = (-b - np.sqrt(np.maximum(disc, 0))) / dd
        t = np.where((disc > 0) & (ts > 0) & (ts < t), ts, t)
    return t.reshape(height, width)  # ray parameter = z-depth, since the camera-frame direction has z = 1


def trajectory(n: int, step: float = 0.12, yaw_deg: float = 1.5, seed: int = 0) -> np.ndarray:
    """(n, 4, 4) camera-to-world: forward/sideways walk with yaw and slight pitch, inside the room."""
    rng = np.random.default_rng(seed)
    direction = np.array([0.6, 0.1, 1.0]) + 0.2 * rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        R = np.asarray(axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]), np.radians(yaw_deg * i)))
        R = R @ np.asarray(axis_angle_to_matrix(np.array([1.0, 0.0, 0.0]), np.radians(0.4 * i)))
        c2w[i, :3, :3] = R
        c2w[i, :3, 3] = np.array([-0.5, 0.0, -1.0]) + step * i * direction
    return c2w


def default_K(height: int, width: int) -> np.ndarray:
    f = 0.9 * width
    return np.asarray(intrinsics_matrix(f, f, width / 2, height / 2))
