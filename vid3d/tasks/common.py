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
        save_to.write_text(OmegaConf.to_yaml(cfg, resolve=resolve))


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


def check_inputs_early(cfg: DictConfig) -> None:
    """The user's files that are cheap to check, checked before an entry point's heavy imports: the
    checkpoint path (``ckpt=``). Raises the same one-line errors the full load would."""
    if cfg.get("ckpt"):
        from vid3d.models.checkpoint import resolve_checkpoint

        resolve_checkpoint(cfg.ckpt)


def reproducibility(cfg: DictConfig) -> dict:
    """What a reader needs to reproduce the numbers (versions, commit, seeds, config, weight hashes)."""
    from vid3d.evaluation.reproducibility import reproducibility_block

    weights = {}
    if cfg.get("ckpt"):
        from vid3d.models.checkpoint import resolve_checkpoint

        ckpt = resolve_checkpoint(cfg.ckpt)
        # a DeepSpeed checkpoint is a directory; its vid3d weights file is what sampling read
        weights["model_checkpoint"] = ckpt / "vid3d_weights.safetensors" if ckpt.is_dir() else ckpt
    if cfg.get("pose") is not None and cfg.pose.get("checkpoint"):
        weights["pose_checkpoint"] = cfg.pose.checkpoint
    weights["fvd_i3d"] = OmegaConf.select(cfg, "metrics.fvd.i3d")
    return reproducibility_block(cfg, weights)
