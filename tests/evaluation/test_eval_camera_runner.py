"""run_camera_eval with the GT estimator and fake methods/estimators: errors, resume, shards, merge."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vid3d.evaluation.aggregate import aggregate, merge_shards
from vid3d.evaluation.camera_runner import (
    EvalClip,
    fidelity_to_gt,
    gt_video_method,
    run_camera_eval,
    shard_clips,
    static_first_frame_method,
)
from vid3d.evaluation.pose import GTPoseEstimator, PoseEstimator, PoseResult
from vid3d.evaluation.records import read_records
from vid3d.geometry import axis_angle_to_matrix

N = 4


def _clip(i: int, h: int = 8, w: int = 12) -> EvalClip:
    rng = np.random.default_rng(i)
    c2w = np.tile(np.eye(4), (N, 1, 1))
    c2w[:, :3, 3] = np.cumsum(rng.normal(size=(N, 3)), axis=0)
    K = np.array([[10.0, 0, w / 2], [0, 10.0, h / 2], [0, 0, 1]])
    frames = np.zeros((N, h, w, 3), np.uint8)
    return EvalClip(f"clip{i:02d}", frames, K, c2w, np.arange(N) * 3)


class PixelAngleEstimator(PoseEstimator):
    """Test double: rotates the GT pose of frame i about y by frames[i, 0, 0, 0] degrees; a pixel value
    of 255 in frame 0 means failure. Records the K_px it was given."""

    name = "pixel_angle"

    def __init__(self):
        self.seen_K = []

    def estimate(self, frames, K_px, gt_c2w=None):
        self.seen_K.append(K_px)
        if frames[0, 0, 0, 0] == 255:
            return PoseResult(None, None, False, f"registered 1/{len(frames)} frames", 0.0, 1)
        c2w = gt_c2w.copy()
        for i, f in enumerate(frames):
            R = np.asarray(axis_angle_to_matrix(np.array([0.0, 1, 0]), np.radians(float(f[0, 0, 0]))))
            c2w[i, :3, :3] = c2w[i, :3, :3] @ R
        return PoseResult(c2w, K_px, True, None, 0.0, len(frames))


def _rotate_method(deg: int):
    def method(clip):
        frames = clip.frames.copy()
        frames[1:, 0, 0, 0] = deg  # frame 0 stays the reference
        return frames

    return method


def _fail_method(clip):
    frames = clip.frames.copy()
    frames[0, 0, 0, 0] = 255
    return frames


def _strip(records):
    return [{k: v for k, v in r.items() if k != "timings_s"} for r in records]


def test_gt_estimator_and_reference_methods(tmp_path):
    clips = [_clip(i) for i in range(3)]
    methods = {"gt_video": gt_video_method, "static": static_first_frame_method}
    out = run_camera_eval(clips, methods, GTPoseEstimator(), tmp_path, progress=False)
    res = out["results"]
    for m in methods:
        assert res[m]["n"] == 3 and res[m]["failures"] == 0
        for metric in ("rot_err_deg", "trans_err", "cammc"):
            assert res[m]["metrics"][metric]["mean"] == pytest.approx(0.0, abs=1e-9)
    static = static_first_frame_method(clips[0])
    assert static.shape == clips[0].frames.shape and np.all(static == clips[0].frames[0])
    rec = read_records(tmp_path / "records.shard0of1.jsonl")[0]
    assert rec["frame_indices"] == [0, 3, 6, 9] and len(rec["est_c2w"]) == N
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["protocol"]["pose_estimator"]["name"] == "gt"
    assert "failure_policy" in payload["protocol"] and (tmp_path / "results.md").exists()
    with pytest.raises(ValueError, match="gt_c2w"):
        GTPoseEstimator().estimate(clips[0].frames, clips[0].K_px, None)


def test_fidelity_to_ground_truth_known_values(tmp_path):
    gt = np.full((4, 8, 12, 3), 100, np.uint8)
    gen = gt.copy()
    gen[0] = 0  # frame 0 (the conditioning image) is not scored
    gen[2] = 100 + 51  # 0.2 off everywhere: MSE 0.04, PSNR 10 log10(1 / 0.04) = 13.979 dB
    f = fidelity_to_gt(gen, gt)
    assert f["mse_gt"] == pytest.approx(0.04 / 3, rel=1e-12)
    assert f["psnr_gt"] == pytest.approx(
        (100 + 10 * math.log10(25) + 100) / 3, rel=1e-12
    )  # 100 dB = identical
    # ground truth at twice the resolution is resized to the generated one (a flat image stays flat)
    big = np.full((4, 16, 24, 3), 100, np.uint8)
    assert fidelity_to_gt(gt, big)["psnr_gt"] == pytest.approx(100.0)
    # through the benchmark: every video gets the value, pose failures included
    clips = [_clip(i) for i in range(3)]
    for i, c in enumerate(clips):  # frames that change over time
        c.frames[:] = np.random.default_rng(10 + i).integers(0, 256, c.frames.shape, dtype=np.uint8)
    methods = {"gt_video": gt_video_method, "static": static_first_frame_method}
    res = run_camera_eval(clips, methods, GTPoseEstimator(), tmp_path, progress=False)["results"]
    assert res["gt_video"]["metrics"]["psnr_gt"]["mean"] == pytest.approx(100.0)
    expected = np.mean([fidelity_to_gt(static_first_frame_method(c), c.frames)["psnr_gt"] for c in clips])
    assert res["static"]["metrics"]["psnr_gt"]["mean"] == pytest.approx(expected, rel=1e-12)
    assert expected < 60 and res["static"]["metrics"]["psnr_gt"]["n"] == 3
    assert "PSNR vs GT" in (tmp_path / "results.md").read_text()


def test_known_errors_failures_and_resized_intrinsics(tmp_path):
    clips = [_clip(i) for i in range(4)]
    est = PixelAngleEstimator()

    def half_res(clip):
        return _rotate_method(0)(clip)[:, ::2, ::2]

    methods = {"rot10": _rotate_method(10), "fail": _fail_method, "half": half_res}
    res = run_camera_eval(clips, methods, est, tmp_path, progress=False)["results"]
    assert res["rot10"]["metrics"]["rot_err_deg"]["mean"] == pytest.approx(10.0 * (N - 1))
    assert res["rot10"]["metrics"]["rot_err_deg"]["per_frame_mean"] == pytest.approx(10.0 * (N - 1) / N)
    assert res["rot10"]["metrics"]["trans_err"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert (res["fail"]["n"], res["fail"]["failures"], res["fail"]["failure_rate"]) == (0, 4, 1.0)
    assert res["fail"]["failure_reasons"] == [f"registered 1/{N} frames"]
    fail_recs = [r for r in read_records(tmp_path / "records.shard0of1.jsonl") if r["method"] == "fail"]
    assert len(fail_recs) == 4 and all(r["success"] is False and r["errors"] is None for r in fail_recs)
    # The half-resolution method's estimator call got K scaled to (4, 6): fx 10 -> 5, cx 6 -> 3.
    half_K = [K for K in est.seen_K if K[0, 2] == 3.0]
    assert len(half_K) == 4
    assert half_K[0][0, 0] == pytest.approx(5.0) and half_K[0][1, 2] == pytest.approx(2.0)


class PartialEstimator(PoseEstimator):
    """Test double: GT poses except frame 2 unregistered (NaN), accepted as a partial success; the
    registered frames' rotations are off by 30 deg from frame 1 on."""

    name = "partial"

    def estimate(self, frames, K_px, gt_c2w=None):
        c2w = gt_c2w.copy()
        R = np.asarray(axis_angle_to_matrix(np.array([0.0, 0, 1]), np.radians(30.0)))
        c2w[1:, :3, :3] = c2w[1:, :3, :3] @ R
        c2w[2] = np.nan
        return PoseResult(c2w, K_px, True, "partial: registered 3/4 frames", 0.0, 3)


