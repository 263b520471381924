"""Block-sparse epipolar band attention: queries grouped by their epipolar lines, one fused autograd op.

Same band as ``epipolar.py`` (module docstring there: OpenCV cameras, tokens frame-major
``t = f * h * w + v * w + u``, centres at (u + 0.5, v + 0.5), a query attends to itself and to the key
tokens of the other frames within ``band_width / 2`` of its epipolar line; degenerate pairs contribute no
keys). Outputs and gradients equal ``masked_attention_dense`` with ``epipolar_mask_dense`` up to float
rounding; the attended sets are identical (the distance test is the same expression on the same lines).

Why groups. The band is ~3-8% of the keys, but a kernel that scores every key (the dense mask, the
"blocked" kernel) does 100% of the work, and one that gathers each query's own candidates ("gather")
moves ~5 MB of keys per query. Here the queries of a frame are sorted by the direction of their epipolar
line and cut into groups of ``group_size``: queries on (nearly) the same line through the dominant epipole
have (nearly) the same band in every other frame, so a group's keys -- the union of its members' bands
-- are only ~1.2-2x one band (measured: 1.4x for groups of 32 on a forward-moving trajectory, 2.0x on an
orbit). Each group gathers its keys once and runs dense matmuls on them with an exact (group, keys) mask.

The band plan (``build_band_plan``: per distinct camera set of the batch, per group the query tokens, the
key tokens and the boolean mask) is built once per token grid and shared by every module at that grid and
by the backward pass; it is ~union density x T^2 bits (58 MB at 25 x 24 x 40 tokens, against 576 MB for
the dense boolean mask and 2.3 GB for its float bias).

``band_attention`` is one ``torch.autograd.Function``: the forward keeps only the output and the
log-sum-exp of every query's scores (float32, (B, H, T)); the backward recomputes each group's scores and
accumulates into single dq / dk / dv buffers (``index_add_``), so no per-group full-size gradients and no
copies of the output gradient are made (FlashAttention's recomputation, on gathered key sets). A group's
temporaries are views of per-call workspace buffers sized for the largest group (``_Workspace``), so
groups of many different key counts do not fragment the CPU heap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .band import _EPS, _lines_from_frame, pixel_centres, window_size

DEFAULT_GROUP_SIZE = 32
PAIR_CHUNK_ELEMENTS = 2**18  # candidates per band_pairs_tokens call in a plan build (bounds temporaries)


@dataclass(frozen=True)
class BandGroup:
    """One group of queries of one sample geometry: ``queries`` (Q,) int64 token indices (one frame),
    ``keys`` (K,) int64 token indices in increasing order (the union of the queries' bands and the queries
    themselves), ``mask`` (Q, K) bool, True = query attends to key (exactly the band + itself)."""

    queries: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class BandPlan:
    """Groups of every distinct geometry of a batch: ``groups[u]`` lists the groups of geometry u (together
    they hold every query token once); sample b uses ``groups[index[b]]`` (as ``SharedMask.index``)."""

    groups: tuple[tuple[BandGroup, ...], ...]
    index: tuple[int, ...]
    tokens: int

    def nbytes(self) -> int:
        """Bytes held by the plan's tensors."""
        return sum(t.nbytes for gs in self.groups for g in gs for t in (g.queries, g.keys, g.mask))

    def scored_fraction(self) -> float:
        """Fraction of the T^2 query-key pairs a geometry's groups score (mean over geometries)."""
        per = [sum(g.mask.numel() for g in gs) / self.tokens**2 for gs in self.groups]
        return sum(per) / len(per)


def dominant_epipole(F_rows: torch.Tensor) -> torch.Tensor | None:
    """Homogeneous point (3,) float64 in the query frame that the epipolar lines of most key frames pass
    near: the top eigenvector of the sum of e e^T over the epipoles e (unit 3-vectors, the right null
    vectors of ``F_rows`` (J, 3, 3), which map query pixels to key-frame lines). None without any
    non-degenerate pair."""
    keep = F_rows.flatten(1).abs().sum(1) > 0
    if not bool(keep.any()):
        return None
    e = torch.linalg.svd(F_rows[keep]).Vh[:, -1]  # (J', 3): F e = 0
    return torch.linalg.eigh(e.T @ e).eigenvectors[:, -1]


