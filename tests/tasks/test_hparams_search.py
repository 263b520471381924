"""hparams_search=optuna: the config, the objective train.py returns, and a tiny Optuna sweep."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _tiny import TINY_SWEEP
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.evaluation.aggregate import aggregate, write_results
from vid3d.tasks.objective import objective_from_results, sweep_objective

ROOT = Path(__file__).resolve().parents[2]
SEARCHED = {"module.optimizer.lr": (1e-6, 1e-3), "model.attention.band_width": (0.5, 4.0)}
TINY = TINY_SWEEP


def test_optuna_config_composes_and_searches_real_keys():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=optuna"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    assert sweeper.max_failure_rate == 1.0  # a trial that raises is a FAIL in the study, not the sweep's end
    assert cfg.post_eval.benchmark == "camera" and cfg.model.name == "epipolar"
    assert set(sweeper.params) == set(SEARCHED)
    for key in sweeper.params:  # each searched key exists in the composed config (a rename fails here)
        assert OmegaConf.select(cfg, key) is not None, key


def record(method, clip, rot_pf, success=True):
    errors = {"rot_err_deg": 4 * rot_pf, "rot_err_deg_per_frame": rot_pf, "rot_err_rad": 0.0,
              "trans_err": 0.0, "cammc": 0.0}
    return {"method": method, "clip_id": clip, "trial": 0, "success": success,
            "errors": errors if success else None, "reason": None if success else "not all frames registered"}


def results_json(tmp_path, records, policy):
    write_results(tmp_path, aggregate(records, failure_policy=policy), {"failure_policy": policy})
    return json.loads((tmp_path / "results.json").read_text())["results"]


def test_objective_is_the_model_rows_rot_err_per_frame_after_the_failure_policy(tmp_path):
    records = [
        record("epipolar", "a", 1.0),
        record("epipolar", "b", 0.0, success=False),
        record("gt_video", "a", 0.1),
        record("gt_video", "b", 4.0),
        record("static_first_frame", "a", 0.0, success=False),
    ]
    out = objective_from_results(results_json(tmp_path, records, "exclude"))
    assert out == {"value": 1.0, "metric": "rot_err_deg.per_frame_mean", "row": "epipolar", "n": 1,
                   "failures": 1, "failed": False}  # the failed clip is left out of the mean
    # worst: the failed clip scores the worst successful per-frame value of any row (4.0)
    assert objective_from_results(results_json(tmp_path, records, "worst"))["value"] == pytest.approx(2.5)


def test_objective_of_an_all_failed_model_is_the_failed_value_not_nan(tmp_path):
    records = [record("plucker [random-init poses]", "a", 0.0, success=False),
               record("gt_video [random-init poses]", "a", 0.2)]
    results = results_json(tmp_path, records, "exclude")
    assert results["plucker [random-init poses]"]["metrics"]["rot_err_deg"]["per_frame_mean"] is None  # NaN
    out = objective_from_results(results)
    assert (out["value"], out["failed"], out["row"]) == (180.0, True, "plucker [random-init poses]")
    assert objective_from_results(results, failed_value=1e3)["value"] == 1e3
    # in memory (evaluate's return) the same row holds NaN, not None
    nan_row = {"m": {"n": 0, "metrics": {"rot_err_deg": {"per_frame_mean": math.nan}}}}
    assert objective_from_results(nan_row)["value"] == 180.0
    assert objective_from_results({"gt_video": {}})["row"] is None  # no model row: failed too


def test_sweep_objective_scores_the_returned_results_and_writes_objective_json(tmp_path):
    """The results the post-train evaluation returned (in memory, not its results.json) give the objective."""
    (tmp_path / "eval").mkdir()
    results = aggregate([record("rt", "a", 0.75), record("gt_video", "a", 0.1)], failure_policy="exclude")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["post_eval=camera"])
    out = {"eval_dir": str(tmp_path / "eval"), "eval_results": results}
    assert sweep_objective(cfg, out) == pytest.approx(0.75)
    assert json.loads((tmp_path / "eval" / "objective.json").read_text())["row"] == "rt"
    assert not (tmp_path / "eval" / "results.json").exists()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        assert sweep_objective(compose("train"), {"run_dir": "x"}) is None  # no post_eval: nothing to return


@pytest.mark.slow
def test_tiny_optuna_sweep_writes_best_params(tmp_path):
    """3 trials of train (2 steps) -> score -> objective; one trial raises and the search goes on."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    env = {**os.environ, "VID3D_DATA_DIR": str(tmp_path / "data"), "WANDB_MODE": "offline"}
    args = [
        sys.executable, "train.py", "hparams_search=optuna", "hydra.sweeper.n_trials=3",
        # an extra searched choice: trials that draw "bogus" raise (not an int) and are FAIL in the study
        "post_eval.max_clips=choice(1,bogus)",
        *TINY, f"hydra.sweep.dir={sweep}",
        # 3 training clips; at fraction 0.5 (seed 0) one is held out for the objective, two train
        "data.build.num_train=3", "data.datamodule.train_dataset.holdout.fraction=0.5",
    ]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["name"] == "optuna" and set(best["best_params"]) == {*SEARCHED, "post_eval.max_clips"}
    for key, (lo, hi) in SEARCHED.items():
        assert lo <= best["best_params"][key] <= hi
    values, drawn = {}, set()
    for job in sorted(p for p in sweep.iterdir() if p.name.isdigit()):
        lines = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        overrides = dict(o.split("=", 1) for o in lines)
        drawn.add(overrides["post_eval.max_clips"])
        objective = job / "eval" / "objective.json"
        assert objective.is_file() == (overrides["post_eval.max_clips"] == "1"), job
        if objective.is_file():
            values[job.name] = json.loads(objective.read_text())["value"]
    assert drawn == {"1", "bogus"}  # (seeded sampler) at least one trial failed, and the sweep finished
    assert best["best_value"] == pytest.approx(min(values.values()))
    assert "Failed experiment" in proc.stdout + proc.stderr


