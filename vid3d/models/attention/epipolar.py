"""Epipolar band attention: geometry, band masks, an exact memory-efficient kernel and a dense reference.

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

Memory-efficient attention (``epipolar_attention``), exact, never materialising the (F h w)^2 mask.
``method="auto"`` (the default) runs "grouped" (``grouped.py``: queries grouped by their epipolar line,
each group scoring only the union of its members' bands, ~1.2-2x one band, with one fused autograd op);
it was measured faster than the kernels below and than a CamI2V-style dense mask at every size, forward
and forward + backward (benchmarks/README.md). "flex" runs FlexAttention with a block mask (``flex.py``;
forward only on a CPU). The two chunked kernels below process queries per (sample, query frame) in chunks
of Q pixels; each chunk builds only its own slice of the band and runs a masked softmax over it, writing
into a preallocated output. Under autograd every chunk is checkpointed (recomputed in backward, band
included), so saved memory is O(inputs + outputs). Q is chosen so one chunk's working set stays under
``max_chunk_bytes`` (32 MiB on CPU, 512 MiB on GPU by default); peak memory is O(F h w C +
max_chunk_bytes), linear in the token count:

- "blocked": scores of the chunk against all F h w keys by one matmul, (Q, F h w) band mask
  of the chunk from the distance test, masked softmax, matmul with V. Same FLOPs as dense attention but
  all in BLAS; the fastest on small and medium grids.
- "gather": only the band's candidates are scored. With a normalised line, walk its dominant axis (each
  column u if |b| >= |a|, else each row v) and take the M pixels around the crossing,
  ``M = floor(sqrt(2) * band_width + 2e-6) + 2``: the dominant coefficient is >= 1/sqrt(2), so this
  window provably holds every in-band pixel of that column/row. Each (query, key frame) pair thus has
  ``S = max(h, w) * M`` candidates (masked by the exact test where out of image / band / degenerate),
  ``Nk = 1 + (F - 1) * S`` keys per query instead of F h w: work grows with the band, not the image.

Both use the SAME line computation (``_lines_from_frame``) and distance formula (``line_distance``) as the
dense reference ``epipolar_mask_dense``, so the attended sets are identical (ties included) and the
outputs equal ``masked_attention_dense`` up to float rounding. On small grids the attention adapter uses
that dense mask itself, built once per forward (``dense.py``), which is faster there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
from torch.utils.checkpoint import checkpoint

from vid3d.geometry import camera_centers, epipolar_lines, fundamental_matrix

DEFAULT_MAX_CHUNK_BYTES = 32 * 2**20  # CPU: small chunks stay cache-friendly
DEFAULT_MAX_CHUNK_BYTES_ACCEL = 512 * 2**20  # GPU: fewer, larger chunks amortise kernel launches


def default_chunk_bytes(device: torch.device | str) -> int:
    """Per-chunk working-memory budget used when none is given: 32 MiB on CPU, 512 MiB elsewhere."""
    return DEFAULT_MAX_CHUNK_BYTES if torch.device(device).type == "cpu" else DEFAULT_MAX_CHUNK_BYTES_ACCEL


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


def _masked_softmax(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim where valid (computed in at least float32)."""
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
    return torch.softmax(scores.masked_fill_(~valid, float("-inf")), dim=-1)


def _chunk_gather(qc, k_b, v_b, lines, ok, others, i, p0, h, w, band_width):
    """Gather kernel for one chunk. qc (H, Q, D) queries of frame i at pixels p0..p0+Q; k_b, v_b (H, T, D);
    lines/ok (J, Q, 3)/(J, Q) towards the frames ``others`` (J,). Returns (H, Q, D)."""
    N, Q = h * w, qc.shape[1]
    idx = [torch.arange(i * N + p0, i * N + p0 + Q, device=qc.device)[:, None]]  # itself, always attended
    valid = [torch.ones(Q, 1, dtype=torch.bool, device=qc.device)]
    if others.numel():
        cand, cval = band_candidates(lines, ok, h, w, band_width)  # (J, Q, S)
        idx.append((cand + others.view(-1, 1, 1) * N).permute(1, 0, 2).reshape(Q, -1))
        valid.append(cval.permute(1, 0, 2).reshape(Q, -1))
    idx_t, valid_t = torch.cat(idx, 1), torch.cat(valid, 1)  # (Q, Nk)
    H, Nk, D = qc.shape[0], idx_t.shape[1], qc.shape[-1]
    kg = k_b.index_select(1, idx_t.view(-1)).view(H, Q, Nk, D)  # (H, Q, Nk, D)
    scores = torch.matmul(kg, qc.unsqueeze(-1) * D**-0.5).squeeze(-1)  # (H, Q, Nk)
    del kg
    probs = _masked_softmax(scores, valid_t).to(v_b.dtype)
    vg = v_b.index_select(1, idx_t.view(-1)).view(H, Q, Nk, D)
    return torch.matmul(probs.unsqueeze(-2), vg).squeeze(-2)


