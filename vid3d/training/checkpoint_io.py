"""The Lightning CheckpointIO plugin for vid3d checkpoint files (the format: ``vid3d.models.checkpoint``).

Bound to the run's checkpoint folder (``ckpt_dir``, the ``ModelCheckpoint`` callback's ``dirpath``): it only
ever removes ``*.ckpt`` entries inside that folder (``vid3d.training.checkpoint_state.removable``; a path
from anywhere else, e.g. one named by a received checkpoint's callback state, is left with a warning), and
each save first removes the temporary ``.*.ckpt.*.tmp`` files a killed writer of this run left there (no
other writer runs in a run's own checkpoint folder).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import Callback

from vid3d.atomic import remove_stale_temps
from vid3d.models.checkpoint import load_checkpoint_file, save_checkpoint_file
from vid3d.training.checkpoint_state import CKPT_SUFFIX, removable

__all__ = ["LastSavedStep", "SafetensorsCheckpointIO"]

log = logging.getLogger(__name__)


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning CheckpointIO plugin writing and reading :func:`save_checkpoint_file` files.

    ``ckpt_dir``: the run's checkpoint folder; without it nothing is ever removed."""

    def __init__(self, ckpt_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.ckpt_dir = None if ckpt_dir is None else os.path.abspath(os.path.expanduser(ckpt_dir))

    def _in_run_folder(self, path) -> bool:
        if self.ckpt_dir is None:
            return False
        return os.path.realpath(Path(path).parent) == os.path.realpath(self.ckpt_dir)

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if self._in_run_folder(path) and Path(self.ckpt_dir).is_dir():
            n = remove_stale_temps(self.ckpt_dir, older_than_s=0, suffix=CKPT_SUFFIX)
            if n:
                log.info("removed %d temporary checkpoint file(s) of a killed writer in %s", n, self.ckpt_dir)
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_checkpoint_file(path, map_location or "cpu")

    def remove_checkpoint(self, path) -> None:
        if not removable(path, self.ckpt_dir):
            log.warning(
                "not removing %s: only *.ckpt files in the run's checkpoint folder %s are removed",
                str(path)[:300], self.ckpt_dir,
            )  # fmt: skip
            return
        p = Path(path)
        if p.is_dir() and not p.is_symlink():
            log.warning("not removing %s: a folder, not a checkpoint file", p)
            return
        p.unlink(missing_ok=True)


class LastSavedStep(Callback):
    """Remembers the global step of the last checkpoint saved in this run (``step``; None before any), from
    Lightning's public ``on_save_checkpoint`` hook, which every save calls whichever callback or strategy
    wrote it: the task saves the final state itself when training stopped between checkpoint intervals."""

    def __init__(self) -> None:
        self.step: int | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:  # noqa: ANN001 (Lightning's hook)
        self.step = int(trainer.global_step)