def test_objective_is_scored_on_held_out_training_clips_not_test(tmp_path):
    from hydra.utils import instantiate

    from vid3d.tasks.post_eval import compose_eval_config

    root = build_synthetic_dataset(tmp_path / "set", num_train=12, num_test=2, num_frames=6, height=32,
                                   width=48)
    base = ["data=re10k", f"data.root={root}", "data.num_frames=2", "data.height=32", "data.width=48",
            "post_eval=camera", f"paths.output_dir={tmp_path}"]
    holdout = "+data.datamodule.train_dataset.holdout={fraction: 0.25, seed: 0, keep: rest}"
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*base, holdout, "post_eval.split=validation"])
        ecfg = compose_eval_config(cfg, tmp_path / "last.ckpt", tmp_path / "eval")
        train_ids = {c.clip_id for c in instantiate(cfg.data.datamodule.train_dataset).clips}
        val_ids = {c.clip_id for c in instantiate(ecfg.data.test_dataset).clips}
        test_ids = {c.clip_id for c in instantiate(cfg.data.test_dataset).clips}
        assert val_ids and not val_ids & train_ids and not val_ids & test_ids
        assert len(train_ids) + len(val_ids) == 12
        # without a hold-out there is nothing to validate on: a clear error, not the test split
        cfg = compose("train", overrides=[*base, "post_eval.split=validation"])
        with pytest.raises(ValueError, match="holdout"):
            compose_eval_config(cfg, tmp_path / "last.ckpt", tmp_path / "eval")
        # the optuna search config turns both on
        cfg = compose("train", overrides=["hparams_search=optuna"])
        assert cfg.post_eval.split == "validation"
        assert cfg.data.datamodule.train_dataset.holdout.keep == "rest"
