"""Pose estimator for small, short clips: dense optical-flow tracks + essential matrix + triangulation + PnP.

Made for videos too small for feature matching (COLMAP's SIFT finds few keypoints in a 32x48 frame), with
known intrinsics. Steps (``flow_tracks.py``, ``flow_geometry.py``):

1. **Tracks**: dense flow between neighbouring frames (DIS by default, on frames upscaled to
   ``min_flow_width``), forward-backward and photometrically checked, carried through the clip; new tracks
   start on textured pixels where none runs.
2. **Reference pairs**: for every frame pair sharing >= ``min_inliers`` tracks, the rotation-only fit;
   its median residual is the pair's parallax (pixels). The pairs with parallax >= ``min_parallax_px``
   whose essential matrix (known K, MAGSAC, cheirality) keeps >= ``min_inliers`` inliers are ranked by
   shared tracks x parallax (capped at 4 px); each of the first ``reference_pairs`` seeds a reconstruction,
   with |t| = 1 fixing its scale.
3. **Scale through triangulation**: the reference pair's inlier tracks are triangulated; every other frame
   is resected (PnP + RANSAC) from those points, so its translation is in the same scale; points are
   re-triangulated from all registered frames and unregistered frames retried until nothing changes; a last
   pass re-resects every frame against the final points. The reconstruction registering the most frames
   (then triangulating the most points) is kept and bundle-adjusted (Huber loss, ``ba_points`` points).
4. **Registration**: a frame is registered when its resection keeps >= ``min_inliers`` points within
   ``max_error_px`` (and still does after the bundle adjustment); otherwise its pose is NaN and the reason
   names the frame (too few shared tracks, too few triangulated points, too few inliers).

**Zero baseline**: when no frame pair reaches ``min_parallax_px`` and every frame shares tracks with frame 0
(a camera turning on the spot, or still), there is nothing to triangulate; each frame is registered with
its rotation-only fit against frame 0 and its centre at frame 0's (translation exactly 0: the benchmark's
static rule then scores the translations as a static trajectory); ``reason`` says "zero baseline". When
frames share too few tracks with frame 0 as well, nothing is registered.

Measured on the 16 held-out synthetic clips (``python -m vid3d.tools.pose_sizes``, results in
experiments/cpu_camera_control/README.md): every frame of 15/16 clips registered at 32x48 and 64x96.
The estimate of a reference pair and a wrong one can explain the tracks equally well on narrow-baseline
clips (a 64x96 room clip: median reprojection error 0.179 px at the rendering cameras and at an estimate
20 deg off in RotErr): that, not the flow (unbiased to 1% against the rendering cameras), limits accuracy.

The world frame is camera 0's (c2w[0] = identity) and the scale is the reference baseline's; the
benchmark normalises both away. ``first_frame_points`` are the triangulated points seen in frame 0.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from vid3d.geometry import w2c_to_c2w

from .base import PoseEstimator, PoseResult, check_frames
from .colmap import judge_registration
from .flow_geometry import bundle_adjust, essential_pose, fit_rotation, project, resect, triangulate
from .flow_tracks import FLOW_METHODS, track_points

__all__ = ["FlowPoseEstimator"]


class FlowPoseEstimator(PoseEstimator):
    """Estimate per-frame OpenCV camera-to-world poses of a short clip from dense flow tracks (module
    docstring). Needs the pixel intrinsics.

    Args:
        flow: "dis" (OpenCV DIS, medium preset) or "farneback".
        min_flow_width: frames narrower than this are upscaled by an integer factor for the flow.
        grid_step: tracks start on every ``grid_step``-th pixel.
        fb_max_px: forward-backward flow disagreement (pixels) that ends a track.
        min_texture: smaller structure-tensor eigenvalue (image in [0, 1]) a pixel needs to start a track.
        max_error_px: RANSAC threshold and largest reprojection error of a kept point (pixels).
        min_parallax_px: median residual of the rotation-only fit (pixels) a frame pair needs to seed a
            reconstruction; below it in every pair the clip is a zero-baseline clip.
        min_tri_angle_deg: smallest largest-angle between the rays of a triangulated point.
        min_inliers: resection inliers a frame needs to be registered.
        photo_max: largest mean absolute RGB difference (0-255) of a track's 3x3 neighbourhood between two
            frames (``flow_tracks.patch_difference``).
        reference_pairs: reconstructions tried, one from each of the best frame pairs (essential matrix
            inliers x parallax); the one registering the most frames, then the most points, is kept.
        bundle_adjust: refine the kept reconstruction's poses and points jointly (Huber loss) ...
        ba_points: ... on at most this many of its points (a seeded subset), then re-triangulate all.
        min_registered_fraction: success needs ceil(fraction x n) registered frames.
        seed: RANSAC seed.
    """

    name = "flow"

    def __init__(
        self,
        flow: str = "dis",
        min_flow_width: int = 192,
        grid_step: int = 1,
        fb_max_px: float = 1.0,
        min_texture: float = 1e-3,
        max_error_px: float = 1.0,
        min_parallax_px: float = 0.5,
        min_tri_angle_deg: float = 1.0,
        min_inliers: int = 30,
        photo_max: float = 30.0,
        reference_pairs: int = 6,
        bundle_adjust: bool = True,
        ba_points: int = 400,
        min_registered_fraction: float = 1.0,
        seed: int = 0,
    ) -> None:
        if flow not in FLOW_METHODS:
            raise ValueError(f"pose.flow must be one of {FLOW_METHODS}, got {flow!r}")
        if not 0.0 < float(min_registered_fraction) <= 1.0:
            raise ValueError(f"pose.min_registered_fraction must be in (0, 1], got {min_registered_fraction}")
        for key, value in (("fb_max_px", fb_max_px), ("max_error_px", max_error_px)):
            if not float(value) > 0:
                raise ValueError(f"pose.{key} must be > 0, got {value}")
        self.flow = flow
        self.min_flow_width = int(min_flow_width)
        self.grid_step = int(grid_step)
        self.fb_max_px = float(fb_max_px)
        self.min_texture = float(min_texture)
        self.max_error_px = float(max_error_px)
        self.min_parallax_px = float(min_parallax_px)
        self.min_tri_angle_deg = float(min_tri_angle_deg)
        self.min_inliers = int(min_inliers)
        self.photo_max = float(photo_max)
        self.reference_pairs = max(1, int(reference_pairs))
        self.bundle_adjust = bool(bundle_adjust)
        self.ba_points = max(10, int(ba_points))
        self.min_registered_fraction = float(min_registered_fraction)
        self.seed = int(seed)

    def describe(self) -> dict[str, Any]:
        keys = ("flow", "min_flow_width", "grid_step", "fb_max_px", "min_texture", "max_error_px",
                "min_parallax_px", "min_tri_angle_deg", "min_inliers", "photo_max", "reference_pairs",
                "bundle_adjust", "ba_points", "min_registered_fraction", "seed")
        return {"name": self.name, **{k: getattr(self, k) for k in keys}}

    def estimate(
        self, frames: np.ndarray, K_px: np.ndarray | None, gt_c2w: np.ndarray | None = None
    ) -> PoseResult:
        start = time.perf_counter()
        frames = check_frames(frames)
        n, _, W = frames.shape[:3]
        if K_px is None:
            why = "the flow estimator needs the pixel intrinsics (K_px is None)"
            return PoseResult(None, None, False, why,
                              time.perf_counter() - start, 0)
        K = np.asarray(K_px, dtype=np.float64)
        scale = max(1, math.ceil(self.min_flow_width / W))
        tracks = track_points(frames, self.flow, self.grid_step, self.fb_max_px, self.min_texture, scale,
                              self.photo_max)
        w2c, notes, points = self._solve(tracks, K, n)
        c2w = np.full((n, 4, 4), np.nan)
        for k, P in w2c.items():
            c2w[k] = w2c_to_c2w(np.vstack([P, [0.0, 0.0, 0.0, 1.0]]))
        success, reason, n_reg = judge_registration(c2w, self.min_registered_fraction)
        extra = [why if k == -1 else f"frame {k}: {why}" for k, why in sorted(notes.items())]
        if extra:
            reason = "; ".join(([reason] if reason else []) + extra)
        return PoseResult(
            c2w=c2w if n_reg else None, K_px=K, success=success, reason=reason,
            seconds=time.perf_counter() - start, n_registered=n_reg, first_frame_points=points,
        )

    # -- the steps ---------------------------------------------------------------------------------
    def _solve(self, tracks: np.ndarray, K: np.ndarray, n: int):
        """Returns ({frame: w2c (3, 4)}, {frame: note; -1: clip note}, first-frame points (m, 3) or None)."""
        notes: dict[int, str] = {}
        vis = np.all(np.isfinite(tracks), axis=2)  # (T, n)
        shared = {(i, j): vis[:, i] & vis[:, j] for i in range(n) for j in range(i + 1, n)}
        parallax: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
        for (i, j), both in shared.items():
            if both.sum() >= self.min_inliers:
                R, res = fit_rotation(tracks[both, i], tracks[both, j], K)
                parallax[(i, j)] = (R, float(np.median(res)))
        moving = [p for p, (_, par) in parallax.items() if par >= self.min_parallax_px]
        if not moving and all((0, k) in parallax for k in range(1, n)):
            return self._zero_baseline(parallax, vis, notes, n)
        if not moving:
            notes[-1] = (f"no frame pair has {self.min_parallax_px:g} px of parallax, and frames "
                         f"{[k for k in range(1, n) if (0, k) not in parallax]} share fewer than "
                         f"{self.min_inliers} tracks with frame 0 ({int(vis[:, 0].sum())} tracks start on "
                         "its textured pixels; the others failed the forward-backward or photometric check)")
            return {}, notes, None
        # reference pairs (a, b): the essential matrices that hold, most inliers x parallax first (capped at
        # 4 px: beyond, fewer shared tracks matter more); each seeds a reconstruction, the one registering
        # the most frames (then triangulating the most points) is kept
        refs = []
        for a, b in sorted(moving, key=lambda p: -shared[p].sum() * min(parallax[p][1], 4.0)):
            both = shared[(a, b)]
            ep = essential_pose(tracks[both, a], tracks[both, b], K, self.max_error_px, self.seed)
            if ep is not None and ep[2].sum() >= self.min_inliers:
                refs.append((a, b, ep[0], ep[1], np.flatnonzero(both)[ep[2]]))
            if len(refs) == self.reference_pairs:
                break
        if not refs:
            notes[-1] = "no frame pair's essential matrix kept enough inliers"
            return {}, notes, None
        best = None
        for a, r, R, t, idx in refs:
            got = self._reconstruct(tracks, vis, K, n, a, r, R, t, idx)
            score = (len(got[0]), int(np.isfinite(got[2][:, 0]).sum()))
            if best is None or score > best[0]:
                best = (score, got)
        w2c, notes_r, X, a = best[1]
        notes.update(notes_r)
        if self.bundle_adjust and len(w2c) > 2:
            w2c, X = self._bundle_adjust(tracks, w2c, X, K, a, notes)
        seen0 = vis[:, 0] & np.all(np.isfinite(X), axis=1)
        points = None
        if 0 in w2c and seen0.any():
            _, z = project(X[seen0], w2c[0], K)
            points = np.c_[tracks[seen0, 0], z]
        return w2c, notes, points

    def _reconstruct(self, tracks, vis, K, n, a, r, R, t, idx):
        """From the reference pair (a, r) with pose [R | t] and its inlier tracks ``idx``: triangulate,
        resect the other frames, re-triangulate, until no frame is added; then re-resect every frame but a
        twice against the points. Returns ({frame: w2c}, {frame: note}, X (T, 3) NaN where not
        triangulated, a)."""
        notes: dict[int, str] = {}
        w2c: dict[int, np.ndarray] = {a: np.c_[np.eye(3), np.zeros(3)], r: np.c_[R, t]}
        X = np.full((len(tracks), 3), np.nan)
        pts, ok = triangulate(tracks[idx][:, [a, r]], np.stack([w2c[a], w2c[r]]), K, self.max_error_px,
                              self.min_tri_angle_deg)
        X[idx[ok]] = pts[ok]
        for _ in range(n):  # grow: resect, re-triangulate, until no frame is added
            added = False
            for k in range(n):
                if k in w2c:
                    continue
                got = self._resect(X, tracks, vis, k, K)
                if got is not None:
                    w2c[k] = got[0]
                    added = True
                else:
                    notes[k] = self._why_not(X, vis, k)
            X = self._retriangulate(tracks, w2c, K)
            if not added:
                break
        for _ in range(2):  # refine every frame but a against the final points
            for k in list(w2c):
                if k == a:
                    continue
                got = self._resect(X, tracks, vis, k, K)
                if got is None:  # lost on refinement: not registered (never guessed)
                    notes[k] = self._why_not(X, vis, k)
                    del w2c[k]
                else:
                    w2c[k] = got[0]
            X = self._retriangulate(tracks, w2c, K)
        for k in w2c:
            notes.pop(k, None)
        return w2c, notes, X, a

    def _bundle_adjust(self, tracks, w2c, X, K, a, notes):
        """Bundle adjustment of the registered frames and the triangulated points; a frame whose
        observations then fit within ``max_error_px`` fewer than ``min_inliers`` times is dropped."""
        frames = sorted(w2c)
        keep = np.flatnonzero(np.all(np.isfinite(X), axis=1))
        if len(keep) > self.ba_points:  # a seeded subset: the cost grows with the points
            keep = np.sort(np.random.default_rng(self.seed).choice(keep, self.ba_points, replace=False))
        P, _ = bundle_adjust(tracks[keep][:, frames], np.stack([w2c[k] for k in frames]), X[keep], K,
                             frames.index(a), loss_scale_px=self.max_error_px)
        X = self._retriangulate(tracks, dict(zip(frames, P)), K)
        obs = tracks[:, frames]
        out = {}
        for c, k in enumerate(frames):
            uv, z = project(np.nan_to_num(X), P[c], K)
            seen = np.all(np.isfinite(obs[:, c]), axis=1) & np.all(np.isfinite(X), axis=1)
            good = int((seen & (z > 0) & (np.linalg.norm(uv - obs[:, c], axis=1) <= self.max_error_px)).sum())
            if k == a or good >= self.min_inliers:
                out[k] = P[c]
            else:
                notes[k] = f"{good} of its points fit within {self.max_error_px:g} px after bundle adjustment"
        return out, X

    def _zero_baseline(self, parallax, vis, notes, n):
        """Rotations only (every frame shares tracks with frame 0): R_0k from the rotation-only fit of
        frames (0, k), camera centres at frame 0's. A one-frame clip is frame 0 alone."""
        w2c = {0: np.c_[np.eye(3), np.zeros(3)]}
        for k in range(1, n):
            w2c[k] = np.c_[parallax[(0, k)][0], np.zeros(3)]
        if n > 1:
            notes[-1] = (f"zero baseline: no frame pair has {self.min_parallax_px:g} px of parallax; "
                         "rotations only, camera centres at frame 0's")
        return w2c, notes, None

    def _resect(self, X, tracks, vis, k, K):
        have = vis[:, k] & np.all(np.isfinite(X), axis=1)
        if have.sum() < self.min_inliers:
            return None
        got = resect(X[have], tracks[have, k], K, self.max_error_px, self.seed)
        if got is None or got[1].sum() < self.min_inliers:
            return None
        return got[0], int(got[1].sum())

    def _why_not(self, X, vis, k) -> str:
        have = int((vis[:, k] & np.all(np.isfinite(X), axis=1)).sum())
        if have < self.min_inliers:
            return f"sees {have} triangulated points (< {self.min_inliers})"
        return (f"resection kept fewer than {self.min_inliers} of its {have} points within "
                f"{self.max_error_px:g} px")

    def _retriangulate(self, tracks, w2c, K):
        frames = sorted(w2c)
        obs = tracks[:, frames]
        X, ok = triangulate(obs, np.stack([w2c[k] for k in frames]), K, self.max_error_px,
                            self.min_tri_angle_deg)
        X[~ok] = np.nan
        return X
