"""Every model option trains on a RealEstate10K-layout folder (the synthetic set) through train(cfg)."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.models.checkpoint import load_checkpoint_file
from vid3d.tasks.train import train

SMALL = [
    "data.num_frames=4",
    "data.height=64",
    "data.width=96",
    "data.datamodule.num_workers=0",
    "logger=csv",
    "module.warmup_steps=1",
    "torch_threads=1",
]


@pytest.fixture(scope="module")
def re10k_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("re10k") / "set"
    return build_synthetic_dataset(root, num_train=2, num_test=1, num_frames=12, height=72, width=128)


def cfg_for(overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


@pytest.mark.parametrize("model", ["epipolar", "plucker", "rt", "svd"])
def test_model_trains_on_re10k_layout(model, re10k_root, tmp_path):
    cfg = cfg_for(
        [
            f"model={model}",
            "data=re10k",
            f"data.root={re10k_root}",
            "trainer.max_steps=2",
            f"paths.output_dir={tmp_path}",
            *SMALL,
        ]
    )
    out = train(cfg)
    ckpt = load_checkpoint_file(out["last_checkpoint"])
    assert ckpt["global_step"] == 2
    trained = ckpt["vid3d"]["trainable"]
    assert trained and set(ckpt["state_dict"]) == set(trained)
    # the frozen backbone is referenced by its config, not stored
    assert not any("image_encoder" in k for k in ckpt["state_dict"])
    if model == "svd":
        assert not any("camera_encoder" in k for k in trained)
    else:
        assert any("camera_encoder" in k for k in trained)
    assert any(".temporal_transformer_blocks." in k for k in trained)


def test_resume_continues_from_checkpoint(re10k_root, tmp_path):
    base = ["model=plucker", "data=re10k", f"data.root={re10k_root}", *SMALL]
    first = train(cfg_for([*base, "trainer.max_steps=2", f"paths.output_dir={tmp_path}/a"]))
    second = train(
        cfg_for(
            [
                *base,
                "trainer.max_steps=4",
                f"paths.output_dir={tmp_path}/b",
                f"resume={first['last_checkpoint']}",
            ]
        )
    )
    assert load_checkpoint_file(second["last_checkpoint"])["global_step"] == 4
    # in place: the first run's directory holds both launches (a new run dir only with resume_in_place=false)
    assert second["run_dir"] == first["run_dir"] and not (tmp_path / "b" / "train" / "checkpoints").exists()
    assert sorted(p.name for p in Path(first["run_dir"]).glob("config*.yaml")) == [
        "config.resume1.yaml",
        "config.yaml",
    ]


def test_resume_continues_the_wandb_run(re10k_root, tmp_path, offline_wandb):
    base = ["model=plucker", "data=re10k", f"data.root={re10k_root}", *SMALL, "logger=wandb"]
    first = train(cfg_for([*base, "trainer.max_steps=1", f"paths.output_dir={tmp_path}/a"]))
    run = Path(first["run_dir"])
    run_id = (run / "wandb_run_id").read_text().strip()
    assert run_id
    train(cfg_for([*base, "trainer.max_steps=2", f"paths.output_dir={tmp_path}/b", f"resume={run}"]))
    assert (run / "wandb_run_id").read_text().strip() == run_id
    offline = sorted((run / "wandb").glob("offline-run-*"))
    # offline-run-<time>-<id>, with a "-1" suffix when both launches start in the same second
    assert len(offline) == 2 and all(f"-{run_id}" in p.name for p in offline), offline


@pytest.mark.parametrize("model", ["epipolar", "plucker", "rt"])
def test_mixed_precision_training_runs_on_the_cpu(model, re10k_root, tmp_path):
    """The autocast path of `trainer=gpu` (16-mixed) exercised on the CPU with bf16-mixed: camera geometry
    must stay float32 (it once failed in the Plücker cross product), trained weights stay float32, and the
    loss of the first step is within bf16 rounding of the float32 one (same seed, same batch)."""
    losses = {}
    for precision in ("32", "bf16-mixed"):
        cfg = cfg_for(
            [
                f"model={model}",
                "data=re10k",
                f"data.root={re10k_root}",
                "trainer.max_steps=1",
                f"trainer.precision={precision}",
                "module.gradient_checkpointing=true",
                f"paths.output_dir={tmp_path / precision}",
                *SMALL,
            ]
        )
        out = train(cfg)
        losses[precision] = float(out["train/loss"])
        ckpt = load_checkpoint_file(out["last_checkpoint"])
        assert ckpt["global_step"] == 1
        assert {str(v.dtype) for v in ckpt["state_dict"].values()} == {"torch.float32"}
    assert losses["32"] == pytest.approx(losses["bf16-mixed"], rel=0.05), losses


def test_a_run_shorter_than_the_logging_interval_still_logs_its_loss(re10k_root, tmp_path):
    import csv

    out = train(
        cfg_for(
            [
                "model=svd",
                "data=re10k",
                f"data.root={re10k_root}",
                "trainer.max_steps=3",
                "trainer.log_every_n_steps=50",
                f"paths.output_dir={tmp_path}",
                *SMALL,
            ]
        )
    )
    rows = list(csv.DictReader(open(next(Path(out["run_dir"]).rglob("metrics.csv")))))
    assert [r["step"] for r in rows if r.get("train/loss")] == ["2"]
