"""The epipolar band: pair geometry, lines, the distance test, candidate windows and the dense reference.

Conventions (vid3d-wide): OpenCV cameras, ``c2w`` camera-to-world 4x4, ``K_px`` pixel intrinsics at the
token grid's resolution (h, w); token (u, v) of a frame has its centre at (u + 0.5, v + 0.5) and flat index
``v * w + u``; a sequence of F frames is flattened frame-major: token ``t = f * (h * w) + v * w + u``.

Band (defined once, here): key token r of frame j is in the band of query token p of frame i (i != j) when
the distance of r's centre to the epipolar line ``l = F_ij x_p`` (normalised, a^2 + b^2 = 1) is
``|a x_r + b y_r + c| <= band_width / 2`` -- ``band_width`` is the full width of the band in pixels of the
token grid. Every query also attends to itself (its own frame, same position), so no row is empty; other
tokens of its own frame are never attended.

Degenerate rule: a pair of cameras whose centres are closer than ``min_baseline`` (world units; this
includes i == j) has no epipolar geometry (``fundamental_matrix`` returns 0): the query attends to NO token
of that frame. Likewise when the query pixel is (numerically) the epipole, so its line vanishes.

Every attention path (``epipolar.py``'s chunked kernels, ``grouped.py``, ``flex.py``, ``dense.py``) builds
its band from these functions, so all attend to identical sets (ties included).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf

from vid3d.geometry import camera_centers, epipolar_lines, fundamental_matrix

_EPS = 1e-6  # pixel margin covering float64 rounding of the line crossing


def pixel_centres(h: int, w: int, device=None, dtype=torch.float64) -> torch.Tensor:
    """(h * w, 2) centres (u + 0.5, v + 0.5) in flat order v * w + u."""
    v, u = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([u, v], -1).reshape(-1, 2).to(dtype) + 0.5


def pair_geometry(
    K_px: torch.Tensor, c2w: torch.Tensor, min_baseline: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fundamental matrices between all frame pairs of each sample.

    Args:
        K_px: (B, F, 3, 3) intrinsics at the token grid's resolution; c2w: (B, F, 4, 4).
        min_baseline: camera centres closer than this (world units) form a degenerate pair.
    Returns:
        F_hat: (B, F, F, 3, 3) float64; ``F_hat[b, i, j]`` maps a pixel of frame i to its line in frame j
            (x_j^T F x_i = 0), scaled to unit Frobenius norm; zero for degenerate pairs.
        degenerate: (B, F, F) bool, True for i == j and for (near-)coincident centres.
    """
    K = K_px.to(torch.float64)
    P = c2w.to(torch.float64)
    n = K.shape[1]
    Ki, Kj = K[:, :, None].expand(-1, -1, n, -1, -1), K[:, None].expand(-1, n, -1, -1, -1)
    Pi, Pj = P[:, :, None].expand(-1, -1, n, -1, -1), P[:, None].expand(-1, n, -1, -1, -1)
    Fm = fundamental_matrix(Ki, Pi, Kj, Pj)
    centres = camera_centers(P)
    degenerate = torch.cdist(centres, centres) <= min_baseline
    norm = Fm.flatten(-2).norm(dim=-1)
    degenerate = degenerate | (norm <= 1e-300)
    F_hat = Fm / norm.clamp_min(1e-300)[..., None, None]
    F_hat = torch.where(degenerate[..., None, None], torch.zeros_like(F_hat), F_hat)
    return F_hat, degenerate


