"""Tests for vid3d.models.attention: band geometry vs brute force, exact equality of the memory-efficient
kernels and of the dense-mask fast path with dense masked attention (and with each other), the degenerate
rule, chunk memory, UNet attachment, and the fast path's mask cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _unets import tiny_spatiotemporal_unet  # tests/models/_unets.py
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from vid3d.geometry import axis_angle_to_matrix, intrinsics_matrix, look_at_c2w, project_points, rescale_K
from vid3d.models.attention import (
    CrossFrameAttention,
    EpipolarAttention,
    attach_epipolar_attention,
    attach_full_attention,
    band_candidates,
    band_mask,
    build_shared_mask,
    choose_method,
    epipolar_attention,
    epipolar_mask_dense,
    masked_attention_dense,
    no_attention,
    pair_geometry,
    pixel_centres,
    shared_mask_attention,
    use_dense_mask,
    window_size,
)
from vid3d.models.attention import modules as attention_modules

METHODS = ("grouped", "blocked", "gather")  # the memory-linear kernels
PATHS = (*METHODS, "fast")  # ... and the dense-mask fast path


def attend(path, q, k, v, F_hat, degenerate, h, w, band_width, max_chunk_bytes=None):
    """Epipolar attention by a kernel ("blocked", "gather") or by the fast path ("fast": shared dense mask
    + SDPA, as the adapter runs it on small grids)."""
    if path == "fast":
        return shared_mask_attention(q, k, v, build_shared_mask(F_hat, degenerate, h, w, band_width))
    return epipolar_attention(q, k, v, F_hat, degenerate, h, w, band_width, path, max_chunk_bytes)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Single-threaded: many small ops run far more predictably on a shared, oversubscribed CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_cameras(B: int, F: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cameras around (0, 0, -3) looking at the origin: K (B, F, 3, 3), c2w (B, F, 4, 4), float64."""
    g = torch.Generator().manual_seed(seed)
    eyes = torch.randn(B, F, 3, generator=g, dtype=torch.float64) * 0.6 + torch.tensor([0.0, 0.0, -3.0])
    targets = torch.randn(B, F, 3, generator=g, dtype=torch.float64) * 0.3
    c2w = look_at_c2w(eyes, targets)
    full = lambda v: torch.full((B, F), float(v), dtype=torch.float64)  # noqa: E731
    K = intrinsics_matrix(full(1.1 * w), full(1.2 * w), full(w / 2 + 0.3), full(h / 2 - 0.2))
    return K, c2w


def with_degenerate_pair(c2w: torch.Tensor, b: int, i: int, j: int) -> torch.Tensor:
    """Frame j of sample b gets frame i's centre and a different orientation (pure rotation)."""
    c2w = c2w.clone()
    R = axis_angle_to_matrix(torch.tensor([0.0, 1.0, 0.25], dtype=torch.float64),
                             torch.tensor(0.2, dtype=torch.float64))
    c2w[b, j, :3, :3] = c2w[b, i, :3, :3] @ R
    c2w[b, j, :3, 3] = c2w[b, i, :3, 3]
    return c2w


def brute_force_mask(K, c2w, h, w, band_width, min_baseline=1e-4):
    """Independent band: the epipolar line of query pixel x in frame j is the line through the projections
    of two points of x's viewing ray (no fundamental matrix); point-to-line distance by cross product.
    Returns (mask (T, T) bool, ambiguous (T, T) bool where the distance is within 1e-9 of the border)."""
    K, c2w = K.numpy(), c2w.numpy()
    n, N = K.shape[0], h * w
    xy = np.stack(np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5, indexing="xy"), -1).reshape(-1, 2)
    mask = np.zeros((n * N, n * N), bool)
    ambiguous = np.zeros_like(mask)
    for i in range(n):
        rays = np.concatenate([xy, np.ones((N, 1))], 1) @ np.linalg.inv(K[i]).T @ c2w[i, :3, :3].T
        for j in range(n):
            if i == j:
                mask[i * N:(i + 1) * N, j * N:(j + 1) * N] = np.eye(N, dtype=bool)
                continue
            if np.linalg.norm(c2w[i, :3, 3] - c2w[j, :3, 3]) <= min_baseline:
                continue  # degenerate rule: no token of frame j
            p1, _ = project_points(K[j], c2w[j], c2w[i, :3, 3] + 1.0 * rays)
            p2, _ = project_points(K[j], c2w[j], c2w[i, :3, 3] + 4.0 * rays)
            d = p2 - p1
            rel = xy[None, :, :] - p1[:, None, :]
            cross = d[:, None, 0] * rel[..., 1] - d[:, None, 1] * rel[..., 0]
            dist = np.abs(cross) / np.linalg.norm(d, axis=1)[:, None]
            mask[i * N:(i + 1) * N, j * N:(j + 1) * N] = dist <= band_width / 2
            ambiguous[i * N:(i + 1) * N, j * N:(j + 1) * N] = np.abs(dist - band_width / 2) < 1e-9
    return mask, ambiguous


