"""The eval task's W&B media table (offline) and the runner's saved videos; random-init labelling."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import _wandb_records as wandb_records  # tests/evaluation/_wandb_records.py
import imageio.v3 as iio
import numpy as np
import pytest
from omegaconf import OmegaConf

from vid3d.evaluation.camera_runner import EvalClip, gt_video_method, run_camera_eval, video_relpath
from vid3d.evaluation.pose import GTPoseEstimator, PoseEstimator, PoseResult
from vid3d.evaluation.records import read_records
from vid3d.evaluation.wandb_log import MEDIA_COLUMNS, log_to_wandb

N, H, W = 4, 24, 32


def _clip(i: int) -> EvalClip:
    rng = np.random.default_rng(i)
    c2w = np.tile(np.eye(4), (N, 1, 1))
    c2w[:, :3, 3] = np.cumsum(rng.normal(size=(N, 3)), axis=0)
    v, u = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    base = np.stack([u * 255 / W, v * 255 / H, np.full_like(u, 60 + 40 * i, dtype=float)], -1)
    frames = np.stack([np.roll(base, 2 * f, axis=1) for f in range(N)]).astype(np.uint8)  # smooth, moving
    K = np.array([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]])
    return EvalClip(f"clip/{i}", frames, K, c2w, np.arange(N))


def _dark(clip):
    return (clip.frames // 4).astype(np.uint8)


class HalfFail(PoseEstimator):
    """GT poses, except that videos whose first pixel is dark (the ``_dark`` method) fail."""

    name = "half_fail"

    def estimate(self, frames, K_px, gt_c2w=None):
        if frames.mean() < 50:
            return PoseResult(None, None, False, "registered 0/4 frames", 0.0, 0)
        return GTPoseEstimator().estimate(frames, K_px, gt_c2w)


def _cfg(media=True):
    return OmegaConf.create({
        "wandb": {"project": "vid3d-test", "mode": "offline", "group": None, "media": media,
                  "max_media_rows": 3},
        "eval": {"trials": 1},
    })


def test_saved_videos_and_resume(tmp_path):
    clips = [_clip(0), _clip(1)]
    out = run_camera_eval(clips, {"gt video": gt_video_method}, GTPoseEstimator(), tmp_path,
                          progress=False, save_videos=True, video_fps=4)
    assert out["n_new"] == 2
    recs = read_records(tmp_path / "records.shard0of1.jsonl")
    assert [r["video"] for r in recs] == [video_relpath("gt video", f"clip/{i}", 0) for i in (0, 1)]
    assert recs[0]["video"] == "videos/gt_video/clip_0_t0.mp4"
    video = iio.imread(tmp_path / recs[0]["video"], plugin="pyav")
    assert video.shape == (N, H, W, 3)
    # decoded frames are the generated ones up to H.264 loss
    assert np.abs(video.astype(float) - clips[0].frames).mean() < 8
    np.testing.assert_allclose(recs[0]["gt_c2w"], clips[0].gt_c2w)
    mtime = os.stat(tmp_path / recs[0]["video"]).st_mtime_ns
    again = run_camera_eval(clips, {"gt video": gt_video_method}, GTPoseEstimator(), tmp_path,
                            progress=False, save_videos=True)
    assert again["n_new"] == 0 and os.stat(tmp_path / recs[0]["video"]).st_mtime_ns == mtime


def test_media_table_logged_offline(tmp_path, offline_wandb):
    clips = [_clip(0), _clip(1)]
    methods = {"gt_video": gt_video_method, "dark": _dark}
    out = run_camera_eval(clips, methods, HalfFail(), tmp_path, progress=False, save_videos=True)
    recs = read_records(tmp_path / "records.shard0of1.jsonl")
    log_to_wandb(_cfg(), tmp_path, out["results"], sorted(recs, key=lambda r: r["method"]),
                 {c.clip_id: c for c in clips})
    (run_dir,) = list((tmp_path / "wandb").glob("offline-run-*"))
    media = run_dir / "files" / "media"
    tables = list((media / "table").rglob("samples_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == MEDIA_COLUMNS
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert len(rows) == 4  # 2 methods x 2 clips
    assert [(r["method"], r["success"]) for r in rows] == [("dark", False)] * 2 + [("gt_video", True)] * 2
    assert rows[0]["reason"] == "registered 0/4 frames" and rows[0]["rot_err_deg"] is None
    assert rows[2]["rot_err_deg"] == pytest.approx(0.0, abs=1e-6)
    assert rows[0]["video_file"] == "videos/dark/clip_0_t0.mp4"
    assert rows[0]["caption"] == "dark | clip/0 | trial 0 | FAILED"
    # media of the first max_media_rows=3 rows, as plain media in the run's own files/ folder, captioned
    # like their table rows
    history = wandb_records.history(next(run_dir.glob("*.wandb")))
    (row,) = [h for h in history if "eval/sample_videos/_type" in h]
    assert row["eval/sample_videos/captions"] == [r["caption"] for r in rows[:3]]
    assert row["eval/sample_trajectories/captions"] == [r["caption"] for r in rows[:3]]
    assert len(list((media / "videos").rglob("*.mp4"))) == 3
    assert len(list((media / "images").rglob("*.png"))) == 3
    # summary table of the aggregates is logged too
    assert list((media / "table").rglob("camera_results_*.table.json"))


def test_offline_eval_run_travels_with_its_run_dir(tmp_path, monkeypatch):
    """Copy an offline eval run dir elsewhere, remove the original: every media file its W&B log refers to
    is in the copy, and W&B's staging copies were written inside the run dir, not under the home folder."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", "unused")
    monkeypatch.delenv("WANDB_DATA_DIR")  # vid3d chooses (restored after the test)
    src = tmp_path / "machine_a" / "eval"
    clips = [_clip(0), _clip(1)]
    out = run_camera_eval(clips, {"gt_video": gt_video_method, "dark": _dark}, HalfFail(), src,
                          progress=False, save_videos=True)
    recs = read_records(src / "records.shard0of1.jsonl")
    log_to_wandb(_cfg(), src, out["results"], recs, {c.clip_id: c for c in clips})
    assert Path(os.environ["WANDB_DATA_DIR"]) == src.resolve() / "wandb" / "data"
    staged = list((src / "wandb" / "data" / "artifacts" / "staging").iterdir())
    assert staged  # the tables' staged copies live with the run

    # W&B's service process writes the log's last (exit) record after finish() returns: copy a complete log
    (src_log,) = list((src / "wandb").glob("offline-run-*/*.wandb"))
    wandb_records.complete_records(src_log)
    dst = tmp_path / "machine_b" / "eval"
    shutil.copytree(src, dst)
    shutil.rmtree(tmp_path / "machine_a")
    (run_dir,) = list((dst / "wandb").glob("offline-run-*"))
    rows = wandb_records.history(next(run_dir.glob("*.wandb")))
    paths = {p for row in rows for p in wandb_records.media_paths(row)}
    assert {p.split("/")[1] for p in paths} == {"videos", "images", "table"}
    for p in paths:
        assert (run_dir / "files" / p).is_file(), p
    videos = [p for p in paths if p.endswith(".mp4")]
    assert len(videos) == 3  # 2 dark + 1 gt_video within max_media_rows=3
    assert iio.imread(run_dir / "files" / videos[0], plugin="pyav").shape == (N, H, W, 3)


