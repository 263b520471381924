"""The retry ladder of video_to_poses and its two-view rotation check, on rendered walks.

Walks are the synthetic dataset's own (``make_clip``: room_0000 and outdoor_0001 are walks), rendered
only at the kept frames: a clip of ``length`` frames at ``stride`` is the walk of (length - 1) * stride + 1
frames sampled every ``stride``-th frame, i.e. ``stride`` times the motion between kept frames.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from vid3d.evaluation.camera_errors import camera_errors
from vid3d.evaluation.pose.base import PoseEstimator, PoseResult
from vid3d.evaluation.pose.two_view import neighbour_pairs, rotation_disagreement, two_view_geometry
from vid3d.geometry import K_norm_to_px
from vid3d.geometry.rotations import axis_angle_to_matrix
from vid3d.tools.pose_ladder import Rung, frame_ranges, run_ladder

H, W = 144, 256
MAX_ROT_DEG_PER_FRAME = 2.0  # the bound, against the rendering cameras
MIN_REGISTERED = 0.95


def rendered_walk(index: int, seed: int, length: int, stride: int):
    """(frames (length, H, W, 3) uint8, c2w (length, 4, 4), K (3, 3) pixels) of a strided walk."""
    from vid3d.data.synthetic.build import clip_cameras, render_clip
    from vid3d.data.synthetic.scenes import make_clip

    spec = make_clip(index, seed, (length - 1) * stride + 1)
    assert spec.trajectory == "walk", "generator changed: pick a walk again"
    spec.c2w = spec.c2w[::stride]
    cams = clip_cameras(spec, H, W, seed)
    frames, _ = render_clip(spec, cams, H, W)
    return frames, cams.c2w(), K_norm_to_px(cams.K_norm[0], H, W)


@pytest.fixture(scope="module")
def walk8():
    return rendered_walk(1, 0, 8, 4)


def test_frame_ranges():
    assert frame_ranges([0, 1, 2, 3, 5, 7, 8]) == "0-3,5,7-8"
    assert frame_ranges([4]) == "4" and frame_ranges([]) == "none"
    assert frame_ranges(np.array([9, 2, 3])) == "2-3,9"


def test_two_view_rotations_match_the_rendering_cameras(walk8):
    frames, c2w, K = walk8
    pairs = neighbour_pairs(len(frames))
    assert pairs[:2] == [(0, 1), (1, 2)] and pairs[-1] == (5, 7) and len(pairs) == 7 + 6
    views = two_view_geometry(frames, K, pairs)
    assert len(views) == len(pairs)  # a textured walk: every neighbouring pair has a geometry
    d = rotation_disagreement(c2w, views)
    # The truth against the essential matrices: measured median 0.1-0.3 deg on the walks here.
    assert np.median(d) < 0.5 and d.max() < 1.5, d
    for (i, j), v in views.items():  # translation direction: cam i's centre seen from cam j
        t_true = (np.linalg.inv(c2w[j]) @ c2w[i])[:3, 3]
        cos = float(v.t @ t_true / np.linalg.norm(t_true))
        assert cos > 0.95, (i, j, cos)


def test_rotation_disagreement_is_the_angle_of_a_known_perturbation(walk8):
    frames, c2w, K = walk8
    views = two_view_geometry(frames, K, [(0, 1)])
    floor = rotation_disagreement(c2w, views)[0]
    bad = c2w.copy()
    turn = np.asarray(axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]), np.deg2rad(10.0)))
    bad[1, :3, :3] = bad[1, :3, :3] @ turn
    # R_01 = R_1^T R_0 gains a 10 deg rotation on the left; the floor (< 0.5 deg) moves it at most that much.
    assert abs(rotation_disagreement(bad, views)[0] - 10.0) <= floor + 1e-9
    bad[1] = np.nan  # an unregistered frame is not compared
    assert rotation_disagreement(bad, views).shape == (0,)


class Fixed(PoseEstimator):
    """A test double: returns the given poses (NaN rows = unregistered) as COLMAP would."""

    def __init__(self, c2w: np.ndarray, need: float = 1.0):
        self.c2w, self.need = c2w, need

    def estimate(self, frames, K_px, gt_c2w=None):
        reg = np.isfinite(self.c2w.reshape(len(self.c2w), -1)).all(axis=1)
        ok = reg.sum() >= np.ceil(self.need * len(reg))
        return PoseResult(self.c2w, K_px, bool(ok), None if reg.all() else "partial", 0.0, int(reg.sum()))


def _drift(c2w: np.ndarray, deg_per_frame: float) -> np.ndarray:
    """The poses with a rotation growing by deg_per_frame about the camera's y axis each frame."""
    out = c2w.copy()
    for k in range(len(out)):
        R = np.asarray(axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]), np.deg2rad(deg_per_frame * k)))
        out[k, :3, :3] = out[k, :3, :3] @ R
    return out