@pytest.mark.parametrize("band_width", [0.7, 2.0, 3.3])
def test_dense_mask_matches_brute_force(band_width):
    h, w = 5, 7
    K, c2w = make_cameras(2, 3, h, w, seed=1)
    c2w = with_degenerate_pair(c2w, b=1, i=0, j=2)
    F_hat, degenerate = pair_geometry(K, c2w)
    assert degenerate[1, 0, 2] and degenerate[1, 2, 0] and not degenerate[0].triu(1).any()
    mask = epipolar_mask_dense(F_hat, degenerate, h, w, band_width)
    assert torch.equal(band_mask(F_hat, degenerate, h, w, band_width), mask)  # the fast path's builder
    for b in range(2):
        expected, ambiguous = brute_force_mask(K[b], c2w[b], h, w, band_width)
        got = mask[b].numpy()
        assert np.array_equal(got[~ambiguous], expected[~ambiguous])
        assert expected[~np.eye(len(expected), dtype=bool)].any()  # the band is not trivially empty


def test_pair_geometry_near_coincident_centres_are_degenerate():
    K, c2w = make_cameras(1, 3, 4, 4)
    c2w = with_degenerate_pair(c2w, 0, 0, 1)
    c2w[0, 1, 0, 3] += 1e-6  # near-coincident, below min_baseline
    _, degenerate = pair_geometry(K, c2w, min_baseline=1e-4)
    assert degenerate[0, 0, 1] and degenerate[0, 1, 0] and degenerate[0].diagonal().all()
    assert not degenerate[0, 0, 2] and not degenerate[0, 1, 2]
    _, degenerate = pair_geometry(K, c2w, min_baseline=1e-7)
    assert not degenerate[0, 0, 1]


def _band_rows(lines, h, w, band_width):
    xy = pixel_centres(h, w)
    a, b, c = lines[..., 0:1], lines[..., 1:2], lines[..., 2:3]
    return (a * xy[:, 0] + b * xy[:, 1] + c).abs() <= band_width / 2


@pytest.mark.parametrize("h,w", [(6, 9), (11, 4)])
@pytest.mark.parametrize("band_width", [0.5, 1.0, 2.0, 2.9, 5.0])
def test_band_candidates_are_exactly_the_band(h, w, band_width):
    g = torch.Generator().manual_seed(3)
    theta = torch.rand(200, generator=g, dtype=torch.float64) * math.pi
    theta = torch.cat([theta, torch.tensor([0.0, math.pi / 2, math.pi / 4, 3 * math.pi / 4] * 3)])
    offset = torch.rand(theta.shape, generator=g, dtype=torch.float64) * 1.6 * max(h, w) - 0.3 * max(h, w)
    offset[-12:] = torch.tensor([3.0, 2.0, 3.0, 4.0, 3.5, 1.5, 0.5, 2.5, 0.0, -1.0, 9.0, 12.0])  # ties
    lines = torch.stack([torch.cos(theta), torch.sin(theta), -offset], -1)[None]  # (1, Q, 3)
    ok = torch.ones(lines.shape[:2], dtype=torch.bool)
    ok[0, 5] = False
    idx, valid = band_candidates(lines, ok, h, w, band_width)
    assert idx.shape[-1] == max(h, w) * window_size(band_width)
    got = torch.zeros(lines.shape[1], h * w, dtype=torch.int64)
    got.scatter_add_(1, idx[0], valid[0].long())
    expected = _band_rows(lines[0], h, w, band_width) & ok[0, :, None]
    assert got.max() <= 1  # no duplicates
    assert torch.equal(got.bool(), expected)
    assert expected.any(1).float().mean() > 0.3