def test_partial_registration_scored_on_registered_frames(tmp_path):
    res = run_camera_eval([_clip(0)], {"gt": gt_video_method}, PartialEstimator(), tmp_path, progress=False)
    rec = read_records(tmp_path / "records.shard0of1.jsonl")[0]
    assert rec["errors_on_registered_only"] is True and rec["est_c2w"][2][0] == [None] * 4
    assert rec["errors"]["n_frames"] == 3
    assert res["results"]["gt"]["metrics"]["rot_err_deg"]["mean"] == pytest.approx(60.0)  # frames 1, 3


def test_resume_after_partial_run(tmp_path):
    clips = [_clip(i) for i in range(5)]
    calls = []

    def crashing(clip):
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        calls.append(clip.clip_id)
        return clip.frames

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_camera_eval(clips, {"m": crashing}, GTPoseEstimator(), tmp_path, trials=1, progress=False)
    assert len(read_records(tmp_path / "records.shard0of1.jsonl")) == 3

    calls2 = []

    def ok(clip):
        calls2.append(clip.clip_id)
        return clip.frames

    out = run_camera_eval(clips, {"m": ok}, GTPoseEstimator(), tmp_path, progress=False)
    assert calls2 == ["clip03", "clip04"] and out["n_skipped"] == 3 and out["n_new"] == 2
    assert out["results"]["m"]["n_total"] == 5
    out3 = run_camera_eval(clips, {"m": ok}, GTPoseEstimator(), tmp_path, progress=False)
    assert out3["n_new"] == 0 and len(calls2) == 2


