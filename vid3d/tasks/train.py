"""train(cfg): instantiate data, model, module, callbacks, logger and trainer from the config, then fit."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vid3d.tasks.common import log, prepare_data, print_config_tree, run_dir, task_wrapper
from vid3d.training.checkpoint_io import SafetensorsCheckpointIO


def instantiate_callbacks(cfg: DictConfig) -> list:
    return [
        instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None and "_target_" in c
    ]


@task_wrapper
def train(cfg: DictConfig) -> dict:
    """Train a model; returns ``{"last_checkpoint": path, "run_dir": path, **final logged metrics}``."""
    out = run_dir(cfg)
    print_config_tree(cfg, save_to=out / "config.yaml")
    L.seed_everything(cfg.seed, workers=True)

    prepare_data(cfg)
    datamodule = instantiate(cfg.data.datamodule)
    model = instantiate(cfg.model)
    module = instantiate(cfg.module, model=model)
    # set after instantiate: Hydra would instantiate the `_target_`s inside the plain config dict
    module.model_config = OmegaConf.to_container(cfg.model, resolve=True)
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    if logger and hasattr(logger, "log_hyperparams"):
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=instantiate_callbacks(cfg), logger=logger, plugins=[SafetensorsCheckpointIO()]
    )
    groups = {k: len(v) for k, v in module.trainable_groups.items()}
    log.info("trainable parameter tensors by group: %s", groups)

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("resume"))

    last = Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt"
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info("training done; last checkpoint: %s", last)
    return {"last_checkpoint": str(last), "run_dir": str(out), **metrics}
