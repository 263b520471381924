"""Step-invariant work computed once per video (``VideoSampler(cache_conditions=True)``,
``CameraVideoDiffusion.sampling_cache``) and the GPU options (bf16 autocast, a compiled UNet), on the CPU.

The committed CPU camera model (Plücker + epipolar attention, 32x48, 8 frames) samples the same video with
and without the cache; the batched forward of CFG's two equal camera halves encoded once changes float
rounding only (tolerance 1e-4 in [-1, 1] units; measured 5e-6). The cache's mechanism is checked by
counting encoder forwards: once per video instead of once per step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vid3d.models.checkpoint import load_model
from vid3d.sampling.video_sampler import VideoSampler

ASSET = Path(__file__).resolve().parents[2] / "assets/cpu_camera_control/epipolar_32x48_hx3big.safetensors"
F, H, W = 8, 32, 48


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_model(ASSET).eval()


def _inputs(b: int = 1):
    g = torch.Generator().manual_seed(3)
    image = torch.rand(b, 3, H, W, generator=g) * 2 - 1
    K = torch.tensor([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]).expand(b, F, 3, 3).contiguous()
    c2w = torch.eye(4).repeat(b, F, 1, 1)
    c2w[:, :, 0, 3] = torch.linspace(0, 0.6, F)
    c2w[:, :, 2, 3] = torch.linspace(0, 0.3, F)
    return image, K, c2w


def _video(model, sampler, data, seed=0):
    return sampler(model, *data, generator=torch.Generator().manual_seed(seed))


def _count_encoder(model, monkeypatch) -> list[int]:
    """Batch sizes the camera encoder's compute sees."""
    seen: list[int] = []
    original = model.camera_encoder.compute

    def counting(camera_input):
        seen.append(int(camera_input.shape[0]))
        return original(camera_input)

    monkeypatch.setattr(model.camera_encoder, "compute", counting)
    return seen


def test_cached_and_reference_paths_give_the_same_video(model, monkeypatch):
    data = _inputs()
    seen = _count_encoder(model, monkeypatch)
    ref = _video(model, VideoSampler(num_steps=3, cache_conditions=False), data)
    assert seen == [2, 2, 2]  # every step, CFG's [uncond; cond] batch
    seen.clear()
    cached = _video(model, VideoSampler(num_steps=3), data)
    assert seen == [1]  # once per video, one half of the CFG batch
    assert (ref - cached).abs().max() < 1e-4
    # the camera matters here: another trajectory gives another video (the cache did not freeze it)
    other = _inputs()
    other[2][:, :, 0, 3] *= -1
    assert (_video(model, VideoSampler(num_steps=3), other) - cached).abs().max() > 1e-2


def test_reuse_sees_an_edited_camera_input(model):
    enc = model.camera_encoder
    cams = model.prepare_cameras(*_inputs()[1:], (H // model.downscale, W // model.downscale), (H, W))
    ci = cams["cam_input"]
    with torch.no_grad(), enc.reuse_features():
        with enc.active(ci):
            first = [f.clone() for f in enc._stash]
        with enc.active(ci):
            assert all(a is b for a, b in zip(enc._stash, enc._memo[2]))
        ci.mul_(-1)  # in place: the version counter moves, so the features are recomputed
        with enc.active(ci):
            assert any((a - b).abs().max() > 0 for a, b in zip(first, enc._stash))
    assert not enc._reuse and enc._memo is None


def test_adapter_reuses_cameras_by_identity_and_sees_in_place_edits(model):
    adapter = model.attention_adapter
    K = torch.eye(3).repeat(1, F, 1, 1)
    c2w = torch.eye(4).repeat(1, F, 1, 1)
    c2w[:, :, 0, 3] = torch.linspace(0, 1, F)
    with adapter.reuse_cameras():
        adapter.set_cameras(K, c2w, F)
        cache = adapter._geometry_cache
        cache["marker"] = 1
        adapter.set_cameras(K, c2w, F)
        assert adapter._geometry_cache is cache
        c2w[:, :, 0, 3] *= 2  # edited in place: a new cache
        adapter.set_cameras(K, c2w, F)
        assert "marker" not in adapter._geometry_cache
    adapter.clear()


def test_per_item_generators_give_each_video_alone(model):
    image, K, c2w = _inputs(2)
    c2w[1, :, 0, 3] *= -1
    sampler = VideoSampler(num_steps=2)
    both = sampler(model, image, K, c2w, generator=[torch.Generator().manual_seed(s) for s in (5, 6)])
    for i, s in enumerate((5, 6)):
        alone = sampler(model, image[i : i + 1], K[i : i + 1], c2w[i : i + 1],
                        generator=torch.Generator().manual_seed(s))
        assert (alone[0] - both[i]).abs().max() < 1e-4
    with pytest.raises(ValueError, match="one per video"):
        sampler(model, image, K, c2w, generator=[torch.Generator()])


def test_bf16_autocast_runs_and_stays_close(model):
    """bf16 (8 mantissa bits) through 3 steps: mean |diff| < 0.02 and max < 0.3 in [-1, 1] units (measured
    0.007 and 0.11); the float32 path is untouched (the sampler's default)."""
    data = _inputs()
    ref = _video(model, VideoSampler(num_steps=3), data)
    bf = _video(model, VideoSampler(num_steps=3, autocast="bf16"), data)
    assert bf.dtype == torch.float32 and torch.isfinite(bf).all()
    diff = (ref - bf).abs()
    assert 0 < diff.mean() < 0.02 and diff.max() < 0.3
    with pytest.raises(ValueError, match="autocast"):
        VideoSampler(autocast="fp8")


@pytest.mark.slow  # ~30 s: dynamo traces the whole UNet
def test_compiled_unet_runs_with_the_camera_hooks():
    """``compile_unet`` with the "eager" backend (dynamo traces the UNet and its camera hooks; inductor's code
    generation takes minutes on a CPU, it is the GPU check's part): same video as uncompiled to 1e-5."""
    from vid3d.models.backbone import build_tiny_backbone
    from vid3d.models.video_diffusion import CameraVideoDiffusion

    torch.manual_seed(0)
    m = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker", attention="epipolar")
    m.eval()
    with torch.no_grad():
        for p in m.camera_encoder.parameters():
            if not p.any():
                p.normal_(0, 0.05)
    data = _inputs()
    ref = _video(m, VideoSampler(num_steps=2), data)
    got = _video(m, VideoSampler(num_steps=2, compile_unet="eager"), data)
    assert getattr(m.unet, "_vid3d_compiled", None) == "eager"
    assert (ref - got).abs().max() < 1e-5
    assert set(m.state_dict()) == set(
        CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker", attention="epipolar")
        .state_dict()
    )
