"""Initial Gaussians from the geometry of two posed views: matched, triangulated points (the 3DGS recipe of
starting from SfM points, with the cameras known instead of estimated). Matches are dense: each pixel of one
view searched along its epipolar line in the other (ZNCC of patches, a plane sweep), kept where the sweep
the other way agrees; SIFT keypoints found only tens of matches on the 64-128 px synthetic views.

Pixel convention (vid3d's, as the renderer's): a pixel (u, v) covers [u, u + 1) x [v, v + 1), its centre is
(u + 0.5, v + 0.5), and a camera point p lands at K_px p / p_z. Cameras: K_px (3, 3) pixel intrinsics, c2w
(4, 4) OpenCV camera-to-world.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .gaussians import Gaussians, init_in_frustums, inverse_sigmoid, rgb_to_sh0


def projection_matrix(K_px: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """P (3, 4) = K [R | t] of the world-to-camera inverse of ``c2w``."""
    return np.asarray(K_px, np.float64) @ np.linalg.inv(np.asarray(c2w, np.float64))[:3]


def triangulate(P1: np.ndarray, P2: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """Linear (DLT) triangulation (Hartley & Zisserman, 12.2): for each pair of image points x1, x2 (M, 2)
    under projections P1, P2 (3, 4), the X (homogeneous) minimising |A X| with the rows x P_3 - P_1,
    y P_3 - P_2 of both views, |X| = 1 (last right singular vector). Returns (M, 3) world points."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    A = np.stack([
        x1[:, :1] * P1[2] - P1[0], x1[:, 1:] * P1[2] - P1[1],
        x2[:, :1] * P2[2] - P2[0], x2[:, 1:] * P2[2] - P2[1],
    ], 1)  # (M, 4, 4)
    X = np.linalg.svd(A)[2][:, -1]
    return X[:, :3] / X[:, 3:]