def query_lines(F_rows: torch.Tensor, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lines in J key frames for Q query pixels: F_rows (J, 3, 3), xy (Q, 2) -> (J, Q, 3) normalised
    lines (a^2 + b^2 = 1) and (J, Q) validity (False for degenerate pairs / vanished lines)."""
    lines = epipolar_lines(F_rows, xy.to(F_rows.dtype))
    return lines, lines[..., :2].abs().sum(-1) > 0


def line_distance(lines: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|a x + b y + c| for lines (..., 3) broadcast against points x, y: THE band distance test, shared by
    the dense mask and the efficient kernel so both decide ties identically."""
    a, b, c = lines[..., 0], lines[..., 1], lines[..., 2]
    return (a * x + b * y + c).abs()


def window_size(band_width: float) -> int:
    """M, the candidates per column/row that provably contain the band (see module docstring)."""
    return int(math.floor(2.0 * math.sqrt(2.0) * (1 + 1e-9) * band_width / 2 + 2 * _EPS)) + 2


def band_candidates(
    lines: torch.Tensor, line_valid: torch.Tensor, h: int, w: int, band_width: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate key tokens of the band for each line.

    Args:
        lines: (J, Q, 3) normalised lines (float64) in key frames of size (h, w); line_valid: (J, Q) bool.
    Returns:
        idx: (J, Q, S) int64 flat token index v * w + u inside the key frame (clamped where invalid),
        valid: (J, Q, S) bool, True exactly for in-band pixels; S = max(h, w) * window_size(band_width).
        Candidates are distinct, so every in-band token appears exactly once.
    """
    half = band_width / 2
    M, L = window_size(band_width), max(h, w)
    a, b, c = (t[..., None] for t in lines.unbind(-1))  # (J, Q, 1)
    col = b.abs() >= a.abs()  # walk columns (x = s + .5) when the line is closer to horizontal
    lead = torch.where(col, b, a)  # coefficient of the solved-for (secondary) coordinate
    other = torch.where(col, a, b)
    lead = torch.where(lead == 0, torch.ones_like(lead), lead)
    s = torch.arange(L, device=lines.device, dtype=lines.dtype)
    crossing = -(other * (s + 0.5) + c) / lead  # (J, Q, L) secondary coordinate of the line
    start = torch.floor(crossing - half / lead.abs() - 0.5 - _EPS)
    sec = (start[..., None] + torch.arange(M, device=lines.device, dtype=lines.dtype)).long()  # (J,Q,L,M)
    prim = torch.arange(L, device=lines.device).view(L, 1).expand(L, M)
    colm = col[..., None]
    u = torch.where(colm, prim, sec)
    v = torch.where(colm, sec, prim)
    valid = (u >= 0) & (u < w) & (v >= 0) & (v < h) & line_valid[..., None, None]
    dist = line_distance(lines[..., None, None, :], u.to(lines.dtype) + 0.5, v.to(lines.dtype) + 0.5)
    valid &= dist <= half
    idx = (v.clamp(0, h - 1) * w + u.clamp(0, w - 1)).flatten(-2)
    return idx, valid.flatten(-2)


def _lines_from_frame(F_hat_bi: torch.Tensor, degenerate_bi: torch.Tensor, i: int, h: int, w: int):
    """Lines of ALL pixels of query frame i in the other frames: (others (J,), lines (J, N, 3), ok (J, N)).
    Dense reference and kernels both go through this one call, so their lines are bitwise identical."""
    n = F_hat_bi.shape[0]
    others = torch.tensor([j for j in range(n) if j != i], device=F_hat_bi.device, dtype=torch.long)
    lines, ok = query_lines(F_hat_bi[i, others], pixel_centres(h, w, F_hat_bi.device))
    return others, lines, ok & ~degenerate_bi[i, others][:, None]


def _band_dense_rows(lines: torch.Tensor, ok: torch.Tensor, h: int, w: int, band_width: float):
    """(J, Q, 3) lines -> (J, Q, h*w) bool band of every key pixel (the dense definition)."""
    xy = pixel_centres(h, w, lines.device)
    return (line_distance(lines[:, :, None, :], xy[:, 0], xy[:, 1]) <= band_width / 2) & ok[..., None]


def epipolar_mask_dense(F_hat: torch.Tensor, degenerate: torch.Tensor, h: int, w: int,
                        band_width: float) -> torch.Tensor:
    """Reference (B, F*h*w, F*h*w) bool mask, True = attend. Materialises (F h w)^2: small sizes only."""
    B, n = F_hat.shape[:2]
    N = h * w
    mask = torch.zeros(B, n, N, n, N, dtype=torch.bool, device=F_hat.device)
    ar = torch.arange(N, device=F_hat.device)
    for bi in range(B):
        for i in range(n):
            others, lines, ok = _lines_from_frame(F_hat[bi], degenerate[bi], i, h, w)
            mask[bi, i, :, others] = _band_dense_rows(lines, ok, h, w, band_width).transpose(0, 1)
            mask[bi, i, ar, i, ar] = True
    return mask.view(B, n * N, n * N)


def masked_attention_dense(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           mask: torch.Tensor) -> torch.Tensor:
    """Reference: q, k, v (B, H, T, D), mask (B, T, T) bool -> (B, H, T, D) (softmax(q k^T / sqrt(D)) v)."""
    return nnf.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
