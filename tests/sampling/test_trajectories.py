import json
import math

import numpy as np
import pytest

from vid3d.geometry import axis_angle_to_matrix, rotation_angle_between
from vid3d.sampling.trajectories import (
    AMPLITUDES,
    PRESETS,
    Trajectory,
    compose_segments,
    load_trajectory_file,
    make_trajectory,
    resample_c2w,
)

F = 9


def _check_valid(c2w):
    assert c2w.shape[1:] == (4, 4) and c2w.dtype == np.float64
    np.testing.assert_allclose(c2w[0], np.eye(4), atol=1e-12)
    R = c2w[:, :3, :3]
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-10)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-10)
    np.testing.assert_allclose(c2w[:, 3], np.broadcast_to([0, 0, 0, 1.0], (len(c2w), 4)), atol=0)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_valid(name):
    traj = make_trajectory(name, F)
    assert isinstance(traj, Trajectory) and len(traj) == F and traj.name == name
    _check_valid(traj.c2w)


# name -> (expected unit direction of the last camera centre or None, sign of forward x, sign of forward y)
TRANSLATIONS = {
    "zoom_in": (0, 0, 1),
    "zoom_out": (0, 0, -1),
    "move_forward": (0, 0, 1),
    "move_backward": (0, 0, -1),
    "move_left": (-1, 0, 0),
    "move_right": (1, 0, 0),
    "move_up": (0, -1, 0),
    "move_down": (0, 1, 0),
}


@pytest.mark.parametrize("name", sorted(TRANSLATIONS))
def test_translation_directions(name):
    c2w = make_trajectory(name, F, amplitude="medium").c2w
    np.testing.assert_allclose(c2w[:, :3, :3], np.broadcast_to(np.eye(3), (F, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(c2w[-1, :3, 3], 0.5 * np.array(TRANSLATIONS[name]), atol=1e-12)
    steps = np.diff(c2w[:, :3, 3], axis=0)  # linear easing -> equal steps
    np.testing.assert_allclose(steps, np.broadcast_to(steps[0], steps.shape), atol=1e-12)


def test_pan_and_tilt_directions():
    def fwd(name):
        return make_trajectory(name, F, amplitude="medium").c2w[-1, :3, 2]

    assert fwd("pan_left")[0] < 0 and fwd("pan_right")[0] > 0  # turn the view left / right
    assert fwd("tilt_up")[1] < 0 and fwd("tilt_down")[1] > 0  # OpenCV y points down
    c2w = make_trajectory("pan_left", F, amplitude="medium").c2w
    np.testing.assert_allclose(c2w[:, :3, 3], 0, atol=1e-12)  # pure rotation
    expected = axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]), -math.radians(30.0))
    np.testing.assert_allclose(c2w[-1, :3, :3], expected, atol=1e-12)
    np.testing.assert_allclose(fwd("pan_left"), [-0.5, 0, math.sqrt(3) / 2], atol=1e-12)


@pytest.mark.parametrize("name,side", [("orbit_left", -1), ("orbit_right", 1)])
def test_orbit_geometry(name, side):
    r = 3.0
    c2w = make_trajectory(name, F, amplitude="large", orbit_radius=r).c2w
    target = np.array([0.0, 0.0, r])
    centres, fwd = c2w[:, :3, 3], c2w[:, :3, 2]
    np.testing.assert_allclose(np.linalg.norm(centres - target, axis=1), r, atol=1e-10)  # on the circle
    to_target = (target - centres) / np.linalg.norm(target - centres, axis=1, keepdims=True)
    np.testing.assert_allclose(fwd, to_target, atol=1e-10)  # always looking at the target
    np.testing.assert_allclose(centres[:, 1], 0, atol=1e-12)  # horizontal circle
    assert np.sign(centres[-1, 0]) == side and np.sign(fwd[-1, 0]) == -side
    # "large" = 60 degrees around the target: last centre at angle 60 deg seen from the target
    assert math.isclose(
        float(rotation_angle_between(c2w[0, :3, :3], c2w[-1, :3, :3])), math.radians(60), rel_tol=1e-9
    )


def _magnitude(name, c2w):
    if name.startswith(("pan", "tilt", "orbit")):
        return float(rotation_angle_between(np.eye(3), c2w[-1, :3, :3]))
    return float(np.linalg.norm(c2w[-1, :3, 3]))


@pytest.mark.parametrize("name", [p for p in PRESETS if p != "static"])
def test_amplitudes_ordered_and_speed(name):
    mags = [_magnitude(name, make_trajectory(name, F, amplitude=a).c2w) for a in ("small", "medium", "large")]
    assert 0 < mags[0] < mags[1] < mags[2]
    # speed = fraction of the amplitude covered: "large" at half speed == half the "large" amplitude
    kind = "rotation" if name.startswith(("pan", "tilt", "orbit")) else "translation"
    half = make_trajectory(name, F, amplitude="large", speed=0.5).c2w
    explicit = make_trajectory(name, F, amplitude=0.5 * AMPLITUDES[kind]["large"]).c2w
    np.testing.assert_allclose(half, explicit, atol=1e-12)


