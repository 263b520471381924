"""Camera encoders: zero-init equivalence with the base UNet, sensitivity, input shapes."""

from __future__ import annotations

import pytest
import torch

from vid3d.geometry import look_at_c2w, plucker_embedding, project_points
from vid3d.models.backbone import build_tiny_backbone
from vid3d.models.camera_encoder import NoCameraEncoder, PluckerEncoder, RTEncoder, build_camera_encoder
from vid3d.models.video_diffusion import CameraVideoDiffusion

B, F, H, W = 1, 3, 40, 52  # latent 10 x 13: odd sizes exercise the ceil(s / 2) level sizes


def _cameras(b: int = B, f: int = F, H_img: int = H, W_img: int = W) -> tuple[torch.Tensor, torch.Tensor]:
    K = torch.tensor([[45.0, 0, W_img / 2], [0, 47.0, H_img / 2], [0, 0, 1]]).expand(b, f, 3, 3).clone()
    eyes = torch.stack([torch.tensor([0.3 * i, -0.1 * i, -2.0 + 0.2 * i]) for i in range(f)])
    c2w = look_at_c2w(eyes.double(), torch.zeros(f, 3, dtype=torch.float64)).float()
    return K, c2w.expand(b, f, 4, 4).clone()


def _unet_inputs(model: CameraVideoDiffusion, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h, w = H // model.downscale, W // model.downscale
    sample = torch.randn(B, F, 2 * model.latent_channels, h, w, generator=g)
    cond = {
        "encoder_hidden_states": torch.randn(B, 1, 32, generator=g),
        "added_time_ids": torch.tensor([[6.0, 127.0, 0.02]]).expand(B, 3),
    }
    return sample, torch.full((B,), 0.3), cond


def _base_out(model, sample, c_noise, cond) -> torch.Tensor:
    return model.unet(
        sample,
        c_noise,
        encoder_hidden_states=cond["encoder_hidden_states"],
        added_time_ids=cond["added_time_ids"],
        return_dict=False,
    )[0]


@pytest.mark.parametrize("kind", ["plucker", "rt", "none"])
def test_zero_init_equals_base_unet_then_changes(kind: str) -> None:
    model = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder=kind)
    sample, c_noise, cond = _unet_inputs(model)
    K, c2w = _cameras()
    cams = model.prepare_cameras(K, c2w, sample.shape[-2:])
    with torch.no_grad():
        base = _base_out(model, sample, c_noise, cond)
        out = model.unet_forward(sample, c_noise, {**cond, **cams})
        torch.testing.assert_close(out, base, rtol=0.0, atol=1e-6)  # zero-init encoder: no effect
        if kind == "none":
            assert cams["cam_input"] is None and not list(model.camera_encoder.parameters())
            return
        g = torch.Generator().manual_seed(5)
        for p in model.camera_encoder.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        out2 = model.unet_forward(sample, c_noise, {**cond, **cams})
        assert (out2 - base).abs().max() > 1e-4
        # a different trajectory gives a different output
        cams_b = model.prepare_cameras(K, c2w.flip(1), sample.shape[-2:])
        out3 = model.unet_forward(sample, c_noise, {**cond, **cams_b})
        assert (out3 - out2).abs().max() > 1e-6
        # outside the `active` context the hooks are no-ops: the plain UNet is unchanged
        torch.testing.assert_close(_base_out(model, sample, c_noise, cond), base, rtol=0.0, atol=1e-6)


def test_plucker_prepare_matches_geometry_and_latent_intrinsics() -> None:
    model = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker")
    K, c2w = _cameras(b=2)
    h, w = H // 4, W // 4
    cams = model.prepare_cameras(K, c2w, (h, w))
    assert cams["cam_input"].shape == (2, F, 6, h, w)
    # c2w is made relative to frame 0; K is rescaled to the latent grid
    assert torch.allclose(cams["cam_c2w"][:, 0], torch.eye(4).expand(2, 4, 4), atol=1e-6)
    ref = plucker_embedding(cams["cam_K_px"][1], cams["cam_c2w"][1], h, w)
    torch.testing.assert_close(cams["cam_input"][1], ref)
    # a 3D point projects to (u, v) in the image and to (u, v) / 4 on the latent grid
    X = torch.tensor([[[0.2, -0.1, 1.5]]])
    uv_img, _ = project_points(K[0, 1:2], torch.eye(4)[None], X)
    uv_lat, _ = project_points(cams["cam_K_px"][0, 1:2], torch.eye(4)[None], X)
    torch.testing.assert_close(uv_lat, uv_img / 4)


def test_plucker_feature_shapes_follow_down_blocks() -> None:
    bb = build_tiny_backbone(unet_channels=(32, 64, 64), seed=0)
    enc = PluckerEncoder.from_unet(bb.unet)
    assert enc.down_in_channels == (32, 32, 64)
    feats = enc(torch.zeros(2, 3, 6, 9, 13))
    assert [tuple(f.shape) for f in feats] == [(6, 32, 9, 13), (6, 32, 5, 7), (6, 64, 3, 4)]
    assert all(torch.equal(f, torch.zeros_like(f)) for f in feats)  # zero-initialised outputs
    with pytest.raises(ValueError, match="Plücker"):
        enc(torch.zeros(2, 3, 5, 9, 13))
    with pytest.raises(ValueError, match="Plücker"):
        enc(torch.zeros(6, 6, 9, 13))


def test_plucker_wrong_resolution_is_reported() -> None:
    model = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker")
    sample, c_noise, cond = _unet_inputs(model)
    K, c2w = _cameras()
    cams = model.prepare_cameras(K, c2w, (sample.shape[-2] * 2, sample.shape[-1] * 2))
    with pytest.raises(ValueError, match="latent resolution"):
        model.unet_forward(sample, c_noise, {**cond, **cams})


def test_rt_encoder_input_and_temporal_dims() -> None:
    bb = build_tiny_backbone(seed=0)
    enc = RTEncoder.from_unet(bb.unet)
    dims = [int(m.norm_in.normalized_shape[0]) for m in RTEncoder.temporal_blocks(bb.unet)]
    assert [p.out_features for p in enc.projs] == dims and len(dims) > 0
    K, c2w = _cameras(b=2)
    rt = enc.prepare(K, c2w, 10, 13)
    assert rt.shape == (2, F, 12)
    torch.testing.assert_close(rt[1, 2].reshape(3, 4), c2w[1, 2, :3, :4])
    with pytest.raises(ValueError):
        enc(torch.zeros(2, F, 16))


def test_build_camera_encoder_kinds() -> None:
    bb = build_tiny_backbone(seed=0)
    assert isinstance(build_camera_encoder("plucker", bb.unet), PluckerEncoder)
    assert isinstance(build_camera_encoder("rt", bb.unet), RTEncoder)
    assert isinstance(build_camera_encoder("none", bb.unet), NoCameraEncoder)
    with pytest.raises(ValueError, match="camera_encoder"):
        build_camera_encoder("motionctrl", bb.unet)
    enc = build_camera_encoder("plucker", bb.unet)
    with pytest.raises(ValueError, match="needs a camera input"):
        with enc.active(None):
            pass
