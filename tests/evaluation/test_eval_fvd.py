"""FVD: the Fréchet distance against closed forms, the missing-weights refusal, and the plumbing with a
tiny random-init extractor (labelled not-I3D; its numbers are not FVD)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid3d.evaluation.fvd import (
    NOT_I3D_LABEL,
    FVDMetric,
    FVDWeightsError,
    feature_statistics,
    frechet_distance,
    fvd_from_features,
    load_i3d,
    preprocess_videos,
    save_tiny_extractor,
)


def test_diagonal_gaussians_closed_form():
    rng = np.random.default_rng(0)
    d = 7
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)  # variances
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)
    # 1-D by hand: N(0, 4) vs N(3, 1): 9 + (2 - 1)^2 = 10
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(10.0, rel=1e-12)


def test_full_covariances_match_symmetric_form():
    rng = np.random.default_rng(1)
    d = 6
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # Independent route: tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2), symmetric PSD -> eigenvalues.
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(w)) @ v.T
    tr_cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_cross
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


def test_sampled_features_converge_to_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 0.0])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.5])
    f1 = mu1 + sd1 * rng.normal(size=(20000, 3))
    f2 = mu2 + sd2 * rng.normal(size=(20000, 3))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((sd1 - sd2) ** 2)  # = 4.25 + 1.25
    assert fvd_from_features(f1, f2) == pytest.approx(expected, rel=0.03)


def test_identical_sets_are_zero_even_when_singular():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(10, 32))  # fewer videos than dimensions: singular covariance
    value = fvd_from_features(feats, feats.copy())
    assert np.isfinite(value) and value < 1e-6
    assert fvd_from_features(feats, feats + 1.0) == pytest.approx(32.0, rel=1e-5)  # mean shift only
    with pytest.raises(ValueError, match="N >= 2"):
        feature_statistics(feats[:1])
    mu, cov = feature_statistics(feats)
    assert mu.shape == (32,) and cov.shape == (32, 32)


def test_missing_weights_are_refused(tmp_path):
    for path in (None, "", tmp_path / "i3d_torchscript.pt"):
        with pytest.raises(FVDWeightsError, match=r"metrics\.fvd\.i3d=.*never computed with random weights"):
            FVDMetric(path)
    not_script = tmp_path / "state_dict.pt"
    torch.save({"w": torch.zeros(2)}, not_script)
    with pytest.raises(FVDWeightsError, match="cannot load as TorchScript"):
        load_i3d(not_script)


def test_preprocess_layouts():
    rng = np.random.default_rng(4)
    u8 = rng.integers(0, 256, size=(2, 5, 20, 30, 3), dtype=np.uint8)
    x = preprocess_videos(u8)
    assert x.shape == (2, 3, 5, 224, 224) and x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    as_float = torch.from_numpy(u8).permute(0, 1, 4, 2, 3).float() / 127.5 - 1.0  # (N, T, 3, H, W)
    torch.testing.assert_close(preprocess_videos(as_float), x)
    same = preprocess_videos(rng.integers(0, 256, size=(1, 2, 224, 224, 3), dtype=np.uint8))
    assert same.shape == (1, 3, 2, 224, 224)
    with pytest.raises(ValueError, match="5-D"):
        preprocess_videos(u8[0])


def test_plumbing_with_tiny_extractor(tmp_path):
    path = save_tiny_extractor(tmp_path / "tiny_not_i3d.pt", dim=16, seed=0)
    metric = FVDMetric(path, batch_size=3)
    assert metric.label == NOT_I3D_LABEL  # never reported as I3D
    rng = np.random.default_rng(5)
    gen = rng.integers(0, 256, size=(5, 4, 24, 32, 3), dtype=np.uint8)
    real = np.clip(gen.astype(int) + rng.integers(-60, 60, size=gen.shape), 0, 255).astype(np.uint8)
    same = metric(gen, gen.copy())
    assert same["fvd"] < 1e-6 and same["feature_extractor"] == NOT_I3D_LABEL
    assert (same["n_generated"], same["n_ground_truth"], same["feature_dim"]) == (5, 5, 16)
    diff = metric(gen, real)
    fg, fr = metric.features(gen), metric.features(real)
    assert fg.shape == (5, 16)
    assert diff["fvd"] == pytest.approx(fvd_from_features(fg, fr), rel=1e-9) and diff["fvd"] > 0
    # Batching does not change the features.
    np.testing.assert_allclose(FVDMetric(path, batch_size=5).features(gen), fg, rtol=1e-5, atol=1e-6)
    assert metric.describe()["feature_extractor"] == NOT_I3D_LABEL
