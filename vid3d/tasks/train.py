"""train(cfg): instantiate data, model, module, callbacks, logger and trainer from the config, then fit.

Checkpoints: with the default strategies every checkpoint is one safetensors file written through
``SafetensorsCheckpointIO`` (no pickle; trained weights + optimiser + loop state). With a DeepSpeed strategy
Lightning bypasses CheckpointIO plugins: a checkpoint is a directory written by DeepSpeed in its own
(pickle-based) format, resumable with ``resume=<dir>``; ``Vid3dDeepSpeedStrategy`` adds
``vid3d_weights.safetensors`` inside it for sampling, evaluation and ``init_from``.

``resume=<ckpt>`` continues a run (weights, optimiser, scheduler, loop, callbacks, data position);
``init_from=<ckpt>`` starts a new run from a checkpoint's trained weights only (e.g. stage 2 from stage 1).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vid3d.models.schema import stored_model_config
from vid3d.tasks.common import log, prepare_data, print_config_tree, run_dir, task_wrapper
from vid3d.tasks.recipe import fetch_pretrained, train_random_unet
from vid3d.training.checkpoint_io import LastSavedStep, SafetensorsCheckpointIO
from vid3d.training.strategies import is_deepspeed_config
from vid3d.wandb_setup import hydra_job, sweep_columns


def instantiate_callbacks(cfg: DictConfig) -> list:
    """Callbacks under ``cfg.callbacks`` that have a ``_target_`` and are not ``enabled: false``."""
    out = []
    for c in (cfg.get("callbacks") or {}).values():
        if c is None or "_target_" not in c:
            continue
        c = OmegaConf.to_container(c, resolve=True)
        if not c.pop("enabled", True):
            continue
        out.append(instantiate(c))
    return out


def trainer_plugins(cfg: DictConfig, ckpt_dir: str | Path | None = None) -> list:
    """CheckpointIO plugins: safetensors single files, except under DeepSpeed (which writes its own).
    ``ckpt_dir``: the run's checkpoint folder, the only place checkpoints are ever removed from."""
    if is_deepspeed_config(cfg.trainer.get("strategy")):
        return []
    return [SafetensorsCheckpointIO(ckpt_dir)]


