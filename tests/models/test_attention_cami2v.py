"""model/attention=epipolar_cami2v: CamI2V's epipolar mask rule and register tokens (issue 19).

The reference below is an independent implementation of CamI2V's rule, written from the conventions of its
released training code (``CameraControl/CamI2V/cami2v.py``, ``get_epipolar_mask`` and
``add_small_perturbation``, with its 256x256 config: 4 register tokens, ``add_small_perturbation_on_zero_T``):

1. Relative pose of the pair (query frame i, key frame j): c2w_j^-1 c2w_i = [R | t] (camera i -> camera j).
2. Where every |t_k| < 1e-6 (the frame itself; a pair with no baseline) t := 1e-6 * n, n ~ N(0, I).
3. Token (u, v) of a grid with d image pixels per token is at image pixel (u d + d/2 - 1/2, v d + d/2 - 1/2)
   (CamI2V's ``pix2coord``); intrinsics are the image's, the key frame's on both sides of F.
4. Key token r is attended by query p when its centre's distance to p's epipolar line, in image pixels, is
   strictly below d * sqrt(2) / 2; a vanished line attends to nothing.

Unlike the library (fundamental matrix, lines normalised, one matrix product for all distances), the
reference finds each line geometrically -- through the epipole K_j t and the image K_j R K_j^-1 x of the
query pixel's point at infinity -- with numpy loops, and measures distances by a cross product.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _unets import tiny_spatiotemporal_unet  # tests/models/_unets.py
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vid3d.config import CONFIG_DIR
from vid3d.geometry import intrinsics_matrix, look_at_c2w, rescale_K
from vid3d.models.attention import SharedMask, attach_epipolar_attention, shared_mask_attention
from vid3d.models.attention.cami2v import band_mask_cami2v, zero_translation_noise


def cami2v_reference(K_img, c2w, h, w, d, noise):
    """CamI2V's mask by the rule in the module docstring: (F h w, F h w) bool, and the entries whose distance
    lies within 1e-9 px of the band's edge (where two float orders could disagree)."""
    K_img, c2w, noise = (np.asarray(a, np.float64) for a in (K_img, c2w, noise))
    n, N = K_img.shape[0], h * w
    us, vs = np.meshgrid(np.arange(w), np.arange(h), indexing="xy")
    xy = np.stack([us * d + d / 2 - 0.5, vs * d + d / 2 - 0.5], -1).reshape(-1, 2)
    half = d * math.sqrt(2) / 2
    mask = np.zeros((n * N, n * N), bool)
    near = np.zeros_like(mask)
    for i in range(n):
        for j in range(n):
            rel = np.linalg.inv(c2w[j]) @ c2w[i]
            R, t = rel[:3, :3], rel[:3, 3]
            if np.all(np.abs(t) < 1e-6):
                t = 1e-6 * noise[i, j]
            e = K_img[j] @ t  # epipole (homogeneous)
            H_inf = K_img[j] @ R @ np.linalg.inv(K_img[j])
            for p in range(N):
                x_inf = H_inf @ np.array([xy[p, 0], xy[p, 1], 1.0])
                # the line through e and x_inf, as two affine points on it (both homogeneous, any w)
                line = np.cross(e, x_inf)
                if np.hypot(line[0], line[1]) == 0:
                    continue
                a, b, c = line / np.hypot(line[0], line[1])
                dist = np.abs(a * xy[:, 0] + b * xy[:, 1] + c)
                mask[i * N + p, j * N:(j + 1) * N] = dist < half
                near[i * N + p, j * N:(j + 1) * N] = np.abs(dist - half) < 1e-9
    return mask, near


