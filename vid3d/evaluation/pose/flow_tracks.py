"""Point tracks through a short clip from dense optical flow (OpenCV DIS or Farneback), checked both ways.

Conventions: frames (n, H, W, 3) uint8 RGB; point positions are continuous pixel coordinates with pixel
centres at (u + 0.5, v + 0.5) (vid3d's and COLMAP's), so array pixel (row i, column j) sits at
(j + 0.5, i + 0.5) and the image spans [0, W] x [0, H]. A track is a row of ``tracks`` (T, n, 2) float64:
its position in each frame, NaN where it is not (yet, or any more) visible.

A track is born on a textured pixel of a grid (structure tensor's smaller eigenvalue >= ``min_texture``:
flow on a flat or edge-only patch is an interpolation, not a measurement) in any frame where no live track
covers that grid cell, and is carried to the next frame by the forward flow. It ends where the forward flow
and the backward flow at its new position disagree by more than ``fb_max_px`` (occlusion, a wrong match),
where its 3x3 neighbourhoods in the two frames differ by more than ``photo_max`` (flow is smooth and
self-consistent even on noise, where nothing matches), or where it leaves the image; it never comes back.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["FLOW_METHODS", "dense_flow", "patch_difference", "sample_field", "texture_mask", "track_points"]

FLOW_METHODS = ("dis", "farneback")


def dense_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """(H, W, 2) float32 flow from gray uint8 image ``a`` (H, W) to ``b``: pixel (i, j) of ``a`` moves to
    (j + 0.5 + f[i, j, 0], i + 0.5 + f[i, j, 1]) in ``b``."""
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(a, b, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 9, 5, 5, 1.1, 0)
    raise ValueError(f"flow method must be one of {FLOW_METHODS}, got {method!r}")


def sample_field(field: np.ndarray, xy: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Bilinear samples (m, C) of ``field`` (H', W', C) at positions ``xy`` (m, 2) given in pixel-centre
    coordinates of an image ``scale`` times smaller than the field (the field's pixel (i, j) is at
    ((j + 0.5) / scale, (i + 0.5) / scale)); border values are replicated outside."""
    if len(xy) == 0:
        return np.zeros((0, field.shape[-1]), dtype=np.float64)
    mx = (xy[:, 0] * scale - 0.5).astype(np.float32).reshape(-1, 1)
    my = (xy[:, 1] * scale - 0.5).astype(np.float32).reshape(-1, 1)
    out = cv2.remap(field.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(len(xy), -1).astype(np.float64)


def patch_difference(a: np.ndarray, pa: np.ndarray, b: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """(m,) mean absolute difference (over RGB and a 3x3 pixel neighbourhood, bilinear samples) between
    image ``a`` (H, W, 3) around positions ``pa`` (m, 2) and image ``b`` around ``pb`` (pixel-centre
    coordinates)."""
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    total = np.zeros(len(pa))
    for dx in (-1.0, 0.0, 1.0):
        for dy in (-1.0, 0.0, 1.0):
            off = np.array([dx, dy])
            total += np.abs(sample_field(fa, pa + off) - sample_field(fb, pb + off)).mean(axis=1)
    return total / 9.0


def texture_mask(gray: np.ndarray, min_texture: float) -> np.ndarray:
    """(H, W) bool: pixels whose structure tensor (3x3 window of Sobel gradients of the image in [0, 1])
    has its smaller eigenvalue >= ``min_texture``."""
    lam = cv2.cornerMinEigenVal(gray.astype(np.float32) / 255.0, blockSize=3, ksize=3)
    return lam >= min_texture


def _gray(frames: np.ndarray, scale: int) -> np.ndarray:
    out = []
    for f in frames:
        g = cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY)
        if scale > 1:
            g = cv2.resize(g, (g.shape[1] * scale, g.shape[0] * scale), interpolation=cv2.INTER_CUBIC)
        out.append(g)
    return np.stack(out)


def track_points(
    frames: np.ndarray,
    method: str = "dis",
    grid_step: int = 1,
    fb_max_px: float = 0.5,
    min_texture: float = 1e-3,
    flow_scale: int = 1,
    photo_max: float = 30.0,
) -> np.ndarray:
    """Tracks (T, n, 2) float64 through (n, H, W, 3) uint8 ``frames`` (module docstring).

    Args:
        method: "dis" or "farneback".
        grid_step: a track may be born on every ``grid_step``-th pixel (row and column).
        fb_max_px: forward-backward disagreement (pixels of the frames, not of the upscaled flow) above which
            a track ends.
        min_texture: smaller structure-tensor eigenvalue a pixel needs to start a track (``texture_mask``).
        flow_scale: the flow is computed on frames upscaled by this integer factor (DIS works on 8x8
            patches: a 32x48 frame is 4x6 of them) and its vectors divided by it.
        photo_max: largest mean absolute RGB difference (0-255) between the 3x3 neighbourhoods of a track's
            old and new position (``patch_difference``): flow is smooth even where nothing matches (noise).
    """
    n, H, W = frames.shape[:3]
    s = max(1, int(flow_scale))
    gray = _gray(frames, s)
    gray0 = _gray(frames, 1)
    step = max(1, int(grid_step))
    gi, gj = np.meshgrid(np.arange(step // 2, H, step), np.arange(step // 2, W, step), indexing="ij")
    cells = (len(range(step // 2, H, step)), len(range(step // 2, W, step)))
    tracks = np.full((0, n, 2), np.nan)
    live = np.zeros(0, dtype=np.int64)
    for k in range(n):
        if k > 0 and len(live):
            fwd = dense_flow(gray[k - 1], gray[k], method)
            bwd = dense_flow(gray[k], gray[k - 1], method)
            p = tracks[live, k - 1]
            d = sample_field(fwd, p, s) / s
            q = p + d
            back = sample_field(bwd, q, s) / s
            ok = np.linalg.norm(d + back, axis=1) <= fb_max_px
            ok &= patch_difference(frames[k - 1], p, frames[k], q) <= photo_max
            ok &= (q[:, 0] >= 0) & (q[:, 0] <= W) & (q[:, 1] >= 0) & (q[:, 1] <= H)
            tracks[live[ok], k] = q[ok]
            live = live[ok]
        # births: textured grid pixels whose grid cell holds no live track
        occupied = np.zeros(cells, dtype=bool)
        if len(live):
            pos = tracks[live, k]
            ci = np.clip((pos[:, 1] // step).astype(int), 0, cells[0] - 1)
            cj = np.clip((pos[:, 0] // step).astype(int), 0, cells[1] - 1)
            occupied[ci, cj] = True
        born = texture_mask(gray0[k], min_texture)[gi, gj] & ~occupied
        new = np.full((int(born.sum()), n, 2), np.nan)
        new[:, k, 0] = gj[born] + 0.5
        new[:, k, 1] = gi[born] + 0.5
        live = np.concatenate([live, len(tracks) + np.arange(len(new))])
        tracks = np.concatenate([tracks, new])
    return tracks
