"""Samplers against the exact EDM denoiser of a Gaussian data distribution.

Data x0 ~ N(mu, s^2) per dimension. Then x = x0 + sigma n has the exact denoiser
D(x; sigma) = (s^2 x + sigma^2 mu) / (s^2 + sigma^2), and the probability-flow ODE maps x_T at sigma_max
to x_0 = mu + (x_T - mu) * s / sqrt(s^2 + sigma_max^2) (closed form, used as the reference).
"""

import math

import pytest
import torch

from vid3d.models.edm import karras_sigmas as karras_no_zero
from vid3d.sampling.samplers import (
    SOLVERS,
    denoiser_calls,
    initial_noise,
    karras_sigmas,
    sample_ddim,
    sample_dpmpp_2m,
    sample_edm_euler,
    sample_edm_heun,
)

MU = torch.tensor([1.5, -0.5, 0.0, 2.0], dtype=torch.float64)
S = torch.tensor([0.5, 1.0, 0.2, 2.0], dtype=torch.float64)
SIGMA_MAX = 80.0


def gaussian_denoiser(x, sigma):
    sig2 = sigma.to(torch.float64).view(-1, *([1] * (x.ndim - 1))) ** 2
    mu, s2 = MU.to(x.device), S.to(x.device) ** 2
    return ((s2 * x.to(torch.float64) + sig2 * mu) / (s2 + sig2)).to(x.dtype)


def exact_flow(x_T):
    return MU + (x_T.to(torch.float64) - MU) * S / torch.sqrt(S**2 + SIGMA_MAX**2)


@pytest.fixture(scope="module")
def x_T():
    g = torch.Generator().manual_seed(0)
    return initial_noise((10000, 4), SIGMA_MAX, g, dtype=torch.float64) + MU


