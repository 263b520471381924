"""camera_errors against hand-computed cases and invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vid3d.evaluation.camera_errors import camera_errors, prepare_trajectory
from vid3d.geometry import axis_angle_to_matrix


def _pose(R: np.ndarray, t) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = R
    m[:3, 3] = t
    return m


def _random_traj(rng: np.random.Generator, n: int = 6) -> np.ndarray:
    axes = rng.normal(size=(n, 3))
    angles = rng.uniform(-0.6, 0.6, size=n)
    R = np.asarray(axis_angle_to_matrix(axes, angles))
    return np.stack([_pose(R[i], rng.normal(size=3)) for i in range(n)])


def _random_rigid(rng: np.random.Generator) -> np.ndarray:
    R = np.asarray(axis_angle_to_matrix(rng.normal(size=3), rng.uniform(0.3, 3.0)))
    return _pose(R, rng.normal(size=3) * 5)


def test_identical_trajectories_give_zero():
    traj = _random_traj(np.random.default_rng(0), 8)
    err = camera_errors(traj, traj)
    for key in ("rot_err_rad", "rot_err_deg", "trans_err", "cammc"):
        assert err[key] == pytest.approx(0.0, abs=1e-6), key
    assert err["n_frames"] == 8


def test_ninety_degree_rotation_per_affected_frame():
    # GT: identity rotations, translations along x. Gen: same centres, frames 1 and 3 rotated 90 deg.
    n = 4
    gt = np.stack([_pose(np.eye(3), [i, 0, 0]) for i in range(n)])
    gen = gt.copy()
    Rz90 = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    for i in (1, 3):
        gen[i, :3, :3] = Rz90
    err = camera_errors(gen, gt)
    assert err["rot_err_deg"] == pytest.approx(180.0, abs=1e-9)  # 2 frames x 90 deg
    assert err["rot_err_rad"] == pytest.approx(math.pi, abs=1e-12)
    assert err["rot_err_deg_per_frame"] == pytest.approx(180.0 / n)
    assert err["trans_err"] == pytest.approx(0.0, abs=1e-12)
    # CamMC: ||I - Rz90||_F = sqrt(4) = 2 per rotated frame, translations equal.
    assert err["cammc"] == pytest.approx(4.0, abs=1e-12)


def test_hand_computed_translation_and_cammc():
    # GT centres 0, (2,0,0), (4,0,0) -> normalised 0, (0.5,0,0), (1,0,0); scale 4.
    gt = np.stack([_pose(np.eye(3), [2.0 * i, 0, 0]) for i in range(3)])
    # Gen centres 0, (0,3,0), (0,0,6) -> normalised 0, (0,0.5,0), (0,0,1); scale 6.
    gen = np.stack([_pose(np.eye(3), c) for c in ([0, 0, 0], [0, 3, 0], [0, 0, 6])])
    err = camera_errors(gen, gt)
    expected = math.sqrt(0.5**2 + 0.5**2) + math.sqrt(2.0)
    assert err["trans_err"] == pytest.approx(expected, abs=1e-12)
    assert err["cammc"] == pytest.approx(expected, abs=1e-12)  # rotations equal -> only t differs
    assert err["gt_scale"] == pytest.approx(4.0)
    assert err["gen_scale"] == pytest.approx(6.0)
    assert err["trans_err_per_frame"] == pytest.approx(expected / 3)


def test_cammc_combines_rotation_and_translation():
    gt = np.stack([np.eye(4), _pose(np.eye(3), [0, 0, 1])])
    Rx = np.asarray(axis_angle_to_matrix(np.array([1.0, 0, 0]), np.array(0.3)))
    gen = np.stack([np.eye(4), _pose(Rx, [0, 1, 0])])
    err = camera_errors(gen, gt)
    # Independent: Frobenius norm of the 3x4 difference = sqrt(||I-R||_F^2 + ||t_gt - t_gen||^2).
    rot_part = 2 * (1 - math.cos(0.3)) * 2  # ||I - R_x(a)||_F^2 = 4 (1 - cos a)
    assert err["cammc"] == pytest.approx(math.sqrt(rot_part + 2.0), abs=1e-12)
    assert err["rot_err_rad"] == pytest.approx(0.3, abs=1e-12)
    assert err["trans_err"] == pytest.approx(math.sqrt(2.0), abs=1e-12)


def test_invariance_to_global_rigid_transform_and_scale():
    rng = np.random.default_rng(1)
    gt = _random_traj(rng, 7)
    gen = _random_traj(rng, 7)
    base = camera_errors(gen, gt)
    for traj_idx in (0, 1):
        G = _random_rigid(rng)
        s = float(rng.uniform(0.1, 10.0))
        trajs = [gen.copy(), gt.copy()]
        moved = G @ trajs[traj_idx]
        moved[:, :3, 3] *= s  # global similarity: rotate/translate the world then scale it
        trajs[traj_idx] = moved
        err = camera_errors(*trajs)
        for key in ("rot_err_rad", "trans_err", "cammc"):
            assert err[key] == pytest.approx(base[key], rel=1e-9, abs=1e-9), (traj_idx, key)


def test_torch_and_numpy_agree_and_3x4_accepted():
    rng = np.random.default_rng(2)
    gt, gen = _random_traj(rng), _random_traj(rng)
    a = camera_errors(gen, gt)
    b = camera_errors(torch.from_numpy(gen), torch.from_numpy(gt))
    b32 = camera_errors(torch.from_numpy(gen).float(), torch.from_numpy(gt).float())
    c = camera_errors(gen[:, :3], gt[:, :3])
    for key in ("rot_err_deg", "trans_err", "cammc"):
        assert b[key] == pytest.approx(a[key], rel=1e-12)
        assert b32[key] == pytest.approx(a[key], rel=1e-3)  # float32 input is upcast after rounding
        assert c[key] == pytest.approx(a[key], rel=1e-12)


def test_clamp_never_nan_with_round_off():
    rng = np.random.default_rng(3)
    traj = _random_traj(rng, 50)
    # Perturb by 1 ulp-level noise so traces can exceed 3 by round-off.
    noisy = traj.copy()
    noisy[:, :3, :3] *= 1 + 1e-15
    err = camera_errors(noisy, traj)
    assert np.isfinite(err["rot_err_rad"])
    assert err["rot_err_deg"] < 1e-4


def test_static_rule():
    gt_static = np.stack([_pose(np.eye(3), [1.0, 2.0, 3.0])] * 4)  # never moves, off-origin
    gen = np.stack([_pose(np.eye(3), [0, 0, 2.0 * i]) for i in range(4)])
    err = camera_errors(gen, gt_static)
    assert err["gt_scale"] == 0.0
    assert err["gen_scale"] == pytest.approx(6.0)
    # gen normalised: centres 0, 1/3, 2/3, 1 along z; GT translations are exactly zero.
    assert err["trans_err"] == pytest.approx(0 + 1 / 3 + 2 / 3 + 1, abs=1e-12)
    both_static = camera_errors(gt_static, gt_static)
    assert both_static["trans_err"] == 0.0 and both_static["gen_scale"] == 0.0
    traj, scale = prepare_trajectory(gt_static)
    assert scale == 0.0 and np.all(traj[:, :3, 3] == 0.0)


def test_rejects_bad_inputs():
    traj = _random_traj(np.random.default_rng(4), 4)
    with pytest.raises(ValueError, match="frames"):
        camera_errors(traj[:3], traj)
    bad = traj.copy()
    bad[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        camera_errors(bad, traj)
    with pytest.raises(ValueError, match="camera-to-world"):
        camera_errors(traj[:, :3, :3], traj)


def test_zero_floor_on_real_realestate10k_files():
    """A real trajectory against its own SO(3) projection reads 0 (< 1e-6 rad over the whole clip), though
    the files' rotations are only near-orthonormal (issue 19: arccos on them alone gave up to 4.4e-3 rad)."""
    from pathlib import Path

    from vid3d.data.formats import re10k
    from vid3d.geometry import project_to_so3, w2c_to_c2w

    files = sorted(
        (Path(re10k.__file__).resolve().parents[1] / "assets" / "re10k_trajectories").glob("*.txt")
    )
    assert len(files) == 10
    worst_orth = 0.0
    for f in files:
        c2w = np.asarray(w2c_to_c2w(re10k.read_camera_file(f).w2c), dtype=np.float64)
        R = c2w[:, :3, :3]
        worst_orth = max(worst_orth, float(np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max()))
        projected = c2w.copy()
        projected[:, :3, :3] = project_to_so3(R)
        np.testing.assert_allclose(
            projected[:, :3, :3] @ projected[:, :3, :3].transpose(0, 2, 1),
            np.broadcast_to(np.eye(3), R.shape),
            atol=1e-14,
        )
        for a, b in ((c2w, projected), (projected, c2w), (c2w, c2w)):
            e = camera_errors(a, b)
            assert e["rot_err_rad"] < 1e-6 and e["trans_err"] < 1e-6, (
                f.name,
                e["rot_err_rad"],
                e["trans_err"],
            )
    assert worst_orth > 1e-9  # the files really are only near-orthonormal: the test exercises the fix


def test_small_angles_are_exact():
    """atan2 form: a rotation of 1e-7 rad reads 1e-7 (arccos of the trace loses it to round-off)."""
    from vid3d.geometry import rotation_angle_between

    for angle in (1e-9, 1e-7, 1e-4, 0.5, 3.0):
        R = np.asarray(axis_angle_to_matrix(np.array([0.3, -0.5, 0.8]), np.float64(angle)))
        assert float(rotation_angle_between(R, np.eye(3))) == pytest.approx(angle, rel=1e-6)
