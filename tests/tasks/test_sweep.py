"""Train -> score in one job (post_eval=camera), one W&B group per sweep, and the merged sweep table."""

import csv
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
from vid3d.tasks.post_eval import compose_eval_config
from vid3d.tasks.sweep import override_columns, sweep_group

ROOT = Path(__file__).resolve().parents[2]
TINY = TINY_SWEEP


def train_cfg(overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def test_override_columns_keep_variants_only():
    cols = override_columns(
        [
            "model=svd",
            "+eval.x=1",
            "data/interval=uniform",
            "paths.output_dir=/o",
            "hydra.run.dir=/r",
            "resume=/c",
            "~logger",
            "module.optimizer.lr=1e-4",
        ]
    )
    assert cols == {"model": "svd", "eval.x": "1", "data/interval": "uniform", "module.optimizer.lr": "1e-4"}


def test_sweep_group_is_per_sweep_and_null_outside_multirun():
    job = {"name": "train", "sweep_dir": "/o/train/multirun/2026-01-01_10-00-00", "multirun": True}
    assert sweep_group(job) == "train_2026-01-01_10-00-00"
    assert sweep_group({**job, "sweep_dir": "/o/train/multirun/2026-01-02_09-00-00"}) != sweep_group(job)
    assert sweep_group({**job, "multirun": False}) is None
    assert sweep_group(None) is None  # compose API: no Hydra runtime


def test_eval_config_uses_the_training_jobs_data(tmp_path):
    cfg = train_cfg(
        [
            "post_eval=camera",
            "post_eval.pose=gt",
            "post_eval.sampler_steps=3",
            "post_eval.max_clips=2",
            f"paths.output_dir={tmp_path}",
            "seed=7",
            *TINY[:9],
        ]
    )
    ecfg = compose_eval_config(cfg, tmp_path / "last.ckpt", tmp_path / "run" / "eval")
    assert ecfg.benchmark._target_.endswith("CameraBenchmark")
    assert ecfg.seed == 7 and ecfg.ckpt == str(tmp_path / "last.ckpt")
    assert ecfg.pose._target_.endswith("GTPoseEstimator")
    assert ecfg.sampler.num_steps == 3 and ecfg.eval.max_clips == 2
    assert ecfg.paths.run_dir == str(tmp_path / "run" / "eval")
    assert (ecfg.data.height, ecfg.data.width, ecfg.data.num_frames) == (64, 96, 4)
    assert ecfg.data.root == OmegaConf.to_container(cfg.data, resolve=True)["root"]
    assert ecfg.data.root.endswith("synthetic_2x12_72x128_s0")
    assert ecfg.wandb.group is None  # no Hydra runtime: no sweep group
    # data.* entries apply on top of the job's data; data=<option> replaces it
    cfg.post_eval.overrides = ["data.height=32", "eval.trials=2"]
    ecfg = compose_eval_config(cfg, "c", "o")
    assert (ecfg.data.height, ecfg.data.width, ecfg.eval.trials) == (32, 96, 2)
    cfg.post_eval.overrides = ["data=re10k", "data.root=/r"]
    ecfg = compose_eval_config(cfg, "c", "o")
    assert ecfg.data.root == "/r" and ecfg.data.height != 64


def run(args, env_extra, tmp):
    env = {
        **os.environ,
        "VID3D_DATA_DIR": str(tmp / "data"),
        "WANDB_MODE": "offline",
        "HYDRA_FULL_ERROR": "1",
        **env_extra,
    }
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


@pytest.mark.slow
def test_multirun_trains_scores_and_merges(tmp_path):
    sweep = tmp_path / "sweep"
    run(
        [
            sys.executable,
            "train.py",
            "-m",
            "model=plucker,svd",
            "post_eval=camera",
            *TINY,
            f"hydra.sweep.dir={sweep}",
            "hydra.sweep.subdir=${hydra.job.num}",
        ],
        {},
        tmp_path,
    )
    groups = set()
    for job, model in (("0", "plucker"), ("1", "svd")):
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
        assert (sweep / job / "eval" / "results.json").is_file()
        assert list((sweep / job / "wandb").glob("offline-run-*"))  # the training run
        assert list((sweep / job / "eval" / "wandb").glob("offline-run-*"))  # the evaluation run
        ecfg = yaml.safe_load((sweep / job / "eval" / "config.yaml").read_text())
        assert ecfg["ckpt"] == str(sweep / job / "checkpoints" / "last.ckpt")
        assert ecfg["sweep"]["overrides"]["model"] == model
        groups.add(ecfg["wandb"]["group"])
        (train_run,) = (sweep / job / "wandb").glob("offline-run-*/run-*.wandb")
        assert b"train_sweep" in train_run.read_bytes()  # the training run is in the same group
    assert groups == {"train_sweep"}  # one group for the sweep: <job name>_<sweep dir name>

    proc = run([sys.executable, "-m", "vid3d.report", str(sweep)], {}, tmp_path)
    rows = list(csv.DictReader((sweep / "report" / "report.csv").open()))
    model_rows = {r["model"]: r for r in rows if r["method"] == r["model"]}
    assert set(model_rows) == {"plucker", "svd"}
    for r in model_rows.values():  # the GT "estimator" returns the GT poses: ~zero error, no failures
        assert (r["n"], r["failures"]) == ("1", "0")
        assert float(r["rot_err_deg_mean"]) == pytest.approx(0.0, abs=0.1)
        assert float(r["trans_err_mean"]) == pytest.approx(0.0, abs=1e-4)
    assert {r["method"] for r in rows} == {"plucker", "svd", "gt_video", "static_first_frame"}
    assert "| 0/eval | plucker | plucker | 1 | 0 |" in proc.stdout
    assert (sweep / "report" / "report.tex").is_file() and (sweep / "report" / "report.md").is_file()
    assert list((sweep / "report" / "wandb").glob("offline-run-*"))

