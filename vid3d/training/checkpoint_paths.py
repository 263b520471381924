"""Where a checkpoint's weights are, from what a user passes as ``ckpt=`` (pathlib only: no torch, so the
entry points can check the path before their heavy imports).

Accepted: a vid3d checkpoint file (safetensors, ``*.ckpt``), a DeepSpeed checkpoint directory holding
``WEIGHTS_FILE`` (written by ``Vid3dDeepSpeedStrategy``), or a training run directory (its
``checkpoints/last.ckpt``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WEIGHTS_FILE", "resolve_checkpoint"]

WEIGHTS_FILE = "vid3d_weights.safetensors"  # inside a DeepSpeed checkpoint directory


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, a DeepSpeed checkpoint dir, or a training run dir -> the safetensors file.

    Raises FileNotFoundError naming the path and what to pass instead."""
    p = Path(path).expanduser()
    if p.is_dir() and not (p / WEIGHTS_FILE).is_file():
        p = p / "checkpoints" / "last.ckpt"
    if p.is_dir():
        if not (p / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(
                f"{p} is a DeepSpeed checkpoint directory without {WEIGHTS_FILE} (written by vid3d's "
                "Vid3dDeepSpeedStrategy); it can only be resumed (resume=...), not loaded for sampling"
            )
        p = p / WEIGHTS_FILE
    if not p.is_file():
        raise FileNotFoundError(
            f"checkpoint {p} does not exist (pass ckpt=<file> or ckpt=<training run dir>)"
        )
    return p