def cameras(n: int, H: int, W: int, seed: int, duplicate: tuple[int, int] | None = None):
    """Cameras around (0, 0, -3) looking near the origin, image pixel intrinsics (H, W) with a focal length
    growing by 8% per frame; frame ``duplicate[1]`` copies frame ``duplicate[0]``'s pose (zero baseline)."""
    g = torch.Generator().manual_seed(seed)
    eyes = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.6 + torch.tensor([0.0, 0.0, -3.0])
    c2w = look_at_c2w(eyes, torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.3)
    if duplicate is not None:
        c2w[duplicate[1]] = c2w[duplicate[0]]
    full = lambda v: torch.full((n,), float(v), dtype=torch.float64)  # noqa: E731
    zoom = 1 + 0.08 * torch.arange(n, dtype=torch.float64)  # per-frame focal: F uses the key frame's K twice
    K = intrinsics_matrix(1.1 * W * zoom, 1.15 * W * zoom, full(W / 2 + 3.0), full(H / 2 - 2.0))
    return K, c2w


@pytest.mark.parametrize(("n", "h", "w", "d", "seed", "duplicate"), [
    (3, 4, 6, 8, 0, None),  # latent level 0 of a 32x48 image
    (4, 3, 5, 16, 1, (0, 2)),  # level 1, with a zero-baseline pair
    (2, 5, 4, 32, 2, None),  # level 2, portrait
])
def test_mask_equals_independent_cami2v_rule(n, h, w, d, seed, duplicate):
    K, c2w = cameras(n, h * d, w * d, seed, duplicate)
    noise = zero_translation_noise(1, n, generator=torch.Generator().manual_seed(seed))
    got = band_mask_cami2v(K[None], c2w[None], h, w, d, noise)[0].numpy()
    ref, near = cami2v_reference(K, c2w, h, w, d, noise[0])
    assert not near.any()  # no entry on the band's edge, so identity is the right test
    assert np.array_equal(got, ref), f"{int((got != ref).sum())} of {got.size} entries differ"
    N = h * w
    # the rule's visible consequences: own-frame attention along a line through the query itself (so every
    # row attends to at least itself), more than the query alone, and a band that is neither empty nor full
    own = np.stack([got[i * N:(i + 1) * N, i * N:(i + 1) * N] for i in range(n)])
    assert own[:, np.arange(N), np.arange(N)].all()
    assert own.sum(-1).max() > 1
    assert 0.05 < got.mean() < 0.8


def test_zero_translation_draw_changes_only_self_and_no_baseline_blocks():
    """Two draws of the perturbation: blocks of pairs with a baseline are unchanged; own-frame blocks
    (random lines) differ."""
    n, h, w, d = 3, 4, 6, 8
    K, c2w = cameras(n, h * d, w * d, 3)
    m1, m2 = (band_mask_cami2v(K[None], c2w[None], h, w, d,
                               zero_translation_noise(1, n, generator=torch.Generator().manual_seed(s)))[0]
              for s in (0, 1))
    N = h * w
    blocks = lambda m, i, j: m[i * N:(i + 1) * N, j * N:(j + 1) * N]  # noqa: E731
    assert all(torch.equal(blocks(m1, i, j), blocks(m2, i, j)) for i in range(n) for j in range(n) if i != j)
    assert any(not torch.equal(blocks(m1, i, i), blocks(m2, i, i)) for i in range(n))


