"""EDM / SVD preconditioning formulas against independent float64 computations."""

from __future__ import annotations

import math

import pytest
import torch

from vid3d.models.edm import edm_loss, karras_sigmas, loss_weight, sample_train_sigma, svd_precond

SIGMAS = [0.002, 0.03, 0.5, 1.0, 2.7, 80.0, 700.0]


@pytest.mark.parametrize("s", SIGMAS)
def test_svd_precond_matches_closed_form(s: float) -> None:
    c_skip, c_out, c_in, c_noise = svd_precond(torch.tensor([s], dtype=torch.float64))
    assert c_skip.item() == pytest.approx(1.0 / (s * s + 1.0), rel=1e-14)
    assert c_out.item() == pytest.approx(-s / math.sqrt(s * s + 1.0), rel=1e-14)
    assert c_in.item() == pytest.approx(1.0 / math.sqrt(s * s + 1.0), rel=1e-14)
    assert c_noise.item() == pytest.approx(0.25 * math.log(s), rel=1e-14)


def test_precond_matches_v_prediction_identity() -> None:
    """With F = v := (n - sigma x0) / sqrt(sigma^2 + 1) the denoiser recovers x0 exactly (v-prediction)."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(len(SIGMAS), 5, generator=g, dtype=torch.float64)
    n = torch.randn(len(SIGMAS), 5, generator=g, dtype=torch.float64)
    s = torch.tensor(SIGMAS, dtype=torch.float64)[:, None]
    x = x0 + s * n
    c_skip, c_out, c_in, _ = svd_precond(s)
    v = (n - s * x0) / (s * s + 1).sqrt()
    torch.testing.assert_close(c_skip * x + c_out * v, x0, rtol=0, atol=1e-9)
    # c_in normalises the noisy input to unit variance when x0 has unit variance
    assert torch.allclose(c_in**2 * (1 + s**2), torch.ones_like(s))


def test_loss_weight() -> None:
    s = torch.tensor(SIGMAS, dtype=torch.float64)
    expected = torch.tensor([(v * v + 1) / (v * v) for v in SIGMAS], dtype=torch.float64)
    torch.testing.assert_close(loss_weight(s), expected, rtol=1e-14, atol=0)


def test_edm_loss_zero_for_oracle_and_value_for_identity() -> None:
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 2, 4, 5, generator=g)
    noise = torch.randn(3, 2, 4, 5, generator=g)
    sigma = torch.tensor([0.1, 1.0, 10.0])

    oracle = edm_loss(lambda x, s, **c: x0, x0, sigma, noise)
    assert torch.equal(oracle, torch.zeros(3))

    # identity denoiser: D(x) - x0 = sigma n, so loss = (sigma^2 + 1) * mean(n^2)
    ident = edm_loss(lambda x, s, **c: x, x0, sigma, noise)
    expected = (sigma.double() ** 2 + 1) * noise.double().pow(2).flatten(1).mean(1)
    torch.testing.assert_close(ident.double(), expected, rtol=1e-5, atol=0)


def test_edm_loss_passes_conditions_and_checks_shape() -> None:
    seen = {}

    def den(x, s, **cond):
        seen.update(cond)
        return x

    x0 = torch.zeros(2, 3)
    edm_loss(den, x0, torch.ones(2), torch.zeros(2, 3), foo=7)
    assert seen == {"foo": 7}
    with pytest.raises(ValueError, match="sigma must have shape"):
        edm_loss(den, x0, torch.ones(3), torch.zeros(2, 3))


def test_train_sigma_is_log_normal() -> None:
    g = torch.Generator().manual_seed(2)
    s = sample_train_sigma(200_000, P_mean=0.7, P_std=1.6, generator=g)
    assert s.shape == (200_000,) and bool((s > 0).all())
    log_s = s.double().log()
    assert log_s.mean().item() == pytest.approx(0.7, abs=0.02)
    assert log_s.std().item() == pytest.approx(1.6, abs=0.02)
    # median of a log-normal is exp(P_mean)
    assert s.double().median().item() == pytest.approx(math.exp(0.7), rel=0.03)
    # reproducible with the same seed (seeded draws: bitwise), different otherwise
    assert torch.equal(
        sample_train_sigma(10, generator=torch.Generator().manual_seed(3)),
        sample_train_sigma(10, generator=torch.Generator().manual_seed(3)),
    )


def test_train_sigma_mixture() -> None:
    """high_fraction = f: a two-component log-normal mixture. Its CDF at the components' midpoint is the
    weighted sum of the two normal CDFs; f = 0 gives bitwise the single log-normal's draws."""
    n, f, (m1, s1), (m2, s2) = 200_000, 0.3, (-0.4, 1.6), (1.6, 0.3)
    s = sample_train_sigma(n, m1, s1, generator=torch.Generator().manual_seed(4), high_fraction=f,
                           P_mean_high=m2, P_std_high=s2)
    log_s = s.double().log()
    phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    for t in (0.0, 1.0, 1.6, 2.2):
        expected = (1 - f) * phi((t - m1) / s1) + f * phi((t - m2) / s2)
        assert (log_s <= t).double().mean().item() == pytest.approx(expected, abs=0.005)
    assert log_s.mean().item() == pytest.approx((1 - f) * m1 + f * m2, abs=0.01)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    plain = sample_train_sigma(50, generator=g())
    assert torch.equal(sample_train_sigma(50, generator=g(), high_fraction=0.0), plain)
    assert torch.allclose(sample_train_sigma(50, 0.0, 1.0, generator=g(), high_fraction=1.0, P_mean_high=0.0,
                                             P_std_high=1.0), sample_train_sigma(50, 0.0, 1.0, generator=g()))
    with pytest.raises(ValueError, match="high_fraction"):
        sample_train_sigma(4, high_fraction=1.5)


def test_karras_schedule() -> None:
    s = karras_sigmas(25, dtype=torch.float64)
    assert s.shape == (26,)
    assert s[0].item() == pytest.approx(700.0, rel=1e-12)
    assert s[24].item() == pytest.approx(0.002, rel=1e-12)
    assert s[25].item() == 0.0
    assert bool((s[1:] < s[:-1]).all())
    # interior point from the formula, computed independently
    i, n, rho = 7, 25, 7.0
    ref = (700.0 ** (1 / rho) + i / (n - 1) * (0.002 ** (1 / rho) - 700.0 ** (1 / rho))) ** rho
    assert s[i].item() == pytest.approx(ref, rel=1e-12)
    assert karras_sigmas(4, sigma_min=0.1, sigma_max=10.0, append_zero=False).shape == (4,)
    with pytest.raises(ValueError):
        karras_sigmas(0)
