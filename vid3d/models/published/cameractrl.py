"""CameraCtrl on Stable Video Diffusion (He et al. 2024, the ``svd`` branch of hehao13/CameraCtrl): released.

Architecture (read from the authors' code; checked side by side against it, benchmarks/README.md):

1. Plücker maps [o x d, d] of every pixel centre at the *image* resolution (latent size x
   ``downscale_factor``; unit directions, poses relative to frame 0), (B, F, 6, H, W).
2. ``CameraCtrlEncoder``: pixel-unshuffle by ``downscale_factor`` (6 f^2 channels at the latent size), a 3x3
   conv to ``block_out_channels[0]``, then one *level* per UNet down block; a level is ``num_res_blocks``
   stages, each a residual conv block (2x2 average pool first in the first stage of levels > 0; a ``kernel``
   conv to the new width when it changes; x + conv_k(relu(conv3(x)))) followed by a temporal transformer
   over the frames at every pixel (pre-LayerNorm, sinusoidal frame position added, self-attention; pre-
   LayerNorm GEGLU feed-forward; both residual). Level i's output, (B F, C_i, h / 2^i, w / 2^i), is the
   camera feature of level i.
3. Where the features enter: the first (temporal self-) attention ``attn1`` of **every** temporal transformer
   block of the UNet (down blocks i use level i, the mid block the last level, up block j level n - 1 - j).
   Its input h (B h w, F, C) becomes h + s * merge(h + feature) with a zero-initialised Linear ``merge`` per
   block (CameraCtrl's "qkv_merge": queries, keys and values all see the pose), s = ``scale`` (1.0).

Trained in the release: the encoder and the merge layers; the SVD UNet stays frozen.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from vid3d.geometry import plucker_embedding

from ..camera_encoder import CameraEncoder, _hidden_states, _replace_hidden_states
from .unet_blocks import temporal_blocks


def sinusoid_table(max_len: int, dim: int) -> torch.Tensor:
    """(max_len, dim) frame-position table: even channels sin(p w_k), odd channels cos(p w_k), with
    w_k = 10000^(-2k / dim) (the Transformer's encoding, as CameraCtrl's temporal blocks use it)."""
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    w = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * w)
    table[:, 1::2] = torch.cos(pos * w)
    return table.float()


class ResidualStage(nn.Module):
    """x -> [avg-pool 2] -> [conv_k to c_out] -> x + conv_k(relu(conv3(x))) (CameraCtrl's adapter block with
    identity skip, ``sk=True``, and pooling, ``use_conv=False``: the released configuration)."""

    def __init__(self, c_in: int, c_out: int, down: bool, kernel: int) -> None:
        super().__init__()
        self.down = down
        self.in_conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2) if c_in != c_out else None
        self.block1 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.block2 = nn.Conv2d(c_out, c_out, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = F.avg_pool2d(x, 2)
        if self.in_conv is not None:
            x = self.in_conv(x)
        return x + self.block2(F.relu(self.block1(x)))


class FrameAttention(nn.Module):
    """Temporal transformer over frames: (N, F, C) -> (N, F, C), N = batch x pixels.

    x = x + out(attn(q, k, v of norm_attn(x) + pe[:F]));
    x = x + ff_out(a * gelu(g)) with [a, g] = ff_in(norm_ff(x)).
    """

    def __init__(self, dim: int, heads: int, max_frames: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"FrameAttention: width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm_attn = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff_in = nn.Linear(dim, 8 * dim)  # GEGLU: value and gate, 4 dim each
        self.ff_out = nn.Linear(4 * dim, dim)
        self.register_buffer("pe", sinusoid_table(max_frames, dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, f, c = x.shape
        if f > self.pe.shape[0]:
            raise ValueError(
                f"CameraCtrl encoder: {f} frames, its frame positions stop at {self.pe.shape[0]}"
            )
        h = self.norm_attn(x) + self.pe[:f].to(x.dtype)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(n, f, self.heads, c // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(heads(self.to_q(h)), heads(self.to_k(h)), heads(self.to_v(h)))
        x = x + self.to_out(a.transpose(1, 2).reshape(n, f, c))
        val, gate = self.ff_in(self.norm_ff(x)).chunk(2, dim=-1)
        return x + self.ff_out(val * F.gelu(gate))


class Stage(nn.Module):
    """One residual stage followed by its frame attention."""

    def __init__(self, c_in: int, c_out: int, down: bool, kernel: int, heads: int, max_frames: int) -> None:
        super().__init__()
        self.res = ResidualStage(c_in, c_out, down, kernel)
        self.temporal = FrameAttention(c_out, heads, max_frames)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """(B F, C, h, w) -> (B F, C', h', w')."""
        x = self.res(x)
        bf, c, h, w = x.shape
        t = x.reshape(bf // frames, frames, c, h * w).permute(0, 3, 1, 2).reshape(-1, frames, c)
        t = self.temporal(t)
        return t.reshape(bf // frames, h * w, frames, c).permute(0, 2, 3, 1).reshape(bf, c, h, w)


def temporal_block_levels(unet: nn.Module) -> list[tuple[str, int]]:
    """(path, level) of every temporal transformer block (``unet_blocks.temporal_blocks`` order): a block in
    down_blocks[i] reads level i, in the mid block the last level, in up_blocks[j] level n - 1 - j."""
    n = len(unet.down_blocks)
    out = []
    for path, _ in temporal_blocks(unet):
        part, index = path.split(".")[:2]
        if part == "mid_block":
            level = n - 1
        else:
            level = int(index) if part == "down_blocks" else n - 1 - int(index)
        out.append((path, level))
    return out


class CameraCtrlEncoder(CameraEncoder):
    """CameraCtrl-SVD's camera encoder and its merge layers (module docstring).

    Args:
        block_out_channels: the UNet's block_out_channels (= the encoder's level widths, as released).
        merge_levels: the encoder level read by each temporal transformer block of the UNet, in
            ``unet_blocks.temporal_blocks`` order (``temporal_block_levels``).
        downscale_factor: pixel-unshuffle factor (8 = SVD's VAE); the Plücker maps are computed at the latent
            size times this factor.
        num_res_blocks: stages per level (2 released). kernel: the stages' second conv (1 released).
        heads: attention heads of the frame attention (8). max_frames: frame positions (14 for SVD, 25 for
            SVD-XT). scale: the merge scale s (1.0).
    """

    needs_camera = True

    def __init__(
        self,
        block_out_channels: tuple[int, ...],
        merge_levels: tuple[int, ...],
        downscale_factor: int = 8,
        num_res_blocks: int = 2,
        kernel: int = 1,
        heads: int = 8,
        max_frames: int = 14,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        ch = tuple(int(c) for c in block_out_channels)
        self.channels = ch
        self.factor = int(downscale_factor)
        self.scale = float(scale)
        self.merge_levels = tuple(int(lv) for lv in merge_levels)
        self.conv_in = nn.Conv2d(6 * self.factor**2, ch[0], 3, padding=1)
        self.levels = nn.ModuleList()
        for i, c in enumerate(ch):
            stages = [
                Stage(ch[i - 1] if (j == 0 and i > 0) else c, c, j == 0 and i > 0, kernel, heads, max_frames)
                for j in range(num_res_blocks)
            ]
            self.levels.append(nn.ModuleList(stages))
        self.merges = nn.ModuleList(nn.Linear(ch[lv], ch[lv]) for lv in self.merge_levels)
        for m in self.merges:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        self._block_paths: list[str] = []

    @classmethod
    def from_unet(cls, unet: nn.Module, **kw) -> CameraCtrlEncoder:
        levels = [lv for _, lv in temporal_block_levels(unet)]
        if not levels:
            raise ValueError("CameraCtrlEncoder: the UNet has no temporal transformer block")
        return cls(tuple(unet.config.block_out_channels), tuple(levels), **kw)

    def prepare(self, K_px: torch.Tensor, c2w: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """K_px (B, F, 3, 3) at the latent size (height, width), c2w (B, F, 4, 4) relative to frame 0 ->
        Plücker maps (B, F, 6, height f, width f) at f = ``downscale_factor`` times the latent size."""
        b, f = K_px.shape[:2]
        up = torch.tensor([self.factor, self.factor, 1.0], dtype=torch.float32, device=K_px.device)
        K_img = K_px.reshape(b * f, 3, 3).float() * up[:, None]
        H, W = height * self.factor, width * self.factor
        emb = plucker_embedding(K_img, c2w.reshape(b * f, 4, 4).float(), H, W)
        return emb.reshape(b, f, 6, H, W)

    def forward(self, plucker: torch.Tensor) -> list[torch.Tensor]:
        """(B, F, 6, H, W) -> per level (B F, C_i, H / f / 2^i, W / f / 2^i) (pooling floors odd sizes)."""
        if plucker.ndim != 5 or plucker.shape[2] != 6:
            raise ValueError(f"expected Plücker maps (B, F, 6, H, W), got {tuple(plucker.shape)}")
        frames = plucker.shape[1]
        x = self.conv_in(F.pixel_unshuffle(plucker.flatten(0, 1), self.factor))
        feats = []
        for stages in self.levels:
            for stage in stages:
                x = stage(x, frames)
            feats.append(x)
        return feats

    def compute(self, camera_input: torch.Tensor) -> tuple[list[torch.Tensor], int]:
        """Level features laid out like the temporal blocks' attention input: (B h w, F, C)."""
        frames = camera_input.shape[1]
        out = []
        for x in self(camera_input.to(next(self.parameters()).dtype)):
            bf, c, h, w = x.shape
            out.append(x.reshape(bf // frames, frames, c, h * w).permute(0, 3, 1, 2).reshape(-1, frames, c))
        return out, frames

    def attach(self, unet: nn.Module) -> None:
        self.detach()
        found = temporal_block_levels(unet)
        if [lv for _, lv in found] != list(self.merge_levels):
            raise ValueError(
                f"CameraCtrlEncoder was built for temporal blocks at levels {list(self.merge_levels)}, "
                f"the UNet has {[lv for _, lv in found]}"
            )
        self._block_paths = [p for p, _ in found]
        for k, (path, _) in enumerate(found):
            attn1 = unet.get_submodule(path).attn1
            self._handles.append(attn1.register_forward_pre_hook(self._make_hook(k), with_kwargs=True))

    @property
    def block_paths(self) -> list[str]:
        """The UNet paths of the temporal blocks merge k belongs to (after ``attach``)."""
        return list(self._block_paths)

    def _make_hook(self, k: int):
        level = self.merge_levels[k]

        def hook(module, args, kwargs):
            if self._stash is None:
                return None
            feats, _ = self._stash
            hs, in_kw = _hidden_states(args, kwargs)
            feat = feats[level]
            if feat.shape != hs.shape:
                raise ValueError(
                    f"CameraCtrl features of level {level} have shape {tuple(feat.shape)}, temporal "
                    f"attention input {tuple(hs.shape)} (image size must be a multiple of "
                    f"{self.factor * 2**level})"
                )
            merged = hs + self.scale * self.merges[k](hs + feat.to(hs.dtype))
            return _replace_hidden_states(args, kwargs, merged, in_kw)

        return hook