def test_ladder_rejects_a_wrong_branch_and_retries_a_partial_one(walk8):
    frames, c2w, K = walk8
    partial = c2w.copy()
    partial[[5, 6, 7]] = np.nan
    rungs = [
        Rung("drifting", Fixed(_drift(c2w, 5.0))),  # every frame, but 5 deg/frame off
        Rung("partial", Fixed(partial)),  # 5/8 registered: a failure at min_registered_fraction 1.0
        Rung("right", Fixed(c2w)),
        Rung("never-run", Fixed(c2w)),
    ]
    lad = run_ladder(frames, K, rungs, max_disagreement_deg=2.0)
    assert [r.name for r in lad.tried] == ["drifting", "partial", "right"]  # stops at the first full one
    assert lad.kept.name == "right" and lad.success
    assert not lad.tried[0].accepted and "inconsistent" in lad.tried[0].note
    # 80th percentile of 7 pairs one frame apart (5 deg off) and 6 two apart (10 deg): a 10 deg pair
    assert lad.tried[0].disagreement_deg == pytest.approx(10.0, abs=0.5)
    assert lad.tried[2].disagreement_deg < 0.5
    rep = json.loads(json.dumps(lad.report()))
    assert rep["kept_rung"] == "right"
    assert all(f["registered"] and f["rung"] == "right" for f in rep["frames"])
    assert rep["rungs"][1]["registered"] == [0, 1, 2, 3, 4]
    # Without the check the wrong branch would have been kept.
    assert run_ladder(frames, K, rungs, max_disagreement_deg=None).kept.name == "drifting"


def test_ladder_failure_names_frames_and_why(walk8):
    frames, c2w, K = walk8
    partial = c2w.copy()
    partial[[6, 7]] = np.nan
    blank = frames.copy()
    blank[7] = 128  # a grey frame: nothing to match
    lad = run_ladder(blank, K, [Rung("a", Fixed(partial)), Rung("b", Fixed(_drift(c2w, 5.0)))])
    assert not lad.success and lad.kept is None and lad.best().name == "a"
    line = lad.failure_line()
    assert "\n" not in line
    assert line.startswith("frames 6-7 of 0-7 not registered (best rung 'a': 6/8;")
    assert "; 7: no two-view geometry" in line  # the grey frame
    assert "6: two-view geometry with frames 4 (" in line  # frame 6 matched its neighbours
    assert "b: 8/8 registered but inconsistent" in line
    # A partial registration is accepted when the estimator's rule allows it (and nothing better comes).
    lad = run_ladder(blank, K, [Rung("a", Fixed(partial, need=0.75))])
    assert lad.kept.name == "a" and lad.frames()[6] == {
        "index": 6, "registered": False, "rung": None, "note": lad.frame_notes[6]
    }


def _tool_on_walk(tmp_path, index, seed, length, stride, extra=()):
    """The walk through H.264 and ``python -m vid3d.tools.video_to_poses`` (FOV given): (errors, report)."""
    from vid3d.data.formats.re10k import read_camera_file
    from vid3d.tools.video_to_poses import main
    from vid3d.viz import write_video

    frames, c2w, K = rendered_walk(index, seed, length, stride)
    video = write_video(tmp_path / "walk.mp4", frames, fps=10)
    out, report = tmp_path / "cams.txt", tmp_path / "report.json"
    fov = float(np.rad2deg(2 * np.arctan(W / 2 / K[0, 0])))
    rc = main([str(video), "--fov-deg", str(fov), "--out", str(out), "--report", str(report), *extra])
    rep = json.loads(report.read_text())
    assert rc == 0, rep
    got = read_camera_file(out)
    reg = np.array([f["registered"] for f in rep["frames"]])
    assert len(got.timestamps) == reg.sum() >= MIN_REGISTERED * length
    assert reg[0], "the first frame anchors the comparison"
    return camera_errors(got.c2w(), c2w[reg]), rep


