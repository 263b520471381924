"""Geometry checked against independent computations (random cameras and points)."""

import numpy as np
import pytest
import torch

from vid3d import geometry as g


def random_c2w(rng, n):
    """Random rigid camera-to-world poses via QR of Gaussian matrices (independent of vid3d code)."""
    out = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q @ np.diag(np.sign(np.diag(r)))
        if np.linalg.det(q) < 0:
            q[:, 0] *= -1
        out[i, :3, :3] = q
        out[i, :3, 3] = rng.normal(size=3) * 2
    return out


def random_K(rng, n, h=48, w=64):
    K = np.zeros((n, 3, 3))
    K[:, 0, 0] = rng.uniform(40, 80, n)
    K[:, 1, 1] = rng.uniform(40, 80, n)
    K[:, 0, 2] = rng.uniform(0.4, 0.6, n) * w
    K[:, 1, 2] = rng.uniform(0.4, 0.6, n) * h
    K[:, 2, 2] = 1
    return K


def project_manual(K, c2w, X):
    w2c = np.linalg.inv(c2w)
    Xc = (w2c[:3, :3] @ X.T).T + w2c[:3, 3]
    uv = (K @ Xc.T).T
    return uv[:, :2] / uv[:, 2:], Xc[:, 2]


def test_fundamental_matrix_epipolar_constraint():
    rng = np.random.default_rng(0)
    c2w = random_c2w(rng, 2)
    K = random_K(rng, 2)
    X = rng.normal(size=(50, 3)) * 3
    x1, _ = project_manual(K[0], c2w[0], X)
    x2, _ = project_manual(K[1], c2w[1], X)
    F = g.fundamental_matrix(K[0], c2w[0], K[1], c2w[1])
    assert isinstance(F, np.ndarray) and F.shape == (3, 3)
    h1 = np.concatenate([x1, np.ones((50, 1))], 1)
    h2 = np.concatenate([x2, np.ones((50, 1))], 1)
    residual = np.einsum("ni,ij,nj->n", h2, F, h1)
    # Distance of x2 from its epipolar line in pixels: ~0 up to float64 round-off.
    lines = g.epipolar_lines(F, x1)
    dist = np.abs(np.einsum("ni,ni->n", lines, h2))
    assert np.abs(residual).max() < 1e-6 * np.abs(F).max() * 1e4
    assert dist.max() < 1e-8
    # A wrong pairing is not on the line: the test can fail.
    assert np.abs(np.einsum("ni,ni->n", lines, h2[::-1])).max() > 1e-2


def test_fundamental_matrix_degenerate_is_zero_and_torch_type():
    c2w = torch.eye(4, dtype=torch.float64)
    K = torch.tensor([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]], dtype=torch.float64)
    F = g.fundamental_matrix(K, c2w, K, c2w)
    assert isinstance(F, torch.Tensor) and torch.count_nonzero(F) == 0


def test_point_lies_on_its_plucker_ray_through_pixel_centre():
    rng = np.random.default_rng(1)
    h, w = 12, 16
    c2w = random_c2w(rng, 3)
    K = random_K(rng, 3, h, w)
    emb = g.plucker_embedding(K, c2w, h, w)
    assert emb.shape == (3, 6, h, w) and isinstance(emb, np.ndarray)
    for f in range(3):
        u, v = 5, 7
        # Independent: back-project the pixel centre at depth 4.2 and move it to the world frame.
        ray_cam = np.linalg.inv(K[f]) @ np.array([u + 0.5, v + 0.5, 1.0])
        X = c2w[f, :3, :3] @ (ray_cam * 4.2) + c2w[f, :3, 3]
        moment, d = emb[f, :3, v, u], emb[f, 3:, v, u]
        assert np.isclose(np.linalg.norm(d), 1)
        # X is on the ray (o, d) iff X x d == o x d (the Plücker moment).
        np.testing.assert_allclose(np.cross(X, d), moment, atol=1e-9)
        # and the ray points forward (positive depth).
        assert d @ (X - c2w[f, :3, 3]) > 0
        # The neighbouring pixel's ray does not contain X.
        assert np.abs(np.cross(X, emb[f, 3:, v, u + 1]) - emb[f, :3, v, u + 1]).max() > 1e-3


