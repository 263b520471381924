"""Oracle estimator returning the ground-truth poses: the noise-floor row of a results table."""

from __future__ import annotations

import time

import numpy as np

from .base import PoseEstimator, PoseResult, check_frames

__all__ = ["GTPoseEstimator"]


class GTPoseEstimator(PoseEstimator):
    """Returns ``gt_c2w`` unchanged (float64 copy) as the estimate; ``K_px`` is passed through."""

    name = "gt"

    def estimate(
        self, frames: np.ndarray, K_px: np.ndarray | None, gt_c2w: np.ndarray | None = None
    ) -> PoseResult:
        start = time.perf_counter()
        frames = check_frames(frames)
        if gt_c2w is None:
            raise ValueError(
                "GTPoseEstimator needs gt_c2w (the ground-truth camera-to-world poses); it is an oracle "
                "for the noise-floor row and cannot estimate poses from frames"
            )
        c2w = np.array(gt_c2w, dtype=np.float64)
        if c2w.shape != (len(frames), 4, 4):
            raise ValueError(f"gt_c2w must be ({len(frames)}, 4, 4) to match the frames, got {c2w.shape}")
        K = None if K_px is None else np.array(K_px, dtype=np.float64)
        return PoseResult(
            c2w=c2w, K_px=K, success=True, reason=None, seconds=time.perf_counter() - start,
            n_registered=len(c2w),
        )
