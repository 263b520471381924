"""render_torch against an independent, slow per-pixel loop of the 3DGS / gsplat equations (float64) at an
off-centre principal point, on a scene built so that both of gsplat's rules matter: a large Gaussian
beyond gsplat's left clamp limit but inside graphdeco's symmetric one, and an opaque stack whose last
Gaussian falls, at one pixel, after the transmittance stop (T <= 1e-4, exclusive).

The reference is written here from the equations (scipy's quaternion, numpy's inverse, one pixel and one
Gaussian at a time); it shares no code with vid3d.reconstruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from vid3d.reconstruction.gaussians import Gaussians, inverse_sigmoid
from vid3d.reconstruction.render_torch import render

W, H = 24, 20
FX, FY, CX, CY = 20.0, 19.0, 7.3, 13.1  # principal point well off the centre (12, 10)


def reference_image(means, quats_wxyz, scales, opac, colors, K, w2c, clamp="gsplat", early_stop=True):
    """(H, W, 3) by the textbook loop: per pixel centre (u + 0.5, v + 0.5), Gaussians in camera-z order,
    alpha = min(0.99, o exp(-q/2)), skipped if < 1/255 or q < 0, stop before T would fall to <= 1e-4."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    R, t = w2c[:3, :3], w2c[:3, 3]
    proj = []
    for m, q, s in zip(means, quats_wxyz, scales):
        Rg = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()
        cov = Rg @ np.diag(s**2) @ Rg.T
        p = R @ m + t
        z = p[2]
        x, y = p[0] / z, p[1] / z
        if clamp == "gsplat":  # per side: (W - cx)/fx + 0.3 tan_fovx and cx/fx + 0.3 tan_fovx
            tx, ty = 0.5 * W / fx, 0.5 * H / fy
            xc = min(max(x, -(cx / fx + 0.3 * tx)), (W - cx) / fx + 0.3 * tx)
            yc = min(max(y, -(cy / fy + 0.3 * ty)), (H - cy) / fy + 0.3 * ty)
        else:  # graphdeco: +-1.3 tan_fov, symmetric
            lx, ly = 1.3 * 0.5 * W / fx, 1.3 * 0.5 * H / fy
            xc, yc = min(max(x, -lx), lx), min(max(y, -ly), ly)
        J = np.array([[fx / z, 0.0, -fx * xc / z], [0.0, fy / z, -fy * yc / z]])
        cov2 = J @ R @ cov @ R.T @ J.T + 0.3 * np.eye(2)
        proj.append((z, np.array([fx * x + cx, fy * y + cy]), np.linalg.inv(cov2)))
    order = sorted(range(len(proj)), key=lambda i: proj[i][0])
    img = np.zeros((H, W, 3))
    for v in range(H):
        for u in range(W):
            T, c = 1.0, np.zeros(3)
            for i in order:
                _, mu, conic = proj[i]
                d = np.array([u + 0.5, v + 0.5]) - mu
                qf = d @ conic @ d
                if qf < 0:
                    continue
                a = min(0.99, opac[i] * np.exp(-0.5 * qf))
                if a < 1 / 255:
                    continue
                if early_stop and T * (1 - a) <= 1e-4:
                    break
                c += colors[i] * a * T
                T *= 1 - a
            img[v, u] = c
    return img


def scene():
    rng = np.random.default_rng(3)
    n = 12
    z = rng.uniform(2.0, 5.0, n)
    u, v = rng.uniform(-2, W + 2, n), rng.uniform(-2, H + 2, n)
    means = [np.array([(uu - CX) / FX * zz, (vv - CY) / FY * zz, zz]) for uu, vv, zz in zip(u, v, z)]
    quats = list(rng.normal(size=(n, 4)))
    scales = list(rng.uniform(0.05, 0.3, (n, 3)))
    opac = list(rng.uniform(0.2, 0.9, n))
    colors = list(rng.uniform(0.0, 1.0, (n, 3)))
    # beyond gsplat's left limit (x/z < -(cx/fx + 0.3 tan_fovx) = -0.545), inside the symmetric -0.78
    means.append(np.array([-0.66 * 3.0, 0.1, 3.0]))
    quats.append(np.array([1.0, 0.0, 0.0, 0.0]))
    scales.append(np.array([0.9, 0.5, 0.9]))
    opac.append(0.8)
    colors.append(np.array([0.9, 0.2, 0.1]))
    # a faint wide Gaussian in front of two opaque ones centred on the pixel (13, 8): alpha 0.99 (the cap)
    # there for both, so T = (1 - a_faint) 0.01 < 0.01 after the first and the second would take it below
    # 1e-4: it is left out there (about 1e-2 of its colour)
    stack = [(0.06, 0.4, (0.5, 0.5, 0.5)), (0.999, 0.15, (0.1, 0.8, 0.3)), (0.999, 0.15, (1.0, 1.0, 0.0))]
    for k, (o, sc, col) in enumerate(stack):
        z = 1.3 + 0.2 * k
        means.append(np.array([(13.5 - CX) / FX * z, (8.5 - CY) / FY * z, z]))
        quats.append(np.array([1.0, 0.0, 0.0, 0.0]))
        scales.append(np.array([sc, sc, sc]))
        opac.append(o)
        colors.append(np.array(col))
    return [np.asarray(a, np.float64) for a in (means, quats, scales, opac, colors)]


def _torch_gaussians(means, quats, scales, opac, colors) -> Gaussians:
    d = torch.float64
    return Gaussians(
        means=torch.tensor(means, dtype=d), quats=torch.tensor(quats, dtype=d),
        log_scales=torch.tensor(np.log(scales), dtype=d),
        opacity_logits=torch.tensor([inverse_sigmoid(float(o)) for o in opac], dtype=d),
        sh0=(torch.tensor(colors, dtype=d) - 0.5) / 0.28209479177387814,
    )


@pytest.fixture(scope="module")
def case():
    means, quats, scales, opac, colors = scene()
    K = np.array([[FX, 0, CX], [0, FY, CY], [0, 0, 1.0]])
    w2c = np.eye(4)
    ours = render(_torch_gaussians(means, quats, scales, opac, colors), torch.tensor(K), torch.eye(4,
                  dtype=torch.float64), H, W)["image"].numpy()
    refs = {
        (clamp, stop): reference_image(means, quats, scales, opac, colors, K, w2c, clamp, stop)
        for clamp, stop in (("gsplat", True), ("graphdeco", True), ("gsplat", False))
    }
    return ours, refs


def test_render_equals_the_per_pixel_reference_off_centre(case):
    ours, refs = case
    np.testing.assert_allclose(ours, refs["gsplat", True], atol=1e-12, rtol=0)


def test_scene_exercises_the_clamp_and_the_early_stop(case):
    """The two rules are what the match above checks: without either, the reference moves far beyond the
    tolerance (else the test above could not tell them apart)."""
    ours, refs = case
    assert np.abs(refs["graphdeco", True] - refs["gsplat", True]).max() > 1e-3
    assert np.abs(refs["gsplat", False] - refs["gsplat", True]).max() > 1e-3
    assert np.abs(ours - refs["graphdeco", True]).max() > 1e-3