def test_karras_sigmas_formula():
    n, lo, hi, rho = 5, 0.002, 700.0, 7.0
    sig = karras_sigmas(n, lo, hi, rho)
    assert sig.shape == (n + 1,) and sig.dtype == torch.float64
    assert (
        sig[-1] == 0 and math.isclose(sig[0], hi, rel_tol=1e-12) and math.isclose(sig[-2], lo, rel_tol=1e-12)
    )
    i = 2
    expected = (hi ** (1 / rho) + i / (n - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    assert math.isclose(float(sig[i]), expected, rel_tol=1e-12)
    assert bool((sig[1:] < sig[:-1]).all())
    one = karras_sigmas(1, sigma_max=3.0)
    assert one.shape == (2,) and math.isclose(float(one[0]), 3.0, rel_tol=1e-12) and one[1] == 0
    with pytest.raises(ValueError):
        karras_sigmas(0)


def test_initial_noise_deterministic_and_scaled():
    a = initial_noise((4000,), 10.0, torch.Generator().manual_seed(3))
    b = initial_noise((4000,), 10.0, torch.Generator().manual_seed(3))
    c = initial_noise((4000,), 10.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)  # seeded draws times a constant: bitwise
    assert a.dtype == torch.float32
    assert abs(float(a.std()) - 10.0) < 0.5


@pytest.mark.parametrize("sampler", [sample_edm_euler, sample_edm_heun, sample_ddim, sample_dpmpp_2m])
def test_distribution_converges(sampler, x_T):
    n = {sample_edm_heun: 60, sample_dpmpp_2m: 60}.get(sampler, 400)  # second order: far fewer steps
    out = sampler(gaussian_denoiser, x_T, karras_sigmas(n, sigma_max=SIGMA_MAX))
    ones = torch.ones(4, dtype=torch.float64)
    # against the true distribution (10000 samples: std error of the mean s/100, of the std s/141)
    assert torch.allclose((out.mean(0) - MU) / S, torch.zeros(4, dtype=torch.float64), atol=0.04)
    assert torch.allclose(out.std(0) / S, ones, atol=0.05)
    # against the exact ODE solution of the same x_T (no sampling noise: discretisation error only)
    ref = exact_flow(x_T)
    assert torch.allclose((out.mean(0) - ref.mean(0)) / S, torch.zeros(4, dtype=torch.float64), atol=0.01)
    assert torch.allclose(out.std(0) / ref.std(0), ones, atol=0.012)


def test_convergence_orders(x_T):
    """Euler's error halves when the step count doubles (order 1); Heun's quarters (order 2)."""
    x = x_T[:2000]
    ref = exact_flow(x)

    def err(sampler, n):
        return float((sampler(gaussian_denoiser, x, karras_sigmas(n, sigma_max=SIGMA_MAX)) - ref).abs().max())

    e_euler = err(sample_edm_euler, 100), err(sample_edm_euler, 200)
    e_heun = err(sample_edm_heun, 50), err(sample_edm_heun, 100)
    assert 1.7 < e_euler[0] / e_euler[1] < 2.3
    assert 3.2 < e_heun[0] / e_heun[1] < 4.8
    assert e_heun[1] < 0.1 * e_euler[1]  # Heun (199 calls) beats Euler (200 calls) by far


def test_dpmpp_2m_second_order(x_T):
    """DPM-Solver++(2M): one denoiser call per step, error falling ~4x when the steps double (order 2) where
    Euler's falls ~2x, on a schedule with (Karras' trailing 0) and without a final step to sigma 0. Measured
    ratios (2000 samples, max abs error): 2M 4.54, 4.25 / 4.42, 4.21; Euler 2.00."""
    x = x_T[:2000]

    def err(sampler, n, sigma_end):
        zero = sigma_end == 0
        sig = karras_no_zero(n, 0.002 if zero else sigma_end, SIGMA_MAX, 7.0, append_zero=zero,
                             dtype=torch.float64)
        ref = MU + (x - MU) * torch.sqrt(S**2 + float(sig[-1]) ** 2) / torch.sqrt(S**2 + SIGMA_MAX**2)
        return float((sampler(gaussian_denoiser, x, sig) - ref).abs().max())

    for sigma_end in (0.0, 0.05):
        e = [err(sample_dpmpp_2m, n, sigma_end) for n in (25, 50, 100)]
        assert 3.6 < e[0] / e[1] < 5.0 and 3.6 < e[1] / e[2] < 4.6, (sigma_end, e)
        e_euler = err(sample_edm_euler, 50, sigma_end), err(sample_edm_euler, 100, sigma_end)
        assert 1.8 < e_euler[0] / e_euler[1] < 2.2
        assert e[2] < 0.1 * e_euler[1]  # the same 100 calls, ten times closer to the exact flow


def test_dpmpp_2m_first_step_is_ddim_and_calls_once_per_step():
    """One step (no previous D) is the first-order step, i.e. DDIM; the k-th call sees sigma_k; the number of
    calls is what ``denoiser_calls`` says for every solver."""
    x = initial_noise((3, 4), 10.0, torch.Generator().manual_seed(2), dtype=torch.float64)
    one = torch.tensor([10.0, 2.0], dtype=torch.float64)
    first = sample_dpmpp_2m(gaussian_denoiser, x, one)
    torch.testing.assert_close(first, sample_ddim(gaussian_denoiser, x, one), rtol=0, atol=1e-12)
    for name, solver in SOLVERS.items():
        seen = []

        def counting(x, sigma, seen=seen):
            seen.append(float(sigma[0]))
            return gaussian_denoiser(x, sigma)

        sig = karras_sigmas(7, sigma_max=10.0)
        solver(counting, x, sig)
        assert len(seen) == denoiser_calls(name, 7), name
        if name != "edm_heun":
            assert seen == pytest.approx(sig[:-1].tolist(), rel=1e-6)
    assert denoiser_calls("edm_heun", 25) == 49 and denoiser_calls("dpmpp_2m", 12) == 12
    with pytest.raises(ValueError, match="unknown solver"):
        denoiser_calls("euler", 4)


def test_ddim_eta0_matches_euler():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(7, 16), torch.nn.Tanh(), torch.nn.Linear(16, 6)).double()

    def nonlinear_denoiser(x, sigma):  # an arbitrary smooth, sigma-dependent denoiser
        flat = x.reshape(x.shape[0], -1)
        return net(torch.cat([flat, sigma.log()[:, None]], dim=1)).reshape(x.shape)

    x = initial_noise((5, 2, 3), 20.0, torch.Generator().manual_seed(1), dtype=torch.float64)
    sig = karras_sigmas(12, sigma_max=20.0)
    a = sample_ddim(nonlinear_denoiser, x, sig)
    b = sample_edm_euler(nonlinear_denoiser, x, sig)
    assert torch.allclose(a, b, rtol=0, atol=1e-10)
    assert not torch.allclose(a, sample_edm_heun(nonlinear_denoiser, x, sig), atol=1e-6)


def test_ddim_stochastic(x_T):
    def run(seed, x, n):
        g = torch.Generator().manual_seed(seed)
        return sample_ddim(gaussian_denoiser, x, karras_sigmas(n, sigma_max=SIGMA_MAX), eta=1.0, generator=g)

    a, b, c = run(1, x_T[:200], 10), run(1, x_T[:200], 10), run(2, x_T[:200], 10)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)  # a computed trajectory: round-off only
    assert not torch.allclose(a, c)
    a = run(1, x_T, 200)  # eta = 1 (ancestral) also samples N(mu, s^2), first order in the step
    assert torch.allclose(a.mean(0), MU, atol=0.05 * float(S.max()))
    assert torch.allclose(a.std(0) / S, torch.ones(4, dtype=torch.float64), atol=0.06)
    with pytest.raises(ValueError):
        sample_ddim(gaussian_denoiser, x_T[:2], [1.0, 0.0], eta=-1.0)


def test_dtype_shapes_and_progress():
    """float32 in -> float32 out, the model sees float32 x and (B,) sigma, update done in float64."""
    seen = []

    def den(x, sigma):
        seen.append((x.dtype, tuple(x.shape), sigma.dtype, tuple(sigma.shape)))
        return gaussian_denoiser(x, sigma) * 0 + 0.25  # D = constant 0.25 everywhere

    x = initial_noise((2, 3, 4), 5.0, torch.Generator().manual_seed(0))  # (B, F, C) any shape
    calls = []
    sig = karras_sigmas(6, sigma_max=5.0)
    out = sample_edm_heun(den, x, sig, progress=lambda done, total: calls.append((done, total)))
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert calls == [(i, 6) for i in range(1, 7)]
    assert len(seen) == 2 * 6 - 1  # last step to sigma = 0 is Euler
    assert all(s == (torch.float32, (2, 3, 4), torch.float32, (2,)) for s in seen)
    # with a constant denoiser the final Euler step lands exactly on D
    assert torch.equal(out, torch.full_like(x, 0.25))  # the last step returns D itself: bitwise


def test_rejects_bad_sigmas():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError):
        sample_edm_euler(gaussian_denoiser, x, [1.0, 2.0, 0.0])
    with pytest.raises(ValueError):
        sample_edm_euler(gaussian_denoiser, x, [1.0])