def _chunk_blocked(qc, k_b, v_b, lines, ok, others, i, p0, h, w, band_width):
    """Blocked kernel for one chunk (same arguments as ``_chunk_gather``): scores against all T keys with a
    matmul, band mask of this chunk only ((Q, T) bool), masked softmax, matmul with V."""
    N, Q, n = h * w, qc.shape[1], others.numel() + 1
    valid = torch.zeros(Q, n, N, dtype=torch.bool, device=qc.device)
    if others.numel():
        valid[:, others] = _band_dense_rows(lines, ok, h, w, band_width).transpose(0, 1)
    ar = torch.arange(Q, device=qc.device)
    valid[ar, i, p0 + ar] = True
    scores = torch.matmul(qc * qc.shape[-1] ** -0.5, k_b.transpose(-1, -2))  # (H, Q, T)
    probs = _masked_softmax(scores, valid.view(Q, n * N))
    return torch.matmul(probs.to(v_b.dtype), v_b)


def keys_per_query(num_frames: int, h: int, w: int, band_width: float, method: str = "gather") -> int:
    """Key tokens scored per query: gather 1 + (F - 1) * max(h, w) * M; blocked F * h * w."""
    if method == "blocked":
        return num_frames * h * w
    return 1 + (num_frames - 1) * max(h, w) * window_size(band_width)


METHODS = ("grouped", "blocked", "gather", "flex")


def choose_method(num_frames: int, h: int, w: int, band_width: float) -> str:
    """The kernel ``method="auto"`` runs: "grouped" (``grouped.py``) at every size -- measured faster than
    "blocked", "gather", FlexAttention (CPU, forward only) and dense SDPA from 8 x 16 x 24 to 25 x 40 x 64
    tokens, forward and forward + backward, with the least memory of all but "gather" (benchmarks/README.md).
    Small grids never get here in the model: the adapter's dense-mask fast path takes them."""
    return "grouped"


def chunk_queries(num_frames: int, h: int, w: int, heads: int, head_dim: int, band_width: float,
                  method: str = "gather", element_size: int = 4,
                  max_chunk_bytes: int | None = None) -> int:
    """Queries per chunk so one chunk's work fits in max_chunk_bytes. Per scored key: gather holds keys +
    values (2 H D elements), 3 H float32 scores/probabilities and ~64 bytes of index/geometry work; blocked
    holds 3 H float32 scores/probabilities, 1 byte of mask and ~24 bytes of float64 distance work."""
    max_chunk_bytes = DEFAULT_MAX_CHUNK_BYTES if max_chunk_bytes is None else max_chunk_bytes
    nk = keys_per_query(num_frames, h, w, band_width, method)
    if method == "gather":
        per_key = 2 * heads * head_dim * element_size + 12 * heads + 64
    else:
        per_key = 12 * heads + 25
    return max(1, min(h * w, max_chunk_bytes // (nk * per_key)))


def epipolar_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, F_hat: torch.Tensor,
                       degenerate: torch.Tensor, h: int, w: int, band_width: float, method: str = "auto",
                       max_chunk_bytes: int | None = None) -> torch.Tensor:
    """Exact epipolar band attention without a dense mask.

    Args:
        q, k, v: (B, H, T, D) with T = F * h * w tokens in frame-major order.
        F_hat, degenerate: (B, F, F, 3, 3), (B, F, F) from ``pair_geometry`` at the (h, w) grid.
        h, w: token grid of each frame; band_width: full band width in token pixels.
        method: "grouped" (``grouped.py``), "blocked" (matmul against all keys, per-chunk mask), "gather"
            (scores only each query's band candidates), "flex" (FlexAttention, ``flex.py``) or "auto"
            (see ``choose_method``). ``max_chunk_bytes`` applies to "blocked" and "gather".
        max_chunk_bytes: working-memory budget of one query chunk (None: ``default_chunk_bytes(q.device)``).
    Returns:
        (B, H, T, D), equal to ``masked_attention_dense(q, k, v, epipolar_mask_dense(...))``.
    """
    B, H, T, D = q.shape
    n = F_hat.shape[1]
    method = choose_method(n, h, w, band_width) if method == "auto" else method
    if method not in METHODS:
        raise ValueError(f"epipolar_attention: method must be 'auto' or one of {METHODS}, got {method!r}")
    N = h * w
    if T != n * N:
        raise ValueError(f"epipolar_attention: T={T} tokens but F={n} frames of {h}x{w}")
    if method == "grouped":
        from .grouped import band_attention, build_band_plan

        return band_attention(q, k, v, build_band_plan(F_hat, degenerate, h, w, band_width))
    if method == "flex":
        from .flex import flex_band_attention

        return flex_band_attention(q, k, v, F_hat, degenerate, h, w, band_width)
    kernel = _chunk_blocked if method == "blocked" else _chunk_gather
    max_chunk_bytes = default_chunk_bytes(q.device) if max_chunk_bytes is None else max_chunk_bytes
    chunk = chunk_queries(n, h, w, H, D, band_width, method, q.element_size(), max_chunk_bytes)
    use_ckpt = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    out = q.new_empty(B, H, T, D)  # chunks are written in place: no list of parts + concatenation copy
    for bi in range(B):
        for i in range(n):
            others, lines, ok = _lines_from_frame(F_hat[bi], degenerate[bi], i, h, w)
            for p0 in range(0, N, chunk):
                p1 = min(N, p0 + chunk)
                args = (q[bi, :, i * N + p0:i * N + p1], k[bi], v[bi], lines[:, p0:p1], ok[:, p0:p1], others,
                        i, p0, h, w, band_width)
                res = checkpoint(kernel, *args, use_reentrant=False) if use_ckpt else kernel(*args)
                out[bi, :, i * N + p0:i * N + p1] = res
    return out
