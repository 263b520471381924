"""protocol=cami2v against CamI2V's evaluation, rule by rule (issue 33).

The references here are written in this file from CamI2V's rules (its glomap_evaluation.py metric(),
utils/common.py relative_pose / normalize_t, utils/merge.py, utils/summary.py @c5d7b2f): torch for the
arithmetic as CamI2V computes it, and plain-Python CSV text for the aggregation (per-trial CSV files,
merge.csv, then a summary that reads merge.csv with its first data row taken as the header, as
``pd.read_csv(skiprows=[0])`` does). vid3d's preset must give the same numbers (tolerances stated).
"""

from __future__ import annotations

import csv
import io
import math
import statistics

import numpy as np
import pytest
import torch

from vid3d.evaluation.aggregate import aggregate, write_results
from vid3d.evaluation.camera_errors import camera_errors
from vid3d.evaluation.camera_runner import EvalClip, run_camera_eval
from vid3d.evaluation.cami2v import (
    attach_abs_errors,
    cami2v_abs_errors,
    cami2v_errors,
    cami2v_reduce,
    depth_scale,
    sample_depth,
)
from vid3d.evaluation.pose.base import PoseEstimator, PoseResult
from vid3d.evaluation.pose.colmap import camera_params_from_K
from vid3d.geometry import axis_angle_to_matrix, invert_rigid

RTOL = 1e-12  # same float64 operations in another order: agreement to round-off

# --------------------------------------------------------------------------- CamI2V's arithmetic (torch)


def _ref_metric(gt_w2c: torch.Tensor, gen_w2c: torch.Tensor) -> tuple[float, float, float]:
    """CamI2V's RotErr, TransErr_rel, CamMC_rel from (n, 4, 4) world-to-camera matrices."""

    def rel(w2c):
        c2w = w2c.inverse()
        return torch.cat([torch.eye(4, dtype=c2w.dtype)[None], c2w[:1].inverse() @ c2w[1:]], 0)

    def norm_t(rt, ref):
        scale = ref[:, :3, 3:4].norm(p=2, dim=1).amax() + 1e-9
        return torch.cat([rt[:, :3, :3], rt[:, :3, 3:4] / scale], -1)

    a, b = rel(gt_w2c), rel(gen_w2c)
    rot = (((a[:, :3, :3].transpose(-1, -2) @ b[:, :3, :3]).diagonal(dim1=-1, dim2=-2).sum(-1) - 1) / 2)
    rot = rot.clamp(-1, 1).acos().sum().item()
    a, b = norm_t(a, a), norm_t(b, b)
    trans = (b[:, :3, 3] - a[:, :3, 3]).norm(dim=-1).sum().item()
    cammc = (b - a).reshape(-1, 12).norm(dim=-1).sum().item()
    return rot, trans, cammc


def _noisy_trajectory(n: int, seed: int, noise: float = 1e-5, static: bool = False) -> np.ndarray:
    """(n, 4, 4) world-to-camera with near-orthonormal rotations (entries perturbed by ``noise``)."""
    rng = np.random.default_rng(seed)
    w2c = np.tile(np.eye(4), (n, 1, 1))
    axis = rng.normal(size=3)
    for i in range(n):
        R = np.asarray(axis_angle_to_matrix(axis / np.linalg.norm(axis), 0.05 * i + 0.3))
        w2c[i, :3, :3] = R + noise * rng.normal(size=(3, 3))
        centre = (0.0 if static else 0.4 * i) * np.array([1.0, 0.2, -0.5]) + np.array([0.3, -1, 2])
        if static:
            centre = centre + 1e-10 * rng.normal(size=3)  # centres that coincide up to ~1e-10
        w2c[i, :3, 3] = -w2c[i, :3, :3] @ centre
    return w2c


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cami2v_arithmetic_equals_cami2v_reference(seed):
    gt_w2c, gen_w2c = _noisy_trajectory(16, seed), _noisy_trajectory(16, seed + 10, noise=0.0)
    gen_w2c[:, :3, 3] *= 3.7  # another scale: normalisation removes it
    ref = _ref_metric(torch.from_numpy(gt_w2c), torch.from_numpy(gen_w2c))
    # vid3d holds camera-to-world poses made by rigid inversion of the file's world-to-camera rows
    mine = cami2v_errors(invert_rigid(gen_w2c), invert_rigid(gt_w2c))
    got = (mine["rot_err_rad"], mine["trans_err"], mine["cammc"])
    # rotations are exact; translations go through vid3d's rigid inversion and back (|R R^T - I| ~ 1e-5
    # here moves them by ~1e-5 relative)
    assert got[0] == pytest.approx(ref[0], rel=RTOL, abs=1e-13)
    assert got[1:] == pytest.approx(ref[1:], rel=1e-4)
    assert mine["arithmetic"] == "cami2v" and mine["rot_err_deg"] == pytest.approx(math.degrees(got[0]))


