"""FVD in the camera benchmark: per-sample features in the records, the same FVD from one run, a resumed run
and merged shards, an independent Fréchet distance (scipy.linalg.sqrtm), "not computed" without weights,
and the random-init label through eval.py's task. The extractor is the tiny random-init one: its numbers
are not FVD, and every result says so."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import scipy.linalg

from vid3d.evaluation.aggregate import aggregate
from vid3d.evaluation.camera_runner import (
    EvalClip,
    gt_video_method,
    run_camera_eval,
    static_first_frame_method,
)
from vid3d.evaluation.fvd import (
    NOT_I3D_LABEL,
    FVDMetric,
    FVDWeightsError,
    fvd_column,
    save_tiny_extractor,
)
from vid3d.evaluation.pose import GTPoseEstimator
from vid3d.evaluation.records import read_records
from vid3d.report import main as report_main

N, H, W = 4, 16, 24
KEY = f"fvd [{NOT_I3D_LABEL}]"  # the results key of a random-init extractor; never plain "fvd"


def _clip(i: int) -> EvalClip:
    """A moving colour gradient, different per clip (so the features spread)."""
    rng = np.random.default_rng(i)
    c2w = np.tile(np.eye(4), (N, 1, 1))
    c2w[:, :3, 3] = np.cumsum(rng.normal(size=(N, 3)), axis=0)
    v, u = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    a, b, c = rng.uniform(0, 255, 3)
    base = np.stack([a * u / W, b * v / H, np.full(u.shape, c)], -1)
    frames = np.stack([np.roll(base, (1 + i % 3) * f, axis=1) for f in range(N)]).astype(np.uint8)
    K = np.array([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]])
    return EvalClip(f"clip{i:02d}", frames, K, c2w, np.arange(N))


def _noisy(clip: EvalClip) -> np.ndarray:
    """A 'model': the GT video plus noise from the (per-sample seeded) numpy RNG."""
    noise = np.random.randint(-40, 40, size=clip.frames.shape)
    return np.clip(clip.frames.astype(int) + noise, 0, 255).astype(np.uint8)


def _dark(clip: EvalClip) -> np.ndarray:
    return clip.frames // 3


METHODS = {"gt_video": gt_video_method, "static": static_first_frame_method, "dark": _dark}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    # 4-d features: with 8 clips the covariances have full rank, so sqrtm is well conditioned
    return save_tiny_extractor(tmp_path_factory.mktemp("fvd") / "tiny_not_i3d.pt", dim=4, seed=0)


def _independent_fd(x: np.ndarray, y: np.ndarray) -> float:
    """||mu_x - mu_y||^2 + tr(Sx + Sy) - 2 tr((Sx^1/2 Sy Sx^1/2)^1/2): the symmetric form, sqrtm twice."""
    mx, my = x.mean(0), y.mean(0)
    sx = (x - mx).T @ (x - mx) / (len(x) - 1)
    sy = (y - my).T @ (y - my) / (len(y) - 1)
    rx = scipy.linalg.sqrtm(sx).real
    cross = scipy.linalg.sqrtm(rx @ sy @ rx).real
    return float(np.sum((mx - my) ** 2) + np.trace(sx) + np.trace(sy) - 2 * np.trace(cross))


def test_fvd_entries_against_independent_formula(tmp_path, tiny):
    clips = [_clip(i) for i in range(8)]
    metric = FVDMetric(tiny, batch_size=3)
    out = run_camera_eval(clips, METHODS, GTPoseEstimator(), tmp_path, progress=False, fvd=metric)
    res = out["results"]
    for m in METHODS:
        assert "fvd" not in res[m]  # a random-init number is never under the plain key
        e = res[m][KEY]
        assert e["computed"] and e["feature_extractor"] == NOT_I3D_LABEL
        assert e["n_videos"] == {0: 8} and e["n_generated"] == 8 and e["n_ground_truth"] == 8
        assert e["feature_dim"] == 4 and e["weights_sha256"] == metric.sha256
    # the records hold each video's features (as a fresh batched extraction gives them, up to float32)
    recs = {(r["method"], r["clip_id"]): r for r in read_records(tmp_path / "records.shard0of1.jsonl")}

    def stored(m: str, field: str) -> np.ndarray:
        return np.stack([np.asarray(recs[(m, c.clip_id)]["fvd_features"][field]) for c in clips])

    gt = stored("static", "ground_truth")
    np.testing.assert_array_equal(stored("dark", "ground_truth"), gt)
    np.testing.assert_allclose(gt, metric.features(np.stack([c.frames for c in clips])), rtol=1e-5)
    # a set against itself: 0
    assert res["gt_video"][KEY]["value"] == pytest.approx(0.0, abs=1e-9)
    assert _independent_fd(gt, gt) == pytest.approx(0.0, abs=1e-9)
    # the other rows: an independent Fréchet distance of the same features
    for m in ("static", "dark"):
        gen = stored(m, "generated")
        np.testing.assert_allclose(gen, metric.features(np.stack([METHODS[m](c) for c in clips])), rtol=1e-5)
        expected = _independent_fd(gen, gt)
        assert expected > 0
        assert res[m][KEY]["value"] == pytest.approx(expected, rel=1e-8)
    assert res["dark"][KEY]["value"] > 1e-3  # the tiny net's features are ~0.1 in size
    # the written table and CSV carry the label and n; the protocol describes the extractor
    md = (tmp_path / "results.md").read_text()
    assert f"FVD [{NOT_I3D_LABEL}] (n videos)" in md and "(n=8)" in md and "NOT FVD" in md
    assert "biased upwards" in md
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert KEY in header and "fvd" not in header
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["protocol"]["fvd"]["feature_extractor"] == NOT_I3D_LABEL
    assert payload["results"]["dark"][KEY]["value"] == res["dark"][KEY]["value"]


def test_merged_shards_and_resumed_run_give_the_same_fvd(tmp_path, tiny):
    clips = [_clip(i) for i in range(5)]
    methods = {"static": static_first_frame_method, "noisy": _noisy}
    single = run_camera_eval(clips, methods, GTPoseEstimator(), tmp_path / "single", trials=2,
                             progress=False, fvd=FVDMetric(tiny))["results"]
    for s in range(2):
        run_camera_eval(clips, methods, GTPoseEstimator(), tmp_path / "multi" / f"{s}", shard=s, num_shards=2,
                        trials=2, progress=False, fvd=FVDMetric(tiny))
    assert report_main([str(tmp_path / "multi"), "--out", str(tmp_path / "merged")]) == 0  # kind: detected
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())["results"]
    # a run killed after 7 of its 20 samples, then resumed
    path = tmp_path / "single" / "records.shard0of1.jsonl"
    (tmp_path / "resumed").mkdir()
    lines = path.read_bytes().split(b"\n")
    (tmp_path / "resumed" / path.name).write_bytes(b"\n".join(lines[:7]) + b"\n" + lines[7][:50])
    resumed = run_camera_eval(clips, methods, GTPoseEstimator(), tmp_path / "resumed", trials=2,
                              progress=False, fvd=FVDMetric(tiny))
    assert resumed["n_skipped"] == 7 and resumed["n_new"] == 13
    for m in methods:
        one = single[m][KEY]
        assert one["computed"] and one["n_trials"] == 2 and one["n_videos"] == {0: 5, 1: 5}
        assert merged[m][KEY]["value"] == one["value"]  # bit-identical: features round-trip through JSON
        assert merged[m][KEY]["per_trial"] == {str(t): v for t, v in one["per_trial"].items()}
        assert resumed["results"][m][KEY]["value"] == one["value"]
    assert single["noisy"][KEY]["std_over_trials"] > 0


def test_not_computed_without_weights_or_with_partial_features(tmp_path, tiny):
    clips = [_clip(i) for i in range(3)]
    out = run_camera_eval(clips, {"gt_video": gt_video_method}, GTPoseEstimator(), tmp_path, progress=False)
    entry = out["results"]["gt_video"]["fvd"]
    assert entry == {"computed": False,
                     "reason": "no I3D features in the records (metrics.fvd.i3d was not set)"}
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["results"]["gt_video"]["fvd"]["computed"] is False and "value" not in entry
    assert payload["protocol"]["fvd"] == {"computed": False, "reason": "metrics.fvd.i3d not set"}
    assert "| not computed |" in (tmp_path / "results.md").read_text()
    assert "not computed" in (tmp_path / "results.csv").read_text().splitlines()[1]
    # resumed with weights: the earlier samples have no features, so no number (and the reason says why)
    again = run_camera_eval(clips, {"gt_video": gt_video_method}, GTPoseEstimator(), tmp_path, trials=2,
                            progress=False, fvd=FVDMetric(tiny))
    entry = again["results"]["gt_video"][KEY]
    assert not entry["computed"] and entry["reason"].startswith("3 of 6 samples have no I3D features")
    # one clip per trial: no covariance
    one = run_camera_eval(clips[:1], {"gt_video": gt_video_method}, GTPoseEstimator(), tmp_path / "one",
                          progress=False, fvd=FVDMetric(tiny))
    assert "needs >= 2 videos" in one["results"]["gt_video"][KEY]["reason"]


def _rec(method, clip, extractor, sha, gen, gt):
    feats = {"extractor": extractor, "sha256": sha, "generated": gen, "ground_truth": gt}
    return {"method": method, "clip_id": clip, "trial": 0, "success": False, "fvd_features": feats}


def test_entries_from_hand_made_records():
    """fvd_entry on known features (failed pose estimations count too), mixed extractors refused, and a
    random-init entry in any row labels the whole table column."""
    gt = [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]]
    shifted = [[x + 1.0, y] for x, y in gt]  # same covariance, mean shifted by (1, 0): FVD = 1
    recs = [_rec("a", f"c{i}", "i3d_torchscript", "h", shifted[i], gt[i]) for i in range(3)]
    results = aggregate(recs)
    assert results["a"]["fvd"]["value"] == pytest.approx(1.0, rel=1e-9)
    assert results["a"]["fvd"]["feature_extractor"] == "i3d_torchscript"
    mixed = recs[:2] + [_rec("a", "c2", "i3d_torchscript", "other", shifted[2], gt[2])]
    assert "different extractors" in aggregate(mixed)["a"]["fvd"]["reason"]
    tiny = [_rec("b", f"c{i}", NOT_I3D_LABEL, "t", gt[i], gt[i]) for i in range(3)]
    both = aggregate(recs + tiny)
    assert set(both["a"]) >= {"fvd"} and set(both["b"]) >= {KEY}
    assert fvd_column(both) == KEY and fvd_column(results) == "fvd"


def _eval_cfg(tmp_path, monkeypatch, extra):
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.data.synthetic import build_synthetic_dataset

    root = build_synthetic_dataset(tmp_path / "set", num_train=0, num_test=3, num_frames=6, height=48,
                                   width=64)
    overrides = [
        "data=re10k", f"data.root={root}", "data.num_frames=3", "data.height=32", "data.width=48",
        "pose=gt", "eval.save_videos=false", "wandb.media=false", f"paths.output_dir={tmp_path / 'out'}",
        "torch_threads=1", *extra,
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("eval", overrides=overrides)


def test_eval_task_labels_random_init_fvd(tmp_path, monkeypatch, tiny, offline_wandb):
    """eval.py's task with metrics.fvd.i3d=<tiny extractor file>: an FVD entry per row, labelled random-init
    in the results key, the table, the protocol's WARNING and the W&B summary."""
    from vid3d.tasks.evaluate import evaluate

    res = evaluate(_eval_cfg(tmp_path, monkeypatch, [f"metrics.fvd.i3d={tiny}"]))
    rows = res["results"]
    assert set(rows) == {"gt_video", "static_first_frame"}
    assert rows["gt_video"][KEY]["value"] == pytest.approx(0.0, abs=1e-6)
    static = rows["static_first_frame"][KEY]
    assert static["value"] > 0 and static["n_generated"] == 3
    assert res["results_md"].startswith("WARNING:") and "NOT FVD" in res["results_md"]
    payload = json.loads((tmp_path / "out" / "eval" / "results.json").read_text())
    assert "NOT FVD" in payload["protocol"]["WARNING"]
    assert {w["role"] for w in payload["protocol"]["reproducibility"]["weights"]} == {"fvd_i3d"}
    # W&B (offline): the results table's FVD column and the summary key carry the label
    (run_dir,) = (tmp_path / "out" / "eval" / "wandb").glob("offline-run-*")
    (table,) = run_dir.glob("files/media/table/eval/camera_results_*.table.json")
    table = json.loads(table.read_text())
    cells = {row[0]: dict(zip(table["columns"], row)) for row in table["data"]}
    assert "fvd" not in table["columns"]
    assert cells["static_first_frame"][KEY] == pytest.approx(rows["static_first_frame"][KEY]["value"])
    # wandb's core process may still be flushing its log after finish() on a loaded machine (seen once:
    # only the 7-byte header there): wait for the key up to 60 s rather than read a half-written file
    key, deadline, log = f"eval/static_first_frame/{KEY}".encode(), time.monotonic() + 60, b""
    while key not in log and time.monotonic() < deadline:
        log = b"".join(p.read_bytes() for p in run_dir.glob("*.wandb"))
        if key not in log:
            time.sleep(0.5)
    assert key in log, f"{run_dir}: {len(log)} bytes of W&B log without {key!r}"


def test_eval_task_refuses_missing_weights_before_sampling(tmp_path, monkeypatch, offline_wandb):
    from vid3d.tasks.evaluate import evaluate

    missing = tmp_path / "i3d_torchscript.pt"
    with pytest.raises(FVDWeightsError, match=str(missing)):
        evaluate(_eval_cfg(tmp_path, monkeypatch, [f"metrics.fvd.i3d={missing}"]))
    assert not list((tmp_path / "out" / "eval").glob("records*.jsonl"))
