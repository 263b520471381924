"""The camera-sensitivity diagnostic: exactly 1 when the camera cannot reach the output, not 1 when it can."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid3d.evaluation.camera_gap import (
    camera_gap_errors,
    camera_gap_markdown,
    measure_camera_gap,
    summarize_camera_gap,
)
from vid3d.models.backbone import build_tiny_backbone
from vid3d.models.video_diffusion import CameraVideoDiffusion
from vid3d.sampling.trajectories import make_trajectory

F, H, W = 4, 32, 48
TRAJ = ["orbit_left", "zoom_in", "pan_right", "orbit_right", "zoom_out"]
SIGMAS = (0.2, 1.0, 5.0)
EXACT = 1e-9  # identical float computations in every variant: the ratio is 1 up to float64 division


def _samples(n: int = 3) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]).expand(F, 3, 3).clone()
    return [
        {
            "frames": torch.rand(F, 3, H, W, generator=g) * 2 - 1,
            "K_px": K,
            "c2w": torch.as_tensor(np.asarray(make_trajectory(TRAJ[i], F).c2w), dtype=torch.float32),
        }
        for i in range(n)
    ]


def _model(camera_encoder: str, attention: str = "none", perturb: bool = False) -> CameraVideoDiffusion:
    kw = {"heads": 2} if attention != "none" else None
    m = CameraVideoDiffusion(
        build_tiny_backbone(seed=0), camera_encoder=camera_encoder, attention=attention, attention_kwargs=kw
    )
    if perturb:  # move the zero-initialised camera outputs away from zero
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for mod in (m.camera_encoder, m.attention_adapter):
                for p in mod.parameters() if mod is not None else []:
                    p.add_(1.0 * torch.randn(p.shape, generator=g))
    return m


def _gaps(model) -> dict[str, float]:
    return measure_camera_gap(model, _samples(), SIGMAS, seed=3, batch_size=3)


def test_svd_model_without_camera_input_reads_exactly_one():
    g = _gaps(_model("none"))
    for s in ("0.2", "1", "5"):
        assert g[f"camera_gap@{s}"] == pytest.approx(1.0, abs=EXACT)
        assert g[f"camera_gap_static@{s}"] == pytest.approx(1.0, abs=EXACT)
        assert g[f"error_own@{s}"] > 0
    assert g["n_clips"] == 3


@pytest.mark.parametrize("encoder", ["plucker", "rt"])
def test_zero_init_and_broken_camera_path_read_one_a_live_path_does_not(encoder, monkeypatch):
    # freshly initialised: the encoder's output layers are zero, so cameras cannot change the output
    g0 = _gaps(_model(encoder))
    assert all(g0[f"camera_gap@{s}"] == pytest.approx(1.0, abs=EXACT) for s in ("0.2", "1", "5"))
    live = _model(encoder, perturb=True)
    g1 = _gaps(live)
    assert max(abs(g1[f"camera_gap@{s}"] - 1) for s in ("0.2", "1", "5")) > 5e-4
    assert max(abs(g1[f"camera_gap_static@{s}"] - 1) for s in ("0.2", "1", "5")) > 5e-4
    # the same weights with the encoder's input multiplied by 0: a broken camera path reads 1 again
    prepare = live.camera_encoder.prepare
    monkeypatch.setattr(live.camera_encoder, "prepare", lambda *a, **k: prepare(*a, **k) * 0)
    g2 = _gaps(live)
    assert all(g2[f"camera_gap@{s}"] == pytest.approx(1.0, abs=EXACT) for s in ("0.2", "1", "5"))


def test_epipolar_attention_alone_makes_the_output_camera_dependent():
    m = _model("none", attention="epipolar", perturb=True)
    g = _gaps(m)
    assert max(abs(g[f"camera_gap@{s}"] - 1) for s in ("0.2", "1", "5")) > 1e-4


def test_errors_use_the_same_noise_and_another_clips_cameras():
    m = _model("plucker", perturb=True)
    samples = _samples()
    batch = {k: torch.stack([s[k] for s in samples]) for k in ("frames", "K_px", "c2w")}
    e = camera_gap_errors(m, batch, (1.0,), seed=5)
    assert set(e) == {"own@1", "permuted@1", "static@1"} and e["own@1"].shape == (3,)
    # permuted = own of a batch whose cameras were shifted by hand (clip i gets clip i+1's)
    shifted = {**batch, "K_px": batch["K_px"].roll(-1, 0), "c2w": batch["c2w"].roll(-1, 0)}
    torch.testing.assert_close(
        camera_gap_errors(m, shifted, (1.0,), seed=5)["own@1"], e["permuted@1"], rtol=1e-6, atol=1e-9
    )
    assert camera_gap_errors(m, batch, (1.0,), seed=5)["own@1"].allclose(e["own@1"], rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="at least 2 clips"):
        camera_gap_errors(m, {k: v[:1] for k, v in batch.items()}, (1.0,))


def test_summary_arithmetic_and_batching():
    e1 = {
        "own@1": torch.tensor([1.0, 3.0]),
        "permuted@1": torch.tensor([4.0, 4.0]),
        "static@1": torch.tensor([2.0, 2.0]),
    }
    e2 = {"own@1": torch.tensor([2.0]), "permuted@1": torch.tensor([7.0]), "static@1": torch.tensor([2.0])}
    s = summarize_camera_gap([e1, e2])
    assert s["n_clips"] == 3
    assert s["error_own@1"] == pytest.approx(2.0) and s["error_permuted@1"] == pytest.approx(5.0)
    assert s["camera_gap@1"] == pytest.approx(2.5) and s["camera_gap_static@1"] == pytest.approx(1.0)
    table = camera_gap_markdown({"plucker": s})
    assert "| plucker | 3 | 2.5000 | 1.0000 |" in table
    # 5 clips in batches of 2: the last single clip joins the previous batch; every clip counts once
    g = measure_camera_gap(_model("none"), _samples(5), (1.0,), batch_size=2)
    assert g["n_clips"] == 5


def test_direction_gap_variants_keep_the_magnitude_and_flip_the_direction():
    """camera_variants' mirrored / reversed trajectories: frame 0 unchanged, the same distance and rotation
    angle from frame 0 as the own cameras, the sideways motion and the yaw of opposite sign."""
    import math

    from vid3d.evaluation.camera_gap import camera_variants
    from vid3d.geometry import axis_angle_to_matrix

    F = 4
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, F, 1, 1)
    start = torch.eye(4, dtype=torch.float64)
    start[:3, :3] = axis_angle_to_matrix(torch.tensor([0.1, 0.7, -0.2], dtype=torch.float64), 0.8)
    start[:3, 3] = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    for k in range(F):  # yaw left by 0.1 rad per frame while moving right and forward
        rel = torch.eye(4, dtype=torch.float64)
        rel[:3, :3] = axis_angle_to_matrix(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), 0.1 * k)
        rel[:3, 3] = torch.tensor([0.2 * k, 0.0, 0.3 * k], dtype=torch.float64)
        c2w[:, k] = start @ rel
    K = torch.eye(3, dtype=torch.float64).repeat(2, F, 1, 1)
    K[1, :, 0, 0] = 2.0  # tells the clips' intrinsics apart
    both = camera_variants(K, c2w, ("own", "mirrored", "reversed", "permuted", "static"))
    v = {name: cams[1] for name, cams in both.items()}
    for name in ("own", "mirrored", "reversed", "static"):
        assert both[name][0] is K  # a clip keeps its own intrinsics
    torch.testing.assert_close(both["permuted"][0], K.flip(0))  # two clips: each takes the other's
    torch.testing.assert_close(both["permuted"][1], c2w.flip(0))

    def angle(r: torch.Tensor) -> torch.Tensor:  # rotation angle of (..., 4, 4) poses
        return torch.arccos(((r[..., 0, 0] + r[..., 1, 1] + r[..., 2, 2] - 1) / 2).clamp(-1, 1))

    for name in ("mirrored", "reversed"):
        rel_own = torch.linalg.inv(c2w[:, :1]) @ c2w
        rel_v = torch.linalg.inv(v[name][:, :1]) @ v[name]
        torch.testing.assert_close(v[name][:, 0], c2w[:, 0], atol=1e-12, rtol=0)
        torch.testing.assert_close(rel_v[..., :3, 3].norm(dim=-1), rel_own[..., :3, 3].norm(dim=-1),
                                   atol=1e-12, rtol=0)
        torch.testing.assert_close(angle(rel_v), angle(rel_own), atol=1e-7, rtol=0)
    rel_m = torch.linalg.inv(v["mirrored"][:, :1]) @ v["mirrored"]
    x_flipped = torch.tensor([-0.6, 0.0, 0.9], dtype=torch.float64)
    torch.testing.assert_close(rel_m[0, 3, :3, 3], x_flipped, atol=1e-12, rtol=0)
    assert rel_m[0, 3, 0, 2] == pytest.approx(-math.sin(0.3), abs=1e-12)  # the yaw flipped
    rel_r = torch.linalg.inv(v["reversed"][:, :1]) @ v["reversed"]
    rel_own = torch.linalg.inv(c2w[:, :1]) @ c2w
    eye = torch.eye(4, dtype=torch.float64)
    torch.testing.assert_close(rel_r[0, 2] @ rel_own[0, 2], eye, atol=1e-12, rtol=0)  # the inverse motion
    torch.testing.assert_close(v["static"], c2w[:, :1].expand_as(c2w))
