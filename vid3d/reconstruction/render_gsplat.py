"""``render_torch.render``'s call on gsplat's CUDA rasteriser (``pip install gsplat``; a CUDA device).

Same parameterisation and conventions (OpenCV c2w, pixel K_px, eps2d 0.3 "classic" dilation, colours
= 0.5 + C0 sh0 clamped at 0, black background by default), so the two renderers are interchangeable in
``fit.fit_gaussians`` and compared side by side by ``benchmarks/recon.py`` where a GPU is there.
"""

from __future__ import annotations

from typing import Any

import torch

from .gaussians import Gaussians


def _gsplat():
    try:
        import gsplat
    except ImportError as e:
        raise ImportError("renderer=gsplat needs the gsplat package (pip install gsplat) and a CUDA device; "
                          "renderer=torch runs anywhere") from e
    return gsplat


def render(
    g: Gaussians,
    K_px: torch.Tensor,
    c2w: torch.Tensor,
    height: int,
    width: int,
    background: torch.Tensor | None = None,
    near: float = 0.01,
    eps2d: float = 0.3,
) -> dict[str, Any]:
    """As ``render_torch.render`` (image (H, W, 3), alpha (H, W), depth (H, W) alpha-weighted, not
    normalised), plus gsplat's ``info`` (what its densification strategy reads)."""
    gsplat = _gsplat()
    dtype, device = g.means.dtype, g.means.device
    viewmat = torch.linalg.inv(c2w.to(dtype=dtype, device=device))[None]
    bg = torch.zeros(3, dtype=dtype, device=device) if background is None else background.to(dtype=dtype,
                                                                                               device=device)
    out, alphas, info = gsplat.rasterization(
        g.means, g.quats, g.scales, g.opacities, g.colors.clamp_min(0.0), viewmat,
        K_px.to(dtype=dtype, device=device)[None], width, height, near_plane=near, eps2d=eps2d,
        backgrounds=torch.cat([bg, bg.new_zeros(1)])[None], render_mode="RGB+D", packed=False,
        rasterize_mode="classic",
    )
    return {"image": out[0, ..., :3], "depth": out[0, ..., 3], "alpha": alphas[0, ..., 0], "info": info}


def default_strategy(params: dict, optimizers: dict, scene_scale: float):
    """gsplat's ``DefaultStrategy`` (3DGS's clone / split / prune / opacity reset) on ``params`` named as
    gsplat expects (means, scales as log, quats, opacities as logits, sh0). Returns (strategy, state)."""
    gsplat = _gsplat()
    strategy = gsplat.DefaultStrategy(verbose=False)
    strategy.check_sanity(params, optimizers)
    return strategy, strategy.initialize_state(scene_scale=scene_scale)
