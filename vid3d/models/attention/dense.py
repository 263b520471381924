"""Dense-mask fast path of epipolar attention for small token grids.

The exact kernels of ``epipolar.py`` never build the (F h w)^2 mask, so their memory is linear in the
token count; but they rebuild the band of every query chunk in every call, in Python-level loops over
samples, frames and chunks. While the mask is small (the CPU demo: 8 x 16 x 24 tokens, 9.4 M elements) it
is faster to build it once per token grid (``band_mask``: the mask of ``epipolar_mask_dense``, from the
same lines and distance arithmetic as the kernels, so the attended sets are identical, ties included) and
run ``scaled_dot_product_attention`` with it in every module -- see benchmarks/README.md for the
measurements behind ``DEFAULT_DENSE_MASK_MAX_ELEMENTS``.

One mask serves every sample with the same geometry: the two halves of a classifier-free-guidance batch
([uncond; cond], identical cameras) share it, and the adapter keeps it across UNet calls while the camera
values do not change (a sampler's steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as nnf

from .band import _lines_from_frame, pixel_centres

# Fast path while batch * (F h w)^2 <= this: 2^25 elements = a 32 MiB bool mask + its 128 MiB float32
# bias. At the CPU demo size (batch 1, or 2 with CFG, 3072 tokens) it is on; at 25 x 24 x 40 tokens
# (SVD stage 1 at 1/8 latent) it is off.
DEFAULT_DENSE_MASK_MAX_ELEMENTS = 2**25


def use_dense_mask(batch: int, tokens: int, max_elements: int | None) -> bool:
    """Whether the fast path runs for ``batch`` samples of ``tokens`` = F h w tokens (None or 0: never)."""
    return bool(max_elements) and batch * tokens * tokens <= max_elements


@dataclass(frozen=True)
class SharedMask:
    """Band masks of the distinct geometries of a batch.

    masks: (U, T, T) bool, True = attend; index: U-valued tuple of length B, sample b uses
    ``masks[index[b]]`` (a Python tuple, so choosing the SDPA call pattern never syncs a device).
    """

    masks: torch.Tensor
    index: tuple[int, ...]
    _biases: dict = field(default_factory=dict, repr=False, compare=False)

    def bias(self, dtype: torch.dtype, registers: int = 0) -> torch.Tensor:
        """(U, 1, T, registers + T) additive form of ``masks`` (0 = attend, -inf = not) in ``dtype``, made
        once per (dtype, registers); the first ``registers`` key columns (register tokens prepended to the
        keys) are attended by every query. SDPA converts a bool mask into exactly this on every call (and
        saves its copy for backward): passing it ready made is 2x faster at the demo size and gives bitwise
        the same output."""
        key = (dtype, int(registers))
        if key not in self._biases:
            U, T, _ = self.masks.shape
            bias = torch.zeros(U, T, registers + T, dtype=dtype, device=self.masks.device)
            bias[..., registers:].masked_fill_(~self.masks, float("-inf"))
            self._biases[key] = bias[:, None]
        return self._biases[key]


def band_mask(F_hat: torch.Tensor, degenerate: torch.Tensor, h: int, w: int,
              band_width: float) -> torch.Tensor:
    """(B, F h w, F h w) bool, bitwise ``epipolar_mask_dense`` (tested), 2-3x faster: ``line_distance``'s
    ``a x + b y + c`` with the products taken per column (a x) and per row (b y) and summed once per pixel
    pair -- the same float operations in the same order, on the same lines (``_lines_from_frame``)."""
    B, n = F_hat.shape[:2]
    N = h * w
    mask = torch.zeros(B, n, N, n, N, dtype=torch.bool, device=F_hat.device)
    xy = pixel_centres(h, w, F_hat.device)
    x, y = xy[:w, 0], xy[::w, 1][:, None]  # (w,) column centres, (h, 1) row centres
    ar = torch.arange(N, device=F_hat.device)
    for bi in range(B):
        for i in range(n):
            others, lines, ok = _lines_from_frame(F_hat[bi], degenerate[bi], i, h, w)
            a, b, c = (t[..., None, None] for t in lines.unbind(-1))  # (J, N, 1, 1)
            dist = (a * x + b * y).add_(c).abs_()  # (J, N, h, w)
            band = (dist <= band_width / 2).view(-1, N, N) & ok[..., None]
            mask[bi, i, :, others] = band.transpose(0, 1)
            mask[bi, i, ar, i, ar] = True
    return mask.view(B, n * N, n * N)


def distinct_samples(F_hat: torch.Tensor, degenerate: torch.Tensor) -> tuple[list[int], tuple[int, ...]]:
    """Group the samples of a batch by geometry VALUE (bitwise equal F_hat and degenerate).

    Args:
        F_hat, degenerate: (B, F, F, 3, 3), (B, F, F) from ``pair_geometry``.
    Returns:
        (first sample of each group (U,), group of each sample (B,)), groups in order of first appearance.
    """
    reps: list[int] = []
    index = []
    for b in range(F_hat.shape[0]):
        for u, r in enumerate(reps):
            if torch.equal(F_hat[b], F_hat[r]) and torch.equal(degenerate[b], degenerate[r]):
                index.append(u)
                break
        else:
            index.append(len(reps))
            reps.append(b)
    return reps, tuple(index)


def build_shared_mask(F_hat: torch.Tensor, degenerate: torch.Tensor, h: int, w: int,
                      band_width: float) -> SharedMask:
    """``band_mask`` for the distinct geometries of the batch only (see ``distinct_samples``)."""
    reps, index = distinct_samples(F_hat, degenerate)
    return SharedMask(band_mask(F_hat[reps], degenerate[reps], h, w, band_width), index)


def shared_mask_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          mask: SharedMask, registers: int = 0) -> torch.Tensor:
    """Masked attention with shared masks: q (B, H, T, D), k, v (B, H, registers + T, D) -> (B, H, T, D),
    sample b attending by ``mask.masks[mask.index[b]]`` and to the ``registers`` leading keys (register
    tokens). Without registers, equal to ``epipolar_attention`` with the geometry the mask was built from.

    One SDPA call when every sample shares one mask (broadcast, no copy) or each has its own; otherwise
    one call per distinct mask.
    """
    index, bias = mask.index, mask.bias(q.dtype, registers)
    if len(index) != q.shape[0]:
        raise ValueError(f"shared_mask_attention: mask built for {len(index)} samples, got {q.shape[0]}")
    if bias.shape[0] == 1 or index == tuple(range(len(index))):
        return nnf.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    out = q.new_empty(q.shape)
    for u in range(bias.shape[0]):
        rows = torch.tensor([b for b, i in enumerate(index) if i == u], device=q.device)
        out[rows] = nnf.scaled_dot_product_attention(q[rows], k[rows], v[rows], attn_mask=bias[u:u + 1])
    return out
