"""PSNR / SSIM against independent numpy formulas; LPIPS refused without backbone weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid3d.evaluation.image_metrics import ImageMetrics, LpipsUnavailable, build_lpips, psnr, ssim


def images(seed: int, n: int = 2, h: int = 24, w: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    noise = rng.normal(0, 20, a.shape)
    b = np.clip(a.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    return b, a


def np_psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = np.mean((x.astype(np.float64) / 255 - y.astype(np.float64) / 255) ** 2)
    return 10 * np.log10(1.0 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2D image with the 1D window g along both axes."""
    k = len(g)
    rows = sum(g[i] * img[i : img.shape[0] - k + 1 + i, :] for i in range(k))
    return sum(g[j] * rows[:, j : rows.shape[1] - k + 1 + j] for j in range(k))


def np_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004 SSIM, Gaussian window 11 / sigma 1.5; torchmetrics' border convention: images
    reflect-padded by 5 pixels, the SSIM map averaged over the whole image and the channels."""
    c1, c2 = 0.01**2, 0.03**2
    g = gaussian_window()
    vals = []
    for c in range(3):
        a, b = (np.pad(im[..., c].astype(np.float64) / 255, 5, mode="reflect") for im in (x, y))
        mu_a, mu_b = filter_valid(a, g), filter_valid(b, g)
        s_aa = filter_valid(a * a, g) - mu_a**2
        s_bb = filter_valid(b * b, g) - mu_b**2
        s_ab = filter_valid(a * b, g) - mu_a * mu_b
        m = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2))
        vals.append(m)
    return float(np.mean(vals))


@pytest.mark.parametrize("seed", [0, 1])
def test_psnr_matches_numpy(seed):
    pred, gt = images(seed)
    got = psnr(pred, gt)
    want = [np_psnr(p, g) for p, g in zip(pred, gt)]
    # torchmetrics computes in float32: equal to float32 rounding (1e-6 dB)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_psnr_of_identical_images_is_infinite():
    _, gt = images(0)
    assert np.isinf(psnr(gt, gt)).all()


@pytest.mark.parametrize("seed", [0, 3])
def test_ssim_matches_numpy_gaussian_window(seed):
    pred, gt = images(seed, h=40, w=36)
    got = ssim(pred, gt)
    want = [np_ssim(p, g) for p, g in zip(pred, gt)]
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.all(got < 0.99)  # the noise is visible: not a trivially passing comparison
    np.testing.assert_allclose(ssim(gt, gt), 1.0, atol=1e-9)


def test_shape_mismatch_is_an_error():
    pred, gt = images(0)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(pred[:1], gt)


def test_lpips_refused_without_weights(tmp_path, monkeypatch):
    from vid3d.weights import WeightsUnavailable

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # not cached and offline: the evaluation stops with the file, the cache and the fetch command
    with pytest.raises(WeightsUnavailable, match=r"metrics\.lpips\.net=alex: alexnet-owt-7be5be79\.pth .*"
                       r"empty_torch_home.*python -m vid3d\.weights fetch lpips_alex"):
        ImageMetrics("alex")
    with pytest.raises(LpipsUnavailable, match=r"metrics\.lpips\.backbone_weights=.*does not exist"):
        build_lpips("vgg", str(tmp_path / "missing.pth"))
    m = ImageMetrics("alex", str(tmp_path / "missing.pth"))
    assert not m.lpips_available and "missing.pth" in m.lpips_unavailable
    pred, gt = images(0)
    out = m(pred, gt)
    assert out["lpips"] is None and len(out["psnr"]) == 2
    assert "unavailable" in m.describe()["lpips"]
    with pytest.raises(LpipsUnavailable):
        m.lpips(pred, gt)


def test_lpips_loads_a_local_backbone_file(tmp_path):
    # A torchvision AlexNet state dict saved locally (random values: this checks the loading path, the
    # metric's definition is lpips' own). Every backbone weight must come from the file.
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    state = torchvision.models.alexnet().state_dict()
    torch.save(state, tmp_path / "alexnet.pth")
    model = build_lpips("alex", str(tmp_path / "alexnet.pth"))
    assert torch.equal(model.net.slice1._modules["0"].weight, state["features.0.weight"])
    assert torch.equal(model.net.slice5._modules["10"].weight, state["features.10.weight"])
    m = ImageMetrics("alex", str(tmp_path / "alexnet.pth"), device="cpu")
    pred, gt = images(1, h=32, w=32)
    vals = m.lpips(pred, gt)
    assert vals.shape == (2,) and np.all(vals > 0)
    np.testing.assert_allclose(m.lpips(gt, gt), 0.0, atol=1e-7)


def test_lpips_refuses_a_file_of_another_network(tmp_path):
    torch.save({"features.0.weight": torch.zeros(3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(LpipsUnavailable, match="features"):
        build_lpips("alex", str(tmp_path / "bad.pth"))
