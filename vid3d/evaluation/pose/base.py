"""Pose-estimator interface: frames in, OpenCV camera-to-world poses out (or a stated failure)."""

from __future__ import annotations

import abc
import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PoseEstimator", "PoseResult", "check_frames"]


@dataclass
class PoseResult:
    """Outcome of one pose estimation.

    Attributes:
        c2w: (n, 4, 4) float64 OpenCV camera-to-world poses in the estimator's own world frame and
            scale (compare only after ``camera_errors`` normalisation); rows of unregistered frames are
            NaN. None when nothing usable was recovered.
        K_px: (3, 3) pixel intrinsics used/estimated at the frames' resolution, or None.
        success: True only when the estimate meets the estimator's registration requirement.
        reason: why it failed (or a note on a partial registration), None on a clean success.
        seconds: wall-clock time of the estimation.
        n_registered: number of frames with a recovered pose.
        first_frame_points: (m, 3) float64 ``u, v, z`` of the reconstruction's 3D points observed in the
            first frame: pixel position (pixel centres at +0.5) and depth in the first camera, in the
            reconstruction's own scale (for a metric-depth scale, ``cami2v.depth_scale``); None when the
            estimator has no points.
    """

    c2w: np.ndarray | None
    K_px: np.ndarray | None
    success: bool
    reason: str | None
    seconds: float
    n_registered: int
    first_frame_points: np.ndarray | None = None

    def registered_mask(self) -> np.ndarray:
        """(n,) bool: frames whose pose is finite (all False when ``c2w`` is None)."""
        if self.c2w is None:
            return np.zeros(0, dtype=bool)
        return np.all(np.isfinite(self.c2w.reshape(len(self.c2w), -1)), axis=1)


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Validate (n, H, W, 3) uint8 RGB frames; returns them as a numpy array."""
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"frames must be (n, H, W, 3) uint8 RGB, got shape {arr.shape} dtype {arr.dtype}")
    if arr.shape[0] < 1:
        raise ValueError("frames: empty video")
    return arr


class PoseEstimator(abc.ABC):
    """Estimates per-frame camera poses of a video.

    Subclasses set ``name`` and implement ``estimate``. Expected failures (e.g. too few frames
    registered) are returned as ``PoseResult(success=False, reason=...)``, never raised or dropped.
    """

    name: str = "base"

    @abc.abstractmethod
    def estimate(
        self, frames: np.ndarray, K_px: np.ndarray | None, gt_c2w: np.ndarray | None = None
    ) -> PoseResult:
        """Args:
        frames: (n, H, W, 3) uint8 RGB video.
        K_px: (3, 3) pixel intrinsics at (H, W), or None when unknown.
        gt_c2w: (n, 4, 4) ground-truth camera-to-world poses (only the oracle estimator may use it).
        """

    def describe(self) -> dict[str, Any]:
        """Name and settings, recorded in the results' protocol block."""
        return {"name": self.name}

    def for_trial(self, trial: int) -> PoseEstimator:
        """This estimator for estimation trial ``trial`` (protocol=cami2v: trials are repeated estimations
        of one video): a copy with ``seed`` = seed + trial when it has a seed (COLMAP's RANSAC and mapper,
        DUSt3R's aligner), else itself."""
        if trial == 0 or not hasattr(self, "seed"):
            return self
        twin = copy.copy(self)
        twin.seed = int(self.seed) + int(trial)
        return twin
