"""Rebuild a trained model from a vid3d checkpoint (config inside, trained weights as safetensors)."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from torch import nn

from vid3d.training.checkpoint_io import load_checkpoint_file


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a training run dir (its checkpoints/last.ckpt)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "checkpoints" / "last.ckpt"
    if not p.is_file():
        raise FileNotFoundError(
            f"checkpoint {p} does not exist (pass ckpt=<file> or ckpt=<training run dir>)"
        )
    return p


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Instantiate the model config stored in the checkpoint, then load its trained weights.

    Frozen weights are not in the checkpoint: they come from the backbone source named in the config
    (a pretrained folder or hub id, or the seed of a tiny random backbone). Every weight the checkpoint
    lists as trained must load; anything unexpected is an error.
    """
    ckpt_path = resolve_checkpoint(path)
    ckpt = load_checkpoint_file(ckpt_path)
    meta = ckpt.get("vid3d")
    if not meta or not meta.get("model_config"):
        raise ValueError(
            f"checkpoint {ckpt_path} has no vid3d model config (not written by vid3d's train.py)"
        )
    model = instantiate(meta["model_config"])
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"checkpoint {ckpt_path}: weights {unexpected[:5]} do not exist in the model config")
    not_loaded = {k.removeprefix("model.") for k in meta.get("trainable", [])} & set(missing)
    if not_loaded:
        raise ValueError(f"checkpoint {ckpt_path}: trained weights {sorted(not_loaded)[:5]} missing")
    return model.to(device).eval()
