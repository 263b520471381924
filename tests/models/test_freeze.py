"""Freeze policy: group membership by module type and bit-exact frozen weights after an Adam step."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from diffusers.models.attention import TemporalBasicTransformerBlock
from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel

from vid3d.geometry import look_at_c2w
from vid3d.models.backbone import build_tiny_backbone
from vid3d.models.freeze import apply_freeze_policy
from vid3d.models.video_diffusion import CameraVideoDiffusion

B, F, H, W = 1, 3, 32, 48


def _model(kind: str = "plucker") -> CameraVideoDiffusion:
    return CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder=kind)


def _batch() -> dict:
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]).expand(B, F, 3, 3).clone()
    eyes = torch.stack([torch.tensor([0.3 * i, 0.0, -2.0]) for i in range(F)]).double()
    c2w = look_at_c2w(eyes, torch.zeros(F, 3, dtype=torch.float64)).float()[None]
    return {"frames": torch.rand(B, F, 3, H, W, generator=g) * 2 - 1, "K_px": K, "c2w": c2w}


def _owner_chain(model: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """(attribute name, module) for every module on the path to parameter ``name``."""
    chain, mod = [], model
    for part in name.split(".")[:-1]:
        mod = getattr(mod, part)
        chain.append((part, mod))
    return chain


def test_groups_by_module_type() -> None:
    model = _model()
    groups = apply_freeze_policy(model, ["camera_encoder", "temporal"])
    assert set(groups) == {"camera_encoder", "temporal"}
    cam, temporal = set(groups["camera_encoder"]), set(groups["temporal"])
    assert cam == {f"camera_encoder.{n}" for n, _ in model.camera_encoder.named_parameters()}
    for name in temporal:
        chain = _owner_chain(model, name)
        in_block = any(isinstance(m, TemporalBasicTransformerBlock) for _, m in chain)
        in_stm_extra = any(
            isinstance(parent, TransformerSpatioTemporalModel) and attr in ("time_pos_embed", "time_mixer")
            for (_, parent), (attr, _) in zip(chain, chain[1:])
        )
        assert in_block or in_stm_extra, name
    # complete: every TemporalBasicTransformerBlock / time_pos_embed parameter is included
    expected = 0
    for m in model.modules():
        if isinstance(m, TemporalBasicTransformerBlock):
            expected += len(list(m.parameters()))
        elif isinstance(m, TransformerSpatioTemporalModel):
            expected += len(list(m.time_pos_embed.parameters())) + len(list(m.time_mixer.parameters()))
    assert len(temporal) == expected > 0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == cam | temporal
    assert not any("spatial" in n or n.startswith("backbone.vae") for n in trainable)


def test_all_unet_and_unknown_groups() -> None:
    model = _model("rt")
    every = {n for n, _ in model.named_parameters()}
    assert set(apply_freeze_policy(model, ["all"])["all"]) == every
    unet = apply_freeze_policy(model, ["unet"])["unet"]
    assert unet and all(n.startswith("backbone.unet.") for n in unet)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(unet)
    assert apply_freeze_policy(model, []) == {}
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="unknown freeze group"):
        apply_freeze_policy(model, ["camera_encoder", "lora"])


def test_epipolar_group_from_adapter_module() -> None:
    model = _model("none")
    adapter = nn.Module()
    adapter.proj = nn.Linear(4, 4)
    model.attention_adapter = adapter
    inside = nn.Linear(2, 2)  # a module the adapter put inside the UNet, registered by both
    adapter.inner = inside
    model.backbone.unet.add_module("epi_inner", inside)
    groups = apply_freeze_policy(model, ["epipolar"])
    names = set(groups["epipolar"])
    assert {"attention_adapter.proj.weight", "attention_adapter.proj.bias"} <= names
    assert len(names) == 4  # proj + inner, each once (named under whichever path comes first)
    assert all(p.requires_grad for p in adapter.parameters())
    assert sum(p.requires_grad for p in model.parameters()) == 4


def test_adam_step_changes_only_trainable() -> None:
    model = _model("plucker")
    groups = apply_freeze_policy(model, ["camera_encoder", "temporal"])
    trainable = {n for v in groups.values() for n in v}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss, _ = model.training_loss(_batch(), generator=torch.Generator().manual_seed(0))
    loss.backward()
    opt.step()
    changed = set()
    for n, p in model.named_parameters():
        if n in trainable:
            if p.grad is not None and p.grad.abs().sum() > 0:
                assert not torch.equal(p, before[n]), n
                changed.add(n)
        else:
            assert p.grad is None, n
            assert torch.equal(p, before[n]), n
    # the zero-initialised camera output convs and the temporal blocks both moved
    assert any(n.startswith("camera_encoder.outs.") for n in changed)
    assert any(n in groups["temporal"] for n in changed)
