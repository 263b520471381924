"""What every task does around its work: print/save the config, seed, and always close W&B."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

from vid3d.atomic import atomic_write_text

log = logging.getLogger("vid3d")


def set_threads(cfg: DictConfig) -> None:
    """Apply ``torch_threads`` (oversubscribed cores slow small CPU models down many times)."""
    if cfg.get("torch_threads"):
        import torch

        torch.set_num_threads(int(cfg.torch_threads))


def set_progress(cfg: DictConfig) -> Callable[[], None]:
    """Apply the ``progress`` group (bars on a terminal, lines in logs: vid3d/progress.py) for one task;
    returns what restores the settings before it."""
    from vid3d.progress import configure, settings

    before, node = settings(), cfg.get("progress")
    configure(OmegaConf.to_container(node, resolve=True) if node is not None else None)
    return lambda: configure(before)


def run_dir(cfg: DictConfig) -> Path:
    path = Path(cfg.paths.run_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare_data(cfg: DictConfig) -> None:
    """Build what the data option needs on disk before datasets are created (the embedded synthetic
    set is rendered on first use; a data option without ``build`` needs nothing)."""
    from hydra.utils import instantiate

    if cfg.data.get("build") is not None:
        instantiate(cfg.data.build)


def print_config_tree(cfg: DictConfig, save_to: Path | None = None, resolve: bool = True) -> None:
    """Print the composed config as a rich tree (one branch per top-level group) and save it as YAML."""
    tree = rich.tree.Tree("config", style="bold")
    for key in cfg:
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=resolve) if isinstance(value, DictConfig) else str(value)
        tree.add(str(key)).add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)
    if save_to is not None:
        atomic_write_text(save_to, OmegaConf.to_yaml(cfg, resolve=resolve))


def task_wrapper(fn: Callable[[DictConfig], dict]) -> Callable[[DictConfig], dict]:
    """Run a task and always close W&B, so one failed job does not break the rest of a multirun."""

    @functools.wraps(fn)
    def wrapped(cfg: DictConfig) -> dict:
        set_threads(cfg)
        restore_progress = set_progress(cfg)
        try:
            return fn(cfg)
        finally:
            restore_progress()
            try:
                import wandb

                if wandb.run is not None:
                    wandb.finish()
            except ImportError:
                pass

    return wrapped


def pretrained_choice(cfg: DictConfig) -> dict | None:
    """The user's ``pretrained`` block (source / revision / local_files_only of a checkpoint's pretrained
    backbone, conf/eval.yaml and conf/sample.yaml) as a plain dict; None when the config has none."""
    node = cfg.get("pretrained")
    return None if node is None else OmegaConf.to_container(node, resolve=True)


def reproducibility(cfg: DictConfig) -> dict:
    """What a reader needs to reproduce the numbers (versions, commit, seeds, config, weight hashes)."""
    from vid3d.evaluation.reproducibility import reproducibility_block

    weights = {}
    if cfg.get("ckpt"):
        from vid3d.models.checkpoint import resolve_checkpoint

        ckpt = resolve_checkpoint(cfg.ckpt)
        # a DeepSpeed checkpoint is a directory; its vid3d weights file is what sampling read
        weights["model_checkpoint"] = ckpt / "vid3d_weights.safetensors" if ckpt.is_dir() else ckpt
    weights["pose_checkpoint"] = _pose_weights_file(cfg)
    i3d = OmegaConf.select(cfg, "metrics.fvd.i3d")
    if i3d == "auto":  # the registered file, in torch hub's cache
        from vid3d.weights import get, torch_cache

        i3d = torch_cache() / get("i3d").filename
    weights["fvd_i3d"] = i3d
    return reproducibility_block(cfg, weights)


def _pose_weights_file(cfg: DictConfig):
    """The file the pose estimator's weights were read from: ``pose.checkpoint`` as given, or for DUSt3R
    with a hub id (or none: the released model) its cached ``model.safetensors``; None without weights."""
    pose = cfg.get("pose")
    if pose is None:
        return None
    ckpt = pose.get("checkpoint")
    is_dust3r = str(pose.get("_target_", "")).endswith("Dust3rPoseEstimator") and not pose.get("random_init")
    if is_dust3r and not ckpt:
        from vid3d.weights import get

        ckpt = get("dust3r_512").repo
    if is_dust3r and ckpt and not Path(str(ckpt)).exists():
        from vid3d.weights import cached_hub_file

        return cached_hub_file(str(ckpt), "model.safetensors") or ckpt
    return ckpt
