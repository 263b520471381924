"""The late-frame dissolve diagnosis (vid3d/evaluation/dissolve.py) against independent formulas: the training
sigma CDF against draws of ``edm.sample_train_sigma``, one-step errors of an identity denoiser (sigma^2 times
the noise power), an exact denoiser's sampling path (estimate error 0, noise ratio = the noise power), the
detail ratio of a blurred copy, and the conditioning ablation's variants."""

import math

import torch

from vid3d.evaluation.dissolve import (
    conditioning_ablation,
    detail_ratio,
    frame_mse,
    one_step_frame_errors,
    path_frame_errors,
    report_lines,
    train_sigma_cdf,
)
from vid3d.models.edm import sample_train_sigma
from vid3d.sampling.samplers import karras_sigmas


class _Model:
    """denoise(x, sigma, cond): the identity, or (exact) the clean latents x0 whatever the input."""

    def __init__(self, x0=None):
        self.x0 = x0
        self.conds = []

    def denoise(self, x, sigma, cond):
        self.conds.append(cond)
        return x.clone() if self.x0 is None else self.x0.to(x.dtype).clone()


def test_train_sigma_cdf_matches_the_sampler_draws():
    g = torch.Generator().manual_seed(0)
    draws = sample_train_sigma(200_000, -0.4, 1.6, g, high_fraction=0.7, P_mean_high=1.6, P_std_high=0.3)
    for s in (0.05, 0.3, 1.0, 4.0, 6.0, 20.0):
        empirical = float((draws <= s).double().mean())
        assert abs(train_sigma_cdf(s, -0.4, 1.6, 0.7, 1.6, 0.3) - empirical) < 0.004, s
    # one log-normal: Phi at the mean is 1/2; sigma <= 0 has no mass
    assert train_sigma_cdf(math.exp(0.7), 0.7, 1.6) == 0.5 and train_sigma_cdf(0.0, 0.7, 1.6) == 0.0


def test_one_step_error_of_the_identity_is_sigma_squared_times_the_noise_power():
    x0 = torch.randn(2, 3, 4, 5, 6, generator=torch.Generator().manual_seed(1))
    err = one_step_frame_errors(_Model(), x0, {}, [0.5, 2.0], seed=3)
    n = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3)).double()
    power = n.pow(2).transpose(0, 1).flatten(1).mean(1)  # (F,)
    assert err.shape == (2, 3)
    assert torch.allclose(err[0], 0.25 * power, rtol=1e-5) and torch.allclose(err[1], 4.0 * power, rtol=1e-5)


def test_exact_denoiser_path_stays_on_the_noised_truth():
    x0 = torch.randn(2, 4, 3, 5, 6, generator=torch.Generator().manual_seed(2))
    sig = karras_sigmas(6, 0.01, 50.0, 7.0)
    out = path_frame_errors(_Model(x0), x0, {}, sig, seed=4)
    n = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4)).double()  # drawn as the path draws
    assert out["estimate"].shape == (6, 4) and float(out["estimate"].abs().max()) < 1e-10
    assert float(out["final"].abs().max()) < 1e-10
    # Euler with D = x0 scales x - x0 by sigma_{i+1} / sigma_i, so |x - D|^2 / sigma^2 keeps its value at
    # the start (x_T = sigma_0 n) at every step
    start = float((sig[0] * n - x0.double()).pow(2).mean() / sig[0] ** 2)
    assert torch.allclose(out["noise_ratio"], torch.full((6,), start, dtype=torch.float64), rtol=1e-9)
    assert torch.allclose(out["sigma"], sig[:-1])
    assert torch.allclose(out["detail"], torch.ones(6, dtype=torch.float64))


def test_detail_ratio_blur_and_identity():
    x = torch.randn(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(5))
    assert abs(detail_ratio(x, x) - 1.0) < 1e-12
    blurred = (x + x.roll(1, -1) + x.roll(1, -2) + x.roll((1, 1), (-2, -1))) / 4
    assert detail_ratio(blurred, x) < 0.6  # a 2x2 box filter removes most of white noise's differences
    assert abs(detail_ratio(2 * x, x) - 4.0) < 1e-9


def test_conditioning_ablation_replaces_only_the_conditioning_latent():
    x0 = torch.zeros(3, 2, 1, 2, 2)
    c = torch.arange(3 * 4, dtype=torch.float32).reshape(3, 1, 2, 2)
    model = _Model()
    out = conditioning_ablation(model, x0, {"cond_latent": c, "other": 7}, [1.0], seed=0)
    assert set(out) == {"frame 0", "noise", "another clip's"}
    seen = [m["cond_latent"] for m in model.conds]
    assert torch.equal(seen[0], c) and torch.equal(seen[2], torch.roll(c, -1, 0))
    assert not torch.equal(seen[1], c) and all(m["other"] == 7 for m in model.conds)
    # the identity denoiser ignores the condition: every variant reads the same error
    assert torch.equal(out["frame 0"], out["noise"]) and torch.equal(out["noise"], out["another clip's"])
    assert torch.allclose(frame_mse(x0 + 1, x0), torch.ones(2, dtype=torch.float64))


def test_report_lines_name_every_table():
    rec = {
        "clips": 1, "frames": 2, "copy_frame0": [0.0, 0.1],
        "one_step": {"1": {"train_cdf": 0.2, "frames": [0.01, 0.02]}},
        "path": {"schedule": {"steps": 1, "sigma_min": 0.002, "sigma_max": 700.0, "rho": 7.0},
                 "sigma": [700.0], "train_cdf": [1.0], "noise_ratio": [1.0], "detail": [0.5],
                 "estimate": [[0.03, 0.04]], "final": [0.03, 0.04]},
        "conditioning": {"noise": {"1": [0.05, 0.06]}},
    }
    text = "\n".join(report_lines(rec))
    assert "copy frame 0" in text and "Euler path" in text
    assert "sigma of the best estimate per frame: 700" in text
    assert "0.9850" not in text and "    0.985" in text  # 1 - mean(err) / sigma^2 = 1 - 0.015


def test_command_refuses_bad_arguments_in_one_line(capsys):
    import pytest

    from vid3d.tasks.dissolve import main

    with pytest.raises(SystemExit) as e:
        main(["model.safetensors", "--sigma-min", "5", "--sigma-max", "1"])
    assert e.value.code == 2 and "0 < --sigma-min < --sigma-max" in capsys.readouterr().err
