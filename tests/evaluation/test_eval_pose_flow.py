"""Flow pose estimator (conf/pose/flow.yaml) on small rendered clips with known cameras, and its geometry."""

from __future__ import annotations

import numpy as np
import pytest

from vid3d.evaluation.pose.flow import FlowPoseEstimator
from vid3d.evaluation.pose.flow_geometry import essential_pose, fit_rotation, project, resect, triangulate
from vid3d.geometry import rotation_angle_between
from vid3d.geometry.rotations import axis_angle_to_matrix

H, W, N = 48, 64, 8


def _relative(c2w: np.ndarray) -> np.ndarray:
    return np.stack([np.linalg.inv(c2w[0]) @ c for c in c2w])


def _rot(axis, deg) -> np.ndarray:
    return np.asarray(axis_angle_to_matrix(np.asarray(axis, float), np.radians(deg)))


@pytest.fixture(scope="module")
def scene():
    from _eval_scene import default_K, render, trajectory

    return default_K, render, trajectory


@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_a_rendered_walk(scene, seed):
    """48x64, 8 frames of a walk with yaw (_eval_scene). Observed (seeds 0-2, these settings): relative
    rotations within 0.47 deg of the rendering cameras, translation directions within 2.6 deg, ~1 s of CPU
    per clip; the bounds leave 2-3x."""
    default_K, render, trajectory = scene
    c2w, K = trajectory(N, seed=seed), default_K(H, W)
    # two reference pairs and a smaller bundle adjustment than conf/pose/flow.yaml's: the test's time
    res = FlowPoseEstimator(reference_pairs=2, ba_points=200).estimate(render(c2w, K, H, W, seed=seed), K)
    assert res.success and res.n_registered == N, res.reason
    est, gt = _relative(res.c2w), _relative(c2w)
    rot = np.degrees(rotation_angle_between(est[:, :3, :3], gt[:, :3, :3]))
    assert rot.max() < 1.0, rot
    te, tg = est[1:, :3, 3], gt[1:, :3, 3]
    cos = np.sum(te * tg, 1) / np.linalg.norm(te, axis=1) / np.linalg.norm(tg, axis=1)
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 8.0
    # the points seen in frame 0: depths of the same sign and shape as the truth's (up to the scale)
    from _eval_scene import depth_map

    pts = res.first_frame_points
    assert pts is not None and len(pts) > 100
    rows, cols = (pts[:, 1] - 0.5).round().astype(int), (pts[:, 0] - 0.5).round().astype(int)
    true = depth_map(c2w[0], K, H, W)[rows, cols]
    ratio = pts[:, 2] / true
    assert np.all(pts[:, 2] > 0)
    # observed (seeds 0-2): relative depth error median 0.06-0.08, 80th percentile 0.15-0.16
    off = np.abs(ratio / np.median(ratio) - 1)
    assert np.median(off) < 0.15 and np.percentile(off, 80) < 0.3


def test_pure_rotation_is_zero_baseline(scene):
    """A camera turning on the spot: rotations right (observed 0.13 deg at most), centres exactly at frame
    0's, reported as a zero-baseline estimate (registered: the benchmark's static rule scores it)."""
    default_K, render, trajectory = scene
    c2w, K = trajectory(N, seed=0), default_K(H, W)
    c2w[:, :3, 3] = c2w[0, :3, 3]
    res = FlowPoseEstimator().estimate(render(c2w, K, H, W, seed=0), K)
    assert res.success and res.n_registered == N, res.reason
    assert "zero baseline" in res.reason
    est, gt = _relative(res.c2w), _relative(c2w)
    assert np.degrees(rotation_angle_between(est[:, :3, :3], gt[:, :3, :3])).max() < 0.5
    assert np.all(est[:, :3, 3] == 0.0)


