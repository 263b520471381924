"""The camera gap during training (val/camera_gap@σ, camera_gap.jsonl) and in eval (camera_gap.{json,md})."""

import csv
import json
from pathlib import Path

import pytest
from _tiny import TINY_SIZE
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.tasks.evaluate import evaluate
from vid3d.tasks.train import train

SMALL = TINY_SIZE


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return build_synthetic_dataset(
        tmp_path_factory.mktemp("gap") / "set", num_train=2, num_test=3, num_frames=12, height=72, width=128
    )


def _cfg(name: str, overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.mark.parametrize("model", ["plucker", "svd"])
def test_gap_logged_while_training_and_written_by_eval(model, root, tmp_path, monkeypatch):
    import vid3d.tasks.camera_benchmark as ev

    sent = {}
    monkeypatch.setattr(ev, "log_to_wandb", lambda *a, **k: sent.update(gap=a[-1]))
    data = ["data=re10k", f"data.root={root}", *SMALL]
    out = train(
        _cfg(
            "train",
            [
                f"model={model}",
                *data,
                "trainer.max_steps=2",
                "logger=csv",
                "module.warmup_steps=1",
                "callbacks.camera_gap.every_n_steps=1",
                "callbacks.camera_gap.num_clips=3",
                f"paths.output_dir={tmp_path / 'train'}",
            ],
        )
    )
    run_dir = Path(out["last_checkpoint"]).parents[1]
    lines = [json.loads(x) for x in (run_dir / "camera_gap.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2] and all(x["n_clips"] == 3 for x in lines)
    rows = list(csv.DictReader(open(next(run_dir.rglob("metrics.csv")))))
    logged = [float(r["val/camera_gap@1"]) for r in rows if r.get("val/camera_gap@1")]
    assert logged == pytest.approx([x["camera_gap@1"] for x in lines], rel=1e-6)

    res = evaluate(
        _cfg(
            "eval",
            [
                f"ckpt={out['last_checkpoint']}",
                *data,
                "pose=gt",
                "sampler.num_steps=1",
                f"paths.output_dir={tmp_path / 'eval'}",
            ],
        )
    )
    gap = json.loads((Path(res["run_dir"]) / "camera_gap.json").read_text())[model]
    assert gap["n_clips"] == 3 and f"| {model} | 3 |" in res["camera_gap_md"]
    assert sent["gap"] == {model: gap}  # the same numbers reach the W&B summary
    if model == "svd":  # no camera input: exactly 1, whatever the weights
        assert all(gap[f"camera_gap@{s}"] == pytest.approx(1.0, abs=1e-9) for s in ("0.2", "1", "5"))
