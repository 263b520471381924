"""The studio's score: the camera benchmark's errors of a video against its requested path, from the pose
estimator's result (the estimator is replaced by known answers here; COLMAP itself is tested elsewhere)."""

import json
from pathlib import Path

import numpy as np
import pytest

from vid3d.evaluation.pose.base import PoseResult
from vid3d.evaluation.pose.colmap import ColmapPoseEstimator
from vid3d.geometry import axis_angle_to_matrix
from vid3d.sampling.io import SampleJob
from vid3d.sampling.trajectories import make_trajectory
from vid3d.studio.command import Request
from vid3d.studio.runner import Result, Studio

ASSET = (
    Path(__file__).resolve().parents[2]
    / "assets"
    / "cpu_camera_control"
    / "epipolar_32x48_hx3big.safetensors"
)
F = 8


@pytest.fixture
def studio_with_result(tmp_path):
    studio = Studio(ASSET, out=tmp_path)
    c2w = make_trajectory("orbit_left", F, amplitude=30.0).c2w
    K = np.tile(np.array([[40.0, 0, 24], [0, 40.0, 16], [0, 0, 1]]), (F, 1, 1))
    frames = np.random.default_rng(0).integers(0, 255, (F, 32, 48, 3), dtype=np.uint8)
    job = SampleJob("x_orbit_left", frames[0], K, c2w)
    req = Request(ckpt=str(ASSET), height=32, width=48, num_frames=F, image="x.png")
    res = Result("r1", tmp_path, tmp_path / "samples" / job.name, req, None, job, frames, 0.0, "python ...")
    studio._keep(res)
    return studio, c2w


def _answer(monkeypatch, result: PoseResult):
    monkeypatch.setattr(ColmapPoseEstimator, "estimate", lambda self, frames, K, gt_c2w=None: result)


def test_a_similar_estimate_scores_zero_and_is_drawn(studio_with_result, monkeypatch, tmp_path):
    studio, c2w = studio_with_result
    # the requested path in another world frame and scale (what SfM returns): rigid motion, then x 3
    T = np.eye(4)
    T[:3, :3] = np.asarray(axis_angle_to_matrix(np.array([0.3, -1.0, 0.2]), 0.7))
    T[:3, 3] = (1.0, -2.0, 0.5)
    est = T[None] @ c2w
    est[:, :3, 3] *= 3.0
    _answer(monkeypatch, PoseResult(est, None, True, None, 0.1, F))
    line, plot = studio.score("r1")
    assert line.startswith("COLMAP registered 8/8 frames: RotErr 0.00 deg, TransErr 0.000, CamMC 0.000"), line
    assert plot is not None and plot.is_file()
    errs = json.loads((tmp_path / "camera_errors.json").read_text())
    assert errs["rot_err_rad"] < 1e-9 and errs["trans_err"] < 1e-9


def test_one_turned_frame_costs_its_angle(studio_with_result, monkeypatch):
    studio, c2w = studio_with_result
    est = c2w.copy()
    est[5, :3, :3] = est[5, :3, :3] @ np.asarray(axis_angle_to_matrix(np.array([0, 0, 1.0]), np.radians(4.0)))
    _answer(monkeypatch, PoseResult(est, None, True, None, 0.1, F))
    line, _ = studio.score("r1")
    assert "RotErr 4.00 deg" in line, line  # the sum over frames: only frame 5 is off, by 4 degrees


def test_a_failed_estimate_is_one_line_saying_why(studio_with_result, monkeypatch):
    studio, _ = studio_with_result
    _answer(monkeypatch, PoseResult(None, None, False, "no reconstruction (registered 0/8 frames)", 0.1, 0))
    line, plot = studio.score("r1")
    assert plot is None and "\n" not in line
    assert line.startswith("No camera errors: COLMAP registered 0/8 frames of this 32x48 video"), line
    assert "about 128x192" in line
