"""CameraVideoDiffusion: autoencoding, SVD conditioning, preconditioned denoiser, CFG batching, loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as Fn

import vid3d.models.video_diffusion as vd
from vid3d.geometry import look_at_c2w
from vid3d.models.backbone import build_tiny_backbone
from vid3d.models.conditioning import CLIP_MEAN, CLIP_STD, clip_preprocess, sample_cond_sigma
from vid3d.models.video_diffusion import CameraVideoDiffusion

B, F, H, W = 2, 3, 32, 48


def _batch(b: int = B, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]).expand(b, F, 3, 3).clone()
    eyes = torch.stack([torch.tensor([0.25 * i, 0.0, -2.0]) for i in range(F)]).double()
    c2w = look_at_c2w(eyes, torch.zeros(F, 3, dtype=torch.float64)).float().expand(b, F, 4, 4).clone()
    return {"frames": torch.rand(b, F, 3, H, W, generator=g) * 2 - 1, "K_px": K, "c2w": c2w}


@pytest.fixture(scope="module")
def model() -> CameraVideoDiffusion:
    return CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker")


def test_encode_decode_round_trip(model) -> None:
    x = _batch()["frames"]
    z = model.encode(x)
    assert z.shape == (B, F, 48, H // 4, W // 4)
    assert torch.equal(model.decode(z), x)  # pixel-unshuffle stand-in: a permutation, bitwise


def test_clip_preprocess_constant_image() -> None:
    v = 0.4  # constant image in [-1, 1] -> (((v + 1) / 2) - mean) / std per channel, any input size
    out = clip_preprocess(torch.full((1, 3, 30, 50), v))
    assert out.shape == (1, 3, 224, 224)
    for c in range(3):
        ref = ((v + 1) / 2 - CLIP_MEAN[c]) / CLIP_STD[c]
        assert torch.allclose(out[0, c], torch.full((224, 224), ref), atol=1e-5)


def test_sampling_conditioning(model) -> None:
    first = _batch()["frames"][:, 0]
    cond = model.conditioning(first, train=False, generator=torch.Generator().manual_seed(1))
    assert set(cond) == {"encoder_hidden_states", "cond_latent", "added_time_ids"}
    torch.testing.assert_close(cond["added_time_ids"], torch.tensor([[6.0, 127.0, 0.02]] * B))
    with torch.no_grad():
        ref = model.backbone.image_encoder(pixel_values=clip_preprocess(first)).image_embeds[:, None]
    torch.testing.assert_close(cond["encoder_hidden_states"], ref)
    # pixel VAE: cond latent = unshuffle(image + 0.02 * noise)
    diff = cond["cond_latent"] - Fn.pixel_unshuffle(first, 4)
    assert diff.std().item() == pytest.approx(0.02, rel=0.1)
    assert abs(diff.mean().item()) < 0.002


def test_training_conditioning_dropout_and_noise_aug() -> None:
    bb = build_tiny_backbone(seed=0)
    first = torch.rand(200, 3, 8, 8) * 2 - 1
    gen = torch.Generator().manual_seed(2)
    m = CameraVideoDiffusion(bb, camera_encoder="none", cond_dropout=0.15)
    cond = m.conditioning(first, train=True, generator=gen)
    dropped_e = cond["encoder_hidden_states"].flatten(1).abs().sum(1) == 0
    dropped_l = cond["cond_latent"].flatten(1).abs().sum(1) == 0
    assert torch.equal(dropped_e, dropped_l)  # dropped together
    assert 0.08 < dropped_e.float().mean().item() < 0.24  # 200 draws of p = 0.15 (> 4 std margin)
    sig = cond["added_time_ids"][:, 2]
    assert bool((sig > 0).all()) and sig.unique().numel() > 100
    m_all = CameraVideoDiffusion(bb, camera_encoder="none", cond_dropout=1.0)
    assert not m_all.conditioning(first[:4], train=True)["cond_latent"].abs().sum()
    s = sample_cond_sigma(100_000, generator=torch.Generator().manual_seed(3)).double().log()
    assert s.mean().item() == pytest.approx(-3.0, abs=0.01)
    assert s.std().item() == pytest.approx(0.5, abs=0.01)


def test_unconditional_zeroes_image_condition_keeps_cameras(model) -> None:
    b = _batch()
    cond = {
        **model.conditioning(b["frames"][:, 0], train=False),
        **model.prepare_cameras(b["K_px"], b["c2w"], (H // 4, W // 4)),
    }
    un = model.unconditional(cond)
    assert not un["encoder_hidden_states"].abs().sum() and not un["cond_latent"].abs().sum()
    for k in ("added_time_ids", "cam_K_px", "cam_c2w", "cam_input"):
        assert torch.equal(un[k], cond[k])


def test_denoise_matches_hand_computation(model) -> None:
    b = _batch()
    g = torch.Generator().manual_seed(4)
    cond = model.conditioning(b["frames"][:, 0], train=False, generator=g)
    cams = model.prepare_cameras(b["K_px"], b["c2w"], (H // 4, W // 4))
    x = torch.randn(B, F, 48, H // 4, W // 4, generator=g) * 3
    sigma = torch.tensor([0.5, 4.0])
    with torch.no_grad():
        d = model.denoise(x, sigma, cond, cams)
        s = sigma.view(B, 1, 1, 1, 1)
        inp = torch.cat(
            [x / (s**2 + 1).sqrt(), cond["cond_latent"][:, None].expand(B, F, 48, H // 4, W // 4)], 2
        )
        t = torch.tensor([0.25 * math.log(0.5), 0.25 * math.log(4.0)])
        raw = model.unet(
            inp,
            t,
            encoder_hidden_states=cond["encoder_hidden_states"],
            added_time_ids=cond["added_time_ids"],
            return_dict=False,
        )[0]
    ref = x / (s**2 + 1) - s / (s**2 + 1).sqrt() * raw
    torch.testing.assert_close(d, ref, rtol=1e-5, atol=1e-5)


def test_cfg_batch_equals_separate_calls(model) -> None:
    b = _batch()
    cond = {
        **model.conditioning(b["frames"][:, 0], train=False, generator=torch.Generator().manual_seed(5)),
        **model.prepare_cameras(b["K_px"], b["c2w"], (H // 4, W // 4)),
    }
    for p in model.camera_encoder.parameters():  # make the camera path non-trivial
        p.data.normal_(0, 0.02, generator=torch.Generator().manual_seed(6))
    un = model.unconditional(cond)
    both = {k: torch.cat([un[k], cond[k]]) for k in cond}
    x = torch.randn(B, F, 48, H // 4, W // 4, generator=torch.Generator().manual_seed(7))
    sigma = torch.tensor([1.0, 2.0])
    with torch.no_grad():
        d_both = model.denoise(torch.cat([x, x]), torch.cat([sigma, sigma]), both)
        d_u, d_c = model.denoise(x, sigma, un), model.denoise(x, sigma, cond)
    torch.testing.assert_close(d_both, torch.cat([d_u, d_c]), rtol=1e-4, atol=1e-5)
    assert (d_u - d_c).abs().max() > 1e-4
    for p in model.camera_encoder.outs.parameters():  # restore zero init for other tests
        p.data.zero_()


def test_training_loss_deterministic_and_backpropagates() -> None:
    m = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker")
    b = _batch()
    loss, logs = m.training_loss(b, generator=torch.Generator().manual_seed(8))
    loss2, _ = m.training_loss(b, generator=torch.Generator().manual_seed(8))
    loss3, _ = m.training_loss(b, generator=torch.Generator().manual_seed(9))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss3 != loss
    torch.testing.assert_close(loss, loss2, rtol=1e-6, atol=0.0)  # same draws: same loss up to round-off
    assert set(logs) >= {"sigma_mean", "loss_unweighted", "cond_dropped"}
    loss.backward()
    out_grad = m.camera_encoder.outs[0].weight.grad
    assert out_grad is not None and out_grad.abs().sum() > 0
    assert m.unet.conv_in.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.backbone.image_encoder.parameters())


def test_adapter_protocol_with_fake(monkeypatch) -> None:
    calls: list = []

    class FakeAdapter:
        def set_cameras(self, K_px, c2w, num_frames):
            calls.append(("set", K_px.clone(), c2w.clone(), num_frames))

        def clear(self):
            calls.append(("clear",))

    monkeypatch.setattr(vd, "_attach_attention", lambda unet, kind, bw, kw: FakeAdapter())
    m = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="none", attention="epipolar")
    b = _batch()
    with torch.no_grad():
        m.training_loss(b, generator=torch.Generator().manual_seed(0))
    assert [c[0] for c in calls] == ["set", "clear"]
    _, K_lat, c2w, nf = calls[0]
    assert nf == F and K_lat.shape == (B, F, 3, 3)
    torch.testing.assert_close(K_lat[0, 0, 0], b["K_px"][0, 0, 0] / 4)
    torch.testing.assert_close(c2w[:, 0], torch.eye(4).expand(B, 4, 4), atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        CameraVideoDiffusion(build_tiny_backbone(seed=0), attention="sparse")


@pytest.mark.parametrize("kind", ["epipolar", "full"])
def test_attention_kinds_integration(kind: str) -> None:
    from vid3d.models.freeze import apply_freeze_policy

    m = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker", attention=kind)
    groups = apply_freeze_policy(m, ["epipolar"])
    assert groups["epipolar"] and all(n.startswith("attention_adapter.") for n in groups["epipolar"])
    assert len(groups["epipolar"]) == len(list(m.attention_adapter.parameters()))
    b = _batch()
    cams = m.prepare_cameras(b["K_px"], b["c2w"], (H // 4, W // 4))
    cond = {**m.conditioning(b["frames"][:, 0], train=False), **cams}
    x = torch.randn(B, F, 48, H // 4, W // 4, generator=torch.Generator().manual_seed(0))
    plain = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker")
    with torch.no_grad():  # zero-initialised adapter: same output as without it
        torch.testing.assert_close(m.denoise(x, torch.ones(B), cond), plain.denoise(x, torch.ones(B), cond))
    loss, _ = m.training_loss(b, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.attention_adapter.parameters())
