"""``train.py resume=<run>`` trains with the run's own config plus the new overrides (issue 34, point 3):
the layering rules of vid3d/tasks/resume_config.py on composed configs, and the README's command end to
end on a run launched with ``experiment=demo`` (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vid3d.config import CONFIG_DIR
from vid3d.errors import InputError
from vid3d.tasks.resume_config import config_diff, run_choices, run_config_file, with_run_config

ROOT = Path(__file__).resolve().parents[2]


def cfg(overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def test_overrides_are_layered_on_the_runs_own_config():
    own = cfg(["experiment=demo", "model=epipolar", "trainer.max_steps=7", "data.height=32"])
    argv = ["resume=/runs/a", "trainer.max_steps=20", "trainer=gpu", "~torch_threads", "+extra.note=hi"]
    now = cfg(argv[:3] + ["+extra.note=hi"])  # what Hydra composes from the defaults and this command
    merged = with_run_config(now, own, argv)
    # the run's recipe is kept: the demo experiment and its model, not today's defaults
    assert merged.task_name == "demo" and merged.model.name == own.model.name == "epipolar"
    assert merged.data.height == 32 and merged.module.trainable == ["all"]
    # the new overrides win: a value, a whole group node, a deletion, an added key
    assert merged.trainer.max_steps == 20 and merged.resume == "/runs/a"
    gpu = OmegaConf.to_container(now.trainer, resolve=False)
    assert OmegaConf.to_container(merged.trainer, resolve=False) == gpu
    assert "torch_threads" not in merged and merged.extra.note == "hi"
    assert OmegaConf.is_struct(merged)
    diff = config_diff(own, merged)
    assert "trainer.max_steps: 7 -> 20" in diff and "resume: None -> /runs/a" in diff
    assert "torch_threads: None -> (unset)" in diff and "extra.note: (unset) -> hi" in diff
    # the demo's interval curriculum spans the run (steps: ${oc.select:trainer.max_steps}): it follows
    assert "data.interval.steps: 7 -> 20" in diff
    assert not any(d.startswith(("model.", "task_name", "data.height", "module.")) for d in diff), diff


def test_refused_overrides_and_the_saved_config_file(tmp_path):
    own = cfg(["experiment=demo", "trainer.max_steps=7"])
    # the first launch's command repeated (docs/cluster.md): the run's own experiment changes nothing
    again = with_run_config(cfg(["experiment=demo"]), own, ["experiment=demo"], {"experiment": "demo"})
    assert config_diff(own, again) == []
    with pytest.raises(InputError, match=r"experiment=demo: resume takes the run's own config"):
        with_run_config(cfg(["experiment=demo"]), own, ["experiment=demo"], {"experiment": None})
    # choices unknown (a run resumed into its own folder as hydra.run.dir): skipped, with a warning
    assert config_diff(own, with_run_config(cfg(["experiment=demo"]), own, ["experiment=demo"], None)) == []
    assert run_choices(tmp_path) == {}
    with pytest.raises(InputError, match=r"a sweep cannot be applied"):
        with_run_config(own, own, ["seed=1,2"])
    assert run_config_file(tmp_path) is None
    (tmp_path / "config.yaml").write_text("a: 1\n")
    assert run_config_file(tmp_path) == tmp_path / "config.yaml"
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("a: 1\n")
    assert run_config_file(tmp_path) == tmp_path / ".hydra" / "config.yaml"  # unresolved, as composed


@pytest.mark.slow
def test_readme_resume_form_continues_a_demo_run(tmp_path):
    """A run launched with experiment=demo (and data/size overrides) resumed with only
    ``resume=<run> trainer.max_steps=4``: the same model trains on (no "checkpoint lacks trained weights"),
    in the run's directory, with the diff printed."""
    from vid3d.data.synthetic import build_synthetic_dataset
    from vid3d.models.checkpoint import load_checkpoint_file

    root = build_synthetic_dataset(tmp_path / "set", num_train=3, num_test=1, num_frames=8, height=36,
                                   width=64)
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    run = tmp_path / "run"
    first = [
        "experiment=demo", "data=re10k", f"data.root={root}", "data.num_frames=4", "data.height=32",
        "data.width=48", "trainer.max_steps=2", "logger=csv", "torch_threads=1",
        "callbacks.camera_gap.every_n_steps=0", "callbacks.media.every_n_steps=0",
        "trainer.enable_progress_bar=false", f"hydra.run.dir={run}",
    ]
    run_kw = dict(cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    p = subprocess.run([sys.executable, "train.py", *first], **run_kw)
    assert p.returncode == 0, p.stderr[-3000:]
    again = [f"resume={run}", "trainer.max_steps=4", f"hydra.run.dir={tmp_path / 'r2'}"]
    p = subprocess.run([sys.executable, "train.py", *again], **run_kw)
    assert p.returncode == 0, p.stderr[-3000:]
    log = p.stdout + p.stderr
    assert "trainer.max_steps: 2 -> 4" in log and f"resume: None -> {run}" in log
    # the printed diff: the two overrides, and the demo curriculum's length that follows max_steps only
    head = log.index("resume: the run's own config")
    changed = []
    for line in log[head:].splitlines()[1:]:  # the diff lines follow the header, indented
        if not line.startswith("  "):
            break
        changed.append(line.strip().split(":")[0])
    assert set(changed) <= {"resume", "trainer.max_steps", "data.interval.steps",
                            "data.datamodule.train_dataset.interval.steps"}, changed
    assert load_checkpoint_file(run / "checkpoints" / "last.ckpt")["global_step"] == 4
    assert run_choices(run)["experiment"] == "demo"
    resumed = OmegaConf.load(run / "config.resume1.yaml")
    assert resumed.task_name == "demo" and resumed.data.height == 32 and resumed.data.root == str(root)
