"""A run never reads back a file it has written: results flow back in memory (records, tables, the sweep
objective), and only records of an earlier, interrupted run are read, once, at the start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _readback import ReadBackWatch
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.evaluation.camera_runner import gt_video_method, run_camera_eval, static_first_frame_method
from vid3d.evaluation.pose import GTPoseEstimator
from vid3d.evaluation.records import read_records
from vid3d.evaluation.runner import shard_file


def _eval_cfg(overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("eval", overrides=overrides)


def test_the_watch_sees_a_read_back(tmp_path, monkeypatch):
    """Known case: the watch flags a file read after it was written, and not one read before."""
    before = tmp_path / "before.txt"
    before.write_text("x")
    watch = ReadBackWatch(tmp_path).install(monkeypatch)
    before.read_text()
    (tmp_path / "after.txt").write_text("y")
    (tmp_path / "after.txt").read_text()
    monkeypatch.undo()
    assert watch.read_back == [(tmp_path / "after.txt").resolve()]


def test_camera_runner_returns_its_records_and_resumes_from_disk_once(tmp_path, monkeypatch, eval_clips):
    clips = eval_clips()
    methods = {"gt_video": gt_video_method, "static": static_first_frame_method}
    # an interrupted run: the first clip only
    run_camera_eval(clips[:1], methods, GTPoseEstimator(), tmp_path, progress=False)
    watch = ReadBackWatch(tmp_path).install(monkeypatch)
    out = run_camera_eval(clips, methods, GTPoseEstimator(), tmp_path, progress=False, save_videos=True)
    monkeypatch.undo()
    assert watch.read_back == []
    records_file = shard_file(tmp_path, 0, 1).resolve()
    assert watch.reads.count(records_file) == 1  # the earlier run's records, loaded once at the start
    assert (out["n_new"], out["n_skipped"]) == (4, 2)
    # the records it returns are the file's, in the files' form (JSON values: lists, None for NaN)
    on_disk = sorted(read_records(records_file), key=lambda r: (r["method"], r["clip_id"], r["trial"]))
    assert out["records"] == on_disk
    assert (tmp_path / "results.md").read_text() == out["markdown"]
    assert out["table"].rows[0][0] == "gt_video" and len(out["table"].rows) == 2
    assert "Protocol:" not in out["summary_md"] and out["markdown"].startswith(out["summary_md"])


def test_camera_benchmark_task_reads_no_output_back(tmp_path, monkeypatch, offline_wandb, capsys):
    import vid3d.tasks.camera_benchmark as cb
    from vid3d.tasks.evaluate import evaluate

    root = build_synthetic_dataset(tmp_path / "set", num_train=0, num_test=2, num_frames=12, height=72,
                                   width=128)
    cfg = _eval_cfg(["data=re10k", f"data.root={root}", "data.num_frames=4", "data.height=64",
                     "data.width=96", "pose=gt", f"paths.run_dir={tmp_path / 'run'}", "torch_threads=1"])
    logged = {}
    real_log = cb.log_to_wandb
    monkeypatch.setattr(cb, "log_to_wandb", lambda *a, **k: (logged.update(records=a[3]), real_log(*a, **k)))
    watch = ReadBackWatch(tmp_path / "run").install(monkeypatch)
    res = evaluate(cfg)
    monkeypatch.undo()
    assert watch.read_back == [], [str(p) for p in watch.read_back]
    printed = capsys.readouterr().out
    assert res["results_md"] == (tmp_path / "run" / "results.md").read_text()
    assert res["summary_md"] in printed and "Protocol:" not in res["summary_md"]
    assert len(logged["records"]) == 4 == len(read_records(tmp_path / "run" / "records.shard0of1.jsonl"))


def test_sparse_benchmark_task_reads_no_output_back(tmp_path, monkeypatch, offline_wandb):
    from test_eval_sparse import H, W, plane_clip

    from vid3d.tasks.evaluate import evaluate

    root = tmp_path / "plane"
    plane_clip(root, "plane_a", 0)
    cfg = _eval_cfg(["overlap=small", "data=re10k", f"data.root={root}", f"data.height={H}",
                     f"data.width={W}", f"paths.run_dir={tmp_path / 'run'}",
                     f"overlap.cache_dir={tmp_path / 'cache'}", "overlap.gaps=[12,15]",
                     "overlap.num_targets=2", "metrics.lpips.net=null", "overlap.wandb_images=0"])
    watch = ReadBackWatch(tmp_path / "run").install(monkeypatch)
    res = evaluate(cfg)
    monkeypatch.undo()
    assert watch.read_back == [], [str(p) for p in watch.read_back]
    assert res["results_md"] == (tmp_path / "run" / "results.md").read_text()
    assert res["results"]["nearest_context"]["n"] == 2


def test_sweep_objective_comes_from_the_returned_results(tmp_path, monkeypatch):
    """post_eval's objective is computed from the evaluation's return value, not its results.json."""
    from omegaconf import OmegaConf

    from vid3d.tasks.objective import sweep_objective

    results = {"model": {"metrics": {"rot_err_deg": {"per_frame_mean": 2.5}}, "n": 3, "failures": 0},
               "gt_video": {"metrics": {"rot_err_deg": {"per_frame_mean": 0.0}}, "n": 3, "failures": 0}}
    cfg = OmegaConf.create({"post_eval": {"objective": {"metric": "rot_err_deg", "failed_value": 180.0}}})
    watch = ReadBackWatch(tmp_path).install(monkeypatch)
    value = sweep_objective(cfg, {"eval_dir": str(tmp_path), "eval_results": results})
    monkeypatch.undo()
    assert value == pytest.approx(2.5) and watch.reads == []
    assert json.loads(Path(tmp_path / "objective.json").read_text())["row"] == "model"
