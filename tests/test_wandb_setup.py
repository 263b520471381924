"""vid3d.wandb_setup.prepare_logger: the one W&B set-up of training, evaluation and the sweep report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vid3d.wandb_setup import WANDB_ID_FILE, prepare_logger, resolve_wandb_mode

NODE = {"project": "vid3d-test", "mode": "auto", "group": None}


@pytest.fixture
def no_account(tmp_path, monkeypatch):
    """No W&B credentials, no CI flag, no WANDB_MODE; W&B's folders inside tmp_path."""
    for var in ("WANDB_API_KEY", "WANDB_MODE", "CI", "WANDB_DATA_DIR", "NETRC", "RANK", "LOCAL_RANK",
                "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc entry
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    return tmp_path


def test_mode_is_offline_without_an_account_and_in_ci(no_account, monkeypatch):
    run = prepare_logger(NODE, no_account / "run")
    assert run.mode == "offline" and run.init_kwargs()["mode"] == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"
    monkeypatch.setenv("CI", "1")
    assert prepare_logger(NODE, no_account / "run").mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")  # the environment wins over the node
    assert prepare_logger({**NODE, "mode": "online"}, no_account / "run").mode == "disabled"


def test_everything_stays_in_the_run_dir(no_account):
    run_dir = no_account / "run"
    run = prepare_logger(NODE, run_dir)
    assert run.dir == run_dir and run.init_kwargs()["dir"] == str(run_dir)
    assert Path(os.environ["WANDB_DATA_DIR"]) == run_dir.resolve() / "wandb" / "data"


def test_run_id_is_recorded_first_and_reused_in_the_same_run_dir(no_account):
    first = prepare_logger(NODE, no_account / "a")
    assert first.resume is None and len(first.id) == 8
    assert (no_account / "a" / WANDB_ID_FILE).read_text() == first.id + "\n"  # before any run starts
    again = prepare_logger(NODE, no_account / "a")  # a resumed training, a rerun evaluation
    assert (again.id, again.resume) == (first.id, "allow")
    other = prepare_logger(NODE, no_account / "b")  # another run dir: another W&B run
    assert other.id != first.id
    chosen = prepare_logger({**NODE, "id": "abc12345", "resume": "must"}, no_account / "a")
    assert (chosen.id, chosen.resume) == ("abc12345", "must")
    assert (no_account / "a" / WANDB_ID_FILE).read_text() == "abc12345\n"


def test_only_rank_zero_records_the_run_id(no_account, monkeypatch):
    """The other processes of a DDP / SLURM job start no W&B run: they leave the run dir's id alone."""
    monkeypatch.setenv("SLURM_PROCID", "1")
    prepare_logger(NODE, no_account / "r")
    assert not (no_account / "r" / WANDB_ID_FILE).exists()
    monkeypatch.setenv("SLURM_PROCID", "0")
    first = prepare_logger(NODE, no_account / "r")
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert prepare_logger(NODE, no_account / "r").id == first.id  # read, not rewritten
    assert (no_account / "r" / WANDB_ID_FILE).read_text() == first.id + "\n"


def test_group_is_the_multirun_sweep_unless_named(no_account):
    job = {"name": "train", "sweep_dir": "/o/train/multirun/2026-01-01_10-00-00", "overrides": ["model=svd"],
           "override_dirname": "model=svd", "multirun": True}
    assert prepare_logger(NODE, no_account / "r", job=job).group == "train_2026-01-01_10-00-00"
    assert prepare_logger({**NODE, "group": "mine"}, no_account / "r", job=job).group == "mine"
    assert prepare_logger(NODE, no_account / "r", job={**job, "multirun": False}).group is None
    assert prepare_logger(NODE, no_account / "r").group is None  # no Hydra runtime


def test_offline_runs_started_twice_in_a_run_dir_are_one_wandb_run(no_account):
    """Known case with W&B itself (offline): both starts in one run dir write offline-run-*-<the same id>,
    which `wandb sync` uploads as one run; a second run dir gets its own."""
    import wandb

    ids = []
    for run_dir in ("a", "a", "b"):
        settings = prepare_logger(NODE, no_account / run_dir)
        run = wandb.init(**settings.init_kwargs(job_type="eval"))
        run.log({"x": 1.0})
        ids.append(run.id)
        run.finish()
    assert ids[0] == ids[1] != ids[2]
    offline = sorted((no_account / "a" / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(p.name.endswith(ids[0]) or f"-{ids[0]}" in p.name for p in offline)
    assert list((no_account / "b" / "wandb").glob(f"offline-run-*-{ids[2]}"))


def test_training_logger_is_prepared_the_same_way(no_account):
    from vid3d.training.loggers import make_wandb_logger

    first = make_wandb_logger(project="vid3d-test", save_dir=str(no_account / "t"), mode="offline")
    assert first.version == (no_account / "t" / WANDB_ID_FILE).read_text().strip()
    again = make_wandb_logger(project="vid3d-test", save_dir=str(no_account / "t"), mode="offline")
    assert again.version == first.version
