"""Key map between CameraCtrl-SVD's released checkpoint and vid3d's ``CameraCtrlEncoder``.

The released file (``CameraCtrl_svd.ckpt``, ``CameraCtrl_svdxt.ckpt``) is a ``torch.save`` dict with
``pose_encoder_state_dict`` (its CameraPoseEncoder) and ``attention_processor_state_dict`` (the merge layer of
every temporal self-attention, keyed by the UNet path of its processor). Names on the left, vid3d's (under
``camera_encoder.``) on the right; i, j: level and stage; k: the index of the temporal block in the
fixed order of ``unet_blocks.temporal_blocks`` (``CameraCtrlEncoder.block_paths``):

    encoder_conv_in.*                                             conv_in.*
    encoder_down_conv_blocks.i.j.{in_conv,block1,block2}.*        levels.i.j.res.{in_conv,block1,block2}.*
    encoder_down_attention_blocks.i.j.attention_blocks.0.to_{q,k,v}.weight
                                                                  levels.i.j.temporal.to_{q,k,v}.weight
    encoder_down_attention_blocks.i.j.attention_blocks.0.to_out.0.*          levels.i.j.temporal.to_out.*
    encoder_down_attention_blocks.i.j.norms.0.*                   levels.i.j.temporal.norm_attn.*
    encoder_down_attention_blocks.i.j.ff.net.0.proj.*             levels.i.j.temporal.ff_in.*
    encoder_down_attention_blocks.i.j.ff.net.2.*                  levels.i.j.temporal.ff_out.*
    encoder_down_attention_blocks.i.j.ff_norm.*                   levels.i.j.temporal.norm_ff.*
    encoder_down_attention_blocks.i.j.attention_blocks.0.pos_encoder.pe
                                                                  (not stored: must be the sinusoid table)
    <block path>.attn1.processor.qkv_merge.*                      merges.k.*

Pure functions on ``{name: tensor}`` maps; nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch

from vid3d.errors import InputError

from .cameractrl import sinusoid_table

_A = r"encoder_down_attention_blocks\.(\d+)\.(\d+)\."
_ENCODER_RULES = [
    (r"encoder_conv_in\.(weight|bias)", r"conv_in.\1"),
    (
        r"encoder_down_conv_blocks\.(\d+)\.(\d+)\.(in_conv|block1|block2)\.(weight|bias)",
        r"levels.\1.\2.res.\3.\4",
    ),
    (_A + r"attention_blocks\.0\.(to_q|to_k|to_v)\.weight", r"levels.\1.\2.temporal.\3.weight"),
    (_A + r"attention_blocks\.0\.to_out\.0\.(weight|bias)", r"levels.\1.\2.temporal.to_out.\3"),
    (_A + r"norms\.0\.(weight|bias)", r"levels.\1.\2.temporal.norm_attn.\3"),
    (_A + r"ff\.net\.0\.proj\.(weight|bias)", r"levels.\1.\2.temporal.ff_in.\3"),
    (_A + r"ff\.net\.2\.(weight|bias)", r"levels.\1.\2.temporal.ff_out.\3"),
    (_A + r"ff_norm\.(weight|bias)", r"levels.\1.\2.temporal.norm_ff.\3"),
]
_PE = re.compile(_A + r"attention_blocks\.0\.pos_encoder\.pe")
_MERGE = re.compile(r"(.+)\.attn1\.processor\.qkv_merge\.(weight|bias)")
PREFIX = "camera_encoder."


def _encoder_key(name: str) -> str | None:
    for pattern, repl in _ENCODER_RULES:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, repl, name)
    return None


def cameractrl_to_vid3d(
    released: Mapping[str, Mapping[str, torch.Tensor]], block_paths: Sequence[str], where: str
) -> dict[str, torch.Tensor]:
    """The released dict -> ``{camera_encoder.<vid3d name>: tensor}`` (names relative to the model).

    Args:
        released: the loaded file: ``pose_encoder_state_dict`` and ``attention_processor_state_dict``.
        block_paths: the UNet paths of the temporal blocks, merge k = block_paths[k].
        where: the file, named in every error.
    Raises:
        InputError: a missing section, an unknown key, or a frame-position table that is not the sinusoid one.
    """
    for section in ("pose_encoder_state_dict", "attention_processor_state_dict"):
        if not isinstance(released.get(section), Mapping):
            raise InputError(f"{where}: no '{section}' (not a CameraCtrl-SVD checkpoint)")
    out: dict[str, torch.Tensor] = {}
    for name, t in released["pose_encoder_state_dict"].items():
        if _PE.fullmatch(name):
            table = sinusoid_table(t.shape[-2], t.shape[-1])
            if t.ndim != 3 or not torch.allclose(t.reshape(table.shape).float(), table, atol=1e-5):
                raise InputError(f"{where}: pose_encoder_state_dict.{name} is not the sinusoid frame table")
            continue
        key = _encoder_key(name)
        if key is None:
            raise InputError(
                f"{where}: pose_encoder_state_dict.{name} is not a CameraCtrl-SVD encoder weight"
            )
        out[PREFIX + key] = t
    index = {p: k for k, p in enumerate(block_paths)}
    for name, t in released["attention_processor_state_dict"].items():
        m = _MERGE.fullmatch(name)
        if m is None or m.group(1) not in index:
            raise InputError(
                f"{where}: attention_processor_state_dict.{name} is not the merge layer of a temporal block "
                "of this UNet (wrong variant or model config?)"
            )
        out[f"{PREFIX}merges.{index[m.group(1)]}.{m.group(2)}"] = t
    return out


def frame_positions(released: Mapping[str, Mapping[str, torch.Tensor]]) -> int | None:
    """How many frame positions the released encoder has (14: SVD, 25: SVD-XT), or None without a table."""
    for name, t in released.get("pose_encoder_state_dict", {}).items():
        if _PE.fullmatch(name):
            return int(t.shape[-2])
    return None


def vid3d_to_cameractrl(
    state: Mapping[str, torch.Tensor], block_paths: Sequence[str], max_frames: int
) -> dict[str, dict[str, torch.Tensor]]:
    """The inverse map: vid3d's ``camera_encoder.*`` weights -> the released layout (with frame tables)."""
    inverse = [(re.compile(_inverse_pattern(pattern, repl)), pattern) for pattern, repl in _ENCODER_RULES]
    pose: dict[str, torch.Tensor] = {}
    attn: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :]
        m = re.fullmatch(r"merges\.(\d+)\.(weight|bias)", name)
        if m:
            attn[f"{block_paths[int(m.group(1))]}.attn1.processor.qkv_merge.{m.group(2)}"] = t
            continue
        for rx, pattern in inverse:
            hit = rx.fullmatch(name)
            if hit:
                pose[_fill(pattern, hit.groups())] = t
                break
        else:
            raise KeyError(f"no released name for {key}")
    for name in list(pose):
        m = re.fullmatch(r"encoder_down_attention_blocks\.(\d+)\.(\d+)\.norms\.0\.weight", name)
        if m:
            pe = sinusoid_table(max_frames, pose[name].shape[0])[None]
            pose[
                f"encoder_down_attention_blocks.{m.group(1)}.{m.group(2)}.attention_blocks.0.pos_encoder.pe"
            ] = pe
    return {"pose_encoder_state_dict": pose, "attention_processor_state_dict": attn}


def _inverse_pattern(pattern: str, repl: str) -> str:
    """The regex of a rule's vid3d names: ``repl`` with each back-reference replaced by its group."""
    groups = re.findall(r"\([^)]*\)", pattern)
    parts = re.split(r"\\(\d)", repl)
    return "".join(groups[int(p) - 1] if i % 2 else re.escape(p) for i, p in enumerate(parts))


def _fill(pattern: str, groups: Sequence[str]) -> str:
    """A released-name pattern with its capture groups filled in, in order."""
    out, gi = "", 0
    for piece in re.split(r"(\([^)]*\))", pattern):
        if piece.startswith("("):
            out += groups[gi]
            gi += 1
        else:
            out += piece.replace("\\.", ".")
    return out