def test_cami2v_arithmetic_reads_raw_rotations_where_vid3d_is_exact():
    """GT against itself: vid3d reads exactly 0; CamI2V's arccos of raw rotations reads > 0 (issue 33.9)."""
    w2c = _noisy_trajectory(16, 3, noise=1e-4)
    c2w = np.asarray(invert_rigid(w2c))
    assert camera_errors(c2w, c2w)["rot_err_rad"] < 1e-12
    raw = cami2v_errors(c2w, c2w)["rot_err_rad"]
    assert raw == pytest.approx(_ref_metric(torch.from_numpy(w2c), torch.from_numpy(w2c))[0], rel=RTOL)
    assert raw > 1e-5


def test_static_trajectory_divided_by_1e9():
    """A static GT (centres within ~1e-10, below vid3d's 1e-8 static threshold): CamI2V divides its
    translations by max norm + 1e-9, so they become O(0.1); vid3d zeroes them (issue 33.8)."""
    gt_w2c, gen_w2c = _noisy_trajectory(8, 4, noise=0.0, static=True), _noisy_trajectory(8, 5, noise=0.0)
    ref = _ref_metric(torch.from_numpy(gt_w2c), torch.from_numpy(gen_w2c))
    mine = cami2v_errors(invert_rigid(gen_w2c), invert_rigid(gt_w2c))
    # 1e-10 centres through vid3d's rigid inversion and back: round-off of ~1e-16 absolute
    assert mine["trans_err"] == pytest.approx(ref[1], rel=1e-4)
    assert mine["cammc"] == pytest.approx(ref[2], rel=1e-4)
    rel = np.linalg.inv(np.linalg.inv(gt_w2c[0])) @ np.linalg.inv(gt_w2c)  # inv(c2w_0) @ c2w_i
    m = np.linalg.norm(rel[:, :3, 3], axis=-1).max()
    assert 1e-11 < m < 1e-9 and m / (m + 1e-9) > 0.01  # the largest normalised centre: far from zero
    vid3d = camera_errors(invert_rigid(gen_w2c), invert_rigid(gt_w2c))
    assert vid3d["gt_scale"] == 0.0 and abs(vid3d["trans_err"] - mine["trans_err"]) > 1e-2


def test_rot_err_known_angles():
    """Rotations about one axis by theta_i per frame: RotErr = sum theta_i in radians."""
    n, thetas = 6, np.linspace(0.0, 0.5, 6)
    gt = np.tile(np.eye(4), (n, 1, 1))
    gen = gt.copy()
    for i, t in enumerate(thetas):
        gen[i, :3, :3] = np.asarray(axis_angle_to_matrix(np.array([0.0, 0.0, 1.0]), t))
    assert cami2v_errors(gen, gt)["rot_err_rad"] == pytest.approx(thetas.sum(), abs=1e-7)


# --------------------------------------------------------------------------- absolute scale


def test_abs_errors_known_answer():
    """Reference: centres 0, 1, ..., n-1 along x (COLMAP units) with metric scale 2; generated: the same
    path at 1.5 x the length with scale 2. Both divided by the reference's metric extent 2 (n - 1):
    TransErr_abs = sum_i 0.5 i / (n - 1); CamMC_abs the same (rotations equal)."""
    n = 5
    ref = np.tile(np.eye(4), (n, 1, 1))
    ref[:, 0, 3] = np.arange(n)
    gen = ref.copy()
    gen[:, 0, 3] *= 1.5
    out = cami2v_abs_errors(gen, 2.0, ref, 2.0)
    want = sum(0.5 * i for i in range(n)) * 2.0 / (2.0 * (n - 1) + 1e-9)
    assert out["trans_err_abs"] == pytest.approx(want, rel=1e-12)
    assert out["cammc_abs"] == pytest.approx(want, rel=1e-12)
    # the metric scales compensate a COLMAP scale: gen at half the COLMAP size with twice the scale
    half = ref.copy()
    half[:, 0, 3] *= 0.5
    assert cami2v_abs_errors(half, 4.0, ref, 2.0)["trans_err_abs"] == pytest.approx(0.0, abs=1e-12)


