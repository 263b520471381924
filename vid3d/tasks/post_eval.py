"""Train -> score in one job (``post_eval``).

``python train.py -m model=plucker,svd post_eval=camera post_eval.pose=gt`` trains each variant, then
evaluates its final checkpoint with the camera benchmark (``vid3d.tasks.evaluate.evaluate``,
benchmark=camera, on a config composed from ``conf/eval.yaml``) into ``<train run dir>/eval/``.
``python -m vid3d.report <sweep dir>`` then merges the jobs into one table.

W&B (``vid3d.wandb_setup``): every job of a multirun logs (training and evaluation runs) to one group,
``<job name>_<sweep dir name>`` (the same for all jobs of a sweep, different between sweeps); the job's
command-line overrides are logged as config columns under ``sweep.overrides``. Outside a multirun (a
single run, or the compose API where there is no Hydra runtime) the group stays as configured (null). The
evaluation config composed here names the training job's group and sweep block explicitly.
The hyperparameter-search objective: ``vid3d.tasks.objective``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from vid3d.tasks.common import log
from vid3d.wandb_setup import hydra_job, sweep_columns


def eval_overrides(cfg: DictConfig) -> list[str]:
    """``conf/eval.yaml`` overrides for scoring a training job with its ``post_eval`` settings."""
    pe = cfg.post_eval
    out = [f"benchmark={pe.benchmark}", f"pose={pe.pose}", f"sampler={pe.sampler}", f"seed={cfg.seed}"]
    if pe.get("sampler_steps") is not None:
        out.append(f"sampler.num_steps={int(pe.sampler_steps)}")
    if pe.get("max_clips") is not None:
        out.append(f"eval.max_clips={int(pe.max_clips)}")
    out.append(f"eval.reference_rows={str(bool(pe.get('reference_rows', True))).lower()}")
    if cfg.get("torch_threads"):
        out.append(f"torch_threads={int(cfg.torch_threads)}")
    return out + [str(o) for o in pe.get("overrides") or []]


def _score_held_out_clips(data: DictConfig) -> None:
    """post_eval.split=validation: the eval dataset becomes the training split's held-out clips
    (``data.datamodule.train_dataset.holdout`` with keep=held_out; vid3d.data.holdout), never the test
    split."""
    train_ds = data.datamodule.train_dataset
    holdout = train_ds.get("holdout")
    if not holdout or train_ds.get("split") is None:
        raise ValueError(
            "post_eval.split=validation needs a single training dataset with a validation hold-out: "
            "data.datamodule.train_dataset.holdout={fraction, seed} (hparams_search=optuna sets it); "
            f"got train_dataset {train_ds.get('_target_')} with holdout={holdout}"
        )
    if holdout.get("keep", "rest") != "rest":
        raise ValueError(f"data.datamodule.train_dataset.holdout.keep must be 'rest' (got {holdout.keep!r}): "
                         "training would see the validation clips")
    data.test_dataset.split = train_ds.split
    data.test_dataset.root = train_ds.root
    data.test_dataset.holdout = {**OmegaConf.to_container(holdout), "keep": "held_out"}


def compose_eval_config(cfg: DictConfig, ckpt: str | Path, out: str | Path) -> DictConfig:
    """The eval config for the training job ``cfg``: ``conf/eval.yaml`` with the post_eval overrides,
    the job's data config (resolved, so the test clips are cut exactly as in training), its paths,
    ``ckpt`` and run dir ``out``. Works inside a Hydra app (its config search path) and outside one."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vid3d.config import CONFIG_DIR

    overrides = eval_overrides(cfg)
    # post_eval.overrides selecting a data option (data=re10k ...): the eval data comes from them alone;
    # otherwise the job's own data config is used, with any data.* overrides applied on top
    own_data = not any(o.split("=", 1)[0].lstrip("+") == "data" for o in overrides)
    data_overrides = [o for o in overrides if o.startswith("data.")] if own_data else []
    if GlobalHydra.instance().is_initialized():
        ecfg = compose("eval", overrides=overrides)
    else:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            ecfg = compose("eval", overrides=overrides)
    with open_dict(ecfg):
        if own_data:
            ecfg.data = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
            if cfg.post_eval.get("split", "test") == "validation":
                _score_held_out_clips(ecfg.data)
            for o in data_overrides:
                key, value = o.split("=", 1)
                OmegaConf.update(ecfg, key, yaml.safe_load(value), force_add=True)
        elif cfg.post_eval.get("split", "test") == "validation":
            raise ValueError("post_eval.split=validation scores the training job's own data config; "
                             "post_eval.overrides must not select another data option")
        ecfg.paths = OmegaConf.create(OmegaConf.to_container(cfg.paths, resolve=True))
        ecfg.paths.run_dir = str(out)
        ecfg.ckpt = str(ckpt)
        sweep = sweep_columns(hydra_job())
        ecfg.wandb.group = sweep["group"] or (cfg.get("logger") or {}).get("group")
        ecfg.sweep = sweep
    return ecfg


def evaluate_after_training(cfg: DictConfig, train_out: dict) -> dict:
    """Score ``train_out["last_checkpoint"]`` with the post_eval benchmark into ``<run dir>/eval``, on global
    rank 0 only: in a multi-process job (DDP, one SLURM task per GPU) every rank returns from ``fit``, and
    one evaluation writes the records (submitit hands Hydra task 0's return value)."""
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank != 0:
        return train_out
    from vid3d.tasks.evaluate import evaluate

    try:  # the training run's W&B run is closed first: the evaluation is its own run in the same group
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except ImportError:
        pass
    out = Path(train_out["run_dir"]) / "eval"
    ecfg = compose_eval_config(cfg, train_out["last_checkpoint"], out)
    log.info("post_eval=%s: scoring %s into %s", cfg.post_eval.benchmark, train_out["last_checkpoint"], out)
    result = evaluate(ecfg)
    return {**train_out, "eval_dir": str(out), "eval_results": result.get("results")}
