"""The grouped epipolar kernel (vid3d/models/attention/grouped.py): its band plan, its fused backward, the
line ordering that makes groups compact, and the adapter sharing one plan per token grid.

Equality with the dense reference (outputs, gradients, degenerate pairs, float32/float64) is also covered
by the parametrised kernel tests in test_attention.py, where "grouped" is one of METHODS."""

from __future__ import annotations

import math

import pytest
import torch
from _unets import tiny_spatiotemporal_unet  # tests/models/_unets.py
from test_attention import (  # noqa: F401  (one_thread: the same autouse fixture)
    MaxTensorBytes,
    make_cameras,
    one_thread,
    with_degenerate_pair,
)

from vid3d.geometry import axis_angle_to_matrix, intrinsics_matrix
from vid3d.models.attention import (
    attach_epipolar_attention,
    epipolar_mask_dense,
    masked_attention_dense,
    pair_geometry,
    pixel_centres,
)
from vid3d.models.attention import modules as attention_modules
from vid3d.models.attention.grouped import band_attention, band_pairs_tokens, build_band_plan, line_order_key


def forward_cameras(B: int, n: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A RealEstate10K-like walk: forward 1.0, sideways 0.4, turning 0.3 rad over the clip; K at (h, w)."""
    s = torch.linspace(0, 1, n, dtype=torch.float64)
    c2w = torch.eye(4, dtype=torch.float64).repeat(B, n, 1, 1)
    c2w[..., :3, :3] = axis_angle_to_matrix(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), 0.3 * s)
    c2w[..., 0, 3], c2w[..., 2, 3] = 0.4 * s, 1.0 * s
    f = torch.full((B, n), 0.9 * w, dtype=torch.float64)
    return intrinsics_matrix(f, f, torch.full_like(f, w / 2), torch.full_like(f, h / 2)), c2w


def plan_as_mask(plan, B: int) -> torch.Tensor:
    """(B, T, T) bool rebuilt from a plan's groups; asserts every query is in exactly one group."""
    T = plan.tokens
    out = torch.zeros(B, T, T, dtype=torch.bool)
    for b in range(B):
        seen = torch.zeros(T, dtype=torch.long)
        for g in plan.groups[plan.index[b]]:
            assert torch.equal(g.keys, g.keys.sort().values) and g.mask.shape == (len(g.queries), len(g.keys))
            out[b][g.queries[:, None], g.keys[None, :]] = g.mask
            seen[g.queries] += 1
        assert (seen == 1).all()
    return out


@pytest.mark.parametrize("group_size", [1, 5, 32])
def test_plan_is_exactly_the_dense_band(group_size):
    # random cameras, a degenerate pair (shared centre) in sample 1, a grid whose size is no multiple of
    # the group size; sample 2 repeats sample 0's cameras and must reuse its groups
    B, n, h, w, bw = 3, 4, 7, 10, 2.0
    K, c2w = make_cameras(B, n, h, w, seed=3)
    c2w = with_degenerate_pair(c2w, b=1, i=0, j=2)
    K[2], c2w[2] = K[0], c2w[0]
    F_hat, degenerate = pair_geometry(K, c2w)
    plan = build_band_plan(F_hat, degenerate, h, w, bw, group_size)
    assert plan.index == (0, 1, 0) and len(plan.groups) == 2
    assert torch.equal(plan_as_mask(plan, B), epipolar_mask_dense(F_hat, degenerate, h, w, bw))


def test_band_pairs_equal_the_distance_test_including_ties():
    # lines through pixel centres at exactly band_width / 2 from other centres: ties decide membership
    h, w, bw = 6, 8, 2.0
    lines = torch.tensor(
        [[[0.0, 1.0, -2.5], [1.0, 0.0, -3.5], [0.6, 0.8, -4.0], [0.0, 0.0, 0.0]]], dtype=torch.float64
    )  # y = 2.5, x = 3.5, a slanted line, a vanished line
    ok = lines[..., :2].abs().sum(-1) > 0
    q, t = band_pairs_tokens(lines, ok, torch.tensor([2]), h, w, bw)  # key frame 2 of the sequence
    assert (t // (h * w) == 2).all()
    got = torch.zeros(1, 4, h * w, dtype=torch.bool)
    got[0, q, t % (h * w)] = True
    xy = pixel_centres(h, w)
    want = (
        (lines[..., None, 0] * xy[:, 0] + lines[..., None, 1] * xy[:, 1] + lines[..., None, 2]).abs()
        <= bw / 2
    ) & ok[..., None]
    assert torch.equal(got, want)
    assert int(want[0, 0].sum()) == 3 * w  # rows 1.5, 2.5, 3.5 (two at distance exactly 1)
    assert int(want[0, 3].sum()) == 0


def test_line_order_key_is_constant_along_lines_through_the_epipole():
    h, w = 12, 16
    xy = pixel_centres(h, w)
    # a finite epipole inside the image: pixels on one ray through it share a key (mod pi)
    e = torch.tensor([4.5, 3.5, 1.0], dtype=torch.float64)
    key = line_order_key(e, h, w)
    on_ray = ((xy[:, 1] - 3.5) == (xy[:, 0] - 4.5)) & (xy[:, 0] != 4.5)  # 45 degrees, epipole excluded
    assert on_ray.sum() >= 8 and torch.allclose(key[on_ray], key[on_ray][0].expand(int(on_ray.sum())))
    # an epipole at infinity (sideways motion, parallel lines): the key is the offset across the lines
    key_inf = line_order_key(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), h, w)
    assert torch.equal(key_inf.view(h, w), key_inf.view(h, w)[:, :1].expand(h, w))  # constant along rows
    assert (key_inf.view(h, w)[1:, 0] - key_inf.view(h, w)[:-1, 0]).abs().min() == 1.0
    # no epipole: frame order
    assert torch.equal(line_order_key(None, h, w), torch.arange(h * w, dtype=torch.float64))


def test_groups_score_a_small_multiple_of_the_band():
    # the point of the line order: a group's keys are about one band, not the image
    n, h, w = 8, 16, 24
    F_hat, degenerate = pair_geometry(*forward_cameras(1, n, h, w))
    band = epipolar_mask_dense(F_hat, degenerate, h, w, 2.0).float().mean().item()
    plan = build_band_plan(F_hat, degenerate, h, w, 2.0, group_size=32)
    assert plan.scored_fraction() < 2.0 * band < 0.5


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_outputs_and_gradients_equal_dense_with_a_shared_plan(dtype, tol):
    B, n, h, w, H, D = 2, 5, 6, 8, 3, 8
    K, c2w = forward_cameras(B, n, h, w)
    c2w = with_degenerate_pair(c2w, b=1, i=1, j=3)
    F_hat, degenerate = pair_geometry(K, c2w)
    plan = build_band_plan(F_hat, degenerate, h, w, 2.0, group_size=7)
    mask = epipolar_mask_dense(F_hat, degenerate, h, w, 2.0)
    g = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(B, H, n * h * w, D, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
        for _ in range(3)
    )
    go = torch.randn(B, H, n * h * w, D, generator=g, dtype=torch.float64).to(dtype)
    ref = masked_attention_dense(q, k, v, mask)
    out = band_attention(q, k, v, plan)
    grads_ref = torch.autograd.grad(ref, (q, k, v), go)
    grads = torch.autograd.grad(out, (q, k, v), go)
    assert (out - ref).abs().max() < tol
    for a, b in zip(grads, grads_ref, strict=True):
        assert b.abs().max() > 0 and (a - b).abs().max() < tol


def test_gradcheck_small():
    n, h, w = 3, 3, 4
    K, c2w = make_cameras(1, n, h, w, seed=5)
    F_hat, degenerate = pair_geometry(K, c2w)
    plan = build_band_plan(F_hat, degenerate, h, w, 2.5, group_size=4)
    g = torch.Generator().manual_seed(1)
    inputs = tuple(
        torch.randn(1, 2, n * h * w, 3, generator=g, dtype=torch.float64).requires_grad_() for _ in range(3)
    )
    assert torch.autograd.gradcheck(
        lambda a, b, c: band_attention(a, b, c, plan), inputs, eps=1e-6, atol=1e-6
    )


def test_backward_allocates_no_score_matrix_of_all_keys():
    # forward + backward at 8 x 16 x 24 tokens: the largest tensor made is far below the dense T^2 scores
    n, h, w, H, D = 8, 16, 24, 2, 16
    T = n * h * w
    F_hat, degenerate = pair_geometry(*forward_cameras(1, n, h, w))
    plan = build_band_plan(F_hat, degenerate, h, w, 2.0)
    q, k, v = (torch.randn(1, H, T, D).requires_grad_() for _ in range(3))
    with MaxTensorBytes() as rec:
        band_attention(q, k, v, plan).sum().backward()
    assert q.grad is not None and k.grad.abs().max() > 0
    assert rec.max_bytes < 0.05 * H * T * T * 4  # under 5% of the float32 dense scores (H, T, T)


def test_plan_checks_its_batch():
    K, c2w = make_cameras(1, 2, 3, 4)
    plan = build_band_plan(*pair_geometry(K, c2w), 3, 4, 2.0)
    q = torch.zeros(2, 1, 24, 4)
    with pytest.raises(ValueError, match="plan built for 1 samples"):
        band_attention(q, q, q, plan)
    with pytest.raises(ValueError, match="group_size"):
        build_band_plan(*pair_geometry(K, c2w), 3, 4, 2.0, group_size=0)


def test_adapter_builds_one_plan_per_grid_and_matches_the_blocked_kernel(monkeypatch):
    unet = tiny_spatiotemporal_unet()
    B, n, H, W = 1, 3, 12, 16
    g = torch.Generator().manual_seed(1)
    inputs = (
        torch.randn(B, n, 8, H, W, generator=g),
        torch.tensor([0.7]),
        torch.randn(B, 1, 32, generator=g),
        torch.randn(B, 3, generator=g),
    )
    K, c2w = make_cameras(B, n, H, W, seed=7)
    built = []
    monkeypatch.setattr(
        attention_modules, "build_band_plan", lambda *a: built.append(a[2:4]) or build_band_plan(*a)
    )
    outs = {}
    for method in ("auto", "blocked"):
        torch.manual_seed(0)  # the same block weights for both methods
        adapter = attach_epipolar_attention(
            unet, band_width=2.0, heads=4, method=method, dense_mask_max_elements=0
        )
        try:
            torch.manual_seed(0)
            with torch.no_grad():
                for blk in adapter.blocks.values():
                    blk.to_out.weight.normal_(0, 0.2)
            adapter.set_cameras(K.float(), c2w.float(), num_frames=n)
            outs[method] = unet(*inputs).sample
        finally:
            adapter.detach()
        if method == "auto":
            grids = sorted(built)
            # every grid with an attention block got exactly one plan, however many blocks it has
            assert grids == sorted(set(grids)) and len(grids) >= 2
            assert len(adapter.blocks) > len(grids)
    assert (outs["auto"] - outs["blocked"]).abs().max() < 1e-5
    assert math.isfinite(float(outs["auto"].abs().max()))


@pytest.mark.slow  # compiles FlexAttention for the CPU (~10 s)
def test_flex_forward_equals_dense():
    from vid3d.models.attention.flex import flex_band_attention

    n, h, w = 3, 8, 12
    K, c2w = forward_cameras(1, n, h, w)
    c2w = with_degenerate_pair(c2w, b=0, i=0, j=2)
    F_hat, degenerate = pair_geometry(K, c2w)
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 2, n * h * w, 16, generator=g) for _ in range(3))
    ref = masked_attention_dense(q, k, v, epipolar_mask_dense(F_hat, degenerate, h, w, 2.0))
    out = flex_band_attention(q, k, v, F_hat, degenerate, h, w, 2.0)
    assert (out - ref).abs().max() < 1e-5