def test_shards_cover_every_clip_once():
    clips = [_clip(i) for i in (7, 3, 11, 0, 5, 9, 2)]
    for k in (1, 2, 3, 10):
        ids = [c.clip_id for s in range(k) for c in shard_clips(clips, s, k)]
        assert sorted(ids) == sorted(c.clip_id for c in clips) and len(ids) == len(set(ids))
    assert [c.clip_id for c in shard_clips(clips, 1, 3)] == ["clip02", "clip07"]  # sorted positions 1, 4
    with pytest.raises(ValueError):
        shard_clips(clips, 3, 3)


def test_merge_two_shards_equals_unsharded(tmp_path):
    clips = [_clip(i) for i in range(5)]
    methods = {"rot5": _rotate_method(5), "rot20": _rotate_method(20), "fail": _fail_method}
    full = run_camera_eval(clips, methods, PixelAngleEstimator(), tmp_path / "full", trials=2, progress=False)
    for s in range(2):
        run_camera_eval(
            clips,
            methods,
            PixelAngleEstimator(),
            tmp_path / f"s{s}",
            shard=s,
            num_shards=2,
            trials=2,
            progress=False,
        )
    merged = merge_shards([tmp_path / "s0", tmp_path / "s1"])
    assert _strip(merged) == _strip(merge_shards([tmp_path / "full"]))
    assert len(merged) == 5 * 3 * 2
    merged_res = aggregate(merged)
    for m in methods:
        for metric, stats in full["results"][m]["metrics"].items():
            for key, value in stats.items():
                other = merged_res[m]["metrics"][metric][key]
                both_nan = isinstance(value, float) and math.isnan(value) and math.isnan(other)
                assert both_nan or value == other, (m, metric, key)


def test_eval_clips_from_re10k(tmp_path):
    from vid3d.data.formats.re10k import Re10kCameras, write_clip
    from vid3d.evaluation.camera_runner import eval_clips_from_re10k

    n_src = 10
    rng = np.random.default_rng(0)
    c2w = np.tile(np.eye(4), (n_src, 1, 1))
    c2w[:, :3, 3] = rng.normal(size=(n_src, 3))
    K_norm = np.array([[0.9, 0, 0.5], [0, 1.2, 0.5], [0, 0, 1]])
    frames = rng.integers(0, 256, size=(n_src, 16, 24, 3), dtype=np.uint8)
    cams = Re10kCameras.from_c2w(c2w, K_norm, np.arange(n_src) * 1000)
    write_clip(tmp_path, "test", "b_clip", cams, frames)
    write_clip(tmp_path, "test", "a_short", cams.subset(range(5)), frames[:5])  # too short: skipped
    clips = eval_clips_from_re10k(tmp_path, "test", num_frames=4, stride=3, height=8, width=12)
    assert [c.clip_id for c in clips] == ["b_clip"]
    clip = clips[0]
    assert clip.frames.shape == (4, 8, 12, 3) and list(clip.frame_indices) == [0, 3, 6, 9]
    np.testing.assert_allclose(clip.gt_c2w, c2w[[0, 3, 6, 9]], atol=1e-9)
    np.testing.assert_allclose(clip.K_px, [[0.9 * 12, 0, 6], [0, 1.2 * 8, 4], [0, 0, 1]], atol=1e-12)