def test_plucker_identity_camera_principal_ray():
    K = torch.tensor([[[10.0, 0, 2.0], [0, 10.0, 2.0], [0, 0, 1]]])
    emb = g.plucker_embedding(K, torch.eye(4)[None], 4, 4)
    # pixel (1, 1) has centre (1.5, 1.5): direction (-0.05, -0.05, 1) normalised; moment 0 at origin.
    d = torch.tensor([-0.05, -0.05, 1.0])
    torch.testing.assert_close(emb[0, 3:, 1, 1], d / d.norm())
    torch.testing.assert_close(emb[0, :3, 1, 1], torch.zeros(3))


def test_convention_round_trips_exact():
    rng = np.random.default_rng(2)
    c2w = random_c2w(rng, 5)
    np.testing.assert_allclose(g.w2c_to_c2w(g.c2w_to_w2c(c2w)), c2w, atol=1e-12)
    np.testing.assert_array_equal(g.opencv_to_opengl_c2w(g.opengl_to_opencv_c2w(c2w)), c2w)
    # OpenGL camera looks down -z: its forward axis is the negated third column.
    gl = g.opencv_to_opengl_c2w(c2w)
    np.testing.assert_array_equal(gl[:, :3, 2], -c2w[:, :3, 2])
    np.testing.assert_array_equal(gl[:, :3, 1], -c2w[:, :3, 1])
    K = random_K(rng, 5)
    np.testing.assert_allclose(g.K_norm_to_px(g.K_px_to_norm(K, 48, 64), 48, 64), K, atol=1e-12)
    np.testing.assert_allclose(g.K_px_to_norm(K, 48, 64)[:, 0, 0], K[:, 0, 0] / 64)
    np.testing.assert_allclose(g.K_px_to_norm(K, 48, 64)[:, 1, 2], K[:, 1, 2] / 48)
    # w2c from a (3, 4) matrix is accepted too.
    w2c = g.c2w_to_w2c(c2w)[:, :3, :]
    np.testing.assert_allclose(g.w2c_to_c2w(w2c), c2w, atol=1e-12)


def test_relative_to_first_invariant_to_global_rigid_transform():
    rng = np.random.default_rng(3)
    c2w = random_c2w(rng, 6)
    A = random_c2w(rng, 1)[0]
    rel = g.relative_to_first(c2w)
    np.testing.assert_allclose(rel[0], np.eye(4), atol=1e-12)
    np.testing.assert_allclose(g.relative_to_first(A @ c2w), rel, atol=1e-10)
    # torch in, torch out
    rel_t = g.relative_to_first(torch.from_numpy(c2w))
    assert isinstance(rel_t, torch.Tensor)
    np.testing.assert_allclose(rel_t.numpy(), rel, atol=1e-12)


def test_normalize_scale_and_static_rule():
    c2w = np.tile(np.eye(4), (3, 1, 1))
    c2w[1, :3, 3] = [0, 0, 2]
    c2w[2, :3, 3] = [0, 4, 0]
    out, scale = g.normalize_scale(c2w)
    assert scale == pytest.approx(4)
    np.testing.assert_allclose(out[2, :3, 3], [0, 1, 0])
    static = np.tile(np.eye(4), (3, 1, 1))
    out, scale = g.normalize_scale(static)
    assert scale == 0.0
    np.testing.assert_array_equal(out, static)


def test_project_points_matches_manual_and_rotation_angle():
    rng = np.random.default_rng(4)
    c2w = random_c2w(rng, 1)[0]
    K = random_K(rng, 1)[0]
    X = rng.normal(size=(10, 3)) * 3
    uv, z = g.project_points(K, c2w, X)
    uv_m, z_m = project_manual(K, c2w, X)
    np.testing.assert_allclose(uv, uv_m, atol=1e-9)
    np.testing.assert_allclose(z, z_m, atol=1e-12)
    R = g.axis_angle_to_matrix(np.array([0.0, 0.0, 1.0]), np.pi / 2)
    np.testing.assert_allclose(R @ np.array([1.0, 0, 0]), [0, 1, 0], atol=1e-12)
    assert np.degrees(g.rotation_angle_between(R, np.eye(3))) == pytest.approx(90.0)
    assert g.rotation_angle_between(np.eye(3), np.eye(3) * (1 + 1e-12)) == 0.0


def test_look_at_points_camera_at_target():
    c2w = g.look_at_c2w(np.array([1.0, -1.0, -3.0]), np.array([0.0, 0.0, 0.0]))
    np.testing.assert_allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(c2w[:3, :3]) == pytest.approx(1)
    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    uv, z = g.project_points(K, c2w, np.zeros((1, 3)))
    np.testing.assert_allclose(uv[0], [32, 24], atol=1e-9)
    assert z[0] > 0
