"""A differentiable renderer of 3D Gaussians in plain PyTorch (CPU or any device), for small images.

The image formation of 3D Gaussian Splatting (Kerbl et al. 2023) with gsplat's rules (its ``classic``
mode), written from the equations: each Gaussian's covariance is carried to the image by the local affine
(EWA) approximation of the perspective projection, Sigma_2D = J W Sigma W^T J^T + eps2d I (eps2d = 0.3
px^2, the low-pass dilation), where J is evaluated at the camera-space mean with x/z clamped per side to
[-(cx/fx + 0.3 tan_fovx), (W - cx)/fx + 0.3 tan_fovx], tan_fovx = W / (2 fx) (y likewise), as gsplat
does, so an off-centre principal point is handled as there (graphdeco's +-1.3 tan_fovx assumes cx = W/2;
the two agree when it is). The Gaussians are alpha-composited front to back: alpha_i = min(0.99, o_i
exp(-d^T Sigma_2D^-1 d / 2)), skipped where under 1/255 (or where the exponent is positive), C = sum_i c_i
alpha_i T_i + T bg, T_i = prod_{j<i} (1 - alpha_j); a pixel stops, exclusive, at the first Gaussian that
would bring T to <= 1e-4 (gsplat's TRANSMITTANCE_THRESHOLD). Depth order is by camera z of the mean.

Checked against an independent per-pixel loop of these equations at an off-centre principal point
(tests/reconstruction/test_render_reference.py) and, for the projection, against gsplat's own pure-torch
reference (``_fully_fused_projection``; ``benchmarks/render_reference.py``, figures in benchmarks/README.md).

Work is split into tiles; a tile composites only the Gaussians whose box (gsplat's ceil(3.33 sigma) per
axis, which drops nothing: outside it alpha < 1/255) touches it, so memory is
O(tile pixels x Gaussians per tile). Fine for the tests' and the CPU demo's sizes (<= 256 x 256, a few
thousand Gaussians); real runs use gsplat (``render_gsplat``).
"""

from __future__ import annotations

import torch

from .gaussians import Gaussians, covariances

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4  # gsplat's TRANSMITTANCE_THRESHOLD: a pixel is done before T would reach it


def clamp_limits(K_px: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, ...]:
    """gsplat's per-side limits of x/z and y/z for the projection's Jacobian: (x_neg, x_pos, y_neg, y_pos),
    x/z clamped to [-x_neg, x_pos]; x_pos = (W - cx)/fx + 0.3 tan_fovx, x_neg = cx/fx + 0.3 tan_fovx,
    tan_fovx = W / (2 fx) (likewise y). With cx = W/2 both are 1.3 tan_fovx, graphdeco's rule."""
    fx, fy, cx, cy = K_px[0, 0], K_px[1, 1], K_px[0, 2], K_px[1, 2]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    return cx / fx + 0.3 * tan_x, (width - cx) / fx + 0.3 * tan_x, cy / fy + 0.3 * tan_y, \
        (height - cy) / fy + 0.3 * tan_y