def test_tool_on_a_strided_walk(tmp_path):
    """outdoor_0001, 8 frames at stride 8 (0.3-0.7 m between frames): through the tool, every frame
    registered within 2 deg/frame. Measured 2026-12-07: 0.44 deg/frame by the first rung (0.34 on the
    lossless frames), COLMAP 5 s on a loaded machine."""
    err, rep = _tool_on_walk(tmp_path, 1, 0, 8, 8)
    assert err["rot_err_deg_per_frame"] < MAX_ROT_DEG_PER_FRAME, err
    assert rep["success"] and rep["rungs"][-1]["accepted"]


# CI runs the grid's diagonal (short and dense to long and wide, 6 clips); VID3D_POSE_GRID=full runs all 18
# (~6 minutes of one core): VID3D_POSE_GRID=full pytest -m slow tests/tools/test_pose_ladder.py
_GRID = [(length, stride) for length in (8, 16, 24) for stride in (1, 4, 8)]
if os.environ.get("VID3D_POSE_GRID") != "full":
    _GRID = [(8, 1), (16, 4), (24, 8)]


@pytest.mark.slow
@pytest.mark.parametrize("length, stride", _GRID)
@pytest.mark.parametrize("index", [0, 1])
def test_tool_on_walks_of_several_lengths_and_strides(tmp_path, index, length, stride):
    """Measured 2026-12-07 (seed 1 here; seed 0 alike): every frame registered on all 18 clips, RotErr
    0.05-1.20 deg/frame over both seeds; kept rungs: benchmark 14, global 2, more-features 2 (seed 1)."""
    err, _ = _tool_on_walk(tmp_path, index, 1, length, stride)
    assert err["rot_err_deg_per_frame"] < MAX_ROT_DEG_PER_FRAME, err


@pytest.mark.slow
def test_wrong_branch_is_caught_and_a_later_rung_kept(tmp_path):
    """outdoor_0001 seed 1, 16 frames at stride 8. On the lossless frames the benchmark's incremental
    mapper registers every frame on a wrong branch (measured 49 deg/frame, 9.5 deg median from the
    two-view geometry) and GLOMAP's global mapper is right (0.6 deg/frame). Through H.264 (this test,
    measured 2026-12-07): benchmark 14/16 frames (p80 17.5 deg), global 15/16, more-features 16/16 kept."""
    err, rep = _tool_on_walk(tmp_path, 1, 1, 16, 8)
    assert err["rot_err_deg_per_frame"] < MAX_ROT_DEG_PER_FRAME, err
    first = rep["rungs"][0]
    assert first["name"] == "benchmark" and not first["accepted"]
    assert first["rotation_disagreement_p80_deg"] > 2.0
    assert rep["kept_rung"] != "benchmark"


def test_bad_output_paths_fail_before_estimation(tmp_path, capsys):
    from vid3d.tools.video_to_poses import main
    from vid3d.viz import write_video

    video = write_video(tmp_path / "v.mp4", np.zeros((4, 32, 48, 3), np.uint8), fps=10)
    for flag in ("--out", "--report"):
        paths = {"--out": str(tmp_path / "c.txt"), "--report": str(tmp_path / "r.json")}
        paths[flag] = str(tmp_path / "missing" / "x")
        argv = [str(video), "--fov-deg", "60", "--out", paths["--out"], "--report", paths["--report"]]
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{flag} " in err and "does not exist" in err
        assert "rung" not in err  # nothing was estimated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_colmap_rungs_and_the_users_settings_on_top():
    from vid3d.tools.video_to_poses import build_rungs

    user = ["seed=3", "+matching_options={guided_matching:true}"]
    rungs = build_rungs("colmap", known_focal=True, settings=user)
    d = {r.name: r.estimator.describe() for r in rungs}
    assert list(d) == ["benchmark", "global", "more-features", "more-features-global"]
    assert [d[k]["mapper"] for k in d] == ["incremental", "global", "incremental", "global"]
    assert d["benchmark"]["max_num_features"] == 8192 and d["benchmark"]["sift_options"] == {}
    assert d["more-features"]["max_num_features"] == 16384
    assert d["more-features"]["sift_options"] == {"peak_threshold": 0.002}
    assert d["more-features"]["abs_pose_min_num_inliers"] == 15 and d["more-features"]["init_pair_gap"] == 2
    assert all(v["seed"] == 3 and v["matching_options"] == {"guided_matching": True} for v in d.values())
    assert all(v["camera_model"] == "PINHOLE" and v["fix_intrinsics"] for v in d.values())
    assert [r.name for r in build_rungs("colmap", known_focal=True, retry=False)] == ["benchmark"]
