"""Epipolar band attention on PyTorch's FlexAttention (``torch.nn.attention.flex_attention``).

The same band as ``epipolar.py`` (query attends to itself and to the keys of other frames within
``band_width / 2`` of its epipolar line), expressed as a ``mask_mod`` that evaluates the distance test from
a table of every query's lines (float64, (T, F, 3): no T x T mask), with a ``BlockMask`` so blocks of
(query, key) pairs outside every band are skipped. Tokens are reordered per frame by the direction of their
epipolar line (``grouped.line_order_key``) before blocking -- in frame-major row order ~95% of 128 x 128
blocks hold a band pair, in line order ~77% (16 x 24 x 40 tokens, forward-moving cameras) -- and put back
afterwards.

On the CPU, torch 2.14 runs FlexAttention forward only ("FlexAttention does not support backward on CPU")
and compiles it per shape (~15 s the first time); ``benchmarks/attention.py --methods flex`` measures
it. It is the candidate for CUDA, where forward and backward are fused; ``method="auto"`` does not pick
it until a GPU measurement says it wins (see benchmarks/README.md).
"""

from __future__ import annotations

import torch

from .band import _lines_from_frame, pixel_centres
from .grouped import dominant_epipole, line_order_key

_COMPILED: dict = {}


def line_table(F_hat_b: torch.Tensor, degenerate_b: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(T, F, 3) float64: row t = f * h * w + p holds the normalised line of query pixel p of frame f in
    every frame j (zeros for j == f and for degenerate pairs, which match no key)."""
    n, N = F_hat_b.shape[0], h * w
    table = torch.zeros(n, N, n, 3, dtype=torch.float64, device=F_hat_b.device)
    for i in range(n):
        others, lines, ok = _lines_from_frame(F_hat_b, degenerate_b, i, h, w)
        table[i][:, others] = (lines * ok[..., None]).transpose(0, 1)
    return table.view(n * N, n, 3)


def line_order(F_hat_b: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(T,) permutation: each frame's tokens sorted by ``line_order_key`` (frames stay in order)."""
    n, N = F_hat_b.shape[0], h * w
    parts = []
    for i in range(n):
        others = torch.tensor([j for j in range(n) if j != i], device=F_hat_b.device, dtype=torch.long)
        e = dominant_epipole(F_hat_b[i, others]) if others.numel() else None
        parts.append(i * N + torch.argsort(line_order_key(e, h, w).to(F_hat_b.device), stable=True))
    return torch.cat(parts)


def band_block_mask(
    F_hat_b: torch.Tensor,
    degenerate_b: torch.Tensor,
    h: int,
    w: int,
    band_width: float,
    block_size: int = 128,
):
    """(BlockMask, perm) of one sample's band in line order (see module docstring)."""
    from torch.nn.attention.flex_attention import create_block_mask

    n, N = F_hat_b.shape[0], h * w
    T = n * N
    perm = line_order(F_hat_b, h, w)
    table = line_table(F_hat_b, degenerate_b, h, w)[perm]  # rows in the new order
    xy = pixel_centres(h, w, F_hat_b.device)
    key_x, key_y = xy[perm % N, 0], xy[perm % N, 1]
    key_f, orig = perm // N, perm
    half = band_width / 2

    A, B, C = (table[..., c].contiguous() for c in range(3))  # (T, F) each
    valid_line = (A.abs() + B.abs()) > 0

    def mask_mod(b, hd, q_idx, kv_idx):
        j = key_f[kv_idx]
        dist = (A[q_idx, j] * key_x[kv_idx] + B[q_idx, j] * key_y[kv_idx] + C[q_idx, j]).abs()
        other = valid_line[q_idx, j] & (dist <= half)
        return torch.where(key_f[q_idx] == j, orig[q_idx] == orig[kv_idx], other)

    bm = create_block_mask(
        mask_mod, 1, None, T, T, device=F_hat_b.device.type, BLOCK_SIZE=block_size, _compile=True
    )
    return bm, perm


def flex_band_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    F_hat: torch.Tensor,
    degenerate: torch.Tensor,
    h: int,
    w: int,
    band_width: float,
    block_size: int = 128,
) -> torch.Tensor:
    """q, k, v (B, H, T, D) -> (B, H, T, D) through compiled FlexAttention, one sample at a time (each has
    its own block mask). CPU: forward only (no autograd)."""
    from torch.nn.attention.flex_attention import flex_attention

    if "fn" not in _COMPILED:
        _COMPILED["fn"] = torch.compile(flex_attention, dynamic=False)
    out = torch.empty_like(q)
    for b in range(q.shape[0]):
        bm, perm = band_block_mask(F_hat[b], degenerate[b], h, w, band_width, block_size)
        o = _COMPILED["fn"](
            q[b : b + 1, :, perm], k[b : b + 1, :, perm], v[b : b + 1, :, perm], block_mask=bm
        )
        out[b : b + 1, :, perm] = o
    return out