def project(
    g: Gaussians, K_px: torch.Tensor, w2c: torch.Tensor, eps2d: float = 0.3, near: float = 0.01,
    width: int | None = None, height: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Means, covariances and depths of ``g`` in the image of one camera.

    K_px (3, 3) pixel intrinsics; w2c (4, 4) OpenCV world-to-camera. With width/height, the Jacobian's
    x/z and y/z are clamped per side to ``clamp_limits`` (gsplat's rule, so Gaussians far outside the image
    do not blow up). Returns mean2d (N, 2) pixel coordinates (x, y), cov2d (N, 2, 2) px^2, depth (N,) camera
    z (Gaussians with z <= near are the caller's to drop)."""
    R, t = w2c[:3, :3], w2c[:3, 3]
    p = g.means @ R.T + t
    z = p[:, 2].clamp_min(near)
    fx, fy, cx, cy = K_px[0, 0], K_px[1, 1], K_px[0, 2], K_px[1, 2]
    x, y = p[:, 0] / z, p[:, 1] / z
    mean2d = torch.stack([fx * x + cx, fy * y + cy], -1)
    if width is not None and height is not None:
        x_neg, x_pos, y_neg, y_pos = clamp_limits(K_px, width, height)
        x, y = torch.clamp(x, -x_neg, x_pos), torch.clamp(y, -y_neg, y_pos)
    zero = torch.zeros_like(z)
    J = torch.stack(
        [torch.stack([fx / z, zero, -fx * x / z], -1), torch.stack([zero, fy / z, -fy * y / z], -1)], -2
    )  # (N, 2, 3): d(pixel)/d(camera point), with x, y already divided by z once
    cov_cam = R @ covariances(g) @ R.T
    cov2d = J @ cov_cam @ J.transpose(-1, -2)
    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    return mean2d, cov2d, p[:, 2]


def _conic_and_radius(cov2d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Conic (N, 3) = the inverse covariance's (A, B, C) and the half-sides (N, 2) of gsplat's box,
    ceil(3.33 sqrt(Sigma_xx)), ceil(3.33 sqrt(Sigma_yy)). Lossless: outside it d^T Sigma^-1 d >= dx^2 /
    Sigma_xx > 3.33^2, so alpha < exp(-5.54) < 1/255 and the pixel skips that Gaussian anyway."""
    a, b, c = cov2d[:, 0, 0], cov2d[:, 0, 1], cov2d[:, 1, 1]
    det = a * c - b * b
    conic = torch.stack([c / det, -b / det, a / det], -1)  # inverse covariance (A, B, C)
    return conic, torch.ceil(3.33 * torch.sqrt(torch.stack([a, c], -1)))


# elements of one (tiles, Gaussians per tile, pixels per tile) block of the batched compositing; bounds its
# memory (about a dozen such float tensors are kept for backward)
MAX_BLOCK_ELEMENTS = 4 * 2**20


def render(
    g: Gaussians,
    K_px: torch.Tensor,
    c2w: torch.Tensor,
    height: int,
    width: int,
    background: torch.Tensor | None = None,
    tile: int = 16,
    near: float = 0.01,
    eps2d: float = 0.3,
) -> dict[str, torch.Tensor]:
    """Render ``g`` from one camera: K_px (3, 3) pixel intrinsics at (height, width), c2w (4, 4) OpenCV
    camera-to-world. background (3,) in [0, 1] (default black). Returns {"image": (H, W, 3), "alpha":
    (H, W) accumulated opacity 1 - T_N, "depth": (H, W) alpha-weighted camera z (not normalised by alpha)},
    differentiable with respect to every tensor of ``g``.

    The tiles are composited together, as one batch of (tiles, Gaussians per tile padded to the largest
    count, pixels), in blocks of at most ``MAX_BLOCK_ELEMENTS``: the arithmetic of ``render_tile_loop`` (one
    tile at a time in Python), with padding that composites as nothing (alpha 0), so the two agree to float
    rounding of the sums (tests/reconstruction/test_render_torch.py)."""
    dtype, device = g.means.dtype, g.means.device
    K_px, c2w = K_px.to(dtype=dtype, device=device), c2w.to(dtype=dtype, device=device)
    bg = torch.zeros(3, dtype=dtype, device=device) if background is None else background.to(dtype=dtype,
                                                                                               device=device)
    mean2d, cov2d, depth = project(g, K_px, torch.linalg.inv(c2w), eps2d, near, width, height)
    conic, radius = _conic_and_radius(cov2d)
    with torch.no_grad():
        keep = (depth > near) & (mean2d[:, 0] + radius[:, 0] > 0) & (mean2d[:, 0] - radius[:, 0] < width)
        keep &= (mean2d[:, 1] + radius[:, 1] > 0) & (mean2d[:, 1] - radius[:, 1] < height)
        idx = torch.nonzero(keep).squeeze(1)
        idx = idx[torch.argsort(depth[idx], stable=True)]
        lo, hi = mean2d[idx] - radius[idx], mean2d[idx] + radius[idx]
        ty, tx = -(-height // tile), -(-width // tile)
        x0 = (torch.arange(tx, device=device) * tile).repeat(ty)  # (T,) tile origins, row-major
        y0 = (torch.arange(ty, device=device) * tile).repeat_interleave(tx)
        x1, y1 = (x0 + tile).clamp_max(width), (y0 + tile).clamp_max(height)
        hit = (hi[None, :, 0] > x0[:, None]) & (lo[None, :, 0] < x1[:, None])
        hit &= (hi[None, :, 1] > y0[:, None]) & (lo[None, :, 1] < y1[:, None])  # (T, n), depth order
        n_max = int(hit.sum(1).max()) if hit.numel() else 0
        # each tile's hits first, in depth order (a stable sort of "not hit")
        pos = torch.argsort((~hit).to(torch.uint8), dim=1, stable=True)[:, :n_max]
        valid = torch.gather(hit, 1, pos)  # (T, n_max)
        sel = idx[pos]
        ly, lx = torch.meshgrid(torch.arange(tile, device=device), torch.arange(tile, device=device),
                                indexing="ij")
        px = (x0[:, None] + lx.reshape(1, -1)).to(dtype) + 0.5  # (T, P) pixel centres, P = tile^2
        py = (y0[:, None] + ly.reshape(1, -1)).to(dtype) + 0.5
    colors = g.colors.clamp_min(0.0)
    opac = g.opacities
    T, P = x0.numel(), tile * tile
    if n_max == 0:
        img = bg.expand(T, P, 3)
        acc = torch.zeros(T, P, dtype=dtype, device=device)
        dep = torch.zeros(T, P, dtype=dtype, device=device)
    else:
        step = max(1, MAX_BLOCK_ELEMENTS // (n_max * P))
        parts = [_composite(px[a:a + step], py[a:a + step], sel[a:a + step], valid[a:a + step], mean2d,
                            conic, opac, colors, depth, bg) for a in range(0, T, step)]
        img, acc, dep = (torch.cat(t, 0) for t in zip(*parts))

    def image(t: torch.Tensor) -> torch.Tensor:  # (T, P, ...) -> (H, W, ...)
        rest = t.shape[2:]
        t = t.reshape(ty, tx, tile, tile, *rest).transpose(1, 2).reshape(ty * tile, tx * tile, *rest)
        return t[:height, :width]

    return {"image": image(img), "alpha": image(acc), "depth": image(dep)}


def _composite(px, py, sel, valid, mean2d, conic, opac, colors, depth, bg):
    """Front-to-back compositing of a block of tiles: px, py (t, P) pixel centres, sel/valid (t, n) the
    tiles' Gaussians in depth order (padding: valid False). Returns image (t, P, 3), alpha, depth (t, P)."""
    dx = px[:, None, :] - mean2d[sel, 0][..., None]  # (t, n, P)
    dy = py[:, None, :] - mean2d[sel, 1][..., None]
    A, B, C = (conic[sel, k][..., None] for k in range(3))
    power = -0.5 * (A * dx * dx + C * dy * dy) - B * dx * dy
    alpha = (opac[sel][..., None] * torch.exp(power.clamp_max(0.0))).clamp_max(ALPHA_MAX)
    keep = valid[..., None] & (alpha >= ALPHA_MIN) & (power <= 0)
    alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
    with torch.no_grad():
        done = torch.cumprod(1.0 - alpha, 1) <= T_MIN
    alpha = torch.where(done, torch.zeros_like(alpha), alpha)
    one_minus = 1.0 - alpha
    T = torch.cumprod(torch.cat([torch.ones_like(one_minus[:, :1]), one_minus[:, :-1]], 1), 1)
    w = alpha * T
    last = T[:, -1] * one_minus[:, -1]  # (t, P) transmittance after every Gaussian
    img = torch.einsum("tnp,tnc->tpc", w, colors[sel]) + last[..., None] * bg
    dep = torch.einsum("tnp,tn->tp", w, depth[sel])
    return img, 1.0 - last, dep


def render_tile_loop(
    g: Gaussians,
    K_px: torch.Tensor,
    c2w: torch.Tensor,
    height: int,
    width: int,
    background: torch.Tensor | None = None,
    tile: int = 16,
    near: float = 0.01,
    eps2d: float = 0.3,
) -> dict[str, torch.Tensor]:
    """``render`` one tile at a time in a Python loop (the reference the batched compositing is checked and
    timed against: tests/reconstruction/test_render_torch.py, benchmarks/recon_steps.py)."""
    dtype, device = g.means.dtype, g.means.device
    K_px, c2w = K_px.to(dtype=dtype, device=device), c2w.to(dtype=dtype, device=device)
    bg = torch.zeros(3, dtype=dtype, device=device) if background is None else background.to(dtype=dtype,
                                                                                               device=device)
    mean2d, cov2d, depth = project(g, K_px, torch.linalg.inv(c2w), eps2d, near, width, height)
    conic, radius = _conic_and_radius(cov2d)
    with torch.no_grad():
        keep = (depth > near) & (mean2d[:, 0] + radius[:, 0] > 0) & (mean2d[:, 0] - radius[:, 0] < width)
        keep &= (mean2d[:, 1] + radius[:, 1] > 0) & (mean2d[:, 1] - radius[:, 1] < height)
        idx = torch.nonzero(keep).squeeze(1)
        idx = idx[torch.argsort(depth[idx], stable=True)]
        lo, hi = mean2d[idx] - radius[idx], mean2d[idx] + radius[idx]
    colors = g.colors.clamp_min(0.0)
    opac = g.opacities
    rows_img, rows_alpha, rows_depth = [], [], []
    for y0 in range(0, height, tile):
        y1 = min(y0 + tile, height)
        tiles_img, tiles_alpha, tiles_depth = [], [], []
        for x0 in range(0, width, tile):
            x1 = min(x0 + tile, width)
            with torch.no_grad():
                hit = (hi[:, 0] > x0) & (lo[:, 0] < x1) & (hi[:, 1] > y0) & (lo[:, 1] < y1)
                sel = idx[hit]
            ys = torch.arange(y0, y1, dtype=dtype, device=device) + 0.5
            xs = torch.arange(x0, x1, dtype=dtype, device=device) + 0.5
            py, px = torch.meshgrid(ys, xs, indexing="ij")
            if len(sel) == 0:
                tiles_img.append(bg.expand(y1 - y0, x1 - x0, 3))
                tiles_alpha.append(torch.zeros(y1 - y0, x1 - x0, dtype=dtype, device=device))
                tiles_depth.append(torch.zeros(y1 - y0, x1 - x0, dtype=dtype, device=device))
                continue
            dx = px.reshape(1, -1) - mean2d[sel, 0:1]
            dy = py.reshape(1, -1) - mean2d[sel, 1:2]
            A, B, C = conic[sel, 0:1], conic[sel, 1:2], conic[sel, 2:3]
            power = -0.5 * (A * dx * dx + C * dy * dy) - B * dx * dy
            alpha = (opac[sel, None] * torch.exp(power.clamp_max(0.0))).clamp_max(ALPHA_MAX)
            alpha = torch.where((alpha >= ALPHA_MIN) & (power <= 0), alpha, torch.zeros_like(alpha))
            # early stop: T after each Gaussian; from the first <= T_MIN on, none counts
            with torch.no_grad():
                done = torch.cumprod(1.0 - alpha, 0) <= T_MIN
            alpha = torch.where(done, torch.zeros_like(alpha), alpha)
            one_minus = 1.0 - alpha  # (n, P), front to back
            T = torch.cumprod(torch.cat([torch.ones_like(one_minus[:1]), one_minus[:-1]], 0), 0)
            w = alpha * T
            img = w.T @ colors[sel] + (T[-1] * one_minus[-1])[:, None] * bg
            acc = 1.0 - T[-1] * one_minus[-1]
            dep = w.T @ depth[sel]
            tiles_img.append(img.reshape(y1 - y0, x1 - x0, 3))
            tiles_alpha.append(acc.reshape(y1 - y0, x1 - x0))
            tiles_depth.append(dep.reshape(y1 - y0, x1 - x0))
        rows_img.append(torch.cat(tiles_img, 1))
        rows_alpha.append(torch.cat(tiles_alpha, 1))
        rows_depth.append(torch.cat(tiles_depth, 1))
    return {
        "image": torch.cat(rows_img, 0),
        "alpha": torch.cat(rows_alpha, 0),
        "depth": torch.cat(rows_depth, 0),
    }
