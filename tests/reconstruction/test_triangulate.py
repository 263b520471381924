"""Initialisation from the context views' geometry: DLT triangulation on exact projections, epipolar matches
on a rendered synthetic scene checked against its depth map, and the point-to-Gaussian initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid3d.reconstruction.gaussians import SH_C0
from vid3d.reconstruction.triangulate import (
    epipolar_matches,
    init_from_points,
    projection_matrix,
    triangulate,
    triangulated_points,
)


def look_at(centre, target):
    z = np.asarray(target, float) - centre
    z /= np.linalg.norm(z)
    x = np.cross([0.0, -1.0, 0.0], z)
    x /= np.linalg.norm(x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, np.cross(z, x), z], 1)
    c2w[:3, 3] = centre
    return c2w


def test_dlt_recovers_points_from_exact_projections():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (50, 3)) + [0, 0, 5]
    K = np.array([[80.0, 0, 30.2], [0, 75.0, 41.7], [0, 0, 1]])
    c1, c2 = look_at(np.array([-0.5, 0.1, 0.0]), [0, 0, 5]), look_at(np.array([0.6, -0.2, 0.3]), [0, 0, 5])
    P1, P2 = projection_matrix(K, c1), projection_matrix(K, c2)

    def proj(P):  # written out: K (R X + t) / z
        w2c = np.linalg.inv(c1 if P is P1 else c2)
        cam = X @ w2c[:3, :3].T + w2c[:3, 3]
        return (cam @ K.T)[:, :2] / cam[:, 2:]

    np.testing.assert_allclose(triangulate(P1, P2, proj(P1), proj(P2)), X, atol=1e-9)


@pytest.fixture(scope="module")
def turntable():
    from vid3d.data.synthetic import make_clip, render_views

    size = 64
    clip = make_clip(2, 0, 24)
    fx = size / (2 * np.tan(np.deg2rad(clip.hfov_deg) / 2))
    K = np.array([[fx, 0, size / 2], [0, fx, size / 2], [0, 0, 1.0]])
    rgb, depth = render_views(clip.scene, K, clip.c2w[[0, 2]], size, size, supersample=2)
    return rgb, depth, K, clip.c2w[[0, 2]]


def test_epipolar_matches_land_on_the_surface(turntable):
    """The rendered scene's depth map is the truth: a matched point, carried into view 0, lies at the depth
    of the surface at its pixel. Measured 2026-12-07 at 64 px, views 0 and 2: 1119 points, median relative
    depth error 1.8%, 80% within 5% (the misses sit on depth edges, where a pixel's depth is ambiguous)."""
    rgb, depth, K, c2w = turntable
    near, far = 0.8 * float(depth[depth > 0].min()), 1.1 * float(depth.max())
    x1, x2 = epipolar_matches(rgb[0], rgb[1], K, c2w[0], K, c2w[1], near, far)
    assert len(x1) > 500
    X, col = triangulated_points(rgb[0], rgb[1], K, c2w[0], K, c2w[1], near, far)
    assert len(X) > 500 and col.shape == X.shape and 0 <= col.min() and col.max() <= 1
    w2c = np.linalg.inv(c2w[0])
    cam = X @ w2c[:3, :3].T + w2c[:3, 3]
    u = np.floor(cam[:, 0] / cam[:, 2] * K[0, 0] + K[0, 2]).astype(int).clip(0, 63)
    v = np.floor(cam[:, 1] / cam[:, 2] * K[1, 1] + K[1, 2]).astype(int).clip(0, 63)
    rel = np.abs(cam[:, 2] - depth[0][v, u]) / depth[0][v, u]
    assert np.median(rel) < 0.03 and np.mean(rel < 0.05) > 0.7


def test_init_from_points_uses_the_points_then_tops_up():
    pts = np.array([[0.0, 0.0, 2.0], [0.5, 0.0, 4.0], [0.0, 0.5, 3.0]])
    col = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    K = torch.tensor([[[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]]])
    c2w = torch.eye(4)[None]
    g, m = init_from_points(pts, col, 10, K, c2w, 64, 64, 1.0, 6.0, seed=1)
    assert m == 3 and len(g) == 10
    got = {tuple(np.round(p, 6)) for p in g.means[:3].double().numpy()}
    assert got == {tuple(p) for p in pts}
    sizes = g.log_scales[:3].exp().double().numpy()
    for p, s, sh in zip(g.means[:3].double().numpy(), sizes, g.sh0[:3].numpy()):
        k = int(np.argmin(np.abs(pts - p).sum(1)))
        np.testing.assert_allclose(s, 2 * pts[k, 2] / 50.0, rtol=1e-6)  # 2 px footprint at its depth
        np.testing.assert_allclose(0.5 + SH_C0 * sh, col[k], atol=1e-6)
    z = g.means[3:, 2].double()
    assert ((z >= 1.0 - 1e-6) & (z <= 6.0 + 1e-6)).all()  # the top-up lies in the frustum's depth range
    g2, m2 = init_from_points(pts, col, 2, K, c2w, 64, 64, 1.0, 6.0)
    assert m2 == 2 and len(g2) == 2