def test_band_candidates_tie_is_inclusive():
    # horizontal line y = 3 with band_width 1: rows 2 and 3 (centres 2.5, 3.5) are exactly at distance 0.5
    idx, valid = band_candidates(torch.tensor([[[0.0, 1.0, -3.0]]], dtype=torch.float64),
                                 torch.ones(1, 1, dtype=torch.bool), 6, 5, 1.0)
    rows = sorted({int(i) // 5 for i in idx[valid]})
    assert rows == [2, 3] and int(valid.sum()) == 10


def _inputs(B, H, T, D, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, D, generator=g, dtype=torch.float64).to(dtype) for _ in range(3)]


def _degenerate_case(B, n, h, w):
    """Cameras of the equality tests. Sample 0: a vertical rig (same orientation, centres along y) whose
    frames 1.. have their principal point w/2 to the right of frame 0's, so epipolar lines are the columns
    u_j = u_0 + w/2: frame 0's pixels right of the middle have no line in any image, and those rows attend
    to no token but themselves. Sample 1: a coincident pair (1, 3), not attended. Sample 2 (if any): sample
    0's cameras again (as classifier-free guidance repeats them)."""
    K, c2w = make_cameras(B, n, h, w, seed=2)
    c2w[0] = torch.eye(4, dtype=torch.float64)
    c2w[0, :, 1, 3] = torch.linspace(0.0, 1.2, n, dtype=torch.float64)
    K[0, 1:, 0, 2] += w / 2
    c2w = with_degenerate_pair(c2w, b=1, i=1, j=3)
    if B > 2:
        K[2], c2w[2] = K[0], c2w[0]
    return K, c2w


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_efficient_equals_dense_reference(path, dtype, tol):
    B, n, h, w, H, D, bw = 3, 4, 6, 9, 2, 8, 2.0
    K, c2w = _degenerate_case(B, n, h, w)
    F_hat, degenerate = pair_geometry(K, c2w)
    q, k, v = _inputs(B, H, n * h * w, D, dtype)
    mask = epipolar_mask_dense(F_hat, degenerate, h, w, bw)
    assert torch.equal(band_mask(F_hat, degenerate, h, w, bw), mask)
    only_self = mask.sum(-1) == 1
    assert only_self[0].any() and not only_self[0].all()  # rows with no allowed key but themselves
    T = n * h * w
    assert not mask[1].view(n, T // n, n, T // n)[[1, 3], :, [3, 1]].any()  # coincident pair: not attended
    ref = masked_attention_dense(q, k, v, mask)
    out = attend(path, q, k, v, F_hat, degenerate, h, w, bw, max_chunk_bytes=200_000)
    assert out.shape == ref.shape and out.dtype == dtype
    assert (out - ref).abs().max() < tol
    assert (out.transpose(1, 2)[only_self] - v.transpose(1, 2)[only_self]).abs().max() < tol


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("batch", [[0], [0, 2], [0, 1], [0, 1, 2, 1], [3, 1, 0, 1]])
def test_fast_path_equals_kernels(batch, dtype, tol):
    # batch: which camera set of _degenerate_case each sample has (set 2 equals set 0 by value). Equal sets
    # share one mask; SDPA then runs broadcast, with one mask per sample, or once per distinct mask.
    n, h, w, H, D, bw = 4, 6, 9, 2, 8, 2.0
    K, c2w = _degenerate_case(4, n, h, w)
    F_hat, degenerate = pair_geometry(K[batch], c2w[batch])
    shared = build_shared_mask(F_hat, degenerate, h, w, bw)
    assert shared.masks.shape[0] == len({0 if b == 2 else b for b in batch})
    assert len(shared.index) == len(batch)
    q, k, v = _inputs(len(batch), H, n * h * w, D, dtype, seed=8)
    fast = shared_mask_attention(q, k, v, shared)
    for method in METHODS:
        exact = epipolar_attention(q, k, v, F_hat, degenerate, h, w, bw, method, 100_000)
        assert (fast - exact).abs().max() < tol, method


@pytest.mark.parametrize("path", PATHS)
def test_gradients_equal_dense_reference(path):
    B, n, h, w, H, D, bw = 2, 3, 4, 5, 2, 4, 1.5
    K, c2w = make_cameras(B, n, h, w, seed=4)
    c2w = with_degenerate_pair(c2w, b=1, i=0, j=2)
    F_hat, degenerate = pair_geometry(K, c2w)
    mask = epipolar_mask_dense(F_hat, degenerate, h, w, bw)
    grads = []
    for fn in (lambda q, k, v: masked_attention_dense(q, k, v, mask),
               lambda q, k, v: attend(path, q, k, v, F_hat, degenerate, h, w, bw, 5_000)):
        qkv = [t.requires_grad_() for t in _inputs(B, H, n * h * w, D, torch.float64, seed=5)]
        (fn(*qkv) * torch.linspace(-1, 1, D, dtype=torch.float64)).sum().backward()
        grads.append([t.grad for t in qkv])
    for g_ref, g in zip(*grads):
        assert g_ref.abs().max() > 0 and (g - g_ref).abs().max() < 1e-12


@pytest.mark.parametrize("path", PATHS)
def test_degenerate_frames_attend_only_to_themselves(path):
    # every camera shares one centre (pure rotations): no epipolar geometry, each token sees only itself
    B, n, h, w, H, D = 1, 3, 4, 6, 2, 4
    K, c2w = make_cameras(B, n, h, w)
    c2w = with_degenerate_pair(with_degenerate_pair(c2w, 0, 0, 1), 0, 0, 2)
    F_hat, degenerate = pair_geometry(K, c2w)
    assert degenerate.all() and F_hat.abs().max() == 0
    q, k, v = _inputs(B, H, n * h * w, D, torch.float64)
    out = attend(path, q, k, v, F_hat, degenerate, h, w, 3.0)
    assert torch.allclose(out, v, atol=1e-14)


def test_auto_method_choice_and_unknown_method():
    # gather scores 1 + 24 * 64 * 4 = 6145 keys per query at 25x40x64 (vs 64000); "auto" is the grouped
    # kernel at every size (measured fastest, benchmarks/README.md)
    assert window_size(2.0) == 4
    assert choose_method(25, 40, 64, 2.0) == "grouped" and choose_method(25, 24, 40, 2.0) == "grouped"
    K, c2w = make_cameras(1, 2, 3, 4)
    q, k, v = _inputs(1, 1, 24, 4, torch.float64)
    with pytest.raises(ValueError, match="method"):
        epipolar_attention(q, k, v, *pair_geometry(K, c2w), 3, 4, 2.0, method="sparse")


class MaxTensorBytes(TorchDispatchMode):
    """Records the largest tensor produced by any op while active."""

    def __init__(self):
        super().__init__()
        self.max_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.max_bytes = max(self.max_bytes, t.numel() * t.element_size())
        return out


@pytest.mark.parametrize("method", METHODS)
def test_no_dense_mask_at_moderate_size(method):
    B, n, h, w, H, D, budget = 1, 8, 16, 24, 2, 16, 4 * 2**20
    T = n * h * w  # 3072 tokens: a dense bool mask is 9.4 MB, dense float32 scores 75 MB
    K, c2w = make_cameras(B, n, h, w)
    F_hat, degenerate = pair_geometry(K, c2w)
    q, k, v = _inputs(B, H, T, D, torch.float32)
    with MaxTensorBytes() as rec:
        out = epipolar_attention(q, k, v, F_hat, degenerate, h, w, 2.0, method, max_chunk_bytes=budget)
    assert out.shape == q.shape
    assert rec.max_bytes <= budget
    assert rec.max_bytes * 2 < T * T  # below half of even the boolean dense mask


def test_rescale_K_maps_pixel_centres_consistently():
    K = intrinsics_matrix(20.0, 18.0, 16.0, 8.0)  # numpy in -> numpy out
    K = torch.as_tensor(K)
    K_half = rescale_K(K, (16, 32), (8, 16))
    assert torch.allclose(K_half, torch.tensor([[10.0, 0, 8], [0, 9, 4], [0, 0, 1]], dtype=K.dtype))
    X = torch.tensor([[0.3, -0.2, 2.0]], dtype=torch.float64)
    uv, _ = project_points(K, torch.eye(4, dtype=torch.float64), X)
    uv_half, _ = project_points(K_half, torch.eye(4, dtype=torch.float64), X)
    assert torch.allclose(uv_half, uv / 2)


@pytest.mark.parametrize("kind", ["epipolar", "full"])
def test_block_token_layout_matches_manual_attention(kind):
    B, n, C, h, w, heads = 2, 3, 16, 4, 5, 4
    torch.manual_seed(0)
    full = kind == "full"
    block = CrossFrameAttention(C, heads) if full else EpipolarAttention(C, heads, band_width=2.5)
    block = block.double()
    torch.nn.init.normal_(block.to_out.weight)
    K, c2w = make_cameras(B, n, h, w, seed=6)
    geometry = pair_geometry(K, c2w)
    hidden = torch.randn(B * n, C, h, w, dtype=torch.float64)
    got = block(hidden, n, geometry)
    x = block.norm(hidden.view(B, n, C, h * w).permute(0, 1, 3, 2).reshape(B, n * h * w, C))
    q, k, v = (f(x).view(B, -1, heads, C // heads).transpose(1, 2)
               for f in (block.to_q, block.to_k, block.to_v))
    if kind == "full":
        mask = torch.ones(B, n * h * w, n * h * w, dtype=torch.bool)
    else:
        mask = epipolar_mask_dense(*geometry, h, w, 2.5)
    scores = (q @ k.transpose(-1, -2) / math.sqrt(C // heads)).masked_fill(~mask[:, None], float("-inf"))
    o = block.to_out((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, -1, C))
    expected = o.view(B, n, h, w, C).permute(0, 1, 4, 2, 3).reshape(B * n, C, h, w)
    assert torch.allclose(got, expected, atol=1e-12)


# ----------------------------------------------------------------------------------- UNet attachment
@pytest.fixture(scope="module")
def tiny_unet():
    unet = tiny_spatiotemporal_unet()
    B, n, H, W = 1, 3, 12, 16
    g = torch.Generator().manual_seed(1)
    inputs = (torch.randn(B, n, 8, H, W, generator=g), torch.tensor([0.7]),
              torch.randn(B, 1, 32, generator=g), torch.randn(B, 3, generator=g))
    K, c2w = make_cameras(B, n, H, W, seed=7)
    return unet, inputs, K.float(), c2w.float()


@pytest.mark.parametrize("kind", ["epipolar", "full"])
def test_zero_init_leaves_unet_unchanged_and_gradients_flow(tiny_unet, kind):
    unet, inputs, K, c2w = tiny_unet
    with torch.no_grad():
        before = unet(*inputs).sample
    attach = {"epipolar": attach_epipolar_attention, "full": attach_full_attention}[kind]
    adapter = attach(unet, heads=4, **({"band_width": 2.0} if kind == "epipolar" else {}))
    try:
        assert sorted(adapter.blocks) == ["down_blocks_0_attentions_0", "mid_block_attentions_0",
                                          "up_blocks_1_attentions_0", "up_blocks_1_attentions_1"]
        adapter.set_cameras(K, c2w, num_frames=3)
        out = unet(*inputs).sample
        torch.testing.assert_close(out, before, rtol=0.0, atol=1e-6)  # zero-init output projection
        out.square().mean().backward()
        for name, p in adapter.named_parameters():
            if "to_out" in name:
                assert p.grad is not None and p.grad.abs().sum() > 0, name
        with torch.no_grad():  # once the projection is non-zero the block changes the output, q/k/v learn
            for blk in adapter.blocks.values():
                blk.to_out.weight.normal_(0, 0.2)
        unet.zero_grad()
        adapter.zero_grad()
        out = unet(*inputs).sample
        assert (out - before).abs().max() > 1e-4
        out.square().mean().backward()
        assert all(blk.to_q.weight.grad.abs().sum() > 0 for blk in adapter.blocks.values())
        adapter.clear()
    finally:
        adapter.detach()
        unet.zero_grad()
    with torch.no_grad():
        torch.testing.assert_close(unet(*inputs).sample, before, rtol=0.0, atol=1e-6)  # detached


def test_adapter_levels_cfg_batch_and_errors(tiny_unet):
    unet, inputs, K, c2w = tiny_unet
    assert no_attention(unet) is None
    with pytest.raises(ValueError, match="levels"):
        attach_epipolar_attention(unet, levels=[2])
    with pytest.raises(ValueError, match="divisible"):
        attach_full_attention(unet, heads=5)
    adapter = attach_epipolar_attention(unet, heads=4, levels=[1])
    try:
        assert list(adapter.blocks) == ["mid_block_attentions_0"]
        with torch.no_grad():
            adapter.blocks["mid_block_attentions_0"].to_out.weight.normal_()
            with pytest.raises(RuntimeError, match="set_cameras"):
                unet(*inputs)
            with pytest.raises(ValueError, match="set_cameras"):
                adapter.set_cameras(K, c2w[:, :2], num_frames=3)
            adapter.set_cameras(K, c2w, num_frames=3)
            single = unet(*inputs).sample
            # classifier-free guidance batch: two copies of the sample, cameras given once
            doubled = unet(*(torch.cat([t, t]) for t in inputs)).sample
            F_hat, _ = adapter._geometry(6, 8, 2, torch.device("cpu"))
            expected_F, _ = pair_geometry(rescale_K(K.double(), (12, 16), (6, 8)), c2w.double())
        assert torch.allclose(doubled, torch.cat([single, single]), atol=1e-5)
        expected = torch.cat([expected_F, expected_F]).to(F_hat.dtype)
        torch.testing.assert_close(F_hat, expected, rtol=1e-6, atol=1e-9)
    finally:
        adapter.detach()


def test_use_dense_mask_threshold():
    assert use_dense_mask(2, 3072, 2 * 3072**2) and not use_dense_mask(3, 3072, 2 * 3072**2)
    assert not use_dense_mask(1, 4, 0) and not use_dense_mask(1, 4, None)


def _run_unet(unet, inputs, adapter):
    """Output and adapter gradients of a forward + backward."""
    adapter.zero_grad()
    out = unet(*inputs).sample
    out.square().mean().backward()
    return out.detach(), {name: p.grad.clone() for name, p in adapter.named_parameters()}


def test_adapter_fast_path_equals_kernels_and_shares_masks(tiny_unet, monkeypatch):
    unet, inputs, K, c2w = tiny_unet
    built = []
    monkeypatch.setattr(attention_modules, "build_shared_mask",
                        lambda *a: built.append(a[2:4]) or build_shared_mask(*a))
    adapter = attach_epipolar_attention(unet, band_width=2.0, heads=4)
    try:
        with torch.no_grad():
            for blk in adapter.blocks.values():
                blk.to_out.weight.normal_(0, 0.2)
        doubled = [torch.cat([t, t]) for t in inputs]  # classifier-free guidance: [uncond; cond]
        twice = (torch.cat([K, K]), torch.cat([c2w, c2w]))
        for batch_inputs, cams in ((inputs, (K, c2w)), (doubled, twice)):
            adapter.set_cameras(*cams, num_frames=3)
            adapter.dense_mask_max_elements = 0
            ref, ref_grads = _run_unet(unet, batch_inputs, adapter)
            assert not built
            adapter.dense_mask_max_elements = 2**25
            out, grads = _run_unet(unet, batch_inputs, adapter)
            assert sorted(built) == [(6, 8), (12, 16)]  # one mask per token grid, shared by its blocks
            masks = [m for key, m in adapter._geometry_cache.items() if key[0] == "mask"]
            assert [m.masks.shape[0] for m in masks] == [1, 1]  # CFG halves share one mask
            assert (out - ref).abs().max() < 1e-5
            for name, g in grads.items():
                assert g.abs().max() > 0 and torch.allclose(g, ref_grads[name], rtol=1e-4, atol=1e-7), name
            adapter.clear()
            built.clear()
    finally:
        adapter.detach()
        unet.zero_grad()


def test_adapter_reuses_masks_while_camera_values_are_unchanged(tiny_unet, monkeypatch):
    unet, inputs, K, c2w = tiny_unet
    built = []
    monkeypatch.setattr(attention_modules, "build_shared_mask",
                        lambda *a: built.append(a[2:4]) or build_shared_mask(*a))
    adapter = attach_epipolar_attention(unet, band_width=2.0, heads=4, levels=[1])
    K, c2w = K.clone(), c2w.clone()
    try:
        with torch.no_grad():
            adapter.blocks["mid_block_attentions_0"].to_out.weight.normal_()
            for _ in range(2):  # a sampler: set_cameras / forward / clear, the same cameras every call
                adapter.set_cameras(K, c2w, num_frames=3)
                first = unet(*inputs).sample
                adapter.clear()
            adapter.set_cameras(K.clone(), c2w.clone(), num_frames=3)  # equal values, new tensors
            unet(*inputs)
            assert len(built) == 1
            c2w[0, 1, 0, 3] += 0.5  # same tensor object, edited in place: new values, new mask
            adapter.set_cameras(K, c2w, num_frames=3)
            moved = unet(*inputs).sample
            assert len(built) == 2 and (moved - first).abs().max() > 1e-4
            adapter.set_cameras(K, c2w.double(), num_frames=3)  # equal values, other dtype: not reused
            unet(*inputs)
            assert len(built) == 3
        with torch.inference_mode():  # inference tensors cannot be saved for backward: never reused outside
            adapter.set_cameras(K, c2w, num_frames=3)
            unet(*inputs)
            assert len(built) == 4
        adapter.set_cameras(K, c2w, num_frames=3)
        unet(*inputs).sample.sum().backward()
        assert len(built) == 5
        adapter.forget_cache()
        assert adapter._last_cameras is None
    finally:
        adapter.detach()
        unet.zero_grad()
