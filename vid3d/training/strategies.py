"""DeepSpeed ZeRO through Lightning, plus a vid3d weights file beside DeepSpeed's checkpoint.

With a DeepSpeed strategy Lightning does not use a CheckpointIO plugin: a checkpoint ``<name>.ckpt`` is a
*directory* written by DeepSpeed (``checkpoint/mp_rank_00_model_states.pt``, per-rank ZeRO optimiser shards,
``latest``) in DeepSpeed's own torch.save (pickle) format, and ``resume=<dir>`` restores it through
DeepSpeed. So that sampling, evaluation and ``init_from`` never unpickle, :class:`Vid3dDeepSpeedStrategy`
also writes ``<name>.ckpt/vid3d_weights.safetensors`` on global rank 0 after DeepSpeed saved: the trained
weights (as held by the module: fp16 under ``precision=16-mixed``), the EMA shadow when enabled, the model
config and the step, in the single-file format of :mod:`vid3d.models.checkpoint`. Old checkpoints are removed
only inside the run's checkpoint folder (``vid3d.training.checkpoint_state.removable``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from lightning.pytorch.strategies import DeepSpeedStrategy

from vid3d.models.checkpoint import EMA_KEY, WEIGHTS_FILE, save_checkpoint_file

WEIGHT_KEYS = ("state_dict", "vid3d", EMA_KEY, "global_step", "epoch")

log = logging.getLogger(__name__)


class Vid3dDeepSpeedStrategy(DeepSpeedStrategy):
    """``DeepSpeedStrategy`` (same arguments) that also exports ``vid3d_weights.safetensors``."""

    def save_checkpoint(self, checkpoint: dict, filepath: Any, storage_options: Any = None) -> None:
        filepath = self.broadcast(filepath)  # collective: every rank, before the rank-0-only write
        weights = {k: checkpoint[k] for k in WEIGHT_KEYS if k in checkpoint}
        super().save_checkpoint(checkpoint, filepath, storage_options)
        if self.is_global_zero:
            save_checkpoint_file(weights, Path(filepath) / WEIGHTS_FILE)
        self.barrier("vid3d_weights")

    def remove_checkpoint(self, filepath: Any) -> None:
        """Remove an old ``*.ckpt`` checkpoint folder, only inside the run's checkpoint folder (the
        ``ModelCheckpoint`` callback's ``dirpath``); any other path is left with a warning."""
        from lightning.pytorch.callbacks import ModelCheckpoint

        from vid3d.training.checkpoint_state import removable

        if not self.is_global_zero:
            return
        trainer = getattr(self.lightning_module, "_trainer", None) if self.lightning_module else None
        dirs = [c.dirpath for c in getattr(trainer, "callbacks", []) if isinstance(c, ModelCheckpoint)]
        p = Path(filepath)
        if not any(d and removable(p, d) for d in dirs):
            log.warning("not removing %s: only *.ckpt entries in the run's checkpoint folder are removed", p)
        elif p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def is_deepspeed_config(strategy_cfg: Any) -> bool:
    """Whether a trainer ``strategy`` config entry (string or ``_target_`` mapping) selects DeepSpeed."""
    if strategy_cfg is None:
        return False
    target = strategy_cfg.get("_target_", "") if hasattr(strategy_cfg, "get") else str(strategy_cfg)
    return "deepspeed" in str(target).lower()