def test_depth_scale_and_sampling():
    depth = np.arange(12, dtype=np.float64).reshape(3, 4) + 1.0  # (h, w) = (3, 4) for a 6 x 8 image
    uv = np.array([[0.5, 0.5], [7.9, 5.9], [4.0, 2.0]])
    d = sample_depth(depth, uv, (6, 8))
    np.testing.assert_array_equal(d, [depth[0, 0], depth[2, 3], depth[1, 2]])  # truncation, like CamI2V
    assert depth_scale([1.0, 2.0, 4.0], [3.0, 2.0, 40.0]) == 3.0  # median of 3, 1, 10
    with pytest.raises(ValueError, match="depth_scale"):
        depth_scale([], [])


def test_attach_abs_errors_pairs_with_gt_video_trial_and_says_why_not():
    n = 4
    ref = np.tile(np.eye(4), (n, 1, 1))
    ref[:, 0, 3] = np.arange(n)
    gen = ref.copy()
    gen[:, 0, 3] *= 1.5

    def rec(method, trial, c2w, scale, ok=True):
        return {"method": method, "clip_id": "a", "trial": trial, "success": ok, "est_c2w": c2w,
                "errors": {}, "errors_cami2v": {}, "metric_scale": scale,
                "metric_scale_reason": None if scale else "no metric depth"}

    records = [rec("gt_video", 0, ref, 1.0), rec("m", 0, gen, 1.0), rec("m", 1, gen, 1.0),
               rec("m", 2, gen, None), rec("gt_video", 2, ref, 1.0)]
    attach_abs_errors(records)
    want = cami2v_abs_errors(gen, 1.0, ref, 1.0)["trans_err_abs"]
    assert records[1]["errors_cami2v"]["trans_err_abs"] == pytest.approx(want)
    assert records[1]["errors"]["trans_err_abs"] == pytest.approx(want)
    assert records[0]["errors"]["trans_err_abs"] == 0.0  # the reference against itself
    assert "no gt_video record" in records[2]["abs_reason"] and "trans_err_abs" not in records[2]["errors"]
    assert records[3]["abs_reason"] == "no metric depth"


# --------------------------------------------------------------------------- aggregation (CSV reference)

METRICS = ["RotErr", "TransErr_rel", "CamMC_rel"]
KEYS = {"RotErr": "rot_err_rad", "TransErr_rel": "trans_err", "CamMC_rel": "cammc"}


def _trial_csvs(records) -> dict[int, str]:
    """CamI2V's trial_{k}.csv text: header, then one row per successful clip in file-name order."""
    out: dict[int, list[str]] = {}
    for r in sorted(records, key=lambda r: (r["trial"], r["clip_id"])):
        rows = out.setdefault(r["trial"], ["Name,Time," + ",".join(METRICS)])
        if r["success"]:
            vals = [repr(float(r["errors_cami2v"][KEYS[m]])) for m in METRICS]
            rows.append(",".join([r["clip_id"] + ".mp4", "1.0", *vals]))
    return {k: "\n".join(v) + "\n" for k, v in out.items()}


def _merge(trial_csvs: dict[int, str], k: float = 10.0) -> str:
    """merge.py's rule on the trial files (read in trial order): pooled population mean/std per metric, an
    entry kept unless some metric is more than k std from the mean; per-name mean of the kept entries."""
    data: dict[str, list[list[float]]] = {}
    for trial in sorted(trial_csvs):
        for row in list(csv.reader(io.StringIO(trial_csvs[trial])))[1:]:
            data.setdefault(row[0], []).append([float(x) for x in row[2:]])
    pooled = [e for entries in data.values() for e in entries]
    cols = list(zip(*pooled))
    means = [statistics.fmean(c) for c in cols]
    stds = [statistics.pstdev(c) for c in cols]
    lines = ["Name," + ",".join(METRICS)]
    for name, entries in data.items():
        valid = [e for e in entries if all(abs(x - m) <= k * s for x, m, s in zip(e, means, stds))]
        if valid:
            lines.append(name + "," + ",".join(repr(statistics.fmean(c)) for c in zip(*valid)))
    return "\n".join(lines) + "\n"


