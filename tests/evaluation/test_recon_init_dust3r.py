"""benchmark.init=dust3r: DUSt3R's two-view pointmaps (up to scale, in camera 1's frame) placed with the known
cameras. The network is replaced by an exact one: the true pointmaps of a plane, times an unknown scale, with
low confidence in one corner; the points must land on the plane, the low-confidence pixels left out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid3d.errors import InputError
from vid3d.evaluation.pose.dust3r import Dust3rPoseEstimator
from vid3d.evaluation.recon_methods import ReconSettings, dust3r_points

H, W, FX, D, B, SCALE = 32, 48, 40.0, 4.0, 0.6, 0.37
K = np.array([[FX, 0, 21.0], [0, FX, 17.5], [0, 0, 1.0]])  # off-centre on purpose
C2W = np.repeat(np.eye(4)[None], 2, 0)
C2W[1, 0, 3] = B  # camera 2 slides right by B; both look at the plane z = D


class ExactPlaneDust3r(torch.nn.Module):
    """DUSt3R's call signature; pts3d of image a in camera a's frame, pts3d_in_other_view of image b in
    camera a's frame, on the 32x32 centre crop (frame x = DUSt3R x + 8), all times SCALE."""

    def forward(self, view1, view2):
        h, w = view1["img"].shape[-2:]
        v, u = np.mgrid[0:h, 0:w] + 0.5
        x = np.stack([u + (W - w) / 2, v, np.ones_like(u)], -1)

        def plane_points(img_idx, frame_idx):
            d = x @ np.linalg.inv(K).T
            world = C2W[img_idx, :3, 3] + d * (D / d[..., 2:])
            return (world - C2W[frame_idx, :3, 3]) * SCALE  # rotations are identity

        conf = np.full((h, w), 10.0)
        conf[:4, :4] = 1.0
        out1 = {"pts3d": [], "conf": []}
        out2 = {"pts3d_in_other_view": [], "conf": []}
        for a, b in zip(view1["idx"], view2["idx"]):
            out1["pts3d"].append(plane_points(a, a))
            out2["pts3d_in_other_view"].append(plane_points(b, a))
            out1["conf"].append(conf)
            out2["conf"].append(conf)
        t = {k: torch.tensor(np.stack(v)) for k, v in (*out1.items(), *out2.items())}
        return ({"pts3d": t["pts3d"], "conf": t["conf"]},
                {"pts3d_in_other_view": t["pts3d_in_other_view"], "conf": t["conf"]})


def test_dust3r_points_land_on_the_known_plane_at_the_known_scale():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, H, W, 3), dtype=np.uint8)
    est = Dust3rPoseEstimator(model=ExactPlaneDust3r(), image_size=32, device="cpu")
    pts, col = dust3r_points(est, frames[0], frames[1], K, C2W[0], K, C2W[1], min_conf=3.0)
    assert pts.shape == (32 * 32 - 16, 3)  # the 4x4 low-confidence corner is left out
    np.testing.assert_allclose(pts[:, 2], D, atol=1e-9)
    # each point is on its pixel's ray: projecting it back gives the pixel centre it came from
    px = (pts @ K.T)[:, :2] / D
    v, u = np.mgrid[0:32, 0:32] + 0.5
    keep = np.ones((32, 32), bool)
    keep[:4, :4] = False
    np.testing.assert_allclose(px, np.stack([u[keep] + 8, v[keep]], -1), atol=1e-9)
    np.testing.assert_allclose(col * 255, frames[0][:, 8:40][keep], atol=1e-3)


def test_dust3r_init_needs_its_weights():
    with pytest.raises(InputError, match="benchmark.dust3r_checkpoint="):
        ReconSettings(init="dust3r")
    with pytest.raises(InputError, match="benchmark.init='sfm': must be one of random, triangulated, dust3r"):
        ReconSettings(init="sfm")


def test_every_init_has_a_protocol_note():
    from vid3d.reconstruction.fit import INITS
    from vid3d.tasks.recon_benchmark import INIT_NOTES

    assert set(INIT_NOTES) == set(INITS)
