"""Training progress in a log: a line per progress.every_n optimiser steps against max_steps (not
Epoch 0/-2)."""

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.tasks.train import train

LINE = re.compile(
    r"^train (\d+)/(\d+) \((\d+\.\d)%\) \| [\d.]+ (?:step/s|s/step) \| elapsed \d+:\d\d:\d\d"
    r" \| ETA \d+:\d\d:\d\d \| epoch \d+, train/loss [-\d.e+]+$"
)


@pytest.fixture(scope="module")
def re10k_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("re10k") / "set"
    return build_synthetic_dataset(root, num_train=2, num_test=1, num_frames=8, height=72, width=128)


def test_training_prints_step_lines_when_stdout_is_not_a_terminal(re10k_root, tmp_path, capsys):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[
            "model=plucker", "data=re10k", f"data.root={re10k_root}", "data.num_frames=4", "data.height=64",
            "data.width=96", "data.datamodule.num_workers=0", "logger=csv", "module.warmup_steps=1",
            "torch_threads=1", "trainer.max_steps=5", f"paths.output_dir={tmp_path}",
            "progress.every_n=2", "progress.every_s=0", "callbacks.media.every_n_steps=0",
            "callbacks.camera_gap.every_n_steps=0",
        ])
    train(cfg)
    out = capsys.readouterr().out
    lines = [m for m in (LINE.match(s) for s in out.splitlines()) if m]
    # the first step, the multiples of 2, and the last: 1, 2, 4, 5 of 5
    assert [int(m.group(1)) for m in lines] == [1, 2, 4, 5], out
    assert all(int(m.group(2)) == 5 for m in lines)
    assert [float(m.group(3)) for m in lines] == [20.0, 40.0, 80.0, 100.0]
    assert lines[-1].group(0).split(" | ")[3] == "ETA 0:00:00"
    assert "Epoch 0/-2" not in out



def test_total_steps_from_max_steps_or_epochs():
    from types import SimpleNamespace

    from vid3d.training.progress_bar import total_steps

    assert total_steps(SimpleNamespace(max_steps=2000, estimated_stepping_batches=7.0)) == 2000
    # max_steps=-1: what the epochs give (Lightning's estimate), None when unbounded
    assert total_steps(SimpleNamespace(max_steps=-1, estimated_stepping_batches=30.0)) == 30
    assert total_steps(SimpleNamespace(max_steps=-1, estimated_stepping_batches=float("inf"))) is None