def _summary(merge_csv: str, skiprows: bool) -> list[float]:
    """summary.py's means: with skiprows, the first data row is the header (so it is not averaged)."""
    rows = list(csv.reader(io.StringIO(merge_csv)))
    body = rows[2:] if skiprows else rows[1:]
    return [statistics.fmean(float(r[1 + j]) for r in body) for j in range(len(METRICS))]


def _records(n_clips: int, trials: int, seed: int, fail=(), outlier=None, static_clip=None):
    """Records of one method with CamI2V-arithmetic errors from real trajectories: per clip a GT path and
    per trial a noisy estimate; ``fail``: (clip, trial) failures; ``outlier``: (clip, trial) whose
    estimate is wild; ``static_clip``: a clip whose GT and estimates are static (centres within 1e-12)."""
    rng = np.random.default_rng(seed)
    records = []
    for c in range(n_clips):
        static = c == static_clip
        gt = np.asarray(invert_rigid(_noisy_trajectory(8, 100 + c, noise=0.0, static=static)))
        for t in range(trials):
            est = gt.copy()
            est[:, :3, 3] += rng.normal(scale=1e-9 if static else 0.05, size=(8, 3))
            turn = rng.normal(scale=0.02)
            if (c, t) == outlier:
                turn = 30.0
            for i in range(8):
                yaw = np.asarray(axis_angle_to_matrix(np.array([0, 1.0, 0]), turn * i))
                est[i, :3, :3] = est[i, :3, :3] @ yaw
            ok = (c, t) not in fail
            records.append({
                "method": "m", "clip_id": f"clip{c:03d}", "trial": t, "success": ok,
                # vid3d's own errors only where the test reads them (the static clip): 60 ms each here
                "errors": camera_errors(est, gt) if ok and static else None,
                "errors_cami2v": cami2v_errors(est, gt) if ok else None,
            })
    return records


@pytest.mark.parametrize("skiprows", [False, True])
def test_cami2v_reduction_equals_cami2v_merge_and_summary(skiprows):
    """40 clips x 3 trials (120 entries, so one entry can lie beyond 10 sigma), one wild entry, failed
    trials (the first clip fails in trial 0: the table order then starts from trial 0's first success), a
    static clip. vid3d's preset reduction equals the CSV reference to 1e-12 relative."""
    fail = {(0, 0), (5, 1), (5, 2), (7, 0)}
    records = _records(40, 3, seed=0, fail=fail, outlier=(9, 1), static_clip=3)
    static = [r for r in records if r["clip_id"] == "clip003"]  # CamI2V: / 1e-9; vid3d: zeros
    assert all(r["errors_cami2v"]["trans_err"] > 1 and r["errors"]["trans_err"] == 0 for r in static)
    want = _summary(_merge(_trial_csvs(records)), skiprows)
    res = aggregate(records, reduction="cami2v", outlier_sigma=10.0, errors_key="errors_cami2v",
                    skip_first_video=skiprows)["m"]
    got = [res["metrics"][KEYS[m]]["mean"] for m in METRICS]
    assert got == pytest.approx(want, rel=RTOL)
    block = res["cami2v"]
    assert block["dropped_entries"] == [["clip009", 1]] and block["n_entries"] == 120 - len(fail)
    assert block["skipped_video"] == ("clip001" if skiprows else None)  # clip000 failed in trial 0
    assert block["n_videos"] == 40 - skiprows and res["metrics"]["rot_err_rad"]["n"] == 40 - skiprows
    assert res["failures"] == len(fail) and res["metrics"]["rot_err_rad"]["n_outliers"] == 1
    # the degree column is the radian one in degrees
    assert res["metrics"]["rot_err_deg"]["mean"] == pytest.approx(math.degrees(got[0]), rel=RTOL)
    # not the flat mean: trials per clip first, the wild entry dropped as a whole
    flat = aggregate(records, errors_key="errors_cami2v")["m"]["metrics"]["trans_err"]["mean"]
    assert abs(flat - got[1]) > 1e-3


