"""Two-view geometry of frame pairs (OpenCV SIFT + essential matrix) and a consistency check of a pose
estimate against it.

An estimate of a whole clip (COLMAP's) can register every frame and still be wrong: on short, strided,
forward-moving clips the incremental mapper sometimes converges to a branch whose rotations drift by
several degrees per frame (measured on a rendered 16-frame walk at stride 8: 49 deg/frame against the
rendering cameras, all 16 frames registered). Each pair of nearby frames, on its own, pins its relative
rotation well: the five-point essential matrix with the known intrinsics. ``rotation_disagreement`` is the
angle between the estimate's relative rotation and the two-view one, per pair; a high percentile of it
separates the right estimates from the wrong branch (same clip, medians: 0.3 deg for the rendering
cameras and for GLOMAP's right estimate, 9.5 deg for the wrong branch; ``tools/pose_ladder.py`` uses the
80th percentile).

Conventions: frames (n, H, W, 3) uint8 RGB; K (3, 3) pixel intrinsics with pixel centres at (u + 0.5,
v + 0.5) (vid3d's and COLMAP's; OpenCV keypoints sit at integer centres and are shifted by +0.5);
c2w (n, 4, 4) OpenCV camera-to-world. ``R_ij`` maps camera-i coordinates to camera-j coordinates
(x_j = R_ij x_i + t_ij), i.e. R_ij = R_j^T R_i for camera-to-world rotations R_i, R_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vid3d.geometry.rotations import rotation_angle_between

__all__ = ["TwoView", "neighbour_pairs", "rotation_disagreement", "two_view_geometry"]


@dataclass(frozen=True)
class TwoView:
    """The two-view geometry of frames (i, j): R (3, 3) camera i -> camera j, unit t (3,), the number of
    ratio-test matches and of essential-matrix inliers in front of both cameras."""

    i: int
    j: int
    R: np.ndarray
    t: np.ndarray
    matches: int
    inliers: int


def neighbour_pairs(n: int, gaps: tuple[int, ...] = (1, 2)) -> list[tuple[int, int]]:
    """Frame pairs (i, i + g) for each gap g in ``gaps`` (those inside 0..n-1)."""
    return [(i, i + g) for g in gaps for i in range(n - g)]


def _features(frame: np.ndarray, max_features: int):
    sift = cv2.SIFT_create(nfeatures=max_features)
    kp, desc = sift.detectAndCompute(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), None)
    xy = np.array([k.pt for k in kp], dtype=np.float64).reshape(-1, 2) + 0.5  # pixel centres at +0.5
    return xy, desc


def two_view_geometry(
    frames: np.ndarray,
    K: np.ndarray,
    pairs: list[tuple[int, int]],
    max_features: int = 4000,
    ratio: float = 0.8,
    max_error_px: float = 1.0,
    min_inliers: int = 15,
    seed: int = 0,
) -> dict[tuple[int, int], TwoView]:
    """Relative pose of each frame pair from SIFT matches (Lowe's ratio test) and the essential matrix
    with known ``K`` (MAGSAC, ``max_error_px``), decomposed by ``cv2.recoverPose`` (cheirality). Pairs with
    fewer than ``min_inliers`` inliers (or no essential matrix) are left out of the returned dict."""
    K = np.asarray(K, dtype=np.float64)
    cv2.setRNGSeed(int(seed))
    feats = {}
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    out: dict[tuple[int, int], TwoView] = {}
    for i, j in pairs:
        for k in (i, j):
            if k not in feats:
                feats[k] = _features(frames[k], max_features)
        (xi, di), (xj, dj) = feats[i], feats[j]
        if di is None or dj is None or len(di) < 2 or len(dj) < 2:
            continue
        knn = matcher.knnMatch(di, dj, k=2)
        good = [m[0] for m in knn if len(m) == 2 and m[0].distance < ratio * m[1].distance]
        if len(good) < min_inliers:
            continue
        pi = xi[[m.queryIdx for m in good]]
        pj = xj[[m.trainIdx for m in good]]
        try:
            E, mask = cv2.findEssentialMat(pi, pj, K, cv2.USAC_MAGSAC, 0.999, max_error_px)
            if E is None or E.shape != (3, 3):
                continue
            inliers, R, t, _ = cv2.recoverPose(E, pi, pj, K, mask=mask)
        except cv2.error:  # degenerate samples (e.g. OpenCV 5's solvePoly assertion on planar matches)
            continue
        if inliers >= min_inliers:
            unit_t = t.reshape(3) / max(float(np.linalg.norm(t)), 1e-12)
            out[(i, j)] = TwoView(i, j, R, unit_t, len(good), int(inliers))
    return out


def rotation_disagreement(c2w: np.ndarray, views: dict[tuple[int, int], TwoView]) -> np.ndarray:
    """Angle in degrees between the estimate's relative rotation R_j^T R_i and the two-view one, for each
    pair in ``views`` whose frames both have finite poses in ``c2w`` (n, 4, 4); (m,) float64."""
    rows = []
    for (i, j), v in sorted(views.items()):
        if np.isfinite(c2w[i]).all() and np.isfinite(c2w[j]).all():
            rows.append((c2w[j, :3, :3].T @ c2w[i, :3, :3], v.R))
    if not rows:
        return np.zeros(0)
    est, two = (np.stack(r) for r in zip(*rows))
    return np.degrees(np.asarray(rotation_angle_between(est, two), dtype=np.float64))