def test_media_table_cells(tmp_path):
    import wandb

    from vid3d.evaluation.wandb_log import sample_media

    clips = [_clip(0)]
    run_camera_eval(clips, {"gt_video": gt_video_method, "dark": _dark}, HalfFail(), tmp_path,
                    progress=False, save_videos=True)
    recs = read_records(tmp_path / "records.shard0of1.jsonl")
    table, videos, plots = sample_media(tmp_path, recs, {c.clip_id: c for c in clips}, max_media_rows=10)
    by_method = {row[0]: dict(zip(MEDIA_COLUMNS, row)) for row in table.data}
    assert {v._caption for v in videos} == {by_method[m]["caption"] for m in ("gt_video", "dark")}
    for video in videos:
        assert isinstance(video, wandb.Video) and video._path.endswith(".mp4")
        assert iio.imread(video._path, plugin="pyav").shape == (N, H, W, 3)
    assert len(plots) == 2 and all(isinstance(p, wandb.Image) for p in plots)
    assert by_method["dark"]["success"] is False and by_method["gt_video"]["success"] is True
    assert (tmp_path / by_method["dark"]["video_file"]).is_file()
    # beyond max_media_rows: numbers kept, no media
    table, videos, plots = sample_media(tmp_path, recs, {c.clip_id: c for c in clips}, max_media_rows=1)
    assert len(table.data) == 2 and len(videos) == 1 and len(plots) == 1


def test_trajectory_plot_of_partial_and_failed_records():
    from vid3d.evaluation.wandb_log import trajectory_image

    clip = _clip(3)
    est = clip.gt_c2w.copy()
    est[2] = np.nan
    rec = {"method": "m", "clip_id": "c", "trial": 0, "success": True, "est_c2w": est.tolist()}
    img = trajectory_image(rec, clip.gt_c2w)
    assert img.dtype == np.uint8 and img.shape == (360, 360, 3)
    failed = {"method": "m", "clip_id": "c", "trial": 0, "success": False, "est_c2w": None}
    assert trajectory_image(failed, clip.gt_c2w).shape == (360, 360, 3)
    assert trajectory_image(failed, None) is None


def test_random_init_estimator_rows_are_labelled(tmp_path, offline_wandb):
    """evaluate(cfg) with pose=dust3r pose.random_init=true on a tiny synthetic set: every row and the
    protocol say random-init, so the numbers cannot pass for DUSt3R's."""
    pytest.importorskip("mini_dust3r")
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.data.synthetic import build_synthetic_dataset
    from vid3d.tasks.evaluate import evaluate

    root = build_synthetic_dataset(tmp_path / "set", num_train=0, num_test=1, num_frames=8, height=48,
                                   width=64)
    overrides = [
        "data=re10k", f"data.root={root}", "data.num_frames=3", "data.height=32", "data.width=48",
        "pose=dust3r", "pose.random_init=true", "pose.image_size=32", "pose.niter=5", "pose.known_focal=true",
        f"paths.output_dir={tmp_path / 'out'}", "torch_threads=1",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=overrides)
    res = evaluate(cfg)
    assert set(res["results"]) == {"gt_video [random-init poses]", "static_first_frame [random-init poses]"}
    payload = json.loads((tmp_path / "out" / "eval" / "results.json").read_text())
    assert "NOT DUSt3R" in payload["protocol"]["WARNING"]
    assert payload["protocol"]["pose_estimator"]["weights"] == "random-init (not DUSt3R)"
    assert res["results_md"].startswith("WARNING:")
    assert (tmp_path / "out" / "eval" / "videos").is_dir()
