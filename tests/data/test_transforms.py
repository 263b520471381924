import numpy as np
import pytest
import torch

from vid3d.data.transforms import center_crop_box, center_crop_resize
from vid3d.geometry import (
    crop_resize_K,
    intrinsics_matrix,
    look_at_c2w,
    pixel_rays,
    plucker_embedding,
    project_points,
)


def _blob_image(H, W, centre_xy, sigma=3.0):
    """uint8 (H, W, 3) image with a Gaussian blob centred at continuous centre_xy (pixel centres +0.5)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64) + 0.5
    g = np.exp(-((u - centre_xy[0]) ** 2 + (v - centre_xy[1]) ** 2) / (2 * sigma**2))
    return np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def _centroid(img):
    w = img[..., 0].astype(np.float64)
    v, u = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float64) + 0.5
    return np.array([(w * u).sum() / w.sum(), (w * v).sum() / w.sum()])


def test_crop_box_known_cases():
    assert center_crop_box(100, 200, 50, 50) == (50, 0, 100, 100)
    assert center_crop_box(200, 100, 64, 64) == (0, 50, 100, 100)
    assert center_crop_box(90, 160, 45, 80) == (0, 0, 160, 90)  # same aspect: no crop


def test_intrinsics_known_case():
    K = intrinsics_matrix(100.0, 110.0, 100.0, 50.0)
    K2 = crop_resize_K(K, 50, 0, 100, 100, 50, 50)
    # cx' = (100 - 50) * 0.5, cy' = 50 * 0.5, fx' = 50, fy' = 55
    np.testing.assert_allclose(K2, [[50, 0, 25], [0, 55, 25], [0, 0, 1]])
    Kt = crop_resize_K(torch.as_tensor(K, dtype=torch.float32), 50, 0, 100, 100, 50, 50)
    assert isinstance(Kt, torch.Tensor) and Kt.dtype == torch.float32
    np.testing.assert_allclose(Kt.numpy(), K2, rtol=1e-6)


@pytest.mark.parametrize("out_hw", [(48, 64), (96, 96), (150, 200)])  # downscale, square crop, upscale
def test_projection_and_plucker_consistent_after_crop_resize(out_hw):
    out_h, out_w = out_hw
    H, W = 120, 200
    K = intrinsics_matrix(150.0, 140.0, 97.3, 61.2)
    c2w = look_at_c2w(np.array([0.3, -0.2, -2.0]), np.array([0.0, 0.0, 0.0]))
    x0, y0, cw, ch = center_crop_box(H, W, out_h, out_w)
    # choose an output pixel, back-project it with the NEW camera to a 3D point at depth 2.5
    frames0 = np.zeros((1, H, W, 3), np.uint8)
    _, K_new = center_crop_resize(frames0, K[None], out_h, out_w)
    u, v = int(out_w * 0.3), int(out_h * 0.6)
    ray_cam = np.linalg.inv(K_new[0]) @ np.array([u + 0.5, v + 0.5, 1.0])
    X = (c2w[:3, :3] @ (ray_cam * 2.5 / ray_cam[2])) + c2w[:3, 3]
    # the original camera sees it at p; draw a blob there, crop/resize, blob must land at (u + .5, v + .5)
    p, depth = project_points(K, c2w, X[None])
    assert depth[0] > 0
    img = _blob_image(H, W, p[0], sigma=4.0 * cw / out_w)
    out, K_out = center_crop_resize(img[None], K[None], out_h, out_w)
    assert out.shape == (1, out_h, out_w, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(K_out, K_new)
    # independent formula: translate by the crop, scale by out/crop
    np.testing.assert_allclose(p[0], [(u + 0.5) * cw / out_w + x0, (v + 0.5) * ch / out_h + y0], atol=1e-9)
    np.testing.assert_allclose(_centroid(out[0]), [u + 0.5, v + 0.5], atol=0.15)
    # Plücker ray through the new pixel passes through X: |X x d - m| = 0 and d parallel to X - o
    o, d = pixel_rays(K_out, c2w[None], out_h, out_w)
    np.testing.assert_allclose(np.cross(X - o[0, v, u], d[0, v, u]), 0, atol=1e-9)
    emb = plucker_embedding(K_out, c2w[None], out_h, out_w)
    m, dd = emb[0, :3, v, u], emb[0, 3:, v, u]
    np.testing.assert_allclose(np.cross(X, dd) - m, 0, atol=1e-9)
    assert np.dot(X - o[0, v, u], d[0, v, u]) > 0


def test_torch_input_matches_numpy():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 40, 60, 3), dtype=np.uint8)
    K = intrinsics_matrix(np.full(2, 50.0), np.full(2, 50.0), np.full(2, 30.0), np.full(2, 20.0))
    out_np, K_np = center_crop_resize(frames, K, 16, 16)
    ft = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    out_t, K_t = center_crop_resize(ft, torch.from_numpy(K), 16, 16)
    assert out_t.shape == (2, 3, 16, 16) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.permute(0, 2, 3, 1).numpy(), out_np.astype(np.float32), atol=0.51)
    np.testing.assert_allclose(K_t.numpy(), K_np)
    # crop of 40x40 at x0=10, scale 16/40
    np.testing.assert_allclose(K_np[0], [[20, 0, 8], [0, 20, 8], [0, 0, 1]])
