"""Sharded runs merged by the CLI equal one unsharded run."""

import json

import numpy as np

from vid3d.evaluation.camera_runner import gt_video_method, run_camera_eval
from vid3d.evaluation.pose.gt import GTPoseEstimator
from vid3d.geometry import axis_angle_to_matrix
from vid3d.report import main as report_main


def merge_main(argv: list[str]) -> int:
    """``python -m vid3d.report DIRS --kind shards --out OUT``."""
    return report_main([*argv, "--kind", "shards"])


class TiltedGT(GTPoseEstimator):
    """GT poses with the last frame's rotation off by 10 degrees about z (a known error)."""

    def estimate(self, frames, K_px, gt_c2w=None):
        res = super().estimate(frames, K_px, gt_c2w)
        res.c2w = res.c2w.copy()
        res.c2w[-1, :3, :3] = res.c2w[-1, :3, :3] @ axis_angle_to_matrix(
            np.array([0, 0, 1.0]), np.radians(10)
        )
        return res


def test_merge_of_shards_equals_single_run(tmp_path, eval_clips):
    methods = {"gt_video": gt_video_method}
    single = run_camera_eval(eval_clips(5), methods, TiltedGT(), tmp_path / "single", progress=False)
    for k in range(3):
        run_camera_eval(
            eval_clips(5), methods, TiltedGT(), tmp_path / "multi" / f"{k}", shard=k, num_shards=3,
            progress=False,
        )
    assert merge_main([str(tmp_path / "multi"), "--out", str(tmp_path / "merged")]) == 0
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())["results"]["gt_video"]
    one = single["results"]["gt_video"]
    assert merged["n"] == one["n"] == 5
    # each clip: exactly 10 degrees of rotation error, on the last frame only
    assert merged["metrics"]["rot_err_deg"]["mean"] == one["metrics"]["rot_err_deg"]["mean"]
    assert abs(merged["metrics"]["rot_err_deg"]["mean"] - 10.0) < 1e-6


def test_merge_applies_the_presets_rules(tmp_path, eval_clips):
    """protocol=cami2v shards merge with its reduction and arithmetic (per-clip means of the trials, the
    skiprows quirk when the preset asks for it), as one unsharded run does."""
    preset = {"name": "cami2v_skiprows", "outlier_sigma": 10.0, "reduction": "cami2v", "arithmetic": "cami2v",
              "skip_first_video": True}
    rules = dict(trials=2, trials_are="estimations", reduction="cami2v", arithmetic="cami2v",
                 outlier_sigma=10.0, skip_first_video=True, progress=False, extra_protocol={"preset": preset})
    methods = {"gt_video": gt_video_method}
    single = run_camera_eval(eval_clips(5), methods, TiltedGT(), tmp_path / "single", **rules)
    for k in range(2):
        out = tmp_path / "multi" / f"{k}"
        run_camera_eval(eval_clips(5), methods, TiltedGT(), out, shard=k, num_shards=2, **rules)
    assert merge_main([str(tmp_path / "multi"), "--out", str(tmp_path / "merged")]) == 0
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())["results"]["gt_video"]
    one = single["results"]["gt_video"]
    assert merged["cami2v"]["skipped_video"] == one["cami2v"]["skipped_video"] == "c0"
    assert merged["cami2v"]["n_videos"] == 4 and merged["metrics"]["rot_err_rad"]["n"] == 4
    assert merged["metrics"]["rot_err_rad"]["mean"] == one["metrics"]["rot_err_rad"]["mean"]
    assert abs(merged["metrics"]["rot_err_rad"]["mean"] - np.radians(10)) < 1e-6