@pytest.mark.parametrize("kind", ["noise", "flat"])
def test_untrackable_clip_is_unregistered(kind):
    """Independent noise frames (flow there is smooth but matches nothing) and a textureless clip: no
    frame registered, and the reason says why (tracks not shared with frame 0)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (N, H, W, 3)) if kind == "noise" else np.full((N, H, W, 3), 128)
    frames = frames.astype(np.uint8)
    K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])
    res = FlowPoseEstimator().estimate(frames, K)
    assert not res.success and res.n_registered == 0 and res.c2w is None
    assert "share fewer than 30 tracks with frame 0" in res.reason
    expected = "0 tracks start" if kind == "flat" else "failed the forward-backward or photometric check"
    assert expected in res.reason


def test_needs_intrinsics_and_one_frame_is_frame_0():
    res = FlowPoseEstimator().estimate(np.zeros((2, 8, 8, 3), np.uint8), None)
    assert not res.success and "intrinsics" in res.reason
    one = FlowPoseEstimator().estimate(np.zeros((1, 8, 8, 3), np.uint8), np.eye(3))
    assert one.success and one.reason is None and np.array_equal(one.c2w, np.eye(4)[None])


def test_config_builds_the_estimator():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from vid3d.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=["pose=flow"])
    est = instantiate(cfg.pose)
    assert isinstance(est, FlowPoseEstimator) and est.describe()["flow"] == "dis"
    with pytest.raises(ValueError, match="pose.flow must be one of"):
        FlowPoseEstimator(flow="lucas")


# -- the pure geometry, on exact synthetic correspondences -------------------------------------------
K0 = np.array([[60.0, 0, 32.0], [0, 60.0, 24.0], [0, 0, 1]])


def _points(m=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-2, 2, m), rng.uniform(-1.5, 1.5, m), rng.uniform(4, 8, m)]


def test_fit_rotation_exact():
    X = _points()
    R = _rot([0.2, 1.0, 0.1], 7.0)
    x0, _ = project(X, np.c_[np.eye(3), np.zeros(3)], K0)
    xk, _ = project(X, np.c_[R, np.zeros(3)], K0)
    R_fit, res = fit_rotation(x0, xk, K0)
    assert np.degrees(rotation_angle_between(R_fit, R)) < 1e-6 and res.max() < 1e-6
    # a translation shows up as parallax: residuals of the rotation-only fit (a sideways step is partly
    # absorbed by the rotation, a forward one is not)
    _, res_t = fit_rotation(x0, project(X, np.c_[R, [0.5, 0, 1.0]], K0)[0], K0)
    assert np.median(res_t) > 1.0


def test_essential_pose_triangulate_resect_exact():
    X = _points()
    R, t = _rot([0.0, 1.0, 0.2], 5.0), np.array([0.6, 0.05, 0.1])
    P0, P1 = np.c_[np.eye(3), np.zeros(3)], np.c_[R, t]
    x0, x1 = project(X, P0, K0)[0], project(X, P1, K0)[0]
    R_e, t_e, inl = essential_pose(x0, x1, K0, max_error_px=0.5)
    assert inl.all()
    assert np.degrees(rotation_angle_between(R_e, R)) < 1e-3
    assert np.degrees(np.arccos(np.clip(t_e @ (t / np.linalg.norm(t)), -1, 1))) < 0.1
    Xt, ok = triangulate(np.stack([x0, x1], 1), np.stack([P0, P1]), K0, 0.5, 1.0)
    assert ok.sum() > 0.9 * len(X)
    assert np.abs(Xt[ok] - X[ok]).max() < 1e-6
    # a point seen in one camera only is not triangulated
    one = np.stack([x0, np.full_like(x1, np.nan)], 1)
    assert not triangulate(one, np.stack([P0, P1]), K0, 0.5, 1.0)[1].any()
    P2 = np.c_[_rot([1.0, 0, 0], 3.0), [0.2, -0.1, 0.3]]
    w2c, mask = resect(X, project(X, P2, K0)[0], K0, 0.5)
    assert mask.all() and np.abs(w2c - P2).max() < 1e-6