def test_registers_are_attended_by_every_query():
    """shared_mask_attention with R register keys equals SDPA over [registers; keys] with the mask padded
    by R always-attended columns -- also for a query whose mask row is empty."""
    g = torch.Generator().manual_seed(0)
    B, Hh, T, D, R = 2, 2, 6, 4, 3
    q = torch.randn(B, Hh, T, D, generator=g, dtype=torch.float64)
    k = torch.randn(B, Hh, R + T, D, generator=g, dtype=torch.float64)
    v = torch.randn(B, Hh, R + T, D, generator=g, dtype=torch.float64)
    masks = torch.rand(B, T, T, generator=g) < 0.5
    masks[0, 0] = False  # an empty row: only the registers
    got = shared_mask_attention(q, k, v, SharedMask(masks, (0, 1)), registers=R)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    full_mask = torch.cat([torch.ones(B, T, R, dtype=torch.bool), masks], -1)
    expected = scores.masked_fill(~full_mask[:, None], float("-inf")).softmax(-1) @ v
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_adapter_uses_cami2v_mask_at_every_level():
    """The adapter's cached masks at each grid of a tiny UNet are band_mask_cami2v's for the image-pixel
    intrinsics, with one zero-translation draw shared by the levels."""
    unet = tiny_spatiotemporal_unet(attention_at_both_levels=True)
    n, lat_h, lat_w, f = 3, 8, 12, 4
    K_img, c2w = cameras(n, lat_h * f, lat_w * f, 5)
    adapter = attach_epipolar_attention(unet, heads=2, mask_rule="cami2v", registers=4)
    adapter.image_per_latent = f
    try:
        K_lat = rescale_K(K_img, (lat_h * f, lat_w * f), (lat_h, lat_w))
        adapter.set_cameras(K_lat[None].float(), c2w[None].float(), n)
        inputs = (torch.randn(1, n, 8, lat_h, lat_w), torch.tensor([0.7]), torch.randn(1, 1, 32),
                  torch.randn(1, 3))
        with torch.no_grad():
            unet(*inputs)
        cache = adapter._geometry_cache
        grids = sorted({k[1:3] for k in cache if isinstance(k, tuple) and k[0] == "cami2v"})
        assert grids == [(4, 6), (8, 12)]
        for h, w in grids:
            mask = cache[("cami2v", h, w, 1, (lat_h, lat_w), "cpu")]
            expected = band_mask_cami2v(K_img[None], c2w[None].float().double(), h, w, lat_h * f // h,
                                        cache["cami2v_noise"])
            assert mask.index == (0,) and torch.equal(mask.masks, expected)
    finally:
        adapter.detach()
    with pytest.raises(ValueError, match="mask_rule"):
        attach_epipolar_attention(unet, mask_rule="camera")


def test_epipolar_cami2v_config_trains():
    """model=epipolar model/attention=epipolar_cami2v as a user composes it: the adapter follows CamI2V's
    rule with 4 register tokens, and a few Adam steps under the paper's freeze policy move its weights
    (register tokens included) and keep the loss finite."""
    from vid3d.models.freeze import apply_freeze_policy

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=epipolar", "model/attention=epipolar_cami2v"])
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    adapter = model.attention_adapter
    assert adapter.mask_rule == "cami2v" and adapter.image_per_latent == model.downscale
    blocks = list(adapter.blocks.values())
    assert blocks and all(b.register_tokens.shape == (1, 4, b.dim) for b in blocks)
    groups = apply_freeze_policy(model, ["camera_encoder", "epipolar", "temporal"])
    assert any(".register_tokens" in name for name in groups["epipolar"])
    params = [p for p in model.parameters() if p.requires_grad]
    before = {name: p.detach().clone() for name, p in adapter.named_parameters()}
    opt = torch.optim.Adam(params, lr=1e-3)
    F, H, W = 3, 32, 48
    K = torch.tensor([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]).expand(2, F, 3, 3).clone()
    eyes = torch.tensor([[0.3 * i, 0.05 * i, -2.0] for i in range(F)], dtype=torch.float64)
    c2w = look_at_c2w(eyes, torch.zeros(F, 3, dtype=torch.float64)).float().expand(2, F, 4, 4).clone()
    g = torch.Generator().manual_seed(0)
    batch = {"frames": torch.rand(2, F, 3, H, W, generator=g) * 2 - 1, "K_px": K, "c2w": c2w}
    for _ in range(3):
        loss, _ = model.training_loss(batch, generator=g)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    moved = {name for name, p in adapter.named_parameters() if not torch.equal(p, before[name])}
    assert any(name.endswith("to_out.weight") for name in moved)
    assert any(name.endswith("register_tokens") for name in moved)
