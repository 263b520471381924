"""The published camera models through the real entry points: the converter CLI, one training step of
``model=cameractrl_svd`` / ``model=motionctrl_svd`` (tiny random-init backbone) and ``eval.py`` on a converted
random-weight release, on the embedded synthetic set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _published_fakes import fake_cameractrl, fake_motionctrl
from _tiny import TINY_DATA

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FAKES = {"cameractrl": fake_cameractrl, "motionctrl": fake_motionctrl}
MODELS = {"cameractrl": "cameractrl_svd", "motionctrl": "motionctrl_svd"}


def run(args: list[str], tmp: Path, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "VID3D_DATA_DIR": str(tmp / "data"), "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


@pytest.mark.parametrize("kind", ["cameractrl", "motionctrl"])
def test_convert_cli_then_eval_runs_the_camera_benchmark(kind: str, tmp_path) -> None:
    FAKES[kind](tmp_path / "released.ckpt")
    proc = run(
        [
            "-m",
            "vid3d.convert",
            kind,
            str(tmp_path / "released.ckpt"),
            str(tmp_path / "c.ckpt"),
            "model/backbone=tiny",
        ],
        tmp_path,
    )
    assert f"model={MODELS[kind]}" in proc.stdout
    run(
        [
            "eval.py",
            f"ckpt={tmp_path / 'c.ckpt'}",
            "pose=gt",
            "sampler.num_steps=2",
            "allow_resize=true",  # the converted release records its training size, 320x576
            f"hydra.run.dir={tmp_path}/eval",
            *TINY_DATA,
        ],
        tmp_path,
    )
    rows = json.loads((tmp_path / "eval" / "results.json").read_text())["results"]
    assert set(rows) == {MODELS[kind], "gt_video", "static_first_frame"}
    assert rows[MODELS[kind]]["failures"] == 0  # GT "estimator": every generated video gets its poses


@pytest.mark.parametrize("kind", ["cameractrl", "motionctrl"])
def test_one_training_step_of_the_published_model(kind: str, tmp_path) -> None:
    run(
        [
            "train.py",
            f"model={MODELS[kind]}",
            "model/backbone=tiny",
            "trainer.max_steps=1",
            "module.warmup_steps=1",
            "logger=csv",
            f"hydra.run.dir={tmp_path}/train",
            *TINY_DATA,
        ],
        tmp_path,
    )
    from vid3d.models.checkpoint import load_checkpoint_file

    ckpt = load_checkpoint_file(tmp_path / "train" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 1
    cam = [k for k in ckpt["state_dict"] if k.startswith("model.camera_encoder.")]
    assert cam and ckpt["vid3d"]["model_config"]["name"] == MODELS[kind]


def test_convert_cli_refuses_pickle_in_one_line(tmp_path) -> None:
    import argparse

    torch.save({"pose_encoder_state_dict": {}, "cfg": argparse.Namespace()}, tmp_path / "p.ckpt")
    proc = run(
        ["-m", "vid3d.convert", "cameractrl", str(tmp_path / "p.ckpt"), str(tmp_path / "o.ckpt")],
        tmp_path,
        ok=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "p.ckpt: refused: loading it needs pickle" in lines[0], proc.stderr
    assert not (tmp_path / "o.ckpt").exists()


def test_converted_published_models_share_one_sweep_report(tmp_path) -> None:
    """Both converted releases evaluated in one multirun (as a user compares them), then the sweep report:
    one table with a row per published model beside the reference rows, the checkpoint as a column."""
    ckpts = []
    for kind in ("cameractrl", "motionctrl"):
        FAKES[kind](tmp_path / f"{kind}_released.ckpt")
        out = tmp_path / f"{kind}.ckpt"
        run(["-m", "vid3d.convert", kind, str(tmp_path / f"{kind}_released.ckpt"), str(out),
             "model/backbone=tiny"], tmp_path)
        ckpts.append(str(out))
    sweep = tmp_path / "sweep"
    run(["eval.py", "-m", f"ckpt={','.join(ckpts)}", "pose=gt", "sampler.num_steps=2", "allow_resize=true",
         f"hydra.sweep.dir={sweep}", *TINY_DATA], tmp_path)
    run(["-m", "vid3d.report", str(sweep), "--no-wandb"], tmp_path)
    report = json.loads((sweep / "report" / "report.json").read_text())
    text = json.dumps(report)
    for model in MODELS.values():
        assert f'"{model}"' in text
    md = (sweep / "report" / "report.md").read_text()
    assert "cameractrl_svd" in md and "motionctrl_svd" in md and "gt_video" in md
