"""Evaluation shards as one SLURM array: `eval.py -m hydra/launcher=slurm eval.shard=0,1,2,3 ...` composes,
and the submitit launcher submits the four shards as one array job (submitit faked: no sbatch needed)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[2]


def launcher(name, overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(name, overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True)
    return cfg.hydra.launcher


def test_slurm_resources_per_entry_point():
    ev = launcher("eval", ["eval.shard=3", "eval.num_shards=4"])
    assert (ev.gpus_per_node, ev.tasks_per_node, ev.nodes) == (1, 1, 1)  # one process per shard
    tr = launcher("train", [])
    assert (tr.gpus_per_node, tr.tasks_per_node) == (8, 8)  # one task per GPU for Lightning
    assert launcher("eval", ["hydra.launcher.gpus_per_node=2"]).gpus_per_node == 2  # the command line wins


# Runs eval.py's Hydra app with submitit's executor replaced by a recorder: what would be submitted.
DRIVER = textwrap.dedent(
    """
    import json, runpy, sys
    import submitit
    from hydra.core.utils import JobReturn, JobStatus

    seen = {"executors": [], "arrays": []}

    class FakeJob:
        def results(self):
            return [JobReturn(status=JobStatus.COMPLETED, _return_value=None)]

    class FakeExecutor:
        def __init__(self, cluster, folder, **kwargs):
            seen["executors"].append({"cluster": cluster, "folder": str(folder), **kwargs})

        def update_parameters(self, **params):
            seen["executors"][-1]["params"] = params

        def map_array(self, fn, overrides, *rest):
            jobs = []
            for o in overrides:
                cfg = fn.hydra_context.config_loader.load_sweep_config(fn.config, list(o))
                jobs.append({"overrides": list(o), "shard": cfg.eval.shard, "num_shards": cfg.eval.num_shards,
                             "ckpt": cfg.ckpt})
            seen["arrays"].append(jobs)
            return [FakeJob() for _ in overrides]

    submitit.AutoExecutor = FakeExecutor
    out, sys.argv = sys.argv[1], ["eval.py", *sys.argv[2:]]
    try:
        runpy.run_path("eval.py", run_name="__main__")
    finally:
        open(out, "w").write(json.dumps(seen))
    """
)


@pytest.mark.slow
def test_eval_shards_are_one_slurm_array(tmp_path):
    driver, seen_path, sweep = tmp_path / "driver.py", tmp_path / "seen.json", tmp_path / "sweep"
    driver.write_text(DRIVER)
    args = ["hydra/launcher=slurm", "eval.shard=0,1,2,3", "eval.num_shards=4", "ckpt=/runs/a/last.ckpt"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    env.pop("SLURM_PARTITION", None)
    proc = subprocess.run(
        [sys.executable, str(driver), str(seen_path), "-m", *args, f"hydra.sweep.dir={sweep}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    seen = json.loads(seen_path.read_text())
    (executor,) = seen["executors"]
    assert executor["cluster"] == "slurm" and executor["folder"] == f"{sweep}/.submitit/%j"
    assert executor["slurm_max_num_timeout"] == 0
    params = executor["params"]
    assert (params["gpus_per_node"], params["tasks_per_node"], params["nodes"]) == (1, 1, 1)
    assert params["slurm_partition"] == "gpu" and params["slurm_array_parallelism"] == 64
    (array,) = seen["arrays"]  # the whole multirun is one submission: one SLURM array of four tasks
    assert [(j["shard"], j["num_shards"]) for j in array] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert {j["ckpt"] for j in array} == {"/runs/a/last.ckpt"}


def test_post_eval_runs_on_rank_zero_only(monkeypatch, tmp_path):
    """A training job of 8 SLURM tasks (DDP) must score its checkpoint once, not once per rank."""
    from lightning.pytorch.utilities import rank_zero_only

    from vid3d.tasks import objective, post_eval

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["post_eval=camera"])
    train_out = {"last_checkpoint": str(tmp_path / "last.ckpt"), "run_dir": str(tmp_path)}
    monkeypatch.setattr(rank_zero_only, "rank", 3)
    assert post_eval.evaluate_after_training(cfg, train_out) == train_out  # nothing evaluated
    assert objective.sweep_objective(cfg, train_out) is None and not (tmp_path / "eval").exists()
