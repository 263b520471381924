"""Rebuild a trained model from a vid3d checkpoint (config inside, trained weights as safetensors).

Accepted paths: a checkpoint file written by vid3d's SafetensorsCheckpointIO; a DeepSpeed checkpoint
directory (``<name>.ckpt/``) holding ``vid3d_weights.safetensors`` (see vid3d.training.strategies); or a
training run dir (its ``checkpoints/last.ckpt``, file or DeepSpeed directory). Nothing is unpickled.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from vid3d.models.schema import build_model, validate_model_config
from vid3d.training.checkpoint_io import load_checkpoint_file
from vid3d.training.checkpoint_paths import resolve_checkpoint
from vid3d.training.ema import EMA_KEY

log = logging.getLogger(__name__)


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


def load_model(path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True) -> nn.Module:
    """Rebuild the model from the config stored in the checkpoint, then load its trained weights.

    The stored config is data: it is checked against vid3d's model schema (``vid3d.models.schema``) and
    built without Hydra; a ``_target_`` outside vid3d's own model classes is refused before any import.

    Frozen weights are not in the checkpoint: they come from the backbone source named in the config
    (a pretrained folder or hub id, or the seed of a tiny random backbone). Every weight the checkpoint
    lists as trained must load; anything unexpected is an error. ``use_ema``: prefer the EMA weights.
    """
    state, meta, ckpt_path = read_trained_state(path, use_ema=use_ema)
    model = build_model(meta["model_config"], where=str(ckpt_path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"checkpoint {ckpt_path}: weights {unexpected[:5]} do not exist in the model config")
    not_loaded = {k.removeprefix("model.") for k in meta.get("trainable", [])} & set(missing)
    if not_loaded:
        raise ValueError(f"checkpoint {ckpt_path}: trained weights {sorted(not_loaded)[:5]} missing")
    return model.to(device).eval()
