"""Checkpoints: the one place vid3d reads and writes them. No pickle is written, none is ever loaded.

**Format.** A Lightning checkpoint is a nested structure of dicts, lists, tuples, numbers, strings and
tensors (model state, optimiser state, loop progress, callback state). ``encode`` splits it into
- a flat ``{name: tensor}`` map stored as safetensors tensors, and
- a JSON skeleton (stored in the safetensors metadata under ``vid3d_skeleton``) in which every tensor is
  replaced by ``{"__tensor__": name}``, tuples by ``{"__tuple__": [...]}`` and dicts by
  ``{"__dict__": [[key, value], ...]}`` so non-string keys (optimiser state is keyed by int) survive.
Anything else (an arbitrary object) is refused at save time with the path of the offending entry. Files are
written to a temporary sibling and moved into place with ``os.replace``: a checkpoint on disk is always
either the previous complete one or the new complete one.

**Paths** a user passes as ``ckpt=``: a vid3d checkpoint file (``*.ckpt``), a DeepSpeed checkpoint directory
holding ``WEIGHTS_FILE`` (written by ``vid3d.training.strategies.Vid3dDeepSpeedStrategy``), or a training run
directory (its newest complete checkpoint: ``checkpoints/last.ckpt``, or the step file written after it when a
kill came between the two). "Newest" is the write time each file records in its own header
(``SAVED_AT_KEY``), so a copied or moved run folder, whose file times are those of the copy, still names it.
``resolve_checkpoint`` needs no torch (this module imports torch and safetensors inside its functions; headers
are parsed in Python), so the entry points check the path before their heavy imports.

**Models** are rebuilt from the config stored in the checkpoint (``vid3d.models.schema``: data, never
instructions), then the trained weights (or their EMA shadow, ``EMA_KEY``) are loaded.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vid3d.atomic import atomic_target

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "EMA_KEY",
    "WEIGHTS_FILE",
    "is_complete_checkpoint",
    "load_checkpoint_file",
    "load_model",
    "load_trained_weights",
    "newest_complete_checkpoint",
    "read_checkpoint_info",
    "read_trained_state",
    "resolve_checkpoint",
    "save_checkpoint_file",
    "save_trained_weights",
]

log = logging.getLogger(__name__)

SKELETON_KEY = "vid3d_skeleton"
SAVED_AT_KEY = "vid3d_saved_at_ns"  # time.time_ns() of the write, in the safetensors metadata
MAX_HEADER_BYTES = 1 << 28  # a safetensors header (tensor table + JSON skeleton) larger than this is refused
FORMAT_VERSION = "1"
WEIGHTS_FILE = "vid3d_weights.safetensors"  # inside a DeepSpeed checkpoint directory
EMA_KEY = "ema_state_dict"  # the EMA shadow of the trained weights (vid3d.training.ema.EMACallback)


# ------------------------------------------------------------------------------------------ paths
def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, a DeepSpeed checkpoint dir, or a training run dir -> the safetensors file.

    Raises FileNotFoundError naming the path and what to pass instead."""
    p = Path(path).expanduser()
    if p.is_dir() and not (p / WEIGHTS_FILE).is_file():
        try:
            p = newest_complete_checkpoint(p / "checkpoints")
        except FileNotFoundError:
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


