"""Released checkpoint files of published models -> a vid3d checkpoint (the converters' shared steps).

``load_released`` reads a file with ``torch.load(weights_only=True)`` (or safetensors): tensors and plain
containers only; a file that needs pickle is refused in one line. ``released_state`` maps its weights to
the names of a built vid3d model (``CONVERTERS``: one key map per published model), and
``converted_checkpoint`` checks them against the model and returns the checkpoint dict vid3d's
``load_model`` reads (``models/checkpoint.py``): the mapped weights as the trained ones, the model config as
data.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from vid3d.errors import InputError

from .cameractrl import CameraCtrlEncoder
from .cameractrl_keys import cameractrl_to_vid3d
from .motionctrl import MotionCtrlEncoder
from .motionctrl_keys import motionctrl_to_vid3d


def load_released(path: str | os.PathLike) -> dict:
    """The released file's contents, without unpickling anything (InputError naming the file otherwise)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file (the released checkpoint to convert)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(p)))
        except Exception as e:  # noqa: BLE001 - safetensors raises its own types
            raise InputError(f"{p}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    try:
        obj = _torch_load(p)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:  # not a pickle of objects at all (e.g. "Unsupported operand": a corrupt file)
            detail = re.search(r"WeightsUnpickler error: \s*([^\n]+)", str(e))
            reason = detail.group(1) if detail else str(e).splitlines()[0]
            raise InputError(f"{p}: not a readable torch checkpoint ({reason})") from None
        what = f"it stores a {found.group(1)}"
        raise InputError(
            f"{p}: refused: loading it needs pickle ({what}); vid3d reads checkpoints with "
            "torch.load(weights_only=True) only. If you trust the file, re-save just its state dicts "
            "(torch.save of plain dicts of tensors) and convert that"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise InputError(f"{p}: not a readable torch checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(obj, Mapping):
        raise InputError(f"{p}: holds a {type(obj).__name__}, expected a dict of state dicts")
    return dict(obj)


def _torch_load(p: Path) -> object:
    """torch.load with weights_only=True, memory-mapped (multi-GB releases) unless the file predates the
    zip format."""
    try:
        return torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap can only be used" not in str(e):
            raise
        return torch.load(p, map_location="cpu", weights_only=True)


def _cameractrl(released: Mapping, model: nn.Module, where: str) -> dict[str, torch.Tensor]:
    enc = model.camera_encoder
    if not isinstance(enc, CameraCtrlEncoder):
        raise InputError(f"{where}: a CameraCtrl checkpoint needs model.camera_encoder = CameraCtrlEncoder")
    return cameractrl_to_vid3d(released, enc.block_paths, where)


def _motionctrl(released: Mapping, model: nn.Module, where: str) -> dict[str, torch.Tensor]:
    enc = model.camera_encoder
    if not isinstance(enc, MotionCtrlEncoder):
        raise InputError(f"{where}: a MotionCtrl checkpoint needs model.camera_encoder = MotionCtrlEncoder")
    return motionctrl_to_vid3d(released, model.unet, enc.block_paths, where)


CONVERTERS: dict[str, Callable[[Mapping, nn.Module, str], dict[str, torch.Tensor]]] = {
    "cameractrl": _cameractrl,
    "motionctrl": _motionctrl,
}


def released_state(kind: str, released: Mapping, model: nn.Module, where: str) -> dict[str, torch.Tensor]:
    """The released weights under ``model``'s parameter names (``CONVERTERS[kind]``)."""
    if kind not in CONVERTERS:
        raise InputError(f"unknown published model {kind!r}: one of {sorted(CONVERTERS)}")
    return CONVERTERS[kind](released, model, where)


def converted_checkpoint(
    model: nn.Module,
    model_config: dict,
    state: Mapping[str, torch.Tensor],
    where: str,
    extra: dict | None = None,
) -> dict[str, Any]:
    """The vid3d checkpoint dict for ``state`` (model parameter names -> tensors).

    Every mapped tensor must be a parameter of ``model`` with the same shape, and every camera-encoder
    parameter must be given (a partial release is refused): InputError naming the file and the weight.
    """
    own = model.state_dict()
    for k, t in state.items():
        if k not in own:
            raise InputError(f"{where}: weight {k} has no place in the model config")
        if tuple(t.shape) != tuple(own[k].shape):
            raise InputError(
                f"{where}: weight {k} has shape {tuple(t.shape)}, the model config {tuple(own[k].shape)} "
                "(another variant, or a model config of another size?)"
            )
    missing = sorted(
        k for k, _ in model.named_parameters() if k.startswith("camera_encoder.") and k not in state
    )
    if missing:
        raise InputError(
            f"{where}: {len(missing)} camera-encoder weights are not in the file, e.g. {missing[0]}"
        )
    weights = {f"model.{k}": t.detach().to(own[k].dtype).contiguous().clone() for k, t in state.items()}
    return {
        "epoch": 0,
        "global_step": 0,
        "state_dict": weights,
        "vid3d": {"model_config": model_config, "trainable": sorted(weights), **(extra or {})},
    }
