"""Turntable cameras: start at the input view, keep looking at the pivot, swing by the stated angle."""

import numpy as np

from vid3d.reconstruction.orbit import turntable_cameras


def test_turntable_swings_about_the_pivot():
    c2w = np.eye(4)
    c2w[:3, :3] = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # a camera turned 90 degrees about y
    c2w[:3, 3] = [1.0, 2.0, 3.0]
    cams = turntable_cameras(c2w, pivot_depth=2.0, num=16, max_yaw_deg=20.0)
    np.testing.assert_allclose(cams[0], c2w, atol=1e-12)
    pivot = c2w[:3, 3] + 2.0 * c2w[:3, 2]
    yaws = []
    for pose in cams:
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)
        # the optical axis passes through the pivot at the same distance
        np.testing.assert_allclose(pose[:3, 3] + 2.0 * pose[:3, 2], pivot, atol=1e-12)
        # rotation about the camera's (unchanged) down axis
        np.testing.assert_allclose(pose[:3, 1], c2w[:3, 1], atol=1e-12)
        cos = np.clip(pose[:3, 2] @ c2w[:3, 2], -1, 1)
        yaws.append(np.degrees(np.arccos(cos)))
    assert abs(max(yaws) - 20.0) < 1e-9  # at t = 1/4, sin = 1
