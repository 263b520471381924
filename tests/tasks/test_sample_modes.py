"""mode=single|interpolate|explore write their outputs from a tiny trained checkpoint (via sample(cfg))."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.tasks.sample import sample
from vid3d.tasks.train import train

SMALL = [
    "data=re10k",
    "data.num_frames=4",
    "data.height=64",
    "data.width=96",
    "data.datamodule.num_workers=0",
    "torch_threads=1",
]


def cfg_for(name: str, overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("modes")
    root = build_synthetic_dataset(tmp / "set", num_train=2, num_test=1, num_frames=12, height=72, width=128)
    out = train(
        cfg_for(
            "train",
            [
                "model=epipolar",
                f"data.root={root}",
                "trainer.max_steps=1",
                "logger=csv",
                "module.warmup_steps=1",
                f"paths.output_dir={tmp}",
                *SMALL,
            ],
        )
    )
    return tmp, root, Path(out["last_checkpoint"])


def run_sample(setup, name: str, overrides: list[str]) -> Path:
    tmp, root, ckpt = setup
    out = tmp / name
    cfg = cfg_for(
        "sample",
        [
            f"ckpt={ckpt}",
            f"data.root={root}",
            "sampler.num_steps=2",
            f"paths.run_dir={out}",
            *SMALL,
            *overrides,
        ],
    )
    result = sample(cfg)
    assert result["samples"]
    return out / "samples"


def check_outputs(sample_dir: Path, n_frames: int) -> dict:
    assert (sample_dir / "video.mp4").stat().st_size > 0
    assert (sample_dir / "trajectory.png").stat().st_size > 0
    assert len(list((sample_dir / "frames").glob("*.png"))) == n_frames
    cams = json.loads((sample_dir / "cameras.json").read_text())
    assert "OpenCV" in cams["convention"] and "camera-to-world" in cams["convention"]
    assert len(cams["frames"]) == n_frames
    np.testing.assert_allclose(cams["frames"][0]["c2w"], np.eye(4), atol=1e-6)
    return cams


def write_image(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    # smooth image (a lossless pixel VAE round trip keeps it exactly)
    yy, xx = np.mgrid[0:90, 0:160]
    img = np.stack([xx * 1.5, yy * 2.5, 128 + 60 * np.sin(xx / 9.0 + rng.random() * 6)], -1)
    iio.imwrite(path, np.clip(img, 0, 255).astype(np.uint8))
    return path


def test_single_batch_of_images(setup):
    tmp = setup[0]
    a, b = write_image(tmp / "a.png", 0), write_image(tmp / "b.png", 1)
    samples = run_sample(setup, "single", [f"images=[{a},{b}]", "trajectory=zoom_in"])
    assert sorted(p.name for p in samples.iterdir()) == ["a_zoom_in", "b_zoom_in"]
    cams = check_outputs(samples / "a_zoom_in", 4)
    assert cams["frames"][-1]["c2w"][2][3] > 0.4  # zoom_in (dolly) moves along +z


def test_interpolate_pins_the_last_frame(setup):
    tmp = setup[0]
    a, b = write_image(tmp / "first.png", 2), write_image(tmp / "last.png", 3)
    samples = run_sample(
        setup, "interp", ["mode=interpolate", f"image={a}", f"image_end={b}", "trajectory=move_right"]
    )
    d = samples / "first_to_last_move_right"
    check_outputs(d, 4)
    frames = np.stack([iio.imread(p) for p in sorted((d / "frames").glob("*.png"))]).astype(np.float64)
    from vid3d.sampling.io import load_image

    target = load_image(b, 64, 96).image.astype(np.float64)
    # the last frame's latent is pinned: the pixel VAE is lossless, so only uint8 rounding remains
    assert np.abs(frames[-1] - target).mean() < 1.0
    # the generated middle frames are not copies of the last one (a 1-step-trained model produces noise)
    assert np.abs(frames[1] - target).mean() > 5.0


def test_interpolate_from_test_clip(setup):
    samples = run_sample(setup, "interp_clip", ["mode=interpolate", "num_samples=1"])
    (d,) = list(samples.iterdir())
    check_outputs(d, 4)
    assert (d / "gt_vs_generated.mp4").is_file()


def test_explore_chains_segments(setup):
    tmp = setup[0]
    a = write_image(tmp / "room.png", 4)
    samples = run_sample(
        setup, "explore", ["mode=explore", f"image={a}", "segments=[pan_left,move_forward,orbit_right]"]
    )
    cams = check_outputs(samples / "room_explore", 3 * 4 - 2)
    c2w = np.array([f["c2w"] for f in cams["frames"]])
    # continuity at the joins: frames 3 and 6 are the last of one segment and the first of the next;
    # the step across a join is one ordinary step of the next segment's preset
    from vid3d.sampling.trajectories import make_trajectory

    fwd = make_trajectory("move_forward", 4).c2w
    np.testing.assert_allclose(np.linalg.inv(c2w[3]) @ c2w[4], fwd[1], atol=1e-9)
    pan = make_trajectory("pan_left", 4).c2w
    np.testing.assert_allclose(c2w[3], pan[-1], atol=1e-9)
    assert [s["first_frame"] for s in cams["segments"]] == [0, 3, 6]


def test_explore_with_reconstruction_writes_gaussians_and_a_turntable(setup):
    from vid3d.reconstruction.ply import read_ply

    tmp = setup[0]
    a = write_image(tmp / "recon.png", 5)
    samples = run_sample(
        setup,
        "explore_recon",
        ["mode=explore", f"image={a}", "segments=[pan_left,move_forward]", "reconstruct=true",
         "reconstruction.num_gaussians=300", "reconstruction.steps=20", "reconstruction.turntable_frames=6"],
    )
    d = samples / "recon_explore"
    g = read_ply(d / "gaussians.ply")
    assert len(g) == 300 and bool(g.means.isfinite().all())
    video = iio.imread(d / "turntable.mp4", plugin="pyav")
    assert video.shape == (6, 64, 96, 3)


def test_sampling_progress_lines_in_a_log(setup, capsys):
    """stdout captured (not a terminal): per denoising step, counted per sample across explore's segments
    (2 segments x 3 steps = 6 per sample), with the overall count, rate and ETA, and a line per sample."""
    import re

    tmp = setup[0]
    a, b = write_image(tmp / "p1.png", 5), write_image(tmp / "p2.png", 6)
    capsys.readouterr()
    run_sample(setup, "progress", ["mode=explore", f"images=[{a},{b}]", "segments=[pan_left,move_forward]",
                                   "sampler.num_steps=3", "progress.every_n=4", "progress.every_s=0"])
    out = capsys.readouterr().out.splitlines()
    line = re.compile(r"^sampling \(explore\) (\d+)/12 \(\d+\.\d%\) \| [\d.]+ (?:step/s|s/step) \| elapsed "
                      r"\d+:\d\d:\d\d \| ETA \d+:\d\d:\d\d \| sample (\d)/2 (p\d)_explore step (\d)/6$")
    steps = [m.groups() for m in map(line.match, out) if m]
    # every sample's first step, the multiples of 4 of the overall count, and the last
    assert steps == [("1", "1", "p1", "1"), ("4", "1", "p1", "4"), ("7", "2", "p2", "1"),
                     ("8", "2", "p2", "2"), ("12", "2", "p2", "6")], out
    written = [s for s in out if re.match(r"^sample \d/2 p\d_explore written in \d+:\d\d:\d\d -> ", s)]
    assert len(written) == 2