def test_outlier_rule_drops_whole_entries_not_values():
    """An entry wild in RotErr only loses its TransErr and CamMC too (vid3d's flat rule keeps them)."""
    records = _records(40, 3, seed=1, outlier=(2, 0))
    res = aggregate(records, reduction="cami2v", outlier_sigma=10.0, errors_key="errors_cami2v")["m"]
    clip2 = [r for r in records if r["clip_id"] == "clip002" and r["trial"] != 0]
    per_clip = np.mean([r["errors_cami2v"]["trans_err"] for r in clip2])
    red = cami2v_reduce(
        [{"video": r["clip_id"], "trial": r["trial"], "values": r["errors_cami2v"]} for r in records],
        ["trans_err"], k=10.0,
    )
    assert red["per_video"]["clip002"]["trans_err"] == pytest.approx(per_clip, rel=RTOL)
    assert res["cami2v"]["dropped_entries"] == [["clip002", 0]]
    assert res["metrics"]["trans_err"]["mean"] == pytest.approx(np.mean(list(
        v["trans_err"] for v in red["per_video"].values())), rel=RTOL)


def test_reduction_edge_cases():
    assert math.isnan(cami2v_reduce([], ["rot_err_rad"])["means"]["rot_err_rad"])
    one = [{"video": "a", "trial": 0, "values": {"rot_err_rad": 1.0}}]
    assert cami2v_reduce(one, ["rot_err_rad"], skip_first_video=True)["averaged_videos"] == []
    same = [{"video": v, "trial": 0, "values": {"rot_err_rad": 0.1}} for v in "abc"]
    assert cami2v_reduce(same, ["rot_err_rad"])["n_kept"] == 3  # zero spread drops nothing
    with pytest.raises(ValueError, match="outlier_sigma"):
        cami2v_reduce(one, ["rot_err_rad"], k=0.0)
    with pytest.raises(ValueError, match="failure_policy"):
        aggregate(_records(2, 1, 0), reduction="cami2v", failure_policy="worst")


# --------------------------------------------------------------------------- trials and the runner


class _SeededNoise(PoseEstimator):
    """Ground truth plus Gaussian noise from its seed (a stand-in for COLMAP's seeded RANSAC)."""

    name = "seeded_noise"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def estimate(self, frames, K_px, gt_c2w=None) -> PoseResult:
        c2w = np.array(gt_c2w, dtype=np.float64)
        c2w[1:, :3, 3] += np.random.default_rng(self.seed).normal(scale=0.01, size=(len(c2w) - 1, 3))
        return PoseResult(c2w, K_px, True, None, 0.0, len(c2w))


def _clips(n: int) -> list[EvalClip]:
    out = []
    for c in range(n):
        gt = np.asarray(invert_rigid(_noisy_trajectory(6, 50 + c, noise=0.0)))
        frames = np.random.default_rng(c).integers(0, 255, size=(6, 16, 16, 3), dtype=np.uint8)
        out.append(EvalClip(f"c{c}", frames, np.diag([20.0, 20.0, 1.0]), gt, np.arange(6)))
    return out


@pytest.mark.parametrize("trials_are", ["estimations", "generations"])
def test_trials_are_estimations_of_one_video(tmp_path, trials_are):
    calls: list[int] = []

    def method(clip):
        calls.append(int(np.random.randint(0, 2**31 - 1)))  # the seeded global RNG at generation
        return clip.frames

    summary = run_camera_eval(
        _clips(2), {"m": method}, _SeededNoise(7), tmp_path, trials=3, progress=False,
        trials_are=trials_are, reduction="cami2v", arithmetic="cami2v", outlier_sigma=10.0,
    )
    from vid3d.evaluation.records import read_records

    recs = read_records(tmp_path / "records.shard0of1.jsonl")
    if trials_are == "estimations":
        assert len(calls) == 2  # one video per clip
        assert sorted({r["estimator_seed"] for r in recs}) == [7, 8, 9]
        assert len({r["seed"] for r in recs}) == 2  # trial 0's generation seed for every trial
    else:
        assert len(calls) == 6 and {r["estimator_seed"] for r in recs} == {7}
    assert all("errors_cami2v" in r and r["metric_scale"] is None for r in recs)
    proto = summary["protocol"]
    assert proto["arithmetic"] == "cami2v" and "arccos" in proto["metrics"]["rot_err_rad"]
    assert ("pose estimations of one generated video" in proto["trials_are"]) == (trials_are == "estimations")
    assert "10 population standard deviations" in proto["outlier_rule"]
    md = (tmp_path / "results.md").read_text()
    assert "Arithmetic: the RotErr (rad, deg, per frame), TransErr and CamMC columns use CamI2V's" in md
    assert "TransErr_abs (Σ frames, metric scale)" in md and "| not computed | not computed |" in md
    assert "trans_err_abs: no metric-depth model configured" in md
    assert "Aggregation: CamI2V's" in md and "- m: 0 of 6 entries dropped, 2 clips averaged" in md


