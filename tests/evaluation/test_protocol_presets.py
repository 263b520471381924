"""protocol=vid3d|cami2v|cameractrl|seed (conf/protocol): what each preset sets, the outlier rule, the lead
units, and cami2v run end to end on two synthetic clips (issue 19)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.evaluation.aggregate import aggregate, drop_outliers, write_results


def _cfg(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("eval", overrides=list(overrides))


def test_each_preset_sets_its_protocol():
    base = _cfg()
    assert (
        base.protocol.name == "vid3d" and base.protocol.units == "deg" and base.protocol.outlier_sigma is None
    )
    assert base.pose.mapper == "incremental"

    c = _cfg("protocol=cami2v")
    assert (c.data.num_frames, c.data.height, c.data.width) == (16, 256, 256)
    assert (c.pose.camera_model, c.pose.fix_intrinsics, c.pose.matcher, c.pose.mapper) == (
        "SIMPLE_PINHOLE",
        True,
        "sequential",
        "global",
    )
    assert c.eval.trials == 5 and c.protocol.outlier_sigma == 10.0 and c.protocol.units == "rad"
    assert len(c.protocol.differs_from_publication) >= 3
    # CamI2V's rules (issue 33): estimation trials, its merge/summary, its arithmetic, its COLMAP options
    assert (c.protocol.trials_are, c.protocol.reduction, c.protocol.arithmetic) == (
        "estimations", "cami2v", "cami2v"
    )
    assert c.protocol.skip_first_video is False and _cfg("protocol=cami2v_skiprows").protocol.skip_first_video
    assert c.pose.focal == "fx" and dict(c.pose.sift_options) == {
        "estimate_affine_shape": True, "domain_size_pooling": True
    }
    assert dict(c.pose.matching_options) == {"guided_matching": True, "max_num_matches": 65536}
    assert c.pose.verification_options["ransac.max_error"] == 4.0
    from hydra.utils import instantiate

    est = instantiate(c.pose)  # pycolmap 4.2 accepts every option name
    assert est.describe()["matching_options"]["guided_matching"] is True
    assert base.protocol.trials_are == "generations" and base.protocol.arithmetic == "vid3d"

    r = _cfg("protocol=cameractrl")
    assert (
        r.data.num_frames == 25
        and r.protocol.units == "rad"
        and r.pose._target_.endswith("ColmapPoseEstimator")
    )
    assert (r.data.height, r.data.width) == (320, 576)  # CameraCtrl's SVD sample size
    r14 = _cfg("protocol=cameractrl_svd14")
    assert (r14.data.num_frames, r14.data.height, r14.data.width) == (14, 320, 576)

    s = _cfg("protocol=seed")
    assert s.pose._target_.endswith("Dust3rPoseEstimator") and s.protocol.units == "rad"  # arccos: radians
    # the command line still wins over a preset
    assert _cfg("protocol=cami2v", "eval.trials=2").eval.trials == 2


def test_outlier_rule_drops_only_far_values():
    values = [1.0] * 50 + [1.1] * 50 + [100.0]
    keep = drop_outliers(values, 3.0)
    assert keep.sum() == 100 and not keep[-1]  # z of 100.0 here: about 10
    assert drop_outliers(values, 10.0).all()  # with n = 101, no value can lie 10 std from the mean
    assert drop_outliers([2.0, 2.0, 2.0], 1.0).all()  # zero spread: nothing dropped
    with pytest.raises(ValueError, match="outlier_sigma"):
        drop_outliers(values, 0.0)

    def rec(i, rot):
        return {
            "method": "m",
            "clip_id": f"c{i:03d}",
            "trial": 0,
            "success": True,
            "errors": {"rot_err_deg": rot, "rot_err_rad": np.radians(rot), "trans_err": 0.0, "cammc": 0.0},
        }

    records = [rec(i, v) for i, v in enumerate(values)]
    plain = aggregate(records)["m"]["metrics"]["rot_err_deg"]
    ruled = aggregate(records, outlier_sigma=3.0)["m"]["metrics"]["rot_err_deg"]
    assert plain["mean"] == pytest.approx(np.mean(values)) and "n_outliers" not in plain
    assert ruled["mean"] == pytest.approx(1.05) and ruled["n_outliers"] == 1 and ruled["n"] == 100


def test_rad_preset_leads_with_radians_and_names_the_preset(tmp_path):
    stats = {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5, "per_frame_mean": 0.25, "n": 2, "std": 0.1}
    row = {
        "n": 2,
        "n_total": 2,
        "failures": 0,
        "failure_rate": 0.0,
        "success_rate": 1.0,
        "metrics": {m: dict(stats) for m in ("rot_err_deg", "rot_err_rad", "trans_err", "cammc")},
    }
    preset = {
        "name": "cami2v",
        "units": "rad",
        "outlier_sigma": 10.0,
        "publication": "CamI2V",
        "differs_from_publication": ["clips", "weights"],
    }
    write_results(tmp_path, {"model": row}, {"preset": preset})
    md = (tmp_path / "results.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| method"))
    assert header.startswith(
        "| method | n | failures | RotErr (rad, Σ frames) [95% CI] | RotErr (deg, Σ frames)"
    )
    assert md.startswith("Protocol preset: cami2v (CamI2V). Differs from the publication: clips; weights.")
    assert "Outlier rule ON: values further than 10 standard deviations" in md
    write_results(tmp_path / "plain", {"model": row}, {})
    plain = (tmp_path / "plain" / "results.md").read_text()
    assert (
        plain.startswith("| method | n | failures | RotErr (deg, Σ frames)") and "Outlier rule" not in plain
    )


@pytest.mark.slow
def test_cami2v_preset_end_to_end_on_two_synthetic_clips(tmp_path, offline_wandb):
    """The preset as a user runs it (eval.py protocol=cami2v), reference rows only, on two synthetic test
    clips (16 frames at 256x256, GLOMAP, SIMPLE_PINHOLE fixed; trials reduced from 5 to 2 for time)."""
    pytest.importorskip("pycolmap")
    from vid3d.data.synthetic import build_synthetic_dataset
    from vid3d.tasks.evaluate import evaluate

    root = build_synthetic_dataset(
        tmp_path / "set", num_train=0, num_test=2, num_frames=16, height=144, width=256
    )
    cfg = _cfg(
        "protocol=cami2v",
        "data=re10k",
        f"data.root={root}",
        "data.eval_interval=1",
        "eval.trials=2",
        f"paths.output_dir={tmp_path / 'out'}",
        "torch_threads=1",
        "eval.save_videos=false",
        "wandb.media=false",
    )
    res = evaluate(cfg)
    payload = json.loads((tmp_path / "out" / "eval" / "results.json").read_text())
    proto = payload["protocol"]
    assert proto["preset"]["name"] == "cami2v" and proto["preset"]["outlier_sigma"] == 10.0
    assert (
        proto["pose_estimator"]["mapper"] == "global"
        and proto["pose_estimator"]["camera_model"] == "SIMPLE_PINHOLE"
    )
    assert proto["trials"] == 2 and proto["arithmetic"] == "cami2v"
    assert "2 pose estimations of one generated video" in proto["trials_are"]
    gt = res["results"]["gt_video"]
    assert gt["n_total"] == 4 and gt["n"] >= 2  # 2 clips x 2 trials: the estimator's floor on GT videos
    # GLOMAP registers at least one GT clip correctly (measured: 0.01 rad summed over 16 frames on one
    # clip; the other took a wrong branch at 2.35 rad: the protocol's own noise, reported, not hidden)
    from vid3d.evaluation.records import read_records

    recs = read_records(tmp_path / "out" / "eval" / "records.shard0of1.jsonl")
    gt_errs = [r["errors"]["rot_err_rad"] for r in recs if r["method"] == "gt_video" and r["success"]]
    assert min(gt_errs) < 0.1, gt_errs
    # one video per clip, estimated twice with seeds 0 and 1; both arithmetics in every success
    gt0 = next(r for r in recs if r["method"] == "gt_video")
    same = [r for r in recs if r["clip_id"] == gt0["clip_id"] and r["method"] == "gt_video"]
    assert {(r["seed"], r["estimator_seed"]) for r in same} == {(gt0["seed"], 0), (gt0["seed"], 1)}
    assert all("errors_cami2v" in r for r in recs if r["success"])
    assert gt["cami2v"]["n_entries"] == gt["n"] and "not_computed" in gt
    md = (tmp_path / "out" / "eval" / "results.md").read_text()
    assert (
        md.startswith("Protocol preset: cami2v") and "| RotErr (rad, Σ frames) [95% CI] | RotErr (deg" in md
    )