def checkpoint_dir(callbacks: list, cfg: DictConfig) -> Path:
    """The run's checkpoint folder: the ModelCheckpoint callback's ``dirpath``, else ``<run>/checkpoints``."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    dirs = [c.dirpath for c in callbacks if isinstance(c, ModelCheckpoint) and c.dirpath]
    return Path(dirs[0]) if dirs else Path(cfg.paths.run_dir) / "checkpoints"


def resume_path(resume: str | None, ckpt_dir: str | Path | None = None) -> str | None:
    """``resume=<checkpoint>`` as given; ``resume=<run dir>`` (or its checkpoints/) -> its newest complete
    checkpoint (``vid3d.models.checkpoint.newest_complete_checkpoint``). The temporary ``.*.ckpt.*.tmp``
    files a killed checkpoint writer left in ``ckpt_dir`` (the folder this run writes to, where no other
    writer runs) are removed at once; nothing else is touched (another program's ``*.tmp`` files stay)."""
    if not resume:
        return None
    from vid3d.atomic import remove_stale_temps
    from vid3d.models.checkpoint import newest_complete_checkpoint

    p = Path(resume).expanduser()
    if p.is_dir() and not p.name.endswith(".ckpt"):  # a run dir, not a DeepSpeed checkpoint dir
        p = newest_complete_checkpoint(p)
        log.info("resume: newest complete checkpoint of the run is %s", p)
    if ckpt_dir is not None and Path(ckpt_dir).is_dir():
        n = remove_stale_temps(ckpt_dir, older_than_s=0, suffix=".ckpt")
        if n:
            log.info("resume: removed %d temporary checkpoint file(s) of a killed writer in %s", n, ckpt_dir)
    return str(p)


def resumed_run_dir(resume: str | None) -> Path | None:
    """The run dir a ``resume=`` points into (``<run>``, ``<run>/checkpoints`` or a checkpoint under
    ``<run>/checkpoints/``), when it is a vid3d run dir (holds config.yaml); else None."""
    if not resume:
        return None
    p = Path(resume).expanduser().absolute()
    for cand in (p, p.parent, p.parent.parent):
        if (cand / "config.yaml").is_file() and (cand / "checkpoints").is_dir():
            return cand
    return None


def in_run_dir(cfg: DictConfig, run: Path) -> DictConfig:
    """``cfg`` with its outputs (paths.run_dir: checkpoints, CSV, W&B, media) in the resumed run's dir, as a
    new config composed before the run starts. The W&B logger then continues the run's W&B run by itself
    (one W&B run per run dir: ``vid3d.wandb_setup.prepare_logger``)."""
    log.info("resume: continuing in the run's own directory %s", run)
    return OmegaConf.merge(cfg, {"paths": {"run_dir": str(run)}})


def log_interval(trainer_cfg: DictConfig) -> int:
    """``trainer.log_every_n_steps`` (Lightning's default 50), capped at ``trainer.max_steps``: a run shorter
    than the logging interval would log no train/loss at all."""
    every = int(trainer_cfg.get("log_every_n_steps") or 50)
    max_steps = int(trainer_cfg.get("max_steps") or -1)
    return max_steps if 0 < max_steps < every else every


def own_config(cfg: DictConfig, run: Path) -> DictConfig:
    """``resume=<run>`` from the command line: the run's own saved config with this command's overrides
    on top (vid3d/tasks/resume_config.py), the differences printed. Under the compose API (no Hydra app)
    the caller's config is the whole config and is kept."""
    from hydra.core.hydra_config import HydraConfig

    from vid3d.tasks.resume_config import config_diff, run_choices, run_config_file, with_run_config

    if not HydraConfig.initialized():
        return cfg
    saved, choices = run_config_file(run), run_choices(run)
    if Path(HydraConfig.get().runtime.output_dir).resolve() == run.resolve():
        # hydra.run.dir=<the run>: Hydra has just rewritten its .hydra/ with this command's composition;
        # the run's own config is the config.yaml its first launch saved, its group choices unknown
        saved, choices = run / "config.yaml", None
    if saved is None or not saved.is_file():
        return cfg
    own = OmegaConf.load(saved)
    merged = with_run_config(cfg, own, list(HydraConfig.get().overrides.task), choices)
    diff = config_diff(own, merged)
    log.info("resume: the run's own config (%s) with this command's overrides; %d change(s)%s", saved,
             len(diff), "".join(f"\n  {d}" for d in diff))
    return merged


@task_wrapper
def train(cfg: DictConfig) -> dict:
    """Train a model; returns ``{"last_checkpoint": path, "run_dir": path, **final logged metrics}``.

    ``resume=<run dir or checkpoint>`` (from train.py) trains with that run's own config, this command's
    overrides on top (``own_config``)."""
    run = resumed_run_dir(cfg.get("resume"))
    if run is not None:
        cfg = own_config(cfg, run)
    if cfg.get("init_from_required") and not (cfg.get("init_from") or cfg.get("resume")):
        raise ValueError(
            f"experiment {cfg.get('task_name')} starts from trained weights: set init_from=<checkpoint file, "
            "DeepSpeed checkpoint dir or run dir> (or resume=<its own last.ckpt>)"
        )
    resumed = run if cfg.get("resume_in_place", True) else None
    if resumed is not None:
        cfg = in_run_dir(cfg, resumed)
    out = run_dir(cfg)
    # a resumed run keeps its first config.yaml; each resume adds config.resume<k>.yaml
    k = len(list(out.glob("config.resume*.yaml"))) + 1
    print_config_tree(cfg, save_to=out / ("config.yaml" if resumed is None else f"config.resume{k}.yaml"))
    L.seed_everything(cfg.seed, workers=True)

    fetch_pretrained(cfg)  # missing pretrained weights fail (or download) before any data work
    prepare_data(cfg)
    datamodule = instantiate(cfg.data.datamodule)
    model = instantiate(cfg.model)
    names: list[str] = []
    if cfg.get("init_from"):
        from vid3d.models.checkpoint import load_trained_weights

        names = load_trained_weights(model, cfg.init_from)
        log.info("init_from %s: %d trained weight tensors loaded", cfg.init_from, len(names))
        if cfg.get("resume"):
            log.warning("both resume and init_from are set: the resumed checkpoint's weights win")
    train_random_unet(cfg, model, set(names))  # a random-init backbone never stays frozen at random
    module = instantiate(cfg.module, model=model)
    # set after instantiate: Hydra would instantiate the `_target_`s inside the plain config dict
    # where pretrained files come from (source, revision, local_files_only) is not stored: the user's choice
    module.model_config = stored_model_config(OmegaConf.to_container(cfg.model, resolve=True))
    size = [OmegaConf.select(cfg, f"data.{k}") for k in ("height", "width", "num_frames")]
    module.train_size = size if all(isinstance(v, int) for v in size) else None
    from vid3d.tasks.post_eval import evaluate_after_training

    # W&B (logger=wandb): mode, multirun group and run id set up by vid3d.wandb_setup.prepare_logger
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    if logger:  # with a multirun job's variant overrides as config columns
        sweep = sweep_columns(hydra_job())
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "sweep": sweep})
    callbacks = instantiate_callbacks(cfg)
    ckpt_dir = checkpoint_dir(callbacks, cfg)
    saved = LastSavedStep()
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=[*callbacks, saved], logger=logger, plugins=trainer_plugins(cfg, ckpt_dir),
        log_every_n_steps=log_interval(cfg.trainer),
    )
    groups = {k: len(v) for k, v in module.trainable_groups.items()}
    log.info("trainable parameter tensors by group: %s", groups)

    # weights_only=True says what the run's CheckpointIO does anyway (vid3d.models.checkpoint's safe loader,
    # whatever Lightning passes), so Lightning does not announce an unsafe default
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_path(cfg.get("resume"), ckpt_dir),
                weights_only=True)

    last = Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt"
    if trainer.checkpoint_callback is not None and saved.step != trainer.global_step:
        # max_steps reached between checkpoint intervals: the final state is a checkpoint too
        trainer.save_checkpoint(last)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info("training done; last checkpoint: %s", last)
    result = {"last_checkpoint": str(last), "run_dir": str(out), **metrics}
    # post_eval=camera: score the final checkpoint in the same job (vid3d/tasks/post_eval.py)
    return evaluate_after_training(cfg, result) if cfg.get("post_eval") else result
