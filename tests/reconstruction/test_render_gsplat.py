"""gsplat's CUDA rasteriser against vid3d's PyTorch renderer on one scene, and the renderer=auto rule."""

import importlib.util

import pytest
import torch

from vid3d.reconstruction.fit import resolve_renderer
from vid3d.reconstruction.gaussians import Gaussians, rgb_to_sh0

HAVE_GSPLAT = torch.cuda.is_available() and importlib.util.find_spec("gsplat") is not None
needs_gsplat = pytest.mark.skipif(
    not HAVE_GSPLAT,
    reason="gsplat's rasteriser needs a CUDA device and the gsplat package (CPU machines and CI have "
    "neither; the PyTorch renderer is tested against closed forms in test_render_torch.py)",
)


def scene(n=200, device="cpu"):
    gen = torch.Generator().manual_seed(0)
    means = torch.rand(n, 3, generator=gen) * torch.tensor([2.0, 1.5, 3.0]) - torch.tensor([1.0, 0.75, -2.0])
    return Gaussians(
        means=means, quats=torch.randn(n, 4, generator=gen),
        log_scales=torch.rand(n, 3, generator=gen) * 1.5 - 3.5,
        opacity_logits=torch.randn(n, generator=gen), sh0=rgb_to_sh0(torch.rand(n, 3, generator=gen)),
    ).to(device)


def test_auto_renderer_rule():
    assert resolve_renderer("auto") == ("gsplat" if HAVE_GSPLAT else "torch")
    assert resolve_renderer("torch") == "torch"
    with pytest.raises(ValueError, match="renderer must be"):
        resolve_renderer("cuda")


@needs_gsplat
def test_gsplat_and_torch_renderers_agree_on_image_and_gradients():
    from vid3d.reconstruction.render_gsplat import render as render_gsplat
    from vid3d.reconstruction.render_torch import render as render_torch

    K = torch.tensor([[60.0, 0, 21.5], [0, 60.0, 30.2], [0, 0, 1]], device="cuda")  # off-centre (32, 24)
    c2w = torch.eye(4, device="cuda")
    outs, grads = [], []
    for render in (render_torch, render_gsplat):
        g = scene(device="cuda")
        for t in g.tensors().values():
            t.requires_grad_(True)
        img = render(g, K, c2w, 48, 64)["image"]
        img.square().sum().backward()
        outs.append(img.detach())
        grads.append(torch.cat([t.grad.flatten() for t in g.tensors().values()]))
    # same clamp and early stop as gsplat: float32 round-off only
    assert (outs[0] - outs[1]).abs().max() < 1e-4
    cos = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cos > 0.99
