"""Exact co-visibility overlap from depth maps and camera poses (``overlap.estimator=geometric``).

For direction 1 -> 2: every pixel centre (u + 0.5, v + 0.5) of view 1 with a valid depth is
back-projected to a 3D point, projected into view 2 with ``vid3d.geometry.project_points``, and counted
as valid when it lies in front of camera 2, inside image 2 (0 <= u' < W, 0 <= v' < H) and is not occluded:
its z-depth in camera 2 is at most the depth stored at the pixel it lands in (nearest pixel) times
``1 + rel_tol`` plus ``abs_tol``. Pixels without a surface (depth 0 / non-finite, e.g. sky) are never
valid. ratio_12 = valid / all pixels of view 1; the overlap is min(ratio_12, ratio_21).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vid3d.geometry import project_points

from .base import OverlapEstimator, OverlapResult, OverlapView

__all__ = ["GeometricOverlap", "covisible_mask"]


def _check_view(v: OverlapView, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if v.depth is None or v.K_px is None or v.c2w is None:
        raise ValueError(
            f"geometric overlap: view {which} needs depth, K_px and c2w (the dataset has no depth?)"
        )
    depth = np.asarray(v.depth, dtype=np.float64)
    K = np.asarray(v.K_px, dtype=np.float64)
    c2w = np.asarray(v.c2w, dtype=np.float64)
    if depth.ndim != 2 or K.shape != (3, 3) or c2w.shape != (4, 4):
        raise ValueError(
            f"geometric overlap: view {which}: expected depth (H, W), K_px (3, 3), c2w (4, 4); got "
            f"{depth.shape}, {K.shape}, {c2w.shape}"
        )
    return depth, K, c2w


def covisible_mask(
    src: OverlapView, dst: OverlapView, rel_tol: float = 0.01, abs_tol: float = 1e-3
) -> np.ndarray:
    """(H, W) bool: pixels of ``src`` whose surface point is visible in ``dst`` (see module docstring)."""
    d1, K1, c2w1 = _check_view(src, "1")
    d2, K2, c2w2 = _check_view(dst, "2")
    H, W = d1.shape
    H2, W2 = d2.shape
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    has_surface = np.isfinite(d1) & (d1 > 0)
    z = np.where(has_surface, d1, 1.0)
    pix = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)
    X_cam = (pix @ np.linalg.inv(K1).T) * z.reshape(-1, 1)  # z-depth: third coordinate equals z
    X_world = X_cam @ c2w1[:3, :3].T + c2w1[:3, 3]
    uv, z2 = project_points(K2, c2w2, X_world)
    uv, z2 = np.asarray(uv).reshape(-1, 2), np.asarray(z2).reshape(-1)
    with np.errstate(invalid="ignore"):
        inside = (z2 > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < W2) & (uv[:, 1] >= 0) & (uv[:, 1] < H2)
    iu = np.clip(np.floor(np.where(inside, uv[:, 0], 0)).astype(np.int64), 0, W2 - 1)
    iv = np.clip(np.floor(np.where(inside, uv[:, 1], 0)).astype(np.int64), 0, H2 - 1)
    d_at = d2[iv, iu]
    surface2 = np.isfinite(d_at) & (d_at > 0)
    with np.errstate(invalid="ignore"):
        # A point behind a surface of view 2 is occluded; where view 2 sees no surface (sky) the point
        # is not seen either (it would have been rendered there).
        visible = surface2 & (z2 <= d_at * (1.0 + rel_tol) + abs_tol)
    return (has_surface.reshape(-1) & inside & visible).reshape(H, W)


class GeometricOverlap(OverlapEstimator):
    """Exact co-visibility from depth + poses.

    Args:
        rel_tol, abs_tol: occlusion test tolerance, z2 <= depth2 * (1 + rel_tol) + abs_tol (depth units).
    """

    name = "geometric"

    def __init__(self, rel_tol: float = 0.01, abs_tol: float = 1e-3) -> None:
        if rel_tol < 0 or abs_tol < 0:
            raise ValueError(f"geometric overlap: tolerances must be >= 0, got {rel_tol}, {abs_tol}")
        self.rel_tol, self.abs_tol = float(rel_tol), float(abs_tol)

    def estimate(self, view1: OverlapView, view2: OverlapView) -> OverlapResult:
        m12 = covisible_mask(view1, view2, self.rel_tol, self.abs_tol)
        m21 = covisible_mask(view2, view1, self.rel_tol, self.abs_tol)
        return OverlapResult(float(m12.mean()), float(m21.mean()))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": (
                "pixels of view 1 back-projected with their depth, projected into view 2; valid if in front, "
                "inside the image and not occluded (z2 <= depth2 * (1 + rel_tol) + abs_tol at the nearest "
                "pixel); ratio = valid / all pixels per direction; overlap = min of both"
            ),
            "rel_tol": self.rel_tol,
            "abs_tol": self.abs_tol,
        }

    def needs(self) -> tuple[str, ...]:
        return ("depth",)
