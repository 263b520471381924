"""Cameras for looking at a reconstruction: a turntable swing around a point in front of a camera."""

from __future__ import annotations

import numpy as np


def turntable_cameras(
    c2w: np.ndarray, pivot_depth: float, num: int = 32, max_yaw_deg: float = 20.0
) -> np.ndarray:
    """``num`` OpenCV camera-to-world poses (num, 4, 4) that swing the camera ``c2w`` (4, 4) about the
    vertical axis (the camera's own y, pointing down) through the point ``pivot_depth`` in front of it: yaw
    max_yaw_deg * sin(2 pi t), t in [0, 1), so the video starts at the input view, swings right, left,
    and returns. Every pose keeps looking at the pivot."""
    c2w = np.asarray(c2w, np.float64)
    pivot = c2w[:3, 3] + pivot_depth * c2w[:3, 2]
    axis = c2w[:3, 1] / np.linalg.norm(c2w[:3, 1])
    out = []
    for t in np.arange(num) / num:
        a = np.deg2rad(max_yaw_deg) * np.sin(2 * np.pi * t)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        R = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)  # Rodrigues: rotation by a about axis
        pose = np.eye(4)
        pose[:3, :3] = R @ c2w[:3, :3]
        pose[:3, 3] = pivot + R @ (c2w[:3, 3] - pivot)
        out.append(pose)
    return np.stack(out)