def line_order_key(epipole: torch.Tensor | None, h: int, w: int) -> torch.Tensor:
    """(h * w,) float64 sort key of the pixels of an (h, w) frame by the line through them and ``epipole``.

    Pixels on one line through the epipole get equal keys, neighbouring lines neighbouring keys. A finite
    epipole within 2 max(h, w) pixels of the image centre: the angle of (pixel - epipole) modulo pi, cut
    perpendicular to the direction of the image centre. Further away (or at infinity) the lines are nearly
    parallel to the direction d from the centre towards the epipole: the key is the pixel's offset across
    d. No epipole: row-major order.
    """
    xy = pixel_centres(h, w)
    if epipole is None:
        return torch.arange(h * w, dtype=torch.float64)
    ex, ey, ez = (float(c) for c in epipole)
    cx, cy = w / 2, h / 2
    if abs(ez) > 1e-12 and math.hypot(ex / ez - cx, ey / ez - cy) < 2 * max(h, w):
        px, py = ex / ez, ey / ez
        angle = torch.atan2(xy[:, 1] - py, xy[:, 0] - px)
        cut = math.atan2(cy - py, cx - px) + math.pi / 2
        return torch.remainder(angle - cut, math.pi)
    dx, dy = ex - cx * ez, ey - cy * ez
    norm = math.hypot(dx, dy) or 1.0
    return (xy[:, 0] - cx) * (-dy / norm) + (xy[:, 1] - cy) * (dx / norm)


