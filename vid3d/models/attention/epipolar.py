"""Epipolar band attention: the kernels and their dispatch (``epipolar_attention``).

The band, its conventions (OpenCV cameras, camera-to-world poses, pixel intrinsics at the token grid,
frame-major tokens) and its degenerate rule are defined in ``band.py``, which also holds the dense
reference (``epipolar_mask_dense`` + ``masked_attention_dense``); its names are re-exported here.

Memory-efficient attention (``epipolar_attention``), exact, never materialising the (F h w)^2 mask.
``method="auto"`` (the default) runs "grouped" (``grouped.py``: queries grouped by their epipolar line,
each group scoring only the union of its members' bands, ~1.2-2x one band, with one fused autograd op); it
was measured faster than the kernels below and than a CamI2V-style dense mask at SVD sizes, forward and
forward + backward, on a CPU (benchmarks/README.md). "flex" runs FlexAttention with a block mask
(``flex.py``; forward only on a CPU). The two chunked kernels below process queries per (sample, query
frame) in chunks of Q pixels; each chunk builds only its own slice of the band and runs a masked softmax
over it, writing into a preallocated output. Under autograd every chunk is checkpointed (recomputed in
backward, band included), so saved memory is O(inputs + outputs). Q is chosen so one chunk's working set
stays under ``max_chunk_bytes`` (32 MiB on CPU, 512 MiB on GPU by default); peak memory is O(F h w C +
max_chunk_bytes), linear in the token count:

- "blocked": scores of the chunk against all F h w keys by one matmul, (Q, F h w) band mask
  of the chunk from the distance test, masked softmax, matmul with V. Same FLOPs as dense attention but
  all in BLAS.
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

import torch
from torch.utils.checkpoint import checkpoint

from .band import (  # noqa: F401  (re-exported: the band's functions lived here)
    _EPS,
    _band_dense_rows,
    _lines_from_frame,
    band_candidates,
    epipolar_mask_dense,
    line_distance,
    masked_attention_dense,
    pair_geometry,
    pixel_centres,
    query_lines,
    window_size,
)
from .flex import flex_band_attention
from .grouped import band_attention, build_band_plan

DEFAULT_MAX_CHUNK_BYTES = 32 * 2**20  # CPU: small chunks stay cache-friendly
DEFAULT_MAX_CHUNK_BYTES_ACCEL = 512 * 2**20  # GPU: fewer, larger chunks amortise kernel launches


def default_chunk_bytes(device: torch.device | str) -> int:
    """Per-chunk working-memory budget used when none is given: 32 MiB on CPU, 512 MiB elsewhere."""
    return DEFAULT_MAX_CHUNK_BYTES if torch.device(device).type == "cpu" else DEFAULT_MAX_CHUNK_BYTES_ACCEL


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
    """The kernel ``method="auto"`` runs: "grouped" (``grouped.py``) at every size. Measured on a CPU
    (benchmarks/README.md) at 16 x 24 x 40 and 25 x 24 x 40 tokens against a CamI2V-style dense mask
    (0.47-0.55x its time, forward and forward + backward, 5-31x less memory), "blocked", "gather" and
    FlexAttention, and at 25 x 40 x 64 where dense does not fit. Small grids do not get here in the model:
    the adapter's dense-mask fast path takes them. Not yet measured on a GPU (``make gpu-check`` does)."""
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
        return band_attention(q, k, v, build_band_plan(F_hat, degenerate, h, w, band_width))
    if method == "flex":
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
