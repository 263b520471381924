"""The batched tile compositing of ``render_torch.render`` against the one-tile-at-a-time reference loop
(``render_tile_loop``): same image, alpha, depth and gradients to float64 rounding (1e-12), on a size that
is not a multiple of the tile (partial edge tiles), with empty tiles, in several memory blocks, and with no
Gaussian in view."""

from __future__ import annotations

import pytest
import torch

from vid3d.reconstruction import render_torch
from vid3d.reconstruction.gaussians import Gaussians, init_in_frustums

H, W = 37, 53


def _gaussians(n: int = 300) -> Gaussians:
    K = torch.tensor([[60.0, 0, 25.3], [0, 60.0, 19.1], [0, 0, 1]])
    c2w = torch.eye(4)[None].repeat(2, 1, 1)
    c2w[1, 0, 3] = 0.3
    g = init_in_frustums(K.expand(2, 3, 3), c2w, H, W, n, 1.0, 4.0, seed=1)
    left = g.means[:, 0] < -0.3 * g.means[:, 2]  # only the left part of the image is covered
    t = {k: v[left].double().clone() for k, v in g.tensors().items()}
    t["opacity_logits"] += 3.0
    return Gaussians(**{k: v.requires_grad_(True) for k, v in t.items()}), K.double()


def _run(fn, g, K, c2w):
    out = fn(g, K, c2w, H, W, background=torch.tensor([0.2, 0.3, 0.4], dtype=torch.float64), tile=8)
    loss = (out["image"] * torch.linspace(0, 1, 3, dtype=torch.float64)).sum() + out["depth"].sum() \
        + out["alpha"].sum()
    grads = torch.autograd.grad(loss, list(g.tensors().values()))
    return {k: v.detach() for k, v in out.items()}, grads


@pytest.mark.parametrize("block", [render_torch.MAX_BLOCK_ELEMENTS, 5000])
def test_batched_equals_tile_loop(monkeypatch, block):
    monkeypatch.setattr(render_torch, "MAX_BLOCK_ELEMENTS", block)  # 5000: one tile per block
    g, K = _gaussians()
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[0, 3] = 0.1
    want, want_g = _run(render_torch.render_tile_loop, g, K, c2w)
    got, got_g = _run(render_torch.render, g, K, c2w)
    for k in want:
        assert got[k].shape == want[k].shape
        assert torch.allclose(got[k], want[k], atol=1e-12, rtol=0), k
    assert want["alpha"].max() > 0.5 and (want["alpha"] == 0).any()  # covered and empty tiles both occur
    for a, b in zip(got_g, want_g):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)


def test_nothing_in_view_gives_the_background():
    g, K = _gaussians(20)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[2, 3] = 100.0  # every Gaussian behind the camera
    out = render_torch.render(g, K, c2w, H, W, background=torch.tensor([0.2, 0.3, 0.4], dtype=torch.float64),
                              tile=8)
    assert torch.equal(out["image"], torch.tensor([0.2, 0.3, 0.4], dtype=torch.float64).expand(H, W, 3))
    assert not out["alpha"].any() and not out["depth"].any()
