"""Added cross-frame attention modules and their attachment to a diffusers spatio-temporal UNet.

``attach_epipolar_attention(unet, ...)`` / ``attach_full_attention(unet, ...)`` find every
``TransformerSpatioTemporalModel`` at the selected UNet levels and register a forward hook on it: the
transformer's output hidden states (B*F, C, h, w) get a residual ``+ attn(hidden)`` from a new block
(``EpipolarAttention`` or ``CrossFrameAttention``). Each is a config choice by ``_target_``
(``conf/model/attention/``); ``no_attention`` is the choice of none. The blocks' output projections are
zero-initialised, so right after attaching the UNet computes exactly what it computed before.

Levels: ``down_blocks[i]`` is level i, ``up_blocks[j]`` is level n-1-j and ``mid_block`` is level n-1, with
n = number of down blocks; level l works on tokens at (about) the latent resolution / 2^l. Camera
intrinsics are given once at the LATENT resolution (H, W) (read from the UNet's input through a forward
pre-hook) and rescaled to each level's (h, w) with ``rescale_K``.

Usage (the adapter is an nn.Module the caller stores as ``attention_adapter``; the UNet only holds hooks):
    adapter = attach_epipolar_attention(unet, band_width=2.0, heads=8)
    adapter.set_cameras(K_px_latent, c2w, num_frames)   # (B, F, 3, 3), (B, F, 4, 4) OpenCV c2w
    out = unet(sample, t, ...)
    adapter.clear()
A UNet batch that is a multiple k of the camera batch (classifier-free guidance concatenating
[uncond, cond]) reuses the cameras tiled k times.

Per token grid the adapter computes the pair geometry once per forward and shares it with every block at
that grid. While batch * (F h w)^2 <= ``dense_mask_max_elements`` it also builds the dense band mask once
(one per distinct camera set of the batch, so CFG's halves share one) and the blocks run SDPA with it
(``dense.py``); above it, the band plan of the "grouped" kernel (``grouped.py``) is built once per grid
and shared the same way. All paths give the same attention. Geometry and masks are
cached by camera VALUE: a later ``set_cameras`` with equal values (a sampler's steps) reuses them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as nnf
from torch import nn

from vid3d.geometry import rescale_K

from .cami2v import band_mask_cami2v, zero_translation_noise
from .dense import (
    DEFAULT_DENSE_MASK_MAX_ELEMENTS,
    SharedMask,
    build_shared_mask,
    shared_mask_attention,
    use_dense_mask,
)
from .epipolar import choose_method, epipolar_attention, pair_geometry
from .grouped import BandPlan, band_attention, build_band_plan

MASK_RULES = ("vid3d", "cami2v")


class CrossFrameAttention(nn.Module):
    """Multi-head attention across the frames of one UNet level, returning a residual: every token attends
    to all F*h*w tokens (SDPA, memory-efficient kernels). ``EpipolarAttention`` restricts it to the
    epipolar bands.

    Input/output (B*F, C, h, w); pre-LayerNorm over channels, bias-free q/k/v, zero-initialised output
    projection. ``registers`` > 0 adds that many learned tokens (``register_tokens`` (1, R, C), initialised
    N(0, 1) as in CamI2V) whose keys/values every query attends to besides its mask.
    """

    needs_cameras = False  # the adapter computes the pair geometry only for blocks that need it

    def __init__(self, dim: int, heads: int, registers: int = 0):
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"{type(self).__name__}: channels {dim} not divisible by heads={heads}")
        if registers < 0:
            raise ValueError(f"{type(self).__name__}: registers must be >= 0, got {registers}")
        self.dim, self.heads = dim, heads
        self.num_registers = int(registers)
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)
        self.register_tokens = nn.Parameter(torch.randn(1, registers, dim)) if registers else None

    def forward(self, hidden: torch.Tensor, num_frames: int,
                geometry: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: SharedMask | None = None, plan: BandPlan | None = None) -> torch.Tensor:
        """hidden (B*F, C, h, w) -> residual (B*F, C, h, w). ``geometry``, ``mask``, ``plan``: the camera
        state of ``EpipolarAttention`` (see there); unused here."""
        BF, C, h, w = hidden.shape
        B, H = BF // num_frames, self.heads
        x = self.norm(hidden.view(B, num_frames, C, h, w).permute(0, 1, 3, 4, 2).reshape(B, -1, C))

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, H, T, D)
            return t.view(B, t.shape[1], H, C // H).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x))
        if self.num_registers:
            reg = self.register_tokens.to(x.dtype).expand(B, -1, -1)
            k = torch.cat([split(self.to_k(reg)), k], dim=2)
            v = torch.cat([split(self.to_v(reg)), v], dim=2)
        o = self.attend(q, k, v, h, w, geometry, mask, plan)
        o = self.to_out(o.transpose(1, 2).reshape(B, -1, C))
        return o.view(B, num_frames, h, w, C).permute(0, 1, 4, 2, 3).reshape(BF, C, h, w)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, h: int, w: int,
               geometry: tuple[torch.Tensor, torch.Tensor] | None, mask: SharedMask | None,
               plan: BandPlan | None) -> torch.Tensor:
        """q (B, H, T, D), k/v (B, H, R + T, D) (the R register tokens first) -> (B, H, T, D)."""
        return nnf.scaled_dot_product_attention(q, k, v)


class EpipolarAttention(CrossFrameAttention):
    """``CrossFrameAttention`` where each token attends to itself and to the tokens of the other frames
    inside the epipolar band (``band_width`` token pixels wide at this level's grid; see ``epipolar.py``).
    With register tokens it needs the dense-mask path (``mask`` given)."""

    needs_cameras = True

    def __init__(self, dim: int, heads: int, band_width: float = 2.0, method: str = "auto",
                 max_chunk_bytes: int | None = None, registers: int = 0):
        super().__init__(dim, heads, registers)
        self.band_width, self.method, self.max_chunk_bytes = float(band_width), method, max_chunk_bytes

    def attend(self, q, k, v, h, w, geometry, mask, plan):
        """``geometry`` = (F_hat, degenerate) from ``pair_geometry`` at this (h, w), shapes (B, F, F, 3, 3) /
        (B, F, F). ``mask``: the dense band mask of that geometry (``build_shared_mask``); when given,
        attention runs with it (the fast path for small grids) instead of the kernel ``self.method``.
        ``plan``: the band plan of that geometry (``build_band_plan``, shared by the adapter across the
        blocks at this grid) for the "grouped" kernel."""
        R = self.num_registers
        if mask is not None:
            return shared_mask_attention(q, k, v, mask, registers=R)
        if plan is not None and not R:
            return band_attention(q, k, v, plan)
        if geometry is None:
            raise RuntimeError("epipolar attention needs cameras: call adapter.set_cameras(...) first")
        if R:
            raise ValueError("register tokens need the dense-mask path: raise dense_mask_max_elements "
                             f"(this grid has {k.shape[2] - R} tokens per sample) or use registers=0")
        return epipolar_attention(q, k, v, geometry[0], geometry[1], h, w, self.band_width, self.method,
                                  self.max_chunk_bytes)


def transformer_levels(unet: nn.Module) -> list[tuple[str, nn.Module, int]]:
    """(name, module, level) of every TransformerSpatioTemporalModel in a spatio-temporal UNet."""
    from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel

    n = len(unet.down_blocks)
    found = []
    for name, module in unet.named_modules():
        if not isinstance(module, TransformerSpatioTemporalModel):
            continue
        part = name.split(".")
        if part[0] == "down_blocks":
            level = int(part[1])
        elif part[0] == "up_blocks":
            level = n - 1 - int(part[1])
        elif part[0] == "mid_block":
            level = n - 1
        else:
            raise ValueError(f"transformer_levels: unexpected transformer location {name!r}")
        found.append((name, module, level))
    return found


class AttentionAdapter(nn.Module):
    """Holds the added attention blocks (``blocks``: ModuleDict keyed by the transformer's dotted name with
    '.' -> '_') and the per-forward camera state; owns the hooks it placed on the UNet (``detach()``)."""

    def __init__(self, blocks: dict[str, CrossFrameAttention], min_baseline: float = 1e-4,
                 dense_mask_max_elements: int | None = DEFAULT_DENSE_MASK_MAX_ELEMENTS,
                 mask_rule: str = "vid3d"):
        super().__init__()
        if mask_rule not in MASK_RULES:
            raise ValueError(f"attention adapter: mask_rule must be one of {MASK_RULES}, got {mask_rule!r}")
        self.mask_rule = mask_rule
        self.min_baseline = float(min_baseline)
        self.dense_mask_max_elements = dense_mask_max_elements
        # Image pixels per latent pixel (the VAE's downscale; CameraVideoDiffusion sets it). Only the
        # "cami2v" rule needs it: its token centres are placed in image pixels.
        self.image_per_latent: int | None = None
        self.blocks = nn.ModuleDict(blocks)
        self._handles: list = []
        # (K, c2w copies, inference mode, cache) of the last cameras set: reused while they are unchanged
        self._last_cameras: tuple[torch.Tensor, torch.Tensor, bool, dict] | None = None
        # reuse_cameras(): (K, c2w objects, their version counters) of the last cameras set
        self._reuse = False
        self._last_objects: tuple[torch.Tensor, torch.Tensor, int, int] | None = None
        self.clear()
        self._latent_hw: tuple[int, int] | None = None

    # --- camera state -------------------------------------------------------------------------------
    def set_cameras(self, K_px_latent: torch.Tensor, c2w: torch.Tensor, num_frames: int) -> None:
        """K_px_latent (B, F, 3, 3) pixel intrinsics at the latent resolution, c2w (B, F, 4, 4) OpenCV."""
        if K_px_latent.shape[-2:] != (3, 3) or c2w.shape[-2:] != (4, 4) or K_px_latent.dim() != 4 \
                or c2w.shape[:2] != K_px_latent.shape[:2] or K_px_latent.shape[1] != num_frames:
            raise ValueError(f"set_cameras: expected K_px_latent (B, {num_frames}, 3, 3) and c2w (B, "
                             f"{num_frames}, 4, 4), got {tuple(K_px_latent.shape)} and {tuple(c2w.shape)}")
        self._K, self._c2w, self._num_frames = K_px_latent.detach(), c2w.detach(), int(num_frames)
        self._geometry_cache = self._cache_for(self._K, self._c2w, (K_px_latent, c2w))

    def _cache_for(self, K: torch.Tensor, c2w: torch.Tensor,
                   given: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
        """The geometry/mask cache of these camera VALUES: the last one if K and c2w equal the last cameras
        set (same shape, dtype, device and values; copies are compared, so in-place edits are seen) and
        inference mode is as it was (its tensors cannot be saved for backward), else a new one. Holds one
        camera set at a time."""
        last, inference = self._last_cameras, torch.is_inference_mode_enabled()
        seen, (gK, gc) = self._last_objects, (given if given is not None else (K, c2w))
        if self._reuse and last is not None and last[2] == inference and seen is not None and seen[0] is gK \
                and seen[1] is gc and (seen[2], seen[3]) == (gK._version, gc._version):
            return last[3]  # the same unmodified tensors as last time: no copy, no comparison, no sync
        if self._reuse:
            self._last_objects = (gK, gc, gK._version, gc._version)
        if last is not None and last[2] == inference and all(
                a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
                for a, b in ((last[0], K), (last[1], c2w))):
            return last[3]
        cache: dict = {}
        self._last_cameras = (K.clone(), c2w.clone(), inference, cache)
        return cache

    @contextlib.contextmanager
    def reuse_cameras(self) -> Iterator[None]:
        """Inside the block (a sampler's steps), ``set_cameras`` with the same unmodified tensor objects as
        the last call (same version counters) reuses their cache without copying or comparing values."""
        previous = self._reuse
        self._reuse, self._last_objects = True, None
        try:
            yield
        finally:
            self._reuse, self._last_objects = previous, None

    def get_state(self) -> tuple:
        """The per-forward camera state (for restoring it when a checkpointed block is recomputed)."""
        return self._K, self._c2w, self._num_frames, self._geometry_cache

    def set_state(self, state: tuple) -> None:
        """Restore a state returned by ``get_state`` (the cache dict is shared, not copied)."""
        self._K, self._c2w, self._num_frames, self._geometry_cache = state

    def clear(self) -> None:
        """Forget the cameras of the last forward (their geometry stays cached for equal cameras; to drop
        it too, ``forget_cache()``)."""
        self._K = self._c2w = None
        self._num_frames: int | None = None
        self._geometry_cache: dict = {}

    def forget_cache(self) -> None:
        """Drop the geometry and masks kept for the last cameras (memory: at most one dense mask per grid)."""
        self._last_cameras = None
        self._geometry_cache = {}

    def _geometry(self, h: int, w: int, batch: int, device: torch.device):
        """(F_hat, degenerate) at an (h, w) token grid for a UNet batch of ``batch`` samples (cached)."""
        key = (h, w, batch, self._latent_hw, str(device))
        if key not in self._geometry_cache:
            if self._K is None:
                raise RuntimeError("epipolar attention needs cameras: call adapter.set_cameras(...) first")
            B = self._K.shape[0]
            if batch % B:
                raise ValueError(f"UNet batch {batch} is not a multiple of the camera batch {B}")
            src = self._latent_hw if self._latent_hw is not None else (h, w)
            K = rescale_K(self._K.to(device, torch.float64), src, (h, w)).repeat(batch // B, 1, 1, 1)
            c2w = self._c2w.to(device, torch.float64).repeat(batch // B, 1, 1, 1)
            with torch.no_grad():
                self._geometry_cache[key] = pair_geometry(K, c2w, self.min_baseline)
        return self._geometry_cache[key]

    def _dense_mask(self, h: int, w: int, batch: int, band_width: float, device: torch.device) -> SharedMask:
        """The dense band mask of ``_geometry(h, w, batch, device)`` (cached beside it, so every block at
        this grid and every sample with the same cameras share one)."""
        key = ("mask", h, w, batch, self._latent_hw, str(device), float(band_width))
        if key not in self._geometry_cache:
            F_hat, degenerate = self._geometry(h, w, batch, device)
            self._geometry_cache[key] = build_shared_mask(F_hat, degenerate, h, w, band_width)
        return self._geometry_cache[key]

    @staticmethod
    def kernel(block: CrossFrameAttention, num_frames: int, h: int, w: int) -> str:
        """The epipolar kernel ``block`` runs at an (h, w) grid above the dense-mask limit."""
        if block.method == "auto":
            return choose_method(num_frames, h, w, block.band_width)
        return block.method

    def _band_plan(self, h: int, w: int, batch: int, band_width: float, device: torch.device) -> BandPlan:
        """The band plan (``grouped.py``) of ``_geometry(h, w, batch, device)``, built once per token grid
        and camera set and shared by every block at that grid (and by their backward passes)."""
        key = ("plan", h, w, batch, self._latent_hw, str(device), float(band_width))
        if key not in self._geometry_cache:
            F_hat, degenerate = self._geometry(h, w, batch, device)
            self._geometry_cache[key] = build_band_plan(F_hat, degenerate, h, w, band_width)
        return self._geometry_cache[key]

    def _cami2v_mask(self, h: int, w: int, batch: int, device: torch.device) -> SharedMask:
        """CamI2V's band mask (``cami2v.py``) at an (h, w) grid for a UNet batch of ``batch`` samples: built
        for the camera batch (one zero-translation draw per camera set, shared by every grid) and shared
        by CFG's copies; cached beside the geometry."""
        key = ("cami2v", h, w, batch, self._latent_hw, str(device))
        if key not in self._geometry_cache:
            if self._K is None:
                raise RuntimeError("epipolar attention needs cameras: call adapter.set_cameras(...) first")
            if self.image_per_latent is None:
                raise RuntimeError("mask_rule='cami2v' places tokens in image pixels: set "
                                   "adapter.image_per_latent (CameraVideoDiffusion does)")
            B, n = self._K.shape[:2]
            if batch % B:
                raise ValueError(f"UNet batch {batch} is not a multiple of the camera batch {B}")
            lat_h, lat_w = self._latent_hw if self._latent_hw is not None else (h, w)
            img_h, img_w = lat_h * self.image_per_latent, lat_w * self.image_per_latent
            if img_h * w != img_w * h or img_h % h:
                raise ValueError(f"mask_rule='cami2v' needs token grids that divide the image evenly: image "
                                 f"{img_h}x{img_w}, grid {h}x{w} (choose sizes divisible by 8 * 2^levels)")
            if "cami2v_noise" not in self._geometry_cache:
                self._geometry_cache["cami2v_noise"] = zero_translation_noise(B, n, device)
            K_img = rescale_K(self._K.to(device, torch.float64), (lat_h, lat_w), (img_h, img_w))
            with torch.no_grad():
                masks = band_mask_cami2v(K_img, self._c2w.to(device, torch.float64), h, w, img_h // h,
                                         self._geometry_cache["cami2v_noise"])
            self._geometry_cache[key] = SharedMask(masks, tuple(b % B for b in range(batch)))
        return self._geometry_cache[key]

    # --- hooks --------------------------------------------------------------------------------------
    def _unet_pre_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        sample = args[0] if args else kwargs.get("sample")
        if sample is not None and sample.dim() == 5:
            self._latent_hw = (int(sample.shape[-2]), int(sample.shape[-1]))

    def _transformer_hook(self, key: str, module: nn.Module, args: tuple, kwargs: dict, output):
        hidden = output[0] if isinstance(output, tuple) else output.sample
        indicator = kwargs.get("image_only_indicator", args[2] if len(args) > 2 else None)
        num_frames = int(indicator.shape[-1]) if indicator is not None else self._num_frames
        if num_frames is None:
            raise RuntimeError("attention adapter: number of frames unknown; call set_cameras(...) first")
        if self._num_frames is not None and self._num_frames != num_frames:
            raise ValueError(f"set_cameras got {self._num_frames} frames but the UNet runs {num_frames}")
        block = self.blocks[key]
        geometry = mask = plan = None
        if block.needs_cameras and self.mask_rule == "cami2v":  # dense, as CamI2V's own
            mask = self._cami2v_mask(hidden.shape[-2], hidden.shape[-1], hidden.shape[0] // num_frames,
                                     hidden.device)
        elif block.needs_cameras:
            h, w, batch = hidden.shape[-2], hidden.shape[-1], hidden.shape[0] // num_frames
            geometry = self._geometry(h, w, batch, hidden.device)
            if use_dense_mask(batch, num_frames * h * w, self.dense_mask_max_elements):
                mask = self._dense_mask(h, w, batch, block.band_width, hidden.device)
            elif block.num_registers == 0 and self.kernel(block, num_frames, h, w) == "grouped":
                plan = self._band_plan(h, w, batch, block.band_width, hidden.device)
        hidden = hidden + block(hidden, num_frames, geometry, mask, plan).to(hidden.dtype)
        if isinstance(output, tuple):
            return (hidden, *output[1:])
        output.sample = hidden
        return output

    def attach(self, unet: nn.Module, names: Iterable[str]) -> None:
        modules = dict(unet.named_modules())
        self._handles.append(unet.register_forward_pre_hook(self._unet_pre_hook, with_kwargs=True))
        for name in names:
            key = name.replace(".", "_")
            hook = _BoundHook(self, key)
            self._handles.append(modules[name].register_forward_hook(hook, with_kwargs=True))

    def detach(self) -> None:
        """Remove every hook this adapter placed (the UNet then behaves as if never attached)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


class _BoundHook:
    """Forward hook calling ``adapter._transformer_hook(key, ...)`` (a class, not a lambda, so it pickles)."""

    def __init__(self, adapter: AttentionAdapter, key: str):
        self.adapter, self.key = adapter, key

    def __call__(self, module, args, kwargs, output):
        return self.adapter._transformer_hook(self.key, module, args, kwargs, output)


def _attach(unet: nn.Module, levels: Iterable[int] | None, make_block, caller: str,
            **adapter_kwargs) -> AttentionAdapter:
    """One block ``make_block(channels)`` after every transformer at ``levels``, held by a new adapter."""
    found = transformer_levels(unet)
    available = sorted({lvl for _, _, lvl in found})
    wanted = set(available) if levels is None else {int(lvl) for lvl in levels}
    if not found or not wanted <= set(available):
        raise ValueError(f"{caller}: levels {sorted(wanted)} requested, UNet has transformers at "
                         f"levels {available}")
    ref = next(unet.parameters())
    blocks, names = {}, []
    for name, module, level in found:
        if level in wanted:
            block = make_block(module.in_channels)
            first = next(block.parameters())
            if (first.device, first.dtype) != (ref.device, ref.dtype):  # a no-op .to() fails on fake tensors
                block = block.to(ref.device, ref.dtype)
            blocks[name.replace(".", "_")] = block
            names.append(name)
    adapter = AttentionAdapter(blocks, **adapter_kwargs)
    adapter.attach(unet, names)
    return adapter


def attach_epipolar_attention(unet: nn.Module, band_width: float = 2.0, heads: int = 8,
                              levels: Iterable[int] | None = None, min_baseline: float = 1e-4,
                              method: str = "auto", max_chunk_bytes: int | None = None,
                              dense_mask_max_elements: int | None = DEFAULT_DENSE_MASK_MAX_ELEMENTS,
                              mask_rule: str = "vid3d", registers: int = 0) -> AttentionAdapter:
    """Add epipolar attention (``EpipolarAttention``) after the spatio-temporal transformers of ``unet``.

    Args:
        unet: a diffusers UNetSpatioTemporalConditionModel (anything with down_blocks and
            TransformerSpatioTemporalModel submodules).
        band_width: full width of the epipolar band, in token pixels of each level's grid.
        heads: attention heads (must divide every selected level's channels).
        levels: UNet levels to equip (see module docstring); None = every level that has a transformer.
        min_baseline: camera centres closer than this (world units) have no epipolar line: none of that
            frame's tokens is attended (the query still attends to itself).
        method, max_chunk_bytes: epipolar kernel ("auto" = "grouped" | "blocked" | "gather" | "flex", see
            ``epipolar.choose_method``) and the chunked kernels' per-chunk budget (None: 32 MiB on CPU,
            512 MiB on GPU). "grouped" runs on a band plan the adapter builds once per grid and shares.
        dense_mask_max_elements: while UNet batch * (F h w)^2 is at most this, a level's dense band mask is
            built once per forward and attention runs SDPA with it (same result, faster on small grids,
            memory quadratic in F h w); above it, the kernel ``method``. 0 or None: always the kernel.
        mask_rule: "vid3d" (the band above) or "cami2v": CamI2V's mask (``cami2v.py``: its token centres,
            a strict band of sqrt(2) tokens, a random line through the query in its own frame); always
            a dense mask, as CamI2V's own (memory quadratic in F h w); ``band_width`` and
            ``min_baseline`` do not apply.
        registers: learned register tokens per block that every query attends to (CamI2V: 4).
    Returns:
        The AttentionAdapter (an nn.Module; store it on the caller as ``attention_adapter``).
    """
    def block(dim: int) -> EpipolarAttention:
        return EpipolarAttention(dim, heads, band_width, method, max_chunk_bytes, registers)

    return _attach(unet, levels, block, "attach_epipolar_attention", min_baseline=min_baseline,
                   dense_mask_max_elements=dense_mask_max_elements, mask_rule=mask_rule)


def attach_full_attention(unet: nn.Module, heads: int = 8, levels: Iterable[int] | None = None,
                          registers: int = 0) -> AttentionAdapter:
    """Add full cross-frame attention (``CrossFrameAttention``: every token attends to all F*h*w tokens;
    the ablation of epipolar attention) after the spatio-temporal transformers at ``levels`` (None: all)."""
    def block(dim: int) -> CrossFrameAttention:
        return CrossFrameAttention(dim, heads, registers)

    return _attach(unet, levels, block, "attach_full_attention")


def no_attention(unet: nn.Module) -> None:
    """The choice of no added attention (``conf/model/attention/none.yaml``): attaches nothing."""
    return None
