"""The PyTorch Gaussian renderer against closed forms: a single Gaussian's footprint, front-to-back
compositing of two, camera pose conventions, and autograd against finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vid3d.reconstruction.gaussians import Gaussians, quat_to_rotmat, rgb_to_sh0
from vid3d.reconstruction.render_torch import ALPHA_MIN, render

H, W, F = 32, 40, 50.0
K = torch.tensor([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]], dtype=torch.float64)
EYE = torch.eye(4, dtype=torch.float64)


def gaussians(means, scales, opacities, rgbs, quats=None) -> Gaussians:
    means = torch.as_tensor(means, dtype=torch.float64).reshape(-1, 3)
    n = len(means)
    quats = torch.tensor([[1.0, 0, 0, 0]] * n, dtype=torch.float64) if quats is None else torch.as_tensor(
        quats, dtype=torch.float64).reshape(n, 4)
    op = torch.as_tensor(opacities, dtype=torch.float64).reshape(n)
    return Gaussians(
        means=means, quats=quats,
        log_scales=torch.as_tensor(scales, dtype=torch.float64).reshape(n, 3).log(),
        opacity_logits=torch.log(op / (1 - op)),
        sh0=rgb_to_sh0(torch.as_tensor(rgbs, dtype=torch.float64).reshape(n, 3)),
    )


def footprint(mean2d, cov2d, opacity):
    """Expected alpha at every pixel centre of an H x W image (numpy, independent of the renderer)."""
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    d = np.stack([u - mean2d[0], v - mean2d[1]], -1)
    inv = np.linalg.inv(cov2d)
    a = opacity * np.exp(-0.5 * np.einsum("hwi,ij,hwj->hw", d, inv, d))
    a = np.minimum(a, 0.99)
    return np.where(a >= ALPHA_MIN, a, 0.0)


def test_isotropic_gaussian_on_the_optical_axis_is_the_closed_form_2d_gaussian():
    z, s, o, rgb = 4.0, 0.1, 0.8, [0.9, 0.5, 0.2]
    out = render(gaussians([0, 0, z], [s, s, s], o, rgb), K, EYE, H, W)
    var = (F * s / z) ** 2 + 0.3  # EWA projection on the axis + the 0.3 px^2 dilation
    alpha = footprint((W / 2, H / 2), np.eye(2) * var, o)
    np.testing.assert_allclose(out["alpha"].numpy(), alpha, atol=1e-10)
    np.testing.assert_allclose(out["image"].numpy(), alpha[..., None] * np.array(rgb), atol=1e-10)
    np.testing.assert_allclose(out["depth"].numpy(), alpha * z, atol=1e-10)


def test_anisotropic_and_rotated_gaussian():
    z, o = 5.0, 0.7
    sx, sy = 0.3, 0.05
    var = np.diag([(F * sx / z) ** 2 + 0.3, (F * sy / z) ** 2 + 0.3])
    out = render(gaussians([0, 0, z], [sx, sy, 0.05], o, [1, 1, 1]), K, EYE, H, W)
    np.testing.assert_allclose(out["alpha"].numpy(), footprint((W / 2, H / 2), var, o), atol=1e-10)
    # 90 degrees about the optical axis (w, x, y, z) = (cos 45, 0, 0, sin 45): the long axis turns vertical
    q = [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]
    out = render(gaussians([0, 0, z], [sx, sy, 0.05], o, [1, 1, 1], quats=q), K, EYE, H, W)
    rotated = footprint((W / 2, H / 2), var[::-1, ::-1], o)
    np.testing.assert_allclose(out["alpha"].numpy(), rotated, atol=1e-10)


def test_off_axis_gaussian_lands_at_its_projection():
    X, Y, Z = 0.5, -0.3, 4.0
    out = render(gaussians([X, Y, Z], [0.08] * 3, 0.9, [1, 1, 1]), K, EYE, H, W)
    a = out["alpha"].numpy()
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    centroid = (np.sum(a * u) / a.sum(), np.sum(a * v) / a.sum())
    expected = (F * X / Z + W / 2, F * Y / Z + H / 2)  # x right, y down (OpenCV)
    np.testing.assert_allclose(centroid, expected, atol=0.02)


def test_front_gaussian_occludes_the_back_one_whatever_their_order():
    red = gaussians([0, 0, 3.0], [0.5] * 3, 0.6, [1, 0, 0])
    green = gaussians([0, 0, 5.0], [0.5] * 3, 0.9, [0, 1, 0])
    both = Gaussians(**{k: torch.cat([green.tensors()[k], red.tensors()[k]]) for k in red.tensors()})
    bg = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    out = render(both, K, EYE, H, W, background=bg)
    var_r, var_g = (F * 0.5 / 3) ** 2 + 0.3, (F * 0.5 / 5) ** 2 + 0.3
    a_r = footprint((W / 2, H / 2), np.eye(2) * var_r, 0.6)
    a_g = footprint((W / 2, H / 2), np.eye(2) * var_g, 0.9)
    expected = np.stack([a_r, (1 - a_r) * a_g, (1 - a_r) * (1 - a_g)], -1)  # red, green, blue background
    np.testing.assert_allclose(out["image"].numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(out["alpha"].numpy(), 1 - (1 - a_r) * (1 - a_g), atol=1e-10)


def test_camera_pose_convention():
    """Gaussians seen from a moved camera (c2w) render as the Gaussians moved by c2w^-1 seen from the
    origin."""
    rng = np.random.default_rng(0)
    R = quat_to_rotmat(torch.tensor([0.95, 0.1, -0.2, 0.15], dtype=torch.float64))
    c2w = EYE.clone()
    c2w[:3, :3], c2w[:3, 3] = R, torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    cam_pts = torch.tensor(rng.uniform([-0.5, -0.4, 3], [0.5, 0.4, 5], (5, 3)))
    world_pts = cam_pts @ R.T + c2w[:3, 3]
    q_rot = torch.tensor([0.95, 0.1, -0.2, 0.15], dtype=torch.float64)
    scales = [[0.2, 0.05, 0.1]] * 5
    op, rgb = [0.5] * 5, rng.uniform(0, 1, (5, 3))
    # in the world, each Gaussian is additionally rotated by R (its camera-frame orientation is identity)
    world = gaussians(world_pts, scales, op, rgb, quats=q_rot.expand(5, 4))
    cam = gaussians(cam_pts, scales, op, rgb)
    np.testing.assert_allclose(render(world, K, c2w, H, W)["image"].numpy(),
                               render(cam, K, EYE, H, W)["image"].numpy(), atol=1e-9)


def test_tile_size_does_not_change_the_image():
    g = gaussians(np.random.default_rng(1).uniform([-1, -1, 3], [1, 1, 6], (20, 3)), [[0.1, 0.2, 0.1]] * 20,
                  [0.5] * 20, np.random.default_rng(2).uniform(0, 1, (20, 3)))
    a = render(g, K, EYE, H, W, tile=16)["image"]
    b = render(g, K, EYE, H, W, tile=7)["image"]
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["means", "quats", "log_scales", "opacity_logits", "sh0"])
def test_gradients_match_finite_differences(name):
    small_K = torch.tensor([[10.0, 0, 4], [0, 10.0, 4], [0, 0, 1]], dtype=torch.float64)
    base = gaussians([[0.1, 0.0, 2.0], [-0.2, 0.1, 2.5]], [[0.5, 0.4, 0.3], [0.6, 0.5, 0.4]], [0.5, 0.4],
                     [[0.8, 0.2, 0.1], [0.1, 0.7, 0.3]], quats=[[0.9, 0.1, 0.2, 0.0], [1.0, 0.0, -0.1, 0.2]])
    weights = torch.rand(8, 8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def f(x):
        t = dict(base.tensors())
        t[name] = x
        return (render(Gaussians(**t), small_K, EYE, 8, 8, tile=4)["image"] * weights).sum()

    x = base.tensors()[name].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-6)