# ----------------------------------------------------------------------------------- file format
def encode(obj: Any, tensors: dict[str, torch.Tensor], path: str = "") -> Any:
    """Replace tensors in ``obj`` by references, collecting them in ``tensors``."""
    import torch

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
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = encode(checkpoint, tensors)
    # safetensors refuses tensors that share storage; the copies are cheap next to a training step.
    tensors = {k: v.clone() for k, v in tensors.items()}
    metadata = {SKELETON_KEY: json.dumps(skeleton), "format": "vid3d-checkpoint", "version": FORMAT_VERSION,
                SAVED_AT_KEY: str(time.time_ns())}
    # ".{name}.<random>.tmp", 0644, fsynced; temporaries a writer killed over an hour ago are removed first
    with atomic_target(path, keep_suffix=False, fsync=True) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint_file` (never unpickles)."""
    from safetensors import safe_open

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


def _header_metadata(path: Path) -> dict | None:
    """The safetensors metadata of a complete file (header parsed in Python: no torch, no tensor read), or
    None when the file is truncated, empty or not safetensors. Complete: the data section ends exactly where
    the header's tensor table says."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            n = int.from_bytes(f.read(8), "little")
            if size < 8 or not 0 < n <= min(MAX_HEADER_BYTES, size - 8):
                return None
            header = json.loads(f.read(n))
        meta = header.pop("__metadata__", None) or {}
        ends = [int(t["data_offsets"][1]) for t in header.values()]
        if not isinstance(meta, dict) or 8 + n + max(ends, default=0) != size:
            return None
        return meta
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def _vid3d_metadata(path: Path) -> dict | None:
    meta = _header_metadata(path)
    if meta is None or meta.get("format") != "vid3d-checkpoint" or SKELETON_KEY not in meta:
        return None
    return meta


def read_checkpoint_info(path: str | os.PathLike) -> dict:
    """The ``vid3d`` metadata of a checkpoint file (model config, trainable names, ``image_size`` [H, W] and
    ``num_frames`` of training when recorded), read from the safetensors header alone: no tensor, no torch
    (the entry points call it before their heavy imports). ``path`` as :func:`resolve_checkpoint` returns it.

    Raises InputError naming the file when it is not a complete safetensors file, or not one vid3d wrote."""
    from collections import defaultdict

    from vid3d.errors import InputError

    path = Path(path)
    what = "pass the .ckpt a vid3d training run wrote, or its run dir"
    meta = _header_metadata(path)
    if meta is None:
        raise InputError(f"checkpoint {path} is not a safetensors file (or is truncated); {what}")
    if meta.get("format") != "vid3d-checkpoint" or SKELETON_KEY not in meta:
        raise InputError(f"checkpoint {path} is a safetensors file but not a vid3d checkpoint; {what}")
    try:
        skeleton = json.loads(meta[SKELETON_KEY])
    except (TypeError, json.JSONDecodeError):
        raise InputError(f"checkpoint {path}: its vid3d skeleton is not JSON (damaged file)") from None
    ckpt = decode(skeleton, defaultdict(lambda: None))  # tensors are not read: None in their place
    info = ckpt.get("vid3d") if isinstance(ckpt, dict) else None
    return info if isinstance(info, dict) else {}


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """A vid3d checkpoint file whose safetensors header and skeleton read and whose data section is whole
    (cheap: no tensor is loaded), or a DeepSpeed checkpoint directory holding vid3d's weights file."""
    path = Path(path)
    if path.is_dir():
        return (path / WEIGHTS_FILE).is_file()
    return _vid3d_metadata(path) is not None


def _written_at_ns(path: Path) -> int | None:
    """When a complete checkpoint was written: its recorded ``SAVED_AT_KEY`` (copies keep it), else (files
    from before it was recorded) its modification time; None when ``path`` is not a complete checkpoint."""
    file = path / WEIGHTS_FILE if path.is_dir() else path
    meta = _vid3d_metadata(file)
    if meta is None:
        return None
    try:
        return int(meta[SAVED_AT_KEY])
    except (KeyError, ValueError, TypeError):
        return file.stat().st_mtime_ns


def newest_complete_checkpoint(folder: str | os.PathLike) -> Path:
    """The most recently written complete checkpoint (``*.ckpt``) in a run dir or its ``checkpoints/``:
    after a kill between ``step_N.ckpt`` and ``last.ckpt``, the step file; ``last.ckpt`` wins a tie.
    FileNotFoundError if none."""
    folder = Path(folder)
    ckpt_dir = folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder
    best: tuple[int, bool] | None = None
    found = None
    for p in ckpt_dir.glob("*.ckpt"):
        t = _written_at_ns(p)
        if t is not None and (best is None or (t, p.name == "last.ckpt") > best):
            best, found = (t, p.name == "last.ckpt"), p
    if found is None:
        raise FileNotFoundError(f"{ckpt_dir}: no complete checkpoint (*.ckpt) to resume from")
    return found


# ---------------------------------------------------------------------------------------- models
def read_trained_state(path: str | Path, use_ema: bool = True) -> tuple[dict, dict, Path]:
    """(trained weights without the ``model.`` prefix, the checkpoint's ``vid3d`` metadata, file).

    ``use_ema``: the EMA shadow (``ema_state_dict``) when the checkpoint has one, else the raw weights.
    """
    ckpt_path = resolve_checkpoint(path)
    ckpt = load_checkpoint_file(ckpt_path)
    meta = ckpt.get("vid3d")
    if not meta or not meta.get("model_config"):
        raise ValueError(
            f"checkpoint {ckpt_path} has no vid3d model config (not written by vid3d's train.py)"
        )
    # refused here, so init_from and export refuse a hostile config too (they never build it)
    from vid3d.models.schema import validate_model_config

    validate_model_config(meta["model_config"], str(ckpt_path))
    weights = ckpt["state_dict"]
    if use_ema and ckpt.get(EMA_KEY):
        log.info("%s: using the EMA weights", ckpt_path)
        weights = {**weights, **ckpt[EMA_KEY]}
    state = {k.removeprefix("model."): v for k, v in weights.items()}
    return state, meta, ckpt_path


def load_trained_weights(model: nn.Module, path: str | Path, use_ema: bool = False) -> list[str]:
    """Copy a checkpoint's trained weights into ``model`` (``init_from``: no optimiser or loop state).

    Every checkpoint weight must exist in ``model`` with the same shape; returns the loaded names.
    """
    state, _, ckpt_path = read_trained_state(path, use_ema=use_ema)
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise ValueError(f"init_from {ckpt_path}: weights {unexpected[:5]} do not exist in this model")
    bad = [k for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise ValueError(
            f"init_from {ckpt_path}: {len(bad)} weights differ in shape, e.g. {k}: checkpoint "
            f"{tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    return sorted(state)


def load_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    pretrained: dict[str, Any] | None = None,
) -> nn.Module:
    """Rebuild the model from the config stored in the checkpoint, then load its trained weights.

    The stored config is data: it is checked against vid3d's model schema (``vid3d.models.schema``) and
    built without Hydra; a ``_target_`` outside vid3d's own model classes is refused before any import.

    Frozen weights are not in the checkpoint: they come from the backbone source named in the config
    (a pretrained folder or hub id, or the seed of a tiny random backbone). Every weight the checkpoint
    lists as trained must load; anything unexpected is an error. ``use_ema``: prefer the EMA weights.
    ``pretrained``: the user's ``source`` / ``revision`` / ``local_files_only`` for a pretrained backbone
    (the checkpoint names only which registered backbone it is, ``weights: svd_xt``; see
    ``vid3d.models.schema.build_model``).
    """
    from vid3d.models.schema import build_model

    state, meta, ckpt_path = read_trained_state(path, use_ema=use_ema)
    model = build_model(meta["model_config"], where=str(ckpt_path), pretrained=pretrained)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"checkpoint {ckpt_path}: weights {unexpected[:5]} do not exist in the model config")
    not_loaded = {k.removeprefix("model.") for k in meta.get("trainable", [])} & set(missing)
    if not_loaded:
        raise ValueError(f"checkpoint {ckpt_path}: trained weights {sorted(not_loaded)[:5]} missing")
    return model.to(device).eval()


def save_trained_weights(src: str | Path, dst: str | Path, use_ema: bool = True) -> Path:
    """Write a weights-only copy of a vid3d checkpoint to ``dst`` (atomic) and return it.

    The copy holds the trained weights (with ``use_ema``, the EMA shadow in place of the raw weights when the
    checkpoint has one), the ``vid3d`` metadata with the model config rewritten to today's layout
    (``vid3d.models.schema.migrate_model_config``), ``global_step`` and ``epoch``; no optimiser, loop or
    callback state. ``load_model``, ``init_from``, ``sample.py`` and ``eval.py`` read it like the original.
    Made for small committed model assets (a quarter to a third of a training checkpoint's size with Adam).
    """
    from vid3d.models.schema import migrate_model_config

    state, meta, path = read_trained_state(src, use_ema=use_ema)
    full = load_checkpoint_file(path)
    out = {
        "epoch": full.get("epoch"),
        "global_step": full.get("global_step"),
        "state_dict": {f"model.{k}": v.contiguous() for k, v in state.items()},
        "vid3d": {**meta, "model_config": migrate_model_config(meta["model_config"])},
    }
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint_file(out, dst)
    return dst
