"""The seed's recipe configs, the trainer options and the SLURM launcher compose with the stated values;
the DeepSpeed ZeRO-2 strategy is built (DeepSpeed refuses to run on the CPU)."""

import importlib.util
import os

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vid3d.config import CONFIG_DIR
from vid3d.tasks.train import trainer_plugins
from vid3d.training.checkpoint_io import SafetensorsCheckpointIO

ROOTS = ["data.re10k_root=/r", "data.acid_root=/a", "data.dl3dv_root=/d"]


def cfg_for(overrides, hydra_cfg=False):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=hydra_cfg)


def test_paper_stage1_recipe():
    cfg = cfg_for(["experiment=paper_stage1", *ROOTS])
    assert (cfg.data.num_frames, cfg.data.height, cfg.data.width) == (25, 320, 512)
    assert cfg.trainer.max_steps == 50_000
    assert cfg.trainer.devices * cfg.trainer.num_nodes * cfg.data.datamodule.batch_size == 16
    assert cfg.trainer.devices == 8 and cfg.trainer.precision == "16-mixed"
    assert (
        cfg.trainer.strategy._target_.endswith("Vid3dDeepSpeedStrategy") and cfg.trainer.strategy.stage == 2
    )
    assert cfg.module.optimizer.lr == 1e-5 and cfg.module.warmup_steps == 1000
    assert cfg.model._target_.endswith("CameraVideoDiffusion") and cfg.model.name == "epipolar"
    assert cfg.model.backbone._target_.endswith("load_svd_backbone")
    assert cfg.model.attention == "epipolar" or "epipolar" in str(cfg.model.attention)
    ds = cfg.data.datamodule.train_dataset
    assert ds._target_.endswith("PhasedMixtureDataset") and set(ds.datasets) == {"re10k", "acid", "dl3dv"}
    assert cfg.data.re10k_root == "/r" and cfg.data.phase2_start_step < cfg.trainer.max_steps
    assert ds.datasets.re10k.interval._target_.endswith("LinearInterval")
    assert ds.datasets.dl3dv.interval._target_.endswith("UniformInterval")
    assert cfg.init_from is None and not cfg.init_from_required
    assert trainer_plugins(cfg) == []  # DeepSpeed writes its own checkpoint directories


def test_paper_stage2_recipe():
    cfg = cfg_for(["experiment=paper_stage2", "init_from=/ckpt/last.ckpt", *ROOTS])
    assert (cfg.data.num_frames, cfg.data.height, cfg.data.width) == (25, 576, 1024)
    assert cfg.trainer.max_steps == 10_000
    assert cfg.module.optimizer.lr == 1e-5 and cfg.module.warmup_steps == 1000
    assert cfg.init_from == "/ckpt/last.ckpt" and cfg.resume is None and cfg.init_from_required
    assert cfg.trainer.strategy.stage == 2 and cfg.trainer.devices == 8
    interval = instantiate(cfg.data.interval)
    assert interval.value_at(0) == interval.value_at(10_000) == 10


def test_stage2_refuses_to_start_without_init_from():
    from vid3d.tasks.train import train

    with pytest.raises(ValueError, match="init_from"):
        train(cfg_for(["experiment=paper_stage2", *ROOTS]))


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "deepspeed_zero2"])
def test_trainer_options(trainer):
    cfg = cfg_for([f"trainer={trainer}"])
    t = cfg.trainer
    assert t.gradient_clip_val == 1.0 and t.accumulate_grad_batches == 1
    assert t.use_distributed_sampler is False  # ResumableSampler shards by rank
    assert t.precision == (32 if trainer == "cpu" else "16-mixed")
    plugins = trainer_plugins(cfg)
    if trainer == "deepspeed_zero2":
        assert plugins == []
    else:
        assert len(plugins) == 1 and isinstance(plugins[0], SafetensorsCheckpointIO)


def test_slurm_launcher_composes_multinode():
    cfg = cfg_for(["hydra/launcher=slurm", "experiment=paper_stage1", "trainer.num_nodes=2", *ROOTS], True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["nodes"] == 2 and launcher["tasks_per_node"] == launcher["gpus_per_node"] == 8
    assert launcher["tasks_per_node"] == cfg.trainer.devices
    assert importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None


@pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None and not os.environ.get("CI"),
    reason="deepspeed is not installed (`make` installs it; under CI this test must run)",
)
def test_deepspeed_zero2_strategy_builds():
    from lightning.pytorch.strategies import DeepSpeedStrategy

    cfg = cfg_for(["experiment=paper_stage1", *ROOTS])
    strategy = instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, DeepSpeedStrategy)
    zero = strategy.config["zero_optimization"]
    assert zero["stage"] == 2
    assert zero["allgather_bucket_size"] == zero["reduce_bucket_size"] == 200_000_000
    assert not zero.get("offload_optimizer")
    assert strategy.exclude_frozen_parameters  # frozen backbone not copied into DeepSpeed checkpoints
