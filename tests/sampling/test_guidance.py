import pytest
import torch

from vid3d.sampling.guidance import cfg_denoiser, frame_guidance, merge_conditions
from vid3d.sampling.samplers import karras_sigmas, sample_edm_euler

B, F, C, H, W = 2, 5, 3, 4, 4


class FakeModel:
    """denoise_fn(x, sigma, cond) = 0.9 x + cond["image"] (broadcast over frames) * sigma + bias.

    Conditioning differs between cond and uncond only through the tensors, so D_c != D_u.
    """

    def __init__(self):
        self.calls = []

    def __call__(self, x, sigma, cond):
        self.calls.append((x.shape[0], sorted(cond)))
        img = cond["image"][:, None]  # (N, 1, C, H, W)
        bias = cond["bias"].view(-1, 1, 1, 1, 1)
        return 0.9 * x + img * sigma.view(-1, 1, 1, 1, 1) + bias


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, F, C, H, W, generator=g)
    sigma = torch.full((B,), 1.7)
    cond = {"image": torch.randn(B, C, H, W, generator=g), "bias": torch.tensor([0.3, -0.2]), "mask": None}
    uncond = {"image": torch.zeros(B, C, H, W), "bias": torch.zeros(B), "mask": None}
    return x, sigma, cond, uncond


def single(model, x, sigma, c):
    return model(x, sigma, c)


def test_scale_endpoints_exact(setup):
    x, sigma, cond, uncond = setup
    ref = FakeModel()
    d_c, d_u = single(ref, x, sigma, cond), single(ref, x, sigma, uncond)
    assert not torch.allclose(d_c, d_u)
    for scale, expected in [(1.0, d_c), (0.0, d_u), (torch.ones(F), d_c), (torch.zeros(F), d_u)]:
        out = cfg_denoiser(FakeModel(), cond, uncond, scale)(x, sigma)
        assert torch.equal(out, expected), scale  # _combine selects d_u / d_c exactly at w = 0 / 1


def test_one_batched_call_and_formula(setup):
    x, sigma, cond, uncond = setup
    model = FakeModel()
    out = cfg_denoiser(model, cond, uncond, 2.5)(x, sigma)
    assert model.calls == [(2 * B, ["bias", "image", "mask"])]
    ref = FakeModel()
    d_c, d_u = single(ref, x, sigma, cond), single(ref, x, sigma, uncond)
    torch.testing.assert_close(out, d_u + 2.5 * (d_c - d_u), rtol=1e-6, atol=1e-6)
    # float scale 1: only the conditional batch is run
    model1 = FakeModel()
    cfg_denoiser(model1, cond, uncond, 1.0)(x, sigma)
    assert model1.calls == [(B, ["bias", "image", "mask"])]


def test_per_frame_scale_broadcast(setup):
    x, sigma, cond, uncond = setup
    scale = frame_guidance(F, 1.0, 3.0)
    assert torch.allclose(scale, torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]))
    out = cfg_denoiser(FakeModel(), cond, uncond, scale)(x, sigma)
    ref = FakeModel()
    d_c, d_u = single(ref, x, sigma, cond), single(ref, x, sigma, uncond)
    for f in range(F):  # frame f uses scale[f], independently of the other dims
        expected = d_u[:, f] + float(scale[f]) * (d_c[:, f] - d_u[:, f])
        torch.testing.assert_close(out[:, f], expected, rtol=1e-6, atol=1e-6)
    # per-(batch, frame) scales
    scale_bf = torch.stack([scale, scale.flip(0)])
    out_bf = cfg_denoiser(FakeModel(), cond, uncond, scale_bf)(x, sigma)
    torch.testing.assert_close(out_bf[1, 0], d_u[1, 0] + 3.0 * (d_c[1, 0] - d_u[1, 0]))
    with pytest.raises(ValueError):
        cfg_denoiser(FakeModel(), cond, uncond, torch.ones(F + 1))(x, sigma)


def test_merge_conditions_checks():
    u = {"a": torch.zeros(2, 3), "n": None, "k": 4}
    c = {"a": torch.ones(2, 3), "n": None, "k": 4}
    m = merge_conditions(u, c)
    assert m["a"].shape == (4, 3) and m["a"][:2].eq(0).all() and m["a"][2:].eq(1).all()
    assert m["n"] is None and m["k"] == 4
    with pytest.raises(ValueError):
        merge_conditions(u, {"a": torch.ones(2, 3), "n": None})
    with pytest.raises(ValueError):
        merge_conditions(u, {**c, "n": torch.ones(2)})
    with pytest.raises(ValueError):
        merge_conditions(u, {**c, "a": torch.ones(2, 4)})


def test_guided_sampling_runs(setup):
    x, _, cond, uncond = setup
    model = FakeModel()
    den = cfg_denoiser(model, cond, uncond, frame_guidance(F))
    out = sample_edm_euler(den, x * 10, karras_sigmas(4, sigma_max=10.0))
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert len(model.calls) == 4 and all(n == 2 * B for n, _ in model.calls)
