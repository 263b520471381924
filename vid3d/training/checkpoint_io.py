"""The Lightning CheckpointIO plugin for vid3d checkpoint files (the format: ``vid3d.models.checkpoint``)."""

from __future__ import annotations

from pathlib import Path

from lightning.fabric.plugins import CheckpointIO

from vid3d.models.checkpoint import load_checkpoint_file, save_checkpoint_file

__all__ = ["SafetensorsCheckpointIO"]


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning CheckpointIO plugin writing and reading :func:`save_checkpoint_file` files."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_checkpoint_file(path, map_location or "cpu")

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)
