"""vid3d's projection (``render_torch.project``) against gsplat's own pure-torch reference at an off-centre
principal point: ``python -m benchmarks.render_reference`` where ``gsplat.cuda._torch_impl`` imports.

The scene: 400 random Gaussians (random rotations and scales) in and around a 64×48 camera with
cx, cy = (0.3 W, 0.7 H), a third of them beyond the clamp limits on some side. Prints the largest
difference of the projected means (px), the conics (relative) and the box half-sides (px) in float64, and
the same for graphdeco's symmetric clamp (what vid3d did before), so the effect of the rule is visible.
Writes ``benchmarks/results/render_reference.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from vid3d.atomic import atomic_write_json
from vid3d.reconstruction.gaussians import Gaussians, covariances
from vid3d.reconstruction.render_torch import _conic_and_radius, project

ROOT = Path(__file__).resolve().parent.parent


def scene(n: int = 400, seed: int = 0) -> tuple[Gaussians, torch.Tensor, int, int]:
    gen = torch.Generator().manual_seed(seed)
    W, H = 64, 48
    K = torch.tensor([[50.0, 0, 0.3 * W], [0, 48.0, 0.7 * H], [0, 0, 1]], dtype=torch.float64)
    z = 1.0 + 4.0 * torch.rand(n, generator=gen, dtype=torch.float64)
    u = -0.8 * W + 2.6 * W * torch.rand(n, generator=gen, dtype=torch.float64)
    v = -0.8 * H + 2.6 * H * torch.rand(n, generator=gen, dtype=torch.float64)
    means = torch.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1)
    g = Gaussians(
        means=means, quats=torch.randn(n, 4, generator=gen, dtype=torch.float64),
        log_scales=(0.02 + 0.3 * torch.rand(n, 3, generator=gen, dtype=torch.float64)).log(),
        opacity_logits=torch.zeros(n, dtype=torch.float64), sh0=torch.zeros(n, 3, dtype=torch.float64),
    )
    return g, K, W, H


def main() -> int:
    try:
        from gsplat.cuda._torch_impl import _fully_fused_projection
    except Exception as e:  # no gsplat, or its package import failed (it builds its CUDA extension)
        print(f"error: gsplat's gsplat.cuda._torch_impl does not import here ({type(e).__name__}: "
              f"{str(e).splitlines()[0] if str(e) else ''}); benchmarks/README.md says how it was measured",
              file=sys.stderr)
        return 2

    g, K, W, H = scene()
    mean2d, cov2d, _ = project(g, K, torch.eye(4, dtype=torch.float64), 0.3, 0.01, W, H)
    conic, radius = _conic_and_radius(cov2d)
    radii, m_ref, _, conic_ref, _ = _fully_fused_projection(
        g.means, covariances(g), torch.eye(4, dtype=torch.float64)[None], K[None], W, H, eps2d=0.3)
    inside = (radii[0] > 0).all(-1)  # gsplat zeroes the boxes of Gaussians that miss the image
    rel = ((conic - conic_ref[0]).abs() / conic_ref[0].abs().clamp_min(1e-12))[inside]
    # graphdeco's symmetric rule, for scale: x/z clamped to +-1.3 W / (2 fx) whatever cx
    lim = torch.tensor([1.3 * 0.5 * W / K[0, 0], 1.3 * 0.5 * H / K[1, 1]], dtype=torch.float64)
    p = g.means
    xy = p[:, :2] / p[:, 2:]
    x, y = xy.clamp(-lim, lim).unbind(-1)
    z = p[:, 2]
    fx, fy = K[0, 0], K[1, 1]
    zero = torch.zeros_like(z)
    J = torch.stack([torch.stack([fx / z, zero, -fx * x / z], -1),
                     torch.stack([zero, fy / z, -fy * y / z], -1)], -2)
    cov_sym = J @ covariances(g) @ J.transpose(-1, -2) + 0.3 * torch.eye(2, dtype=torch.float64)
    conic_sym, _ = _conic_and_radius(cov_sym)
    rel_sym = ((conic_sym - conic_ref[0]).abs() / conic_ref[0].abs().clamp_min(1e-12))[inside]
    out = {
        "gaussians": len(g), "in_image": int(inside.sum()), "size": [W, H], "K": K.tolist(),
        "max_abs_mean2d_px": float((mean2d - m_ref[0])[inside].abs().max()),
        "max_rel_conic": float(rel.max()),
        "max_abs_box_px": float((radius - radii[0].to(radius))[inside].abs().max()),
        "symmetric_clamp_max_rel_conic": float(rel_sym.max()),
    }
    print(json.dumps(out, indent=1))
    atomic_write_json(ROOT / "benchmarks" / "results" / "render_reference.json", out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
