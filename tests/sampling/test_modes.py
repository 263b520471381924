"""Mode building blocks without a model: replacement of known frames, explore's chained cameras,
interpolation poses, image lists."""

from pathlib import Path

import numpy as np
import pytest
import torch

from vid3d.sampling.io import image_list
from vid3d.sampling.modes import ExploreMode, InterpolateMode, chain_intrinsics
from vid3d.sampling.samplers import karras_sigmas, sample_edm_euler, sample_edm_heun
from vid3d.sampling.trajectories import make_trajectory
from vid3d.sampling.video_sampler import replacement_denoiser


def shrink_denoiser(x, sigma):
    """Exact denoiser of x0 ~ N(0, I): D = x / (1 + sigma^2)."""
    s2 = sigma.to(torch.float64).view(-1, *([1] * (x.ndim - 1))) ** 2
    return (x.to(torch.float64) / (1 + s2)).to(x.dtype)


@pytest.mark.parametrize("solver", [sample_edm_euler, sample_edm_heun])
def test_replacement_keeps_known_frame_on_its_noised_path_and_ends_exactly_there(solver):
    g = torch.Generator().manual_seed(0)
    b, f, c = 2, 5, 3
    sigmas = karras_sigmas(6, 0.002, 80.0)
    z = torch.randn(b, 1, c, 4, 4, generator=g, dtype=torch.float64)
    n = torch.randn(b, 1, c, 4, 4, generator=g, dtype=torch.float64)
    seen = []

    def spy(x, sigma):
        seen.append((x[:, -1:].clone(), float(sigma[0])))
        return shrink_denoiser(x, sigma)

    x_T = 80.0 * torch.randn(b, f, c, 4, 4, generator=g, dtype=torch.float64)
    x_T[:, -1:] = z + 80.0 * n
    out = solver(replacement_denoiser(spy, z, [f - 1], n), x_T, sigmas)
    # every model evaluation sees the known frame as the clean latent noised to the current sigma
    for x_last, s in seen:
        torch.testing.assert_close(x_last, z + s * n, rtol=0, atol=1e-9)
    torch.testing.assert_close(out[:, -1:], z, rtol=0, atol=1e-9)
    # the other frames follow the unconstrained exact flow x_T * sqrt((1 + 0) / (1 + sigma_max^2))
    free = solver(shrink_denoiser, x_T[:, :-1], sigmas)
    torch.testing.assert_close(out[:, :-1], free, rtol=0, atol=1e-12)


def test_explore_job_frames_poses_and_joins():
    mode = ExploreMode(
        ["pan_left", {"name": "move_forward", "amplitude": "large"}, "orbit_right"], num_frames=5
    )
    K = np.array([[100.0, 0, 48], [0, 100.0, 32], [0, 0, 1]])
    job = mode._job("x", np.zeros((64, 96, 3), np.uint8), K)
    assert len(job.c2w) == len(job.K_px) == 3 * 5 - 2
    np.testing.assert_allclose(job.c2w[0], np.eye(4))
    pan = make_trajectory("pan_left", 5).c2w
    fwd = make_trajectory("move_forward", 5, amplitude="large").c2w
    orb = make_trajectory("orbit_right", 5).c2w
    # segment k's poses = the previous segment's last pose composed with the segment's own poses
    np.testing.assert_allclose(job.c2w[:5], pan, atol=1e-12)
    np.testing.assert_allclose(job.c2w[4:9], pan[-1] @ fwd, atol=1e-12)
    np.testing.assert_allclose(job.c2w[8:], pan[-1] @ fwd[-1] @ orb, atol=1e-12)
    # moving forward after turning left by 30 deg: the centre moves along the turned view direction
    step = job.c2w[8, :3, 3] - job.c2w[4, :3, 3]
    np.testing.assert_allclose(step, 1.0 * pan[-1][:3, 2], atol=1e-12)
    assert [s["first_frame"] for s in job.info["segments"]] == [0, 4, 8]
    assert [len(s[1]) for s in job.segments] == [5, 5, 5]


def test_chain_intrinsics_carries_focal_zoom_across_segments():
    segs = [make_trajectory("zoom_in", 3, zoom_mode="focal"), make_trajectory("pan_left", 3)]
    Ks = chain_intrinsics(np.diag([100.0, 100.0, 1.0]), segs)
    assert Ks[0][-1][0, 0] == pytest.approx(150.0)  # medium focal zoom: x (1 + 0.5)
    np.testing.assert_allclose(Ks[1], np.repeat(Ks[0][-1:], 3, axis=0))


def test_interpolate_linear_poses_keep_the_ends():
    traj = make_trajectory("orbit_left", 7, amplitude="large")
    path = InterpolateMode("linear")._path(traj.c2w)
    np.testing.assert_allclose(path[[0, -1]], traj.c2w[[0, -1]], atol=1e-12)
    # the centre moves on the chord, not on the orbit's arc
    mid = path[3, :3, 3]
    np.testing.assert_allclose(mid, 0.5 * traj.c2w[-1, :3, 3], atol=1e-12)
    assert InterpolateMode("path")._path(traj.c2w) is traj.c2w
    with pytest.raises(ValueError, match="poses"):
        InterpolateMode("spline")


def test_image_list_text_file(tmp_path):
    lst = tmp_path / "inputs.txt"
    lst.write_text("# first frames\na.png\n\n/abs/b.png  c.png  # a pair\n")
    assert image_list(lst) == [[tmp_path / "a.png"], [Path("/abs/b.png"), tmp_path / "c.png"]]
    assert image_list(["x.png", "y.png"]) == [[Path("x.png")], [Path("y.png")]]
    assert image_list("one.png") == [[Path("one.png")]]
    lst.write_text("a.png b.png c.png\n")
    with pytest.raises(ValueError, match=r"inputs.txt:1:"):
        image_list(lst)


def test_explore_needs_segments():
    with pytest.raises(ValueError, match="segments"):
        ExploreMode([])
    with pytest.raises(ValueError, match="unknown trajectory preset"):
        ExploreMode(["fly_away"])


def test_clip_inputs_skip_a_broken_clip_never_sample_another_twice(tmp_path):
    """Sampling from a data option's test clips (sample.py without image=): a broken clip among the first
    ones is skipped, and every sampled item is a different clip (the dataset's own skip logic would hand
    back a substitute under the broken clip's index)."""
    from vid3d.data.clips import Re10kClipDataset
    from vid3d.data.interval import FixedInterval
    from vid3d.data.synthetic import build_synthetic_dataset
    from vid3d.sampling.modes import _clip_items

    root = build_synthetic_dataset(tmp_path / "d", num_train=0, num_test=3, num_frames=4, height=24, width=32)
    names = sorted(p.stem for p in (root / "test").glob("*.txt"))
    (root / "test" / f"{names[0]}.txt").write_text("https://youtu.be/x\n0 not numbers\n")
    ds = Re10kClipDataset(root, "test", num_frames=2, height=24, width=32, interval=FixedInterval(1))
    items = _clip_items(ds, 2)
    assert [it["clip_id"] for it in items] == names[1:]
    assert ds.skipped["camera_file"] == 1
    with pytest.raises(ValueError, match="every test clip is broken"):
        for n in names[1:]:
            (root / "test" / f"{n}.txt").write_text("https://youtu.be/x\n0 not numbers\n")
        _clip_items(Re10kClipDataset(root, "test", num_frames=2, height=24, width=32,
                                     interval=FixedInterval(1)), 2)