def test_results_csv_and_json_say_abs_not_computed(tmp_path):
    records = _records(3, 2, seed=2)
    for r in records:
        r["abs_reason"] = "no metric-depth model configured"
    res = aggregate(records, reduction="cami2v", outlier_sigma=10.0, errors_key="errors_cami2v")
    assert res["m"]["not_computed"] == {"trans_err_abs": "no metric-depth model configured",
                                        "cammc_abs": "no metric-depth model configured"}
    write_results(tmp_path, res, {"arithmetic": "cami2v"})
    header, row = (tmp_path / "results.csv").read_text().splitlines()[:2]
    cols = dict(zip(header.split(","), row.split(",")))
    assert cols["trans_err_abs_mean"] == "not computed" and cols["cammc_abs_mean"] == "not computed"


def test_focal_fx_and_cami2v_estimator_options():
    K = np.array([[100.0, 0, 40], [0, 110, 30], [0, 0, 1]])
    assert camera_params_from_K(K, "SIMPLE_PINHOLE", focal="fx") == [100.0, 40.0, 30.0]
    assert camera_params_from_K(K, "SIMPLE_PINHOLE") == [105.0, 40.0, 30.0]
    with pytest.raises(ValueError, match="focal"):
        camera_params_from_K(K, "SIMPLE_PINHOLE", focal="fy")
    pytest.importorskip("pycolmap")
    from vid3d.evaluation.pose import ColmapPoseEstimator

    est = ColmapPoseEstimator(matching_options={"guided_matching": True, "max_num_matches": 65536})
    assert est.describe()["matching_options"]["max_num_matches"] == 65536
    with pytest.raises(ValueError, match="matching_options.*guided"):
        ColmapPoseEstimator(matching_options={"guided": True})
    assert est.for_trial(3).seed == 3 and est.for_trial(0) is est and est.seed == 0


def test_metric_scale_from_colmap_points_and_oracle_depth():
    """COLMAP on the helper room (GT poses in metres) with the exact depth map as the 'metric depth model':
    CamI2V's depth scale turns COLMAP's trajectory into metres (measured: extent within 0.5% of GT's), and
    TransErr_abs of the video against itself is 0. Bound: 3%."""
    pytest.importorskip("pycolmap")
    from _eval_scene import default_K, depth_map, render, trajectory

    from vid3d.evaluation.camera_runner import metric_scale_of
    from vid3d.evaluation.pose import ColmapPoseEstimator

    H, W, N = 128, 192, 8
    c2w, K = trajectory(N, seed=1), default_K(128, 192)
    frames = render(c2w, K, H, W, seed=1)
    res = ColmapPoseEstimator(matcher="sequential").estimate(frames, K)
    assert res.success and res.first_frame_points is not None and len(res.first_frame_points) > 50
    pts = res.first_frame_points
    scale, why = metric_scale_of(frames, pts, lambda frame0: depth_map(c2w[0], K, H, W))
    assert why is None
    extent = lambda p: np.linalg.norm(p[:, :3, 3] - p[:1, :3, 3], axis=-1).max()  # noqa: E731
    assert scale * extent(res.c2w) == pytest.approx(extent(c2w), rel=0.03)
    none, why = metric_scale_of(frames, pts, None)
    assert none is None and "no metric-depth model" in why
    assert cami2v_abs_errors(res.c2w, scale, res.c2w, scale)["trans_err_abs"] == 0.0
