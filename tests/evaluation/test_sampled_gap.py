"""The sampled-video camera gap (vid3d/evaluation/sampled_gap.py) and the study's bookkeeping
(benchmarks/sampling_quality.py): camera variants, per-clip errors and metrics against independent formulas,
the network-evaluation counter, and the reference-CI rule."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vid3d.evaluation.sampled_gap import frame_errors, sample_variants, variant_cameras

ROOT = Path(__file__).resolve().parents[2]


def _study():
    path = ROOT / "benchmarks" / "sampling_quality.py"
    spec = importlib.util.spec_from_file_location("_sampling_quality", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_variant_cameras():
    K = torch.arange(3 * 2 * 9, dtype=torch.float32).reshape(3, 2, 3, 3)
    c2w = torch.arange(3 * 2 * 16, dtype=torch.float32).reshape(3, 2, 4, 4)
    v = variant_cameras(K, c2w)
    assert torch.equal(v["own"][1], c2w)
    for i in range(3):  # clip i takes clip i+1's cameras (cyclic)
        j = (i + 1) % 3
        assert torch.equal(v["another"][0][i], K[j]) and torch.equal(v["another"][1][i], c2w[j])
        assert torch.equal(v["static"][1][i], c2w[i, :1].expand(2, 4, 4)) and torch.equal(v["static"][0], K)
    with pytest.raises(ValueError, match="at least 2 clips"):
        variant_cameras(K[:1], c2w[:1])
    with pytest.raises(ValueError, match="unknown"):
        variant_cameras(K, c2w, ("own", "mirrored"))


def test_sample_variants_same_seed_and_frame_errors():
    seen = []

    def sampler(model, first, K, c2w, generator=None, known_frames=None):
        seen.append(torch.randn(1, generator=generator).item())  # the draw each variant starts from
        return first[:, None].expand(-1, c2w.shape[1], -1, -1, -1) + c2w[:, :, :1, 3, None, None]

    frames = torch.zeros(2, 3, 3, 4, 5)
    c2w = torch.eye(4).repeat(2, 3, 1, 1)
    c2w[0, :, 0, 3], c2w[1, :, 0, 3] = 0.5, -1.0  # x translation per clip
    out = sample_variants(None, sampler, frames, torch.eye(3).repeat(2, 3, 1, 1), c2w, seed=7)
    assert len(set(seen)) == 1 and list(out) == ["own", "another", "static"]
    # frames 1..F-1 only, mean over frames, channels and pixels: (0.5^2, 1^2) own, swapped for another
    f64 = torch.float64
    torch.testing.assert_close(frame_errors(out["own"], frames), torch.tensor([0.25, 1.0], dtype=f64))
    torch.testing.assert_close(frame_errors(out["another"], frames), torch.tensor([1.0, 0.25], dtype=f64))
    with pytest.raises(ValueError, match="differ in shape"):
        frame_errors(out["own"][:, :2], frames)


def test_study_metrics_counter_and_rule():
    study = _study()
    gt = torch.zeros(2, 3, 3, 8, 8)
    video = gt.clone()
    video[0, 1:] = 0.5  # clip 0: every target frame off by 0.5 in [-1, 1], i.e. 0.25 of the [0, 1] range
    video[1, 2] = 1.0
    m = study.per_clip_metrics(video, gt)
    # PSNR per frame -10 log10(MSE) on uint8 frames scaled to [0, 1]: x in [-1, 1] -> round((x + 1) 127.5)
    level = (round(1.5 * 127.5) - round(127.5)) / 255.0  # 191 vs 128
    assert m["psnr"][0] == pytest.approx(-10 * math.log10(level**2), abs=1e-6)
    assert math.isinf(m["psnr"][1])  # frame 1 of clip 1 is exact: the clip's mean is +inf (one frame inf)

    class Fake:
        def unet_forward(self, sample, *a):
            return sample

    model = Fake()
    counter = study.NetworkCounter(model)
    model.unet_forward(torch.zeros(4, 1))
    model.unet_forward(torch.zeros(8, 1))
    counter.close()
    assert counter.rows == 12 and model.unet_forward.__func__ is Fake.unet_forward

    ref = {"psnr_ci": [14.0, 16.0], "ssim_ci": [0.2, 0.3], "camera_gap_ci": [1.2, 1.5]}
    row = {"psnr": 15.0, "ssim": 0.31, "camera_gap": 1.1}
    assert study.against_reference(row, ref) == {"psnr": "in", "ssim": "above", "camera_gap": "below"}
    assert not study.matches(row, ref) and study.matches({"psnr": 14.0, "ssim": 0.3, "camera_gap": 1.3}, ref)
    num, den = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])  # every resample's ratio is exactly 2
    assert study._ratio_ci(num, den) == pytest.approx([2.0, 2.0])
