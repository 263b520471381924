"""Bootstrap CIs, known-value aggregation, failure counting, results files."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from vid3d.evaluation.aggregate import aggregate, bootstrap_ci, merge_shards, write_results
from vid3d.evaluation.records import RecordWriter


def _rec(method, clip, rot, trans=0.0, cammc=0.0, n=4, success=True, trial=0):
    r = {"method": method, "clip_id": clip, "trial": trial, "success": success}
    if success:
        r["errors"] = {
            "rot_err_deg": rot, "rot_err_deg_per_frame": rot / n,
            "trans_err": trans, "trans_err_per_frame": trans / n,
            "cammc": cammc, "cammc_per_frame": cammc / n,
        }
    else:
        r["reason"] = "registered 5/8 frames"
    return r


def test_bootstrap_ci_contains_mean_and_shrinks():
    rng = np.random.default_rng(0)
    widths = []
    for n in (10, 100, 1000):
        x = rng.normal(3.0, 2.0, size=n)
        lo, hi = bootstrap_ci(x, n_boot=1000, seed=0)
        assert lo < x.mean() < hi
        widths.append(hi - lo)
        # Sanity vs the normal approximation 2 * 1.96 * s / sqrt(n) (independent formula).
        assert (hi - lo) == pytest.approx(2 * 1.96 * x.std(ddof=1) / math.sqrt(n), rel=0.25)
    assert widths[0] > widths[1] > widths[2]
    assert bootstrap_ci([2.5]) == (2.5, 2.5)
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)  # deterministic


def test_aggregate_known_values_and_failures():
    recs = [
        _rec("a", "c0", 10.0, 1.0, 2.0),
        _rec("a", "c1", 20.0, 3.0, 4.0),
        _rec("a", "c2", 0, success=False),
        _rec("b", "c0", 4.0),
    ]
    res = aggregate(recs, metrics=["rot_err_deg", "trans_err", "cammc"])
    a = res["a"]
    assert (a["n"], a["n_total"], a["failures"]) == (2, 3, 1)
    assert a["failure_rate"] == pytest.approx(1 / 3) and a["success_rate"] == pytest.approx(2 / 3)
    assert a["metrics"]["rot_err_deg"]["mean"] == pytest.approx(15.0)
    assert a["metrics"]["rot_err_deg"]["per_frame_mean"] == pytest.approx(15.0 / 4)
    assert a["metrics"]["trans_err"]["mean"] == pytest.approx(2.0)
    assert a["metrics"]["cammc"]["mean"] == pytest.approx(3.0)
    rot = a["metrics"]["rot_err_deg"]
    assert 10.0 <= rot["ci_low"] <= 15.0 <= rot["ci_high"] <= 20.0
    assert a["failure_reasons"] == ["registered 5/8 frames"]
    assert res["b"]["failures"] == 0 and res["b"]["metrics"]["rot_err_deg"]["mean"] == 4.0

    worst = aggregate(recs, metrics=["rot_err_deg"], failure_policy="worst")
    assert worst["a"]["metrics"]["rot_err_deg"]["mean"] == pytest.approx((10 + 20 + 20) / 3)
    assert worst["a"]["metrics"]["rot_err_deg"]["n"] == 3
    with pytest.raises(ValueError, match="registered 5/8"):
        aggregate(recs, metrics=["rot_err_deg"], failure_policy="raise")
    with pytest.raises(ValueError, match="failure_policy"):
        aggregate(recs, failure_policy="ignore")


def test_all_failed_group_reports_nan_not_crash(tmp_path):
    res = aggregate([_rec("a", "c0", 0, success=False)], metrics=["rot_err_deg"])
    assert res["a"]["n"] == 0 and res["a"]["failure_rate"] == 1.0
    assert math.isnan(res["a"]["metrics"]["rot_err_deg"]["mean"])
    paths = write_results(tmp_path, res, {"failure_policy": "exclude"})  # NaN -> null, strict JSON
    assert json.loads(paths["json"].read_text())["results"]["a"]["metrics"]["rot_err_deg"]["mean"] is None
    assert "| a | 0 | 1 | nan [nan, nan] |" in paths["md"].read_text()


def test_write_results_and_merge_shards(tmp_path):
    d1, d2 = tmp_path / "s0", tmp_path / "s1"
    RecordWriter(d1 / "records.jsonl").extend([_rec("a", "c0", 10.0), _rec("a", "c1", 20.0)])
    RecordWriter(d2 / "records.jsonl").extend([_rec("a", "c2", 30.0, success=False), _rec("a", "c0", 99.0)])
    merged = merge_shards([d1, d2])
    assert [(r["clip_id"], r.get("errors", {}).get("rot_err_deg")) for r in merged] == [
        ("c0", 10.0), ("c1", 20.0), ("c2", None)  # duplicate key: first occurrence kept
    ]
    res = aggregate(merged, metrics=["rot_err_deg", "trans_err", "cammc"])
    protocol = {"estimator": {"name": "gt"}, "failure_policy": "exclude", "units": "degrees"}
    paths = write_results(tmp_path / "out", res, protocol)
    payload = json.loads(paths["json"].read_text())
    assert payload["protocol"] == protocol
    assert payload["results"]["a"]["metrics"]["rot_err_deg"]["mean"] == pytest.approx(15.0)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert rows[0]["method"] == "a" and float(rows[0]["rot_err_deg_mean"]) == pytest.approx(15.0)
    md = paths["md"].read_text()
    assert "| a | 2 | 1 | 15.00 [" in md and "66.7%" in md and "failure_policy" in md
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_spread_over_trials_is_std_of_per_trial_means(tmp_path):
    # trial t, clip c: rot = 10 * t + c  -> per-trial means 1, 11, 21 (clips 0..2), std (ddof=1) = 10
    recs = [_rec("a", f"c{c}", 10.0 * t + c, trial=t) for t in range(3) for c in range(3)]
    recs.append(_rec("a", "c9", 0.0, success=False, trial=1))  # excluded: does not move trial 1's mean
    recs += [_rec("b", f"c{c}", float(c)) for c in range(3)]  # one trial: no spread
    res = aggregate(recs, metrics=["rot_err_deg", "trans_err", "cammc"])
    rot = res["a"]["metrics"]["rot_err_deg"]
    assert rot["n_trials"] == 3 and rot["per_trial_mean"] == {0: 1.0, 1: 11.0, 2: 21.0}
    assert rot["std_over_trials"] == pytest.approx(10.0)
    assert res["a"]["metrics"]["trans_err"]["std_over_trials"] == 0.0
    assert res["b"]["metrics"]["rot_err_deg"]["n_trials"] == 1
    assert math.isnan(res["b"]["metrics"]["rot_err_deg"]["std_over_trials"])
    # worst policy: the failed trial-1 sample is scored 22 (the worst value) inside trial 1
    worst = aggregate(recs, metrics=["rot_err_deg"], failure_policy="worst")["a"]["metrics"]["rot_err_deg"]
    assert worst["per_trial_mean"][1] == pytest.approx((10 + 11 + 12 + 22) / 4)
    paths = write_results(tmp_path, res, {"failure_policy": "exclude"})
    payload = json.loads(paths["json"].read_text())
    assert payload["results"]["a"]["metrics"]["rot_err_deg"]["std_over_trials"] == pytest.approx(10.0)
    assert payload["results"]["b"]["metrics"]["rot_err_deg"]["std_over_trials"] is None  # nan -> null
    md = paths["md"].read_text()
    assert "- a: RotErr ±10.000, TransErr ±0.000, CamMC ±0.000 (std of the 3 per-trial means)" in md
    assert "- b:" not in md
    rows = {r["method"]: r for r in csv.DictReader(paths["csv"].open())}
    assert float(rows["a"]["rot_err_deg_std_over_trials"]) == pytest.approx(10.0)
