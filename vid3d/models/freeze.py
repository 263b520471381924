"""Freeze policy: choose which parameter groups of a CameraVideoDiffusion train.

Groups (parameter names are those of ``model.named_parameters()``):
    camera_encoder  everything under ``camera_encoder.``
    epipolar        the attention engineer's modules: any parameter of ``model.attention_adapter`` (by
                    identity, so modules it inserted into the UNet count too) or whose path has a
                    component starting with "attention_adapter"
    temporal        UNet temporal attention: every ``TemporalBasicTransformerBlock`` and, in each
                    ``TransformerSpatioTemporalModel``, ``time_pos_embed`` and ``time_mixer`` (the learned
                    spatial/temporal blend of the attention output)
    unet            every UNet parameter
    all             every parameter of the model
A parameter in several requested groups is listed under the first of them (in the order given).
Everything not in a requested group gets ``requires_grad = False``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch.nn as nn
from diffusers.models.attention import TemporalBasicTransformerBlock
from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel

GROUPS = ("camera_encoder", "epipolar", "temporal", "unet", "all")


def _module_param_ids(modules: Iterable[nn.Module]) -> set[int]:
    return {id(p) for m in modules for p in m.parameters()}


def _temporal_ids(model: nn.Module) -> set[int]:
    mods: list[nn.Module] = []
    for m in model.modules():
        if isinstance(m, TemporalBasicTransformerBlock):
            mods.append(m)
        elif isinstance(m, TransformerSpatioTemporalModel):
            mods.extend([m.time_pos_embed, m.time_mixer])
    return _module_param_ids(mods)


def _epipolar_ids(model: nn.Module) -> set[int]:
    adapter = getattr(model, "attention_adapter", None)
    ids = _module_param_ids([adapter]) if isinstance(adapter, nn.Module) else set()
    for name, p in model.named_parameters():
        if any(part.startswith("attention_adapter") for part in name.split(".")):
            ids.add(id(p))
    return ids


def _unet_ids(model: nn.Module) -> set[int]:
    unet = getattr(getattr(model, "backbone", None), "unet", None)
    if unet is None:
        unet = getattr(model, "unet", None)
    return _module_param_ids([unet]) if isinstance(unet, nn.Module) else set()


def _group_selector(model: nn.Module, group: str) -> Callable[[str, nn.Parameter], bool]:
    if group == "camera_encoder":
        return lambda name, p: name.startswith("camera_encoder.")
    if group == "all":
        return lambda name, p: True
    ids = {"epipolar": _epipolar_ids, "temporal": _temporal_ids, "unet": _unet_ids}[group](model)
    return lambda name, p: id(p) in ids


def apply_freeze_policy(model: nn.Module, trainable: list[str]) -> dict[str, list[str]]:
    """Set requires_grad so only parameters of the ``trainable`` groups train.

    Args:
        model: usually a CameraVideoDiffusion.
        trainable: group names from ``GROUPS``; empty freezes everything.
    Returns:
        {group: sorted trainable parameter names} for each requested group (possibly empty lists).
    Raises:
        ValueError for an unknown group name.
    """
    unknown = [g for g in trainable if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown freeze group(s) {unknown}; known groups: {list(GROUPS)}")
    selectors = [(g, _group_selector(model, g)) for g in dict.fromkeys(trainable)]
    out: dict[str, list[str]] = {g: [] for g, _ in selectors}
    for name, p in model.named_parameters():
        group = next((g for g, sel in selectors if sel(name, p)), None)
        p.requires_grad_(group is not None)
        if group is not None:
            out[group].append(name)
    return {g: sorted(v) for g, v in out.items()}
