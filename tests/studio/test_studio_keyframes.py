"""The studio's keyframe table -> camera poses, against the presets and hand-computed interpolation."""

import math

import numpy as np
import pytest

from vid3d.errors import InputError
from vid3d.geometry import rotation_angle_between
from vid3d.sampling.trajectories import make_trajectory
from vid3d.studio.paths import frustum_figure, keyframe_pose, keyframes_to_c2w

F = 8
ZERO = [0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def _row(frame, x=0.0, y=0.0, z=0.0, yaw=0.0, pitch=0.0, roll=0.0):
    return [frame, x, y, z, yaw, pitch, roll]


@pytest.mark.parametrize(
    ("row", "preset", "amplitude"),
    [
        (_row(F - 1, z=1.0), "move_forward", 1.0),
        (_row(F - 1, x=-0.5), "move_left", 0.5),
        (_row(F - 1, y=-0.25), "move_up", 0.25),
        (_row(F - 1, yaw=30.0), "pan_right", 30.0),
        (_row(F - 1, yaw=-45.0), "pan_left", 45.0),
        (_row(F - 1, pitch=20.0), "tilt_up", 20.0),
    ],
)
def test_two_keyframes_equal_the_matching_preset(row, preset, amplitude):
    # a linear preset over the whole clip is the same path as its first and last pose interpolated
    c2w = keyframes_to_c2w([ZERO, row], F)
    want = make_trajectory(preset, F, amplitude=amplitude).c2w
    np.testing.assert_allclose(c2w, want, atol=1e-9)


def test_uneven_keyframes_interpolate_between_neighbours():
    # x: 0 at frame 0, 1 at frame 2, 1.5 at frame 7 -> piecewise linear in the frame index
    table = [_row(0), _row(2, x=1.0), _row(7, x=1.5)]
    c2w = keyframes_to_c2w(table, F)
    want = np.interp(np.arange(F), [0, 2, 7], [0.0, 1.0, 1.5])
    np.testing.assert_allclose(c2w[:, 0, 3], want, atol=1e-12)
    np.testing.assert_allclose(c2w[:, :3, :3], np.broadcast_to(np.eye(3), (F, 3, 3)), atol=1e-12)


def test_rotation_is_slerped_at_constant_angular_speed():
    c2w = keyframes_to_c2w([_row(0), _row(4, yaw=40.0, pitch=10.0)], 5)
    end = keyframe_pose(0, 0, 0, 40.0, 10.0, 0.0)[:3, :3]
    total = float(rotation_angle_between(np.eye(3)[None], end[None])[0])
    for k in range(5):  # frame k has turned k/4 of the total angle, about one fixed axis
        angle = float(rotation_angle_between(np.eye(3)[None], c2w[k : k + 1, :3, :3])[0])
        assert angle == pytest.approx(total * k / 4, abs=1e-9)


def test_keyframe_rotation_order_is_yaw_then_pitch_then_roll():
    R = keyframe_pose(0, 0, 0, 90.0, 90.0, 0.0)[:3, :3]
    # R_y(90) R_x(90): the camera's forward axis z first tilts up to -y ... then the yaw turns the frame;
    # R_x(90) e_z = (0, -1, 0); R_y(90) (0, -1, 0) = (0, -1, 0): looking straight up
    np.testing.assert_allclose(R @ [0, 0, 1.0], [0, -1.0, 0], atol=1e-12)
    # R_x(90) e_x = e_x; R_y(90) e_x = (0, 0, -1)
    np.testing.assert_allclose(R @ [1.0, 0, 0], [0, 0, -1.0], atol=1e-12)
    roll = keyframe_pose(0, 0, 0, 0.0, 0.0, 90.0)[:3, :3]
    np.testing.assert_allclose(roll @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-12)


def test_the_camera_holds_after_the_last_keyframe_and_frame0_is_identity():
    table = [_row(0, x=2.0, yaw=10.0), _row(3, x=2.0, z=1.0, yaw=10.0)]
    c2w = keyframes_to_c2w(table, F)
    np.testing.assert_allclose(c2w[0], np.eye(4), atol=1e-12)  # made relative to the first keyframe
    for k in range(4, F):
        np.testing.assert_allclose(c2w[k], c2w[3], atol=1e-12)
    # relative to the first camera (turned 10 degrees right): forward by 1 in the world is
    # (-sin 10, 0, cos 10) in its axes
    a = math.radians(10.0)
    np.testing.assert_allclose(c2w[3, :3, 3], [-math.sin(a), 0.0, math.cos(a)], atol=1e-12)


def test_blank_rows_are_skipped_and_strings_of_numbers_read():
    table = [["0", "0", "0", "0", "0", "0", "0"], [None] * 7, ["7", "0", "0", "1", "0", "0", "0"]]
    c2w = keyframes_to_c2w(table, F)
    np.testing.assert_allclose(c2w[-1, 2, 3], 1.0)


def test_a_dataframe_table_reads_like_a_list():
    pd = pytest.importorskip("pandas")
    table = [_row(0), _row(7, z=0.5)]
    frame = pd.DataFrame(table, columns=["frame", "x", "y", "z", "yaw_deg", "pitch_deg", "roll_deg"])
    np.testing.assert_allclose(keyframes_to_c2w(frame, F), keyframes_to_c2w(table, F))


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ([], "the table is empty"),
        ([_row(1)], "row 1: the first keyframe must be frame 0"),
        ([_row(0), _row(3), _row(3)], "row 3: frame 3 must come after frame 3"),
        ([_row(0), _row(8)], "row 2: frame 8 is outside 0..7"),
        ([_row(0), _row(2.5)], "row 2: frame must be a whole number"),
        ([_row(0), [4, "a", 0, 0, 0, 0, 0]], "row 2: every cell must be a number"),
        ([_row(0), [4, float("nan"), 0, 0, 0, 0, 0]], "row 2: every cell must be a finite number"),
        ([_row(0), [4, 0, 0]], "row 2: expected 7 columns"),
    ],
)
def test_a_bad_table_is_one_line_naming_the_row(table, match):
    with pytest.raises(InputError, match=match) as e:
        keyframes_to_c2w(table, F)
    assert "\n" not in str(e.value)


def test_frustum_figure_draws_one_pyramid_per_camera():
    c2w = keyframes_to_c2w([_row(0), _row(7, z=1.0)], F)
    K = np.array([[40.0, 0, 24], [0, 40.0, 16], [0, 0, 1]])
    fig = frustum_figure({"path": c2w}, K, (32, 48))
    ax = fig.axes[0]
    # trajectory_figure's centre line + 8 segments (4 rays, 4 edges) per camera
    assert len(ax.lines) == 1 + 8 * F
    # the first camera's rays start at its centre (0, 0, 0) and reach depth 0.12 (12% of the extent 1)
    # in front of it: plot coordinates (x, z, -y), so the plot's y of the ray end is the depth
    ray = ax.lines[1]
    xs, ys, zs = ray.get_data_3d()
    assert (xs[0], ys[0], zs[0]) == (0.0, 0.0, 0.0)
    assert ys[1] == pytest.approx(0.12)