def band_pairs_tokens(lines: torch.Tensor, ok: torch.Tensor, frames: torch.Tensor, h: int, w: int,
                      band_width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Every in-band (query, key token) pair of a set of lines, without a dense mask.

    Args:
        lines: (J, Q, 3) normalised lines (float64) of Q query pixels in J key frames of size (h, w);
            ok: (J, Q) bool (False: degenerate pair or vanished line: no keys); frames: (J,) int64 frame
            index of each key frame in the token sequence.
    Returns:
        (q, t) int64 of equal length: key token ``t = frames[j] * h * w + v * w + u`` is in query q's band,
        i.e. ``|a x + b y + c| <= band_width / 2`` at the key pixel's centre -- ``line_distance``'s
        expression with each product formed once per row/column (a product and a sum of the same float64
        values are bitwise the same however they are grouped into tensors), so the set equals the dense
        mask's, ties included. Candidates: ``window_size`` pixels around the line's crossing of every column
        (lines closer to horizontal) or row, which provably hold the band (``band.py``).
    """
    half = band_width / 2
    M, L = window_size(band_width), max(h, w)
    a, b, c = lines.unbind(-1)
    col = b.abs() >= a.abs()
    lead = torch.where(col, b, a)
    other = torch.where(col, a, b)
    safe = torch.where(lead == 0, torch.ones_like(lead), lead)
    prim = torch.arange(L, device=lines.device, dtype=lines.dtype) + 0.5
    crossing = -(other[..., None] * prim + c[..., None]) / safe[..., None]
    start = torch.floor(crossing - (half / safe.abs())[..., None] - 0.5 - _EPS)
    sec = start[..., None] + torch.arange(M, device=lines.device, dtype=lines.dtype)
    dist = (lead[..., None, None] * (sec + 0.5)).add_((other[..., None] * prim)[..., None]).add_(
        c[..., None, None]).abs_()
    ext_sec = torch.where(col, h, w)[..., None, None]
    ext_prim = torch.where(col, w, h)[..., None, None]
    keep = (dist <= half) & (sec >= 0) & (sec < ext_sec) & ok[..., None, None]
    keep &= torch.arange(L, device=lines.device).view(L, 1) < ext_prim
    sec_i = sec.to(torch.int64)
    u_or_v = torch.arange(L, device=lines.device).view(L, 1)
    base = (frames * (h * w)).view(-1, 1, 1, 1)
    t = torch.where(col[..., None, None], sec_i * w + u_or_v, u_or_v * w + sec_i).add_(base)
    J, Q = lines.shape[:2]
    q = torch.arange(Q, device=lines.device).view(1, Q, 1, 1).expand_as(keep).masked_select(keep)
    return q, t.masked_select(keep)


def _frame_groups(
    F_b: torch.Tensor,
    deg_b: torch.Tensor,
    i: int,
    h: int,
    w: int,
    band_width: float,
    group_size: int,
    device: torch.device,
) -> list[BandGroup]:
    """The groups of query frame i of one sample (F_b (F, F, 3, 3), deg_b (F, F)).

    The in-band (query, key) pairs come from ``band_pairs_tokens`` (exact per-line candidates and
    distance test, computed once); each group's keys are the union of
    its pairs' keys, and its mask is filled by one scatter over the frame's pairs into a flat buffer of
    which every group's (Q, K) mask is a view."""
    n, N = F_b.shape[0], h * w
    T = n * N
    others, lines, ok = _lines_from_frame(F_b, deg_b, i, h, w)  # (J,), (J, N, 3), (J, N)
    order = torch.argsort(line_order_key(dominant_epipole(F_b[i, others]), h, w).to(device), stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(N, device=device)
    gid, slot = rank // group_size, rank % group_size  # group and row of each query pixel
    ng = -(-N // group_size)
    sizes = torch.full((ng,), group_size, dtype=torch.long, device=device)
    sizes[-1] = N - group_size * (ng - 1)
    # in-band pairs (query pixel p, key token) of this frame's queries with the other frames' keys; each
    # query's own token is added apart (one per query)
    member = torch.zeros(ng, T, dtype=torch.bool, device=device)
    p_self = torch.arange(N, device=device)
    lin_self = gid * T + i * N + p_self
    member.view(-1)[lin_self] = True
    # candidates in chunks of queries: the (J, Q, L, M) float64 grids stay ~PAIR_CHUNK_ELEMENTS large
    step = max(1, PAIR_CHUNK_ELEMENTS // max(1, others.numel() * max(h, w) * window_size(band_width)))
    chunks = []
    for q0 in range(0, N if others.numel() else 0, step):
        p, key = band_pairs_tokens(lines[:, q0:q0 + step], ok[:, q0:q0 + step], others, h, w, band_width)
        p += q0
        lin = gid[p].mul_(T).add_(key)
        member.view(-1)[lin] = True
        chunks.append((p, lin))
    counts = member.sum(1)  # keys per group
    pos = member.view(-1).cumsum(0).sub_(1)  # rank of each key among its group's keys (+ earlier groups')
    offsets = torch.zeros(ng + 1, dtype=torch.long, device=device)
    offsets[1:] = (sizes * counts).cumsum(0)
    # flat index of (query row, key column) in group g's block: offsets[g] + slot * counts[g] + column
    first = torch.zeros(ng, dtype=torch.long, device=device)
    first[1:] = counts.cumsum(0)[:-1]  # keys of the groups before g (pos counts them too)
    row_base = offsets[gid] + slot * counts[gid] - first[gid]  # (N,)
    flat = torch.zeros(int(offsets[-1]), dtype=torch.bool, device=device)
    flat[row_base + pos[lin_self]] = True
    for p, lin in chunks:
        flat[row_base[p].add_(pos[lin])] = True
    del chunks
    groups = []
    bounds = offsets.tolist()
    for g in range(ng):
        keys = member[g].nonzero().squeeze(1)  # increasing
        q = i * N + order[g * group_size : g * group_size + int(sizes[g])]
        groups.append(BandGroup(q, keys, flat[bounds[g] : bounds[g + 1]].view(int(sizes[g]), keys.numel())))
    return groups


def build_band_plan(
    F_hat: torch.Tensor,
    degenerate: torch.Tensor,
    h: int,
    w: int,
    band_width: float,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> BandPlan:
    """The band plan of a batch (see module docstring).

    Args:
        F_hat, degenerate: (B, F, F, 3, 3), (B, F, F) from ``pair_geometry`` at the (h, w) grid.
        band_width: full band width in token pixels; group_size: queries per group.
    """
    from .dense import distinct_samples

    if group_size < 1:
        raise ValueError(f"build_band_plan: group_size must be >= 1, got {group_size}")
    reps, index = distinct_samples(F_hat, degenerate)
    n = F_hat.shape[1]
    with torch.no_grad():
        groups = tuple(
            tuple(
                g
                for i in range(n)
                for g in _frame_groups(F_hat[b], degenerate[b], i, h, w, band_width, group_size, F_hat.device)
            )
            for b in reps
        )
    return BandPlan(groups, index, n * h * w)


class _Workspace:
    """Per-call scratch buffers, one flat allocation per role sized for the largest group; every group's
    (H, Q, K) / (H, K, D) temporaries are contiguous views of them (``out=``). Groups have many different
    key counts: allocating each group's temporaries anew fragments the CPU heap (process RSS then grows
    well beyond the live bytes); one buffer per role, reused, does not."""

    def __init__(self, like: torch.Tensor) -> None:
        self.like, self.buffers = like, {}

    def get(self, role: str, shape: tuple[int, ...], dtype: torch.dtype, numel: int) -> torch.Tensor:
        """A contiguous ``shape`` view of the ``role`` buffer (``numel``: the largest size it will serve)."""
        buf = self.buffers.get(role)
        if buf is None or buf.dtype != dtype or buf.numel() < numel:
            buf = self.buffers[role] = self.like.new_empty(numel, dtype=dtype)
        return buf[: math.prod(shape)].view(shape)


def _largest(plan: BandPlan, index: tuple[int, ...]) -> tuple[int, int]:
    """(most queries, most keys) of any group the samples ``index`` use."""
    groups = [g for u in set(index) for g in plan.groups[u]]
    return max(len(g.queries) for g in groups), max(len(g.keys) for g in groups)


def _scores(qg: torch.Tensor, kg: torch.Tensor, mask: torch.Tensor, scale: float,
            out: torch.Tensor) -> torch.Tensor:
    """(H, Q, D) x (H, K, D) -> (H, Q, K) scaled scores in at least float32 (written into ``out`` when the
    inputs are float32 or wider), -inf outside ``mask``."""
    if qg.dtype == out.dtype:
        s = torch.matmul(qg, kg.transpose(-1, -2), out=out)
    else:
        s = out.copy_(torch.matmul(qg, kg.transpose(-1, -2)))
    return s.mul_(scale).masked_fill_(~mask, float("-inf"))


class _BandAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, plan: BandPlan):
        B, H, T, D = q.shape
        scale = D**-0.5
        acc = torch.promote_types(q.dtype, torch.float32)
        out = torch.empty_like(q)
        lse = q.new_empty(B, H, T, dtype=acc)
        Qm, Km = _largest(plan, plan.index)
        ws = _Workspace(q)
        for b in range(B):
            qb, kb, vb = q[b], k[b], v[b]
            for g in plan.groups[plan.index[b]]:
                nq, nk = len(g.queries), len(g.keys)
                kg = torch.index_select(kb, 1, g.keys, out=ws.get("k", (H, nk, D), q.dtype, H * Km * D))
                s = _scores(qb.index_select(1, g.queries), kg, g.mask, scale,
                            ws.get("s", (H, nq, nk), acc, H * Qm * Km))
                m = torch.logsumexp(s, dim=-1)  # (H, Q): finite, every query attends to itself
                p = s.sub_(m[..., None]).exp_()
                vg = torch.index_select(vb, 1, g.keys, out=ws.get("k", (H, nk, D), q.dtype, H * Km * D))
                out[b].index_copy_(1, g.queries, torch.matmul(p.to(vb.dtype), vg))
                lse[b].index_copy_(1, g.queries, m)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.plan = plan
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse = ctx.saved_tensors
        plan = ctx.plan
        B, H, T, D = q.shape
        scale = D**-0.5
        acc = lse.dtype
        delta = (grad_out.to(acc) * out.to(acc)).sum(-1)  # (B, H, T): rowsum(dO * O)
        # every query row of dq is written once (index_copy_); dk / dv accumulate over groups
        dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        Qm, Km = _largest(plan, plan.index)
        ws = _Workspace(q)
        for b in range(B):
            qb, kb, vb, gb = q[b], k[b], v[b], grad_out[b]
            for g in plan.groups[plan.index[b]]:
                nq, nk = len(g.queries), len(g.keys)
                qg, dog = qb.index_select(1, g.queries), gb.index_select(1, g.queries)
                kg = torch.index_select(kb, 1, g.keys, out=ws.get("k", (H, nk, D), q.dtype, H * Km * D))
                vg = torch.index_select(vb, 1, g.keys, out=ws.get("v", (H, nk, D), q.dtype, H * Km * D))
                p = _scores(qg, kg, g.mask, scale, ws.get("s", (H, nq, nk), acc, H * Qm * Km))
                p = p.sub_(lse[b].index_select(1, g.queries)[..., None]).exp_()
                kv_grad = ws.get("g", (H, nk, D), q.dtype, H * Km * D)
                torch.matmul(p.transpose(-1, -2).to(vg.dtype), dog, out=kv_grad)
                dv[b].index_add_(1, g.keys, kv_grad)
                dp = ws.get("dp", (H, nq, nk), acc, H * Qm * Km)
                if dog.dtype == acc:
                    torch.matmul(dog, vg.transpose(-1, -2), out=dp)
                else:
                    dp.copy_(torch.matmul(dog, vg.transpose(-1, -2)))
                ds = p.mul_(dp.sub_(delta[b].index_select(1, g.queries)[..., None])).mul_(scale).to(qg.dtype)
                dq[b].index_copy_(1, g.queries, torch.matmul(ds, kg))
                torch.matmul(ds.transpose(-1, -2), qg, out=kv_grad)
                dk[b].index_add_(1, g.keys, kv_grad)
        return dq, dk, dv, None


def band_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: BandPlan) -> torch.Tensor:
    """Epipolar band attention with a band plan: q, k, v (B, H, T, D) -> (B, H, T, D), sample b by
    ``plan.groups[plan.index[b]]``. Differentiable in q, k, v (one fused backward, see module docstring)."""
    if q.shape[2] != plan.tokens or len(plan.index) != q.shape[0]:
        raise ValueError(
            f"band_attention: plan built for {len(plan.index)} samples of {plan.tokens} tokens, "
            f"got q of shape {tuple(q.shape)}"
        )
    return _BandAttention.apply(q, k, v, plan)
