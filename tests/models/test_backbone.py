"""Backbone builders, autoencoders and save/load round trips."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
from transformers import CLIPVisionModelWithProjection

from vid3d.models.backbone import build_tiny_backbone, load_svd_backbone, save_backbone
from vid3d.models.vae import PixelUnshuffleAutoencoder, TemporalVAEAdapter, tiny_kl_autoencoder

# float32 results of the same math through two module objects (issue 22): round-off only
F32 = {"rtol": 1e-5, "atol": 1e-6}


def test_pixel_autoencoder_layout_and_exact_round_trip() -> None:
    ae = PixelUnshuffleAutoencoder(factor=4)
    x = torch.rand(2, 3, 8, 12) * 2 - 1
    z = ae.encode_latents(x)
    assert z.shape == (2, 48, 2, 3) and ae.latent_channels == 48 and ae.downscale == 4
    # channel c * f^2 + i * f + j at (y, x) holds pixel (c, y * f + i, x * f + j)
    for c, i, j, y, xx in [(0, 0, 0, 0, 0), (1, 2, 3, 1, 2), (2, 3, 1, 0, 1)]:
        assert z[1, c * 16 + i * 4 + j, y, xx] == x[1, c, y * 4 + i, xx * 4 + j]
    assert torch.equal(ae.decode_latents(z, num_frames=2), x)  # a pure permutation: bitwise by construction
    with pytest.raises(ValueError, match="divisible"):
        ae.encode_latents(torch.zeros(1, 3, 10, 12))


def test_tiny_backbone_uses_svd_classes_and_is_seeded() -> None:
    bb = build_tiny_backbone(seed=3)
    assert isinstance(bb.unet, UNetSpatioTemporalConditionModel)
    assert isinstance(bb.image_encoder, CLIPVisionModelWithProjection)
    assert bb.latent_channels == 48 and bb.unet.config.in_channels == 96
    assert bb.image_encoder.config.image_size == 224
    assert bb.image_encoder.config.projection_dim == bb.unet.config.cross_attention_dim == 32
    assert not any(p.requires_grad for p in bb.image_encoder.parameters())
    bb2, bb3 = build_tiny_backbone(seed=3), build_tiny_backbone(seed=4)
    w = "conv_in.weight"
    assert torch.equal(bb.unet.state_dict()[w], bb2.unet.state_dict()[w])
    assert not torch.equal(bb.unet.state_dict()[w], bb3.unet.state_dict()[w])
    # building does not disturb the global RNG
    torch.manual_seed(0)
    a = torch.rand(1)
    torch.manual_seed(0)
    build_tiny_backbone()
    assert torch.equal(torch.rand(1), a)


def test_tiny_kl_adapter() -> None:
    bb = build_tiny_backbone(vae=tiny_kl_autoencoder, seed=0)
    ae = bb.vae
    assert isinstance(ae, TemporalVAEAdapter) and isinstance(ae.vae, AutoencoderKLTemporalDecoder)
    assert bb.latent_channels == 4 and ae.downscale == 4 and ae.scaling_factor == pytest.approx(0.18215)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z = ae.encode_latents(x)
        raw = ae.encode_latents(x, scaled=False)
        mode = ae.vae.encode(x).latent_dist.mode()
        torch.testing.assert_close(raw, mode)
        torch.testing.assert_close(z, 0.18215 * mode)
        assert z.shape == (4, 4, 4, 4)
        y = ae.decode_latents(z, num_frames=2)
        ref = ae.vae.decode(z / 0.18215, num_frames=2).sample
        assert y.shape == (4, 3, 16, 16)
        torch.testing.assert_close(y, ref)
        ae.decode_chunk_size = 2  # chunked decoding of whole videos gives the same frames
        torch.testing.assert_close(ae.decode_latents(z, num_frames=2), ref, rtol=1e-4, atol=1e-5)


def _unet_out(bb, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    c = bb.latent_channels
    x = torch.randn(1, 2, 2 * c, 4, 4, generator=g)
    with torch.no_grad():
        return bb.unet(
            x,
            torch.tensor([0.1]),
            torch.randn(1, 1, 32, generator=g),
            torch.tensor([[6.0, 127.0, 0.02]]),
            return_dict=False,
        )[0]


VAES = {"pixel": PixelUnshuffleAutoencoder, "tiny_kl": tiny_kl_autoencoder}


@pytest.mark.parametrize("vae", sorted(VAES))
def test_save_and_load_round_trip(tmp_path, vae: str) -> None:
    bb = build_tiny_backbone(vae=VAES[vae], seed=1)
    folder = save_backbone(bb, tmp_path / "svd")
    assert {p.name for p in folder.iterdir()} == {"unet", "vae", "image_encoder"}
    loaded = load_svd_backbone(folder)
    assert type(loaded.vae) is type(bb.vae)
    # stored tensors round-trip bitwise; outputs of two module objects only to float32 round-off (their
    # CPU kernels may take different, equally valid paths)
    for name, module in [("unet", bb.unet), ("vae", bb.vae), ("image_encoder", bb.image_encoder)]:
        other = getattr(loaded, name).state_dict()
        for k, v in module.state_dict().items():
            assert torch.equal(v, other[k]), (name, k)
    torch.testing.assert_close(_unet_out(loaded), _unet_out(bb), **F32)
    img = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.image_encoder(pixel_values=img).image_embeds,
            bb.image_encoder(pixel_values=img).image_embeds,
            **F32,
        )
        x = torch.rand(2, 3, 16, 16) * 2 - 1
        torch.testing.assert_close(loaded.vae.encode_latents(x), bb.vae.encode_latents(x), **F32)
    # saving again over an existing folder replaces it
    save_backbone(build_tiny_backbone(vae=VAES[vae], seed=2), folder)
    assert (_unet_out(load_svd_backbone(folder)) - _unet_out(bb)).abs().max() > 1e-3


def test_missing_component_names_the_path(tmp_path) -> None:
    folder = save_backbone(build_tiny_backbone(seed=0), tmp_path / "svd")
    for f in (folder / "image_encoder").iterdir():
        f.unlink()
    with pytest.raises(FileNotFoundError, match=str(folder / "image_encoder")):
        load_svd_backbone(folder)
    with pytest.raises(FileNotFoundError, match="unet"):
        load_svd_backbone(tmp_path / "does_not_exist")


def test_uncached_hub_id_fails_without_network(monkeypatch, tmp_path) -> None:
    from huggingface_hub import constants

    from vid3d.weights import WeightsUnavailable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(WeightsUnavailable, match="vid3d-test/not-a-model.*HF_HUB_OFFLINE=1.*hf download"):
        load_svd_backbone("vid3d-test/not-a-model")
