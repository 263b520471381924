"""Key map between MotionCtrl-SVD's released checkpoint and vid3d.

The released file (``motionctrl_svd.ckpt``) is a Lightning-style ``{"state_dict": ...}`` of the whole sgm
``DiffusionEngine`` (generative-models layout: ``model.diffusion_model.input_blocks...``). Only the parts
MotionCtrl trains are taken: in every temporal transformer block (sgm ``time_stack.n`` of a
``SpatialVideoTransformer``) its ``cc_projection``, ``attn2`` and ``norm2``; everything else is SVD's own and
comes from the backbone (``model.backbone.source``).

sgm's transformer of a UNet block -> diffusers' (the same order of blocks; ``sgm_transformer_paths``):

    input_blocks.<n>.1     down_blocks.i.attentions.j    n = 1 + (layers + 1) * i + j (downsamplers between)
    middle_block.1         mid_block.attentions.0
    output_blocks.<n>.1    up_blocks.i.attentions.j      n = (layers + 1) * i + j

and inside it ``time_stack.n`` -> ``temporal_transformer_blocks.n``. Then:

    model.diffusion_model.<T>.time_stack.n.cc_projection.*   camera_encoder.projections.k.*
    model.diffusion_model.<T>.time_stack.n.attn2.*   backbone.unet.<T'>.temporal_transformer_blocks.n.attn2.*
    model.diffusion_model.<T>.time_stack.n.norm2.*   backbone.unet.<T'>.temporal_transformer_blocks.n.norm2.*

(k: the block's index in ``unet_blocks.temporal_blocks`` order). ``attn2`` has to_q, to_k, to_v (no bias) and
to_out.0 under the same names in both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn

from vid3d.errors import InputError

SGM_PREFIX = "model.diffusion_model."
_TRAINED = re.compile(r"(.+)\.time_stack\.(\d+)\.(cc_projection|attn2|norm2)\.(.+)")


def sgm_transformer_paths(unet: nn.Module) -> dict[str, str]:
    """sgm path of every spatio-temporal transformer of ``unet`` -> its diffusers path (module docstring)."""
    out: dict[str, str] = {}
    n = 1
    for i, block in enumerate(unet.down_blocks):
        for j in range(len(block.resnets)):
            if getattr(block, "attentions", None) is not None:
                out[f"input_blocks.{n}.1"] = f"down_blocks.{i}.attentions.{j}"
            n += 1
        if block.downsamplers is not None:
            n += 1
    if getattr(unet.mid_block, "attentions", None) is not None:
        out["middle_block.1"] = "mid_block.attentions.0"
    n = 0
    for i, block in enumerate(unet.up_blocks):
        for j in range(len(block.resnets)):
            if getattr(block, "attentions", None) is not None:
                out[f"output_blocks.{n}.1"] = f"up_blocks.{i}.attentions.{j}"
            n += 1
    return out


def _state_dict(released: Mapping) -> Mapping[str, torch.Tensor]:
    inner = released.get("state_dict", released)
    return inner if isinstance(inner, Mapping) else {}


def motionctrl_to_vid3d(
    released: Mapping, unet: nn.Module, block_paths: Sequence[str], where: str
) -> dict[str, torch.Tensor]:
    """The released weights MotionCtrl trained -> ``{vid3d model name: tensor}``.

    Args:
        released: the loaded file (``{"state_dict": {...}}`` or the state dict itself).
        unet: the model's UNet (its block structure gives the sgm -> diffusers paths).
        block_paths: the temporal blocks' diffusers paths, projection k = block_paths[k].
        where: the file, named in errors.
    Raises:
        InputError: no camera-motion weight at all, or one at a transformer this UNet does not have.
    """
    paths = sgm_transformer_paths(unet)
    index = {p: k for k, p in enumerate(block_paths)}
    out: dict[str, torch.Tensor] = {}
    for name, t in _state_dict(released).items():
        if not isinstance(name, str) or not name.startswith(SGM_PREFIX):
            continue
        m = _TRAINED.fullmatch(name[len(SGM_PREFIX) :])
        if m is None:
            continue  # SVD's own weights: from the backbone
        sgm_path, n, part, rest = m.groups()
        block = f"{paths.get(sgm_path, '?')}.temporal_transformer_blocks.{n}"
        if block not in index:
            raise InputError(
                f"{where}: {name} belongs to a transformer this UNet does not have (another model config?)"
            )
        if part == "cc_projection":
            out[f"camera_encoder.projections.{index[block]}.{rest}"] = t
        else:
            out[f"backbone.unet.{block}.{part}.{rest}"] = t
    if not out:
        raise InputError(
            f"{where}: no MotionCtrl camera-motion weight (…time_stack.N.cc_projection.*) in the file"
        )
    return out


def vid3d_to_motionctrl(
    state: Mapping[str, torch.Tensor], unet: nn.Module, block_paths: Sequence[str]
) -> dict:
    """The inverse map (for round trips): vid3d names -> ``{"state_dict": {sgm name: tensor}}``."""
    to_sgm = {d: s for s, d in sgm_transformer_paths(unet).items()}
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        m = re.fullmatch(r"camera_encoder\.projections\.(\d+)\.(.+)", key)
        if m:
            block, part, rest = block_paths[int(m.group(1))], "cc_projection", m.group(2)
        else:
            m = re.fullmatch(
                r"backbone\.unet\.(.+\.temporal_transformer_blocks\.\d+)\.(attn2|norm2)\.(.+)", key
            )
            if m is None:
                raise KeyError(f"no released name for {key}")
            block, part, rest = m.groups()
        transformer, n = re.fullmatch(r"(.+)\.temporal_transformer_blocks\.(\d+)", block).groups()
        out[f"{SGM_PREFIX}{to_sgm[transformer]}.time_stack.{n}.{part}.{rest}"] = t
    return {"state_dict": out}