def _box(t: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(t, k, stride=1, padding=k // 2, count_include_pad=False)


def sweep_depth(
    img1: np.ndarray, img2: np.ndarray, K1: np.ndarray, c2w1: np.ndarray, K2: np.ndarray, c2w2: np.ndarray,
    near: float, far: float, depths: int = 96, window: int = 7,
) -> tuple[np.ndarray, np.ndarray]:
    """Matches of every pixel of view 1 along its epipolar line in view 2 (a plane sweep): for ``depths``
    camera-1 depths uniform in inverse depth over [near, far], the pixel's ray point is projected into view 2
    and view 2 is sampled there (bilinear); the match is the depth of the best zero-mean normalised
    cross-correlation (ZNCC) of ``window`` x ``window`` patches. Returns depth (H, W) camera-1 z and score
    (H, W) its ZNCC (-inf where no depth projects inside view 2 or the patch of view 1 is flat)."""
    H, W = img1.shape[:2]
    a = torch.from_numpy(np.ascontiguousarray(img1)).float().permute(2, 0, 1)[None] / 255
    b = torch.from_numpy(np.ascontiguousarray(img2)).float().permute(2, 0, 1)[None] / 255
    rel = torch.from_numpy(np.linalg.inv(np.asarray(c2w2, np.float64)) @ np.asarray(c2w1, np.float64))
    f64 = torch.float64
    v, u = torch.meshgrid(torch.arange(H, dtype=f64) + 0.5, torch.arange(W, dtype=f64) + 0.5, indexing="ij")
    K1inv = torch.linalg.inv(torch.from_numpy(np.asarray(K1, np.float64)))
    ray = torch.stack([u, v, torch.ones_like(u)], -1) @ K1inv.T  # camera-1 rays at z = 1
    K2t = torch.from_numpy(np.asarray(K2, np.float64))
    mu_a = _box(a, window)
    var_a = (_box(a * a, window) - mu_a**2).clamp_min(0)
    best = torch.full((H, W), -torch.inf, dtype=torch.float64)
    depth = torch.zeros((H, W), dtype=torch.float64)
    for d in 1.0 / torch.linspace(1.0 / far, 1.0 / near, depths, dtype=torch.float64):
        p = (ray * d) @ rel[:3, :3].T + rel[:3, 3]
        q = p @ K2t.T
        uv = q[..., :2] / q[..., 2:]
        inside = (p[..., 2] > 0) & (uv[..., 0] >= 0) & (uv[..., 0] <= W)
        inside &= (uv[..., 1] >= 0) & (uv[..., 1] <= H)
        grid = torch.stack([2 * uv[..., 0] / W - 1, 2 * uv[..., 1] / H - 1], -1)[None].float()
        bw = F.grid_sample(b, grid, mode="bilinear", padding_mode="border", align_corners=False)
        mu_b = _box(bw, window)
        var_b = (_box(bw * bw, window) - mu_b**2).clamp_min(0)
        cov = _box(a * bw, window) - mu_a * mu_b
        zncc = (cov / torch.sqrt(var_a * var_b + 1e-12)).mean(1)[0].double()  # mean over channels
        zncc = torch.where(inside & (var_a.mean(1)[0] > 1e-4), zncc, torch.full_like(zncc, -torch.inf))
        better = zncc > best
        best = torch.where(better, zncc, best)
        depth = torch.where(better, d, depth)
    return depth.numpy(), best.numpy()


def epipolar_matches(
    img1: np.ndarray, img2: np.ndarray, K1: np.ndarray, c2w1: np.ndarray, K2: np.ndarray, c2w2: np.ndarray,
    near: float, far: float, min_score: float = 0.9, max_depth_diff: float = 0.03, **sweep,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel matches x1, x2 (M, 2) between two posed views (vid3d's convention, pixel centres at +0.5): each
    pixel of view 1 swept along its epipolar line in view 2 (``sweep_depth``), kept where the ZNCC is at least
    ``min_score`` and the sweep the other way (view 2 into view 1) agrees: the matched pixel's own depth,
    carried into camera 1, is within ``max_depth_diff`` (relative) of the first."""
    d1, s1 = sweep_depth(img1, img2, K1, c2w1, K2, c2w2, near, far, **sweep)
    d2, s2 = sweep_depth(img2, img1, K2, c2w2, K1, c2w1, near, far, **sweep)
    H, W = d1.shape
    v, u = np.mgrid[0:H, 0:W] + 0.5
    x1 = np.stack([u, v], -1).reshape(-1, 2)
    ok = (s1 >= min_score).reshape(-1)
    x1, z1 = x1[ok], d1.reshape(-1)[ok]
    cam1 = np.c_[x1, np.ones(len(x1))] @ np.linalg.inv(K1).T * z1[:, None]
    world = cam1 @ np.asarray(c2w1)[:3, :3].T + np.asarray(c2w1)[:3, 3]
    P2 = projection_matrix(K2, c2w2)
    h = np.c_[world, np.ones(len(world))] @ P2.T
    x2 = h[:, :2] / h[:, 2:]
    iu, iv = np.floor(x2[:, 0]).astype(int), np.floor(x2[:, 1]).astype(int)
    inside = (iu >= 0) & (iu < W) & (iv >= 0) & (iv < H)
    iu, iv = iu.clip(0, W - 1), iv.clip(0, H - 1)
    back = np.c_[(iu + 0.5), (iv + 0.5), np.ones(len(iu))] @ np.linalg.inv(K2).T * d2[iv, iu][:, None]
    back_w = back @ np.asarray(c2w2)[:3, :3].T + np.asarray(c2w2)[:3, 3]
    back_z1 = (np.c_[back_w, np.ones(len(back_w))] @ np.linalg.inv(np.asarray(c2w1)).T)[:, 2]
    agree = inside & (s2[iv, iu] >= min_score) & (np.abs(back_z1 - z1) <= max_depth_diff * z1)
    return x1[agree], x2[agree]


def _reprojection_error(P: np.ndarray, X: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.concatenate([X, np.ones((len(X), 1))], 1) @ P.T
    return np.linalg.norm(h[:, :2] / h[:, 2:] - x, axis=1), h[:, 2]


def triangulated_points(
    img1: np.ndarray, img2: np.ndarray, K1: np.ndarray, c2w1: np.ndarray, K2: np.ndarray, c2w2: np.ndarray,
    near: float, far: float, max_error_px: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """World points (M, 3) and their colours (M, 3) in [0, 1] (mean of the two views' pixels) from the
    epipolar matches between two posed uint8 views (H, W, 3) (``epipolar_matches``), triangulated with the
    known cameras (``triangulate``); kept where the point lies between near and far in both cameras' z and
    reprojects within ``max_error_px`` in both."""
    x1, x2 = epipolar_matches(img1, img2, K1, c2w1, K2, c2w2, near, far)
    if not len(x1):
        return np.zeros((0, 3)), np.zeros((0, 3))
    P1, P2 = projection_matrix(K1, c2w1), projection_matrix(K2, c2w2)
    X = triangulate(P1, P2, x1, x2)
    e1, z1 = _reprojection_error(P1, X, x1)
    e2, z2 = _reprojection_error(P2, X, x2)
    ok = (e1 < max_error_px) & (e2 < max_error_px) & (z1 > near) & (z2 > near) & (z1 < far) & (z2 < far)

    def colour(img, x):
        h, w = img.shape[:2]
        u = np.clip(np.floor(x[:, 0]).astype(int), 0, w - 1)
        v = np.clip(np.floor(x[:, 1]).astype(int), 0, h - 1)
        return img[v, u].astype(np.float64) / 255

    return X[ok], 0.5 * (colour(img1, x1[ok]) + colour(img2, x2[ok]))


def init_from_points(
    points: np.ndarray, colors: np.ndarray, num: int, K_px: torch.Tensor, c2w: torch.Tensor, height: int,
    width: int, near: float, far: float, seed: int = 0, opacity: float = 0.1,
) -> tuple[Gaussians, int]:
    """``num`` Gaussians: at ``min(num, M)`` of the M points (a seeded subset), coloured as the point, the
    size of 2 pixels' footprint at the point's depth in the nearest camera (as ``init_in_frustums``), the rest
    (when M < num) at random in the frustums of the views (K_px (V, 3, 3), c2w (V, 4, 4)), grey. Identity
    rotations, ``opacity``. Returns the Gaussians and how many came from points."""
    gen = np.random.default_rng(int(seed))
    m = min(int(num), len(points))
    pick = gen.choice(len(points), m, replace=False) if m else np.zeros(0, int)
    P, C = np.asarray(points, np.float64)[pick], np.asarray(colors, np.float64)[pick]
    w2c = np.linalg.inv(np.asarray(c2w, np.float64))
    z = np.einsum("vij,mj->mvi", w2c[:, :3, :3], P)[..., 2] + w2c[None, :, 2, 3]  # (m, V) camera z
    z = np.where(z > 0, z, np.inf).min(1)
    size = 2.0 * z / float(np.asarray(K_px, np.float64)[:, 0, 0].mean())
    g = Gaussians(
        means=torch.from_numpy(P).float(),
        quats=torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(m, 1),
        log_scales=torch.from_numpy(np.log(size)).float()[:, None].repeat(1, 3),
        opacity_logits=torch.full((m,), inverse_sigmoid(opacity)),
        sh0=rgb_to_sh0(torch.from_numpy(C)).float(),
    )
    if m < num:
        rest = init_in_frustums(K_px, c2w, height, width, int(num) - m, near, far, seed=seed, opacity=opacity)
        g = Gaussians(**{k: torch.cat([v, getattr(rest, k)]) for k, v in g.tensors().items()})
    return g, m


def rays(K_px: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Unit camera-frame directions (M, 3) of pixel coordinates x (M, 2) (vid3d's convention)."""
    d = np.c_[np.asarray(x, np.float64), np.ones(len(x))] @ np.linalg.inv(np.asarray(K_px, np.float64)).T
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def pointmap_scale(Y: np.ndarray, centre: np.ndarray, dirs: np.ndarray) -> float:
    """The factor t that puts up-to-scale points Y (M, 3) onto known rays (centre (3,) + lambda dirs (M, 3),
    unit): argmin_t sum_i dist(t Y_i, ray_i)^2 = sum Y_i^T P_i c / sum Y_i^T P_i Y_i, P_i = I - d_i d_i^T
    (closed form; lambda eliminated). Used to give a pointmap predicted in camera 1's frame (DUSt3R's, scale
    unknown) the scale of the known cameras through the second view's pixels."""
    Y, c, d = np.asarray(Y, np.float64), np.asarray(centre, np.float64), np.asarray(dirs, np.float64)
    PY = Y - d * (d * Y).sum(1, keepdims=True)
    return float((PY @ c).sum() / (PY * Y).sum())


def points_from_pointmaps(
    Y1: np.ndarray, x1: np.ndarray, Y2: np.ndarray, x2: np.ndarray, K1: np.ndarray, c2w1: np.ndarray,
    K2: np.ndarray, c2w2: np.ndarray,
) -> np.ndarray:
    """World points (M1, 3) of view 1's pixels x1 (M1, 2) from a two-view pointmap up to scale: Y1 (M1, 3) the
    points of view 1's pixels and Y2 (M2, 3) those of view 2's pixels x2, both in camera 1's frame (DUSt3R's
    pts3d and pts3d_in_other_view). The scale comes from view 2's known rays (``pointmap_scale``); each
    point then sits on view 1's known ray at the scaled pointmap's camera-1 depth."""
    rel = np.linalg.inv(np.asarray(c2w1, np.float64)) @ np.asarray(c2w2, np.float64)  # camera 2 in camera 1
    t = pointmap_scale(Y2, rel[:3, 3], rays(K2, x2) @ rel[:3, :3].T)
    z = t * np.asarray(Y1, np.float64)[:, 2]
    cam = np.c_[np.asarray(x1, np.float64), np.ones(len(x1))] @ np.linalg.inv(np.asarray(K1, np.float64)).T
    cam = cam * z[:, None]
    return cam @ np.asarray(c2w1, np.float64)[:3, :3].T + np.asarray(c2w1, np.float64)[:3, 3]