def test_easing_and_float_amplitude():
    lin = make_trajectory("move_right", 5, amplitude=2.0).c2w[:, 0, 3]
    np.testing.assert_allclose(lin, [0, 0.5, 1.0, 1.5, 2.0], atol=1e-12)
    eased = make_trajectory("move_right", 5, amplitude=2.0, easing="ease_in_out").c2w[:, 0, 3]
    t = np.linspace(0, 1, 5)
    np.testing.assert_allclose(eased, 2.0 * (3 * t**2 - 2 * t**3), atol=1e-12)
    assert len(make_trajectory("pan_left", 1)) == 1
    with pytest.raises(ValueError):
        make_trajectory("spin", 5)
    with pytest.raises(ValueError):
        make_trajectory("pan_left", 5, amplitude="huge")


def test_focal_zoom():
    zin = make_trajectory("zoom_in", 5, amplitude="medium", zoom_mode="focal")
    zout = make_trajectory("zoom_out", 5, amplitude="medium", zoom_mode="focal")
    np.testing.assert_allclose(zin.c2w, np.broadcast_to(np.eye(4), (5, 4, 4)))
    np.testing.assert_allclose(zin.K_scale[[0, -1]], [1.0, 1.5])
    np.testing.assert_allclose(zout.K_scale * zin.K_scale, 1.0)
    K = np.array([[100.0, 0, 32], [0, 120.0, 24], [0, 0, 1]])
    Ks = zin.scaled_K(K)
    assert Ks.shape == (5, 3, 3)
    np.testing.assert_allclose(Ks[-1], [[150.0, 0, 32], [0, 180.0, 24], [0, 0, 1]])
    assert make_trajectory("zoom_in", 5).K_scale is None


def _random_c2w(n, seed=0):
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = axis_angle_to_matrix(rng.normal(size=(n, 3)), rng.uniform(0, 1.0, size=n))
    c2w[:, :3, 3] = rng.normal(size=(n, 3))
    return c2w


def test_compose_segments_continuity():
    segs = [
        make_trajectory("move_forward", 5).c2w,
        make_trajectory("pan_left", 4).c2w,
        make_trajectory("orbit_right", 6).c2w,
    ]
    out = compose_segments(segs)
    assert out.shape == (5 + 3 + 5, 4, 4)
    _check_valid(out)
    np.testing.assert_allclose(out[:5], segs[0], atol=1e-12)
    np.testing.assert_allclose(out[4:8], out[4][None] @ segs[1], atol=1e-12)  # starts at previous end
    np.testing.assert_allclose(out[7:], out[7][None] @ segs[2], atol=1e-12)
    # after panning left, moving forward in the camera frame goes along the turned view (-x in world)
    chain = compose_segments([make_trajectory("pan_left", 3).c2w, make_trajectory("move_forward", 3).c2w])
    assert chain[-1, 0, 3] < 0 and chain[-1, 2, 3] > 0
    # non-relative segments are made relative first
    seg = _random_c2w(4, 1)
    np.testing.assert_allclose(compose_segments([seg]), np.linalg.inv(seg[0]) @ seg, atol=1e-10)


def test_resample_endpoints_and_midpoints():
    c2w = _random_c2w(4, 2)
    out = resample_c2w(c2w, 7)  # frames 0, 2, 4, 6 hit the originals; odd ones are midpoints
    np.testing.assert_allclose(out[::2], c2w, atol=1e-10)
    np.testing.assert_allclose(out[1, :3, 3], (c2w[0, :3, 3] + c2w[1, :3, 3]) / 2, atol=1e-12)
    a = float(rotation_angle_between(c2w[0, :3, :3], out[1, :3, :3]))
    b = float(rotation_angle_between(out[1, :3, :3], c2w[1, :3, :3]))
    assert math.isclose(a, b, rel_tol=1e-6)  # slerp midpoint: equal geodesic angles


def test_load_json(tmp_path):
    c2w = _random_c2w(6, 3)
    p = tmp_path / "traj.json"
    p.write_text(json.dumps(c2w.tolist()))
    traj = load_trajectory_file(p)
    _check_valid(traj.c2w)
    np.testing.assert_allclose(traj.c2w, np.linalg.inv(c2w[0]) @ c2w, atol=1e-10)
    assert traj.name == "traj"
    traj14 = load_trajectory_file(p, num_frames=11, resample=True)
    assert len(traj14) == 11
    np.testing.assert_allclose(traj14.c2w[::2], traj.c2w, atol=1e-10)
    (tmp_path / "obj.json").write_text(json.dumps({"c2w": c2w[:, :3].tolist()}))
    np.testing.assert_allclose(load_trajectory_file(tmp_path / "obj.json").c2w, traj.c2w, atol=1e-10)
    (tmp_path / "bad.json").write_text(json.dumps([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match="bad.json"):
        load_trajectory_file(tmp_path / "bad.json")


def test_load_re10k(tmp_path):
    re10k = pytest.importorskip("vid3d.data.formats.re10k")
    c2w = _random_c2w(5, 4)
    K = np.array([[0.5, 0, 0.5], [0, 0.9, 0.5], [0, 0, 1]])
    cams = re10k.Re10kCameras(
        url="https://example.com/v",
        timestamps=np.arange(5) * 33_366,
        K_norm=np.broadcast_to(K, (5, 3, 3)),
        w2c=np.linalg.inv(c2w),
    )
    path = tmp_path / "clip.txt"
    re10k.write_camera_file(path, cams)
    traj = load_trajectory_file(path, num_frames=9, resample=True)
    assert len(traj) == 9
    np.testing.assert_allclose(traj.c2w[::2], np.linalg.inv(c2w[0]) @ c2w, atol=1e-5)  # file precision
