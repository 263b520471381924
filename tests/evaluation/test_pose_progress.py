"""Pose estimation prints its stages with timings (COLMAP: extraction, matching, mapping; DUSt3R: pairwise
inference, global alignment), so a log shows where a long estimation is."""

import re

import numpy as np
import pytest

from vid3d.progress import configure

DONE = r" done in \d+:\d\d:\d\d$"


def _stages(out: str, label: str) -> list[str]:
    return [s for s in out.splitlines() if s.startswith(f"{label}: ")]


def test_colmap_stage_lines(capsys):
    pytest.importorskip("pycolmap")
    from vid3d.evaluation.pose import ColmapPoseEstimator

    noise = np.random.default_rng(0).integers(0, 256, size=(4, 64, 96, 3), dtype=np.uint8)
    K = np.array([[80.0, 0, 48], [0, 80, 32], [0, 0, 1]])
    ColmapPoseEstimator().estimate(noise, K)  # a failure still passes every stage
    got = _stages(capsys.readouterr().out, "colmap")
    want = ["feature extraction (4 frames)", "sequential matching", "incremental mapping"]
    assert len(got) == 6, got
    for k, what in enumerate(want):
        assert got[2 * k] == f"colmap: {what} ..."
        assert re.match(re.escape(f"colmap: {what}") + DONE, got[2 * k + 1]), got[2 * k + 1]
    configure(stages=False)
    ColmapPoseEstimator().estimate(noise, K)
    assert _stages(capsys.readouterr().out, "colmap") == []


def test_dust3r_stage_lines(capsys):
    pytest.importorskip("mini_dust3r")
    from vid3d.evaluation.pose.dust3r import Dust3rPoseEstimator

    frames = np.random.default_rng(1).integers(0, 256, size=(3, 32, 48, 3), dtype=np.uint8)
    Dust3rPoseEstimator(random_init=True, image_size=32, niter=5).estimate(frames, None)
    got = _stages(capsys.readouterr().out, "dust3r")
    assert got[0] == "dust3r: pairwise inference (6 ordered pairs) ..."
    assert re.match(r"dust3r: pairwise inference \(6 ordered pairs\)" + DONE, got[1])
    assert got[2] == "dust3r: global alignment (5 iterations) ..."
    assert re.match(r"dust3r: global alignment \(5 iterations\)" + DONE, got[3]) and len(got) == 4
