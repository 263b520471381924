"""Checkpoints as one safetensors file: no pickle is written, none is ever loaded.

A Lightning checkpoint is a nested structure of dicts, lists, tuples, numbers, strings and tensors
(model state, optimiser state, loop progress, callback state). ``encode`` splits it into
- a flat ``{name: tensor}`` map stored as safetensors tensors, and
- a JSON skeleton (stored in the safetensors metadata under ``vid3d_skeleton``) in which every tensor is
  replaced by ``{"__tensor__": name}``, tuples by ``{"__tuple__": [...]}`` and dicts by
  ``{"__dict__": [[key, value], ...]}`` so non-string keys (optimiser state is keyed by int) survive.
Anything else (an arbitrary object) is refused at save time with the path of the offending entry.

Files are written to a temporary sibling and moved into place with ``os.replace``: a checkpoint on
disk is always either the previous complete one or the new complete one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import CheckpointIO
from safetensors import safe_open
from safetensors.torch import save_file

from vid3d.atomic import FILE_MODE, remove_stale_temps

SKELETON_KEY = "vid3d_skeleton"
FORMAT_VERSION = "1"


def encode(obj: Any, tensors: dict[str, torch.Tensor], path: str = "") -> Any:
    """Replace tensors in ``obj`` by references, collecting them in ``tensors``."""
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        return {"__dict__": [[k, encode(v, tensors, f"{path}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v, tensors, f"{path}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [encode(v, tensors, f"{path}[{i}]") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():  # numpy scalar
        return obj.item()
    raise TypeError(
        f"checkpoint entry {path or '/'} has type {type(obj).__name__}, which a safetensors checkpoint "
        "cannot hold; store plain numbers, strings, lists, dicts or tensors"
    )


def decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(decode(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {_key(k): decode(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [decode(v, tensors) for v in obj]
    return obj


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def save_checkpoint_file(checkpoint: dict, path: str | os.PathLike) -> None:
    """Write ``checkpoint`` atomically to ``path`` as safetensors + JSON skeleton."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = encode(checkpoint, tensors)
    # safetensors refuses tensors that share storage; the copies are cheap next to a training step.
    tensors = {k: v.clone() for k, v in tensors.items()}
    metadata = {SKELETON_KEY: json.dumps(skeleton), "format": "vid3d-checkpoint", "version": FORMAT_VERSION}
    remove_stale_temps(path)  # left by a writer killed more than an hour ago
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp creates 0600; checkpoints are shared like any output
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint_file` (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"checkpoint {path} is not a readable safetensors file ({e})") from e
    if metadata.get("format") != "vid3d-checkpoint" or SKELETON_KEY not in metadata:
        raise ValueError(f"checkpoint {path} is a safetensors file but not a vid3d checkpoint (no skeleton)")
    return decode(json.loads(metadata[SKELETON_KEY]), tensors)


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning CheckpointIO plugin writing and reading :func:`save_checkpoint_file` files."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_checkpoint_file(path, map_location or "cpu")

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """A vid3d checkpoint file whose safetensors header and skeleton read (cheap: no tensor is loaded),
    or a DeepSpeed checkpoint directory holding vid3d's weights file."""
    from vid3d.training.checkpoint_paths import WEIGHTS_FILE

    path = Path(path)
    if path.is_dir():
        return (path / WEIGHTS_FILE).is_file()
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return meta.get("format") == "vid3d-checkpoint" and SKELETON_KEY in meta
    except Exception:  # noqa: BLE001 - truncated, empty, not safetensors: not complete
        return False


def newest_complete_checkpoint(folder: str | os.PathLike) -> Path:
    """The most recently written complete checkpoint (``*.ckpt``) in a run dir or its ``checkpoints/``:
    after a kill between ``step_N.ckpt`` and ``last.ckpt``, the step file. FileNotFoundError if none."""
    folder = Path(folder)
    ckpt_dir = folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder
    candidates = sorted(ckpt_dir.glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in candidates:
        if is_complete_checkpoint(p):
            return p
    raise FileNotFoundError(f"{ckpt_dir}: no complete checkpoint (*.ckpt) to resume from")
