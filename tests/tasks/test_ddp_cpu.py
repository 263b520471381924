"""Two-process DDP on the CPU (gloo), through train.py: the multi-process path really runs (issue 18)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _train(out: Path, data: Path, steps: int, extra: list[str] = ()) -> None:
    args = [
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32",
        "model=plucker",
        "data.build.num_train=6",
        "data.build.num_test=1",
        "data.build.num_frames=24",
        "data.build.height=72",
        "data.build.width=128",
        "data.num_frames=3",
        "data.height=32",
        "data.width=48",
        "data.datamodule.num_workers=0",
        "data.datamodule.batch_size=1",
        # the stride grows 2 -> 6 over the run: both ranks must see the same value at each step
        "data.interval.start=2",
        "data.interval.end=6",
        "data.interval.steps=6",
        f"trainer.max_steps={steps}",
        "module.warmup_steps=1",
        "logger=csv",
        "trainer.log_every_n_steps=1",
        "torch_threads=1",
        "callbacks.media.every_n_steps=0",
        "callbacks.checkpoint.every_n_train_steps=3",
        "+callbacks.probe._target_=_ddp_probe.BatchProbe",
        f"+callbacks.probe.out={out}/probe",
        f"hydra.run.dir={out}/run",
        *extra,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "VID3D_DATA_DIR": str(data),
        "WANDB_MODE": "offline",
    }
    proc = subprocess.run(
        [sys.executable, "train.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def _probe(out: Path) -> dict[int, list[dict]]:
    return {
        k: [json.loads(x) for x in (out / "probe" / f"rank{k}.jsonl").read_text().splitlines()]
        for k in (0, 1)
    }


def _losses(out: Path) -> dict[int, float]:
    rows = [r for f in (out / "run").rglob("metrics.csv") for r in csv.DictReader(open(f))]
    return {int(r["step"]): float(r["train/loss"]) for r in rows if r.get("train/loss")}


@pytest.mark.slow
def test_two_rank_ddp_on_cpu(tmp_path):
    data = tmp_path / "data"
    ref = tmp_path / "ref"
    _train(ref, data, 6)
    probe = _probe(ref)
    assert [r["step"] for r in probe[0]] == [r["step"] for r in probe[1]] == list(range(6))
    for a, b in zip(probe[0], probe[1], strict=True):
        assert set(a["clips"]).isdisjoint(b["clips"]), (a, b)  # each rank its own clips
    strides = [{r["step"]: r["strides"][0] for r in probe[k]} for k in (0, 1)]
    assert strides[0] == strides[1] and len(set(strides[0].values())) > 1  # one curriculum, and it moves
    # only rank 0 writes: one checkpoint folder, one CSV log
    ckpts = sorted(p.name for p in (ref / "run" / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt", "step_0000003.ckpt", "step_0000006.ckpt"], ckpts
    assert len(list((ref / "run").rglob("metrics.csv"))) == 1

    # resume from step 3: the same losses as the uninterrupted run from there on
    resumed = tmp_path / "resumed"
    branch = [f"resume={ref / 'run' / 'checkpoints' / 'step_0000003.ckpt'}", "resume_in_place=false"]
    _train(resumed, data, 6, branch)
    ref_loss, res_loss = _losses(ref), _losses(resumed)
    assert sorted(res_loss) == [3, 4, 5], res_loss
    for s, v in res_loss.items():
        assert v == pytest.approx(ref_loss[s], rel=1e-5, abs=1e-6), (s, v, ref_loss[s])
