"""Camera encoders that condition the SVD UNet on a camera trajectory.

All encoders share one protocol:
    prepare(K_px, c2w, height, width) -> camera input tensor or None
        K_px (B, F, 3, 3) pixel intrinsics at the *latent* resolution (height, width);
        c2w (B, F, 4, 4) OpenCV camera-to-world relative to the first frame.
    attach(unet)                      register forward pre-hooks on the UNet (once, in the wrapper)
    with encoder.active(camera_input): run the UNet; hooks inject the features computed from it.
Outside ``active`` the hooks are no-ops, so the plain UNet is unchanged. Every injection path ends in a
zero-initialised layer: at initialisation the camera-conditioned UNet equals the base UNet exactly.

- ``PluckerEncoder`` (CameraCtrl-style): Plücker maps (B, F, 6, h, w) [o x d, d] -> one feature map per
  UNet down block, added to the hidden states entering ``unet.down_blocks[i]``.
- ``RTEncoder`` (MotionCtrl-style baseline): flattened 3x4 relative c2w [R | t] per frame (B, F, 12) ->
  MLP -> per-frame embedding added to the tokens entering every temporal transformer block.
- ``NoCameraEncoder``: plain SVD (no camera control).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn
from diffusers.models.attention import TemporalBasicTransformerBlock
from jaxtyping import Float
from torch import Tensor

from vid3d.geometry import plucker_embedding


class CameraEncoder(nn.Module):
    """Base class / protocol; also the behaviour of ``NoCameraEncoder``."""

    needs_camera: bool = False  # True: a forward without a camera input is an error

    def __init__(self) -> None:
        super().__init__()
        self._handles: list = []
        self._stash: object | None = None
        # reuse_features(): (camera input, its version counter, its features) of the last forward
        self._reuse = False
        self._memo: tuple[torch.Tensor, int, object] | None = None

    def prepare(
        self,
        K_px: Float[Tensor, "batch frame 3 3"],
        c2w: Float[Tensor, "batch frame 4 4"],
        height: int,
        width: int,
    ) -> Tensor | None:
        return None

    def attach(self, unet: nn.Module) -> None:
        """Register hooks on ``unet`` (idempotent: previous hooks of this encoder are removed)."""
        self.detach()

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def compute(self, camera_input: torch.Tensor) -> object:
        """Features the hooks read during one UNet forward."""
        return None

    @contextlib.contextmanager
    def active(self, camera_input: torch.Tensor | None) -> Iterator[None]:
        """Compute features from ``camera_input`` and expose them to the hooks for one UNet forward
        (inside ``reuse_features``: computed once per camera input, see there)."""
        if camera_input is None and self.needs_camera:
            raise ValueError(f"camera encoder {type(self).__name__} needs a camera input (got None)")
        if camera_input is None:
            self._stash = None
        elif self._reuse:
            self._stash = self._features_once(camera_input)
        else:
            self._stash = self.compute(camera_input)
        try:
            yield
        finally:
            self._stash = None

    @contextlib.contextmanager
    def reuse_features(self) -> Iterator[None]:
        """Inside the block (a sampler's steps, without grad), features are computed once per camera input:
        a forward with the SAME tensor object as the last one, unmodified (same version counter), reuses its
        features; and an input whose two halves along dim 0 are equal (classifier-free guidance's
        [uncond; cond], whose cameras are the same) is encoded once and the features tiled. The weights
        must not change inside the block (they do not while sampling). Outside it every forward computes."""
        previous = self._reuse
        self._reuse, self._memo = True, None
        try:
            yield
        finally:
            self._reuse, self._memo = previous, None

    def _features_once(self, camera_input: torch.Tensor) -> object:
        memo = self._memo
        if memo is not None and memo[0] is camera_input and memo[1] == camera_input._version:
            return memo[2]
        n = camera_input.shape[0] // 2
        feats = None
        if camera_input.shape[0] % 2 == 0 and n and torch.equal(camera_input[:n], camera_input[n:]):
            half = self.compute(camera_input[:n])
            if _tileable(half):  # an encoder whose features also hold other values (e.g. a frame count)
                feats = _tile_features(half, 2)  # is run on the whole batch instead
        if feats is None:
            feats = self.compute(camera_input)
        self._memo = (camera_input, camera_input._version, feats)
        return feats


def _tileable(feats: object) -> bool:
    """True for a tensor or a (nested) list/tuple of tensors: what :func:`_tile_features` can repeat."""
    if isinstance(feats, torch.Tensor):
        return True
    return isinstance(feats, (list, tuple)) and all(_tileable(f) for f in feats)


def _tile_features(feats: object, k: int) -> object:
    """Features of a batch of B samples (a tensor, or a list/tuple of tensors, each with leading dim B * F
    in sample-major order) -> those of the batch repeated k times along the samples (k B samples)."""
    if isinstance(feats, torch.Tensor):
        return torch.cat([feats] * k, dim=0)
    if isinstance(feats, (list, tuple)):
        return type(feats)(_tile_features(f, k) for f in feats)
    raise TypeError(f"camera features of type {type(feats).__name__} cannot be tiled")


class NoCameraEncoder(CameraEncoder):
    """No camera conditioning (the plain SVD control row)."""


def _hidden_states(args: tuple, kwargs: dict) -> tuple[torch.Tensor, bool]:
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"], True
    return args[0], False


def _replace_hidden_states(
    args: tuple, kwargs: dict, hs: torch.Tensor, in_kwargs: bool
) -> tuple[tuple, dict]:
    if in_kwargs:
        return args, {**kwargs, "hidden_states": hs}
    return (hs, *args[1:]), kwargs


class PluckerEncoder(CameraEncoder):
    """Conv encoder of Plücker maps, one zero-initialised output per UNet down-block level.

    Level i works at the spatial size of the hidden states entering ``down_blocks[i]`` (level 0 = latent
    resolution, then stride-2 3x3 convs with padding 1, the same size rule as diffusers' Downsample2D:
    ceil(s / 2)) and outputs ``down_in_channels[i]`` channels (block_out_channels[0] for i = 0, else
    block_out_channels[i - 1]).

    Args:
        block_out_channels: the UNet's block_out_channels.
        hidden_channels: per-level widths (default: down_in_channels).
        in_channels: 6 for Plücker maps.
    """

    needs_camera = True

    def __init__(
        self,
        block_out_channels: tuple[int, ...],
        hidden_channels: tuple[int, ...] | None = None,
        in_channels: int = 6,
    ) -> None:
        super().__init__()
        boc = tuple(int(c) for c in block_out_channels)
        self.down_in_channels = tuple([boc[0], *boc[:-1]])
        hid = tuple(hidden_channels) if hidden_channels is not None else self.down_in_channels
        if len(hid) != len(boc):
            raise ValueError(f"hidden_channels needs {len(boc)} entries, got {len(hid)}")
        self.in_channels = in_channels
        self.levels = nn.ModuleList()
        self.outs = nn.ModuleList()
        prev = in_channels
        for i, (h, c_out) in enumerate(zip(hid, self.down_in_channels)):
            stride = 1 if i == 0 else 2
            self.levels.append(
                nn.Sequential(
                    nn.Conv2d(prev, h, 3, stride=stride, padding=1),
                    nn.SiLU(),
                    nn.Conv2d(h, h, 3, padding=1),
                    nn.SiLU(),
                )
            )
            out = nn.Conv2d(h, c_out, 1)
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
            self.outs.append(out)
            prev = h

    @classmethod
    def from_unet(cls, unet: nn.Module, **kw) -> PluckerEncoder:
        return cls(tuple(unet.config.block_out_channels), **kw)

    def prepare(
        self,
        K_px: Float[Tensor, "batch frame 3 3"],
        c2w: Float[Tensor, "batch frame 4 4"],
        height: int,
        width: int,
    ) -> Float[Tensor, "batch frame 6 h w"]:
        """(B, F, 3, 3), (B, F, 4, 4) -> Plücker maps (B, F, 6, height, width), float32."""
        b, f = K_px.shape[:2]
        emb = plucker_embedding(
            K_px.reshape(b * f, 3, 3).float(), c2w.reshape(b * f, 4, 4).float(), height, width
        )
        return emb.reshape(b, f, 6, height, width)

    def forward(self, plucker: torch.Tensor) -> list[torch.Tensor]:
        """(B, F, 6, h, w) -> list over levels of (B * F, down_in_channels[i], h_i, w_i)."""
        if plucker.ndim != 5 or plucker.shape[2] != self.in_channels:
            raise ValueError(
                f"expected Plücker maps (B, F, {self.in_channels}, h, w), got {tuple(plucker.shape)}"
            )
        x = plucker.flatten(0, 1)
        feats = []
        for level, out in zip(self.levels, self.outs):
            x = level(x)
            feats.append(out(x))
        return feats

    def compute(self, camera_input: torch.Tensor) -> list[torch.Tensor]:
        dtype = next(self.parameters()).dtype
        return self(camera_input.to(dtype))

    def attach(self, unet: nn.Module) -> None:
        self.detach()
        if len(unet.down_blocks) != len(self.outs):
            raise ValueError(
                f"UNet has {len(unet.down_blocks)} down blocks, encoder has {len(self.outs)} levels"
            )
        for i, block in enumerate(unet.down_blocks):
            self._handles.append(block.register_forward_pre_hook(self._make_hook(i), with_kwargs=True))

    def _make_hook(self, level: int):
        def hook(module, args, kwargs):
            feats = self._stash
            if feats is None:
                return None
            hs, in_kw = _hidden_states(args, kwargs)
            feat = feats[level]
            if feat.shape != hs.shape:
                raise ValueError(
                    f"Plücker features for down block {level} have shape {tuple(feat.shape)}, hidden states "
                    f"{tuple(hs.shape)} (camera maps must be at the latent resolution and "
                    "batch * frames must match)"
                )
            return _replace_hidden_states(args, kwargs, hs + feat.to(hs.dtype), in_kw)

        return hook


class RTEncoder(CameraEncoder):
    """MotionCtrl-style: per-frame relative [R | t] (12 numbers) -> embedding added to temporal tokens.

    A shared MLP (12 -> hidden -> hidden) followed by one zero-initialised Linear per temporal
    transformer block (in ``unet.named_modules()`` order) to that block's input width; the result
    (B * F, 1, dim) is added to the (B * F, h * w, dim) tokens entering the block.
    """

    needs_camera = True

    def __init__(self, temporal_dims: list[int], hidden: int = 64, in_features: int = 12) -> None:
        super().__init__()
        self.in_features = in_features
        self.mlp = nn.Sequential(
            nn.Linear(in_features, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )
        self.projs = nn.ModuleList()
        for d in temporal_dims:
            p = nn.Linear(hidden, d)
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)
            self.projs.append(p)

    @staticmethod
    def temporal_blocks(unet: nn.Module) -> list[nn.Module]:
        return [m for m in unet.modules() if isinstance(m, TemporalBasicTransformerBlock)]

    @classmethod
    def from_unet(cls, unet: nn.Module, **kw) -> RTEncoder:
        dims = [int(m.norm_in.normalized_shape[0]) for m in cls.temporal_blocks(unet)]
        if not dims:
            raise ValueError("RTEncoder: the UNet has no TemporalBasicTransformerBlock")
        return cls(dims, **kw)

    def prepare(
        self,
        K_px: Float[Tensor, "batch frame 3 3"],
        c2w: Float[Tensor, "batch frame 4 4"],
        height: int,
        width: int,
    ) -> Float[Tensor, "batch frame 12"]:
        """(B, F, 4, 4) relative c2w -> (B, F, 12) row-major [R | t]."""
        return c2w[..., :3, :4].reshape(*c2w.shape[:-2], 12).float()

    def forward(self, rt: torch.Tensor) -> torch.Tensor:
        """(B, F, 12) -> hidden embedding (B * F, hidden)."""
        if rt.ndim != 3 or rt.shape[-1] != self.in_features:
            raise ValueError(f"expected (B, F, {self.in_features}) poses, got {tuple(rt.shape)}")
        return self.mlp(rt.flatten(0, 1))

    def compute(self, camera_input: torch.Tensor) -> torch.Tensor:
        return self(camera_input.to(next(self.parameters()).dtype))

    def attach(self, unet: nn.Module) -> None:
        self.detach()
        blocks = self.temporal_blocks(unet)
        if len(blocks) != len(self.projs):
            raise ValueError(
                f"UNet has {len(blocks)} temporal blocks, encoder has {len(self.projs)} projections"
            )
        for i, block in enumerate(blocks):
            self._handles.append(block.register_forward_pre_hook(self._make_hook(i), with_kwargs=True))

    def _make_hook(self, index: int):
        def hook(module, args, kwargs):
            emb = self._stash
            if emb is None:
                return None
            hs, in_kw = _hidden_states(args, kwargs)
            add = self.projs[index](emb)
            if add.shape[0] != hs.shape[0]:
                raise ValueError(f"RT embedding batch*frames {add.shape[0]} != temporal tokens {hs.shape[0]}")
            return _replace_hidden_states(args, kwargs, hs + add[:, None, :].to(hs.dtype), in_kw)

        return hook


def _no_camera_encoder(unet: nn.Module) -> NoCameraEncoder:
    return NoCameraEncoder()


# Python shortcuts for CameraVideoDiffusion(camera_encoder="..."); configs name the factory as ``_target_``
# (conf/model/camera_encoder/)
CAMERA_ENCODERS = {
    "plucker": PluckerEncoder.from_unet,
    "rt": RTEncoder.from_unet,
    "none": _no_camera_encoder,
}


def build_camera_encoder(name: str, unet: nn.Module, **kwargs) -> CameraEncoder:
    """The encoder of the shortcut ``name`` ("plucker" | "rt" | "none", ``CAMERA_ENCODERS``) for ``unet``;
    extra kwargs go to its constructor."""
    if name not in CAMERA_ENCODERS:
        raise ValueError(f"camera_encoder must be one of {sorted(CAMERA_ENCODERS)}, got {name!r}")
    return CAMERA_ENCODERS[name](unet, **kwargs)
