"""A trained checkpoint exported as a diffusers-style pipeline folder and loaded back gives the same model."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.sampling.pipeline import CameraVideoPipeline, main
from vid3d.sampling.trajectories import make_trajectory
from vid3d.tasks.train import train


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    root = build_synthetic_dataset(tmp / "set", num_train=2, num_test=1, num_frames=12, height=72, width=128)
    overrides = [
        "model=epipolar",
        "data=re10k",
        f"data.root={root}",
        "data.num_frames=4",
        "data.height=64",
        "data.width=96",
        "data.datamodule.num_workers=0",
        "trainer.max_steps=1",
        "logger=csv",
        "module.warmup_steps=1",
        "torch_threads=1",
        f"paths.output_dir={tmp}",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return Path(train(cfg)["last_checkpoint"])


def inputs():
    rng = np.random.default_rng(0)
    image = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
    K = np.array([[80.0, 0, 48], [0, 80.0, 32], [0, 0, 1]])
    return image, K, make_trajectory("orbit_left", 4).c2w


def test_export_round_trip_gives_identical_weights_and_frames(ckpt, tmp_path):
    pipe = CameraVideoPipeline.from_checkpoint(ckpt, sampler={"num_steps": 2})
    # move every weight away from its (seeded) initialisation, so a weight that is not saved or not
    # loaded cannot come back equal by re-initialisation
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in pipe.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    assert pipe.image_size == [64, 96]  # the training size, recorded in the checkpoint
    folder = pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == ["vid3d_pipeline", "Vid3dCameraVideoPipeline"]
    assert index["_vid3d_class"] == "vid3d.sampling.pipeline.CameraVideoPipeline"
    assert (folder / "unet" / "config.json").is_file() and (folder / "vid3d_modules.safetensors").is_file()
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".ckpt", ".pkl")]

    loaded = CameraVideoPipeline.from_pretrained(folder)  # a fresh object
    a, b = pipe.model.state_dict(), loaded.model.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert loaded.sampler["num_steps"] == 2

    image, K, c2w = inputs()
    out1 = pipe(image, K, c2w, seed=3, output_type="np").frames
    out2 = loaded(image, K, c2w, seed=3, output_type="np").frames
    assert out1.shape == (1, 4, 64, 96, 3) and out1.dtype == np.float32  # (B, F, H, W, 3) in [0, 1]
    # two module objects with bitwise-equal weights: float round-off may flip a uint8 rounding, no more
    diff = np.abs(np.rint(out1 * 255).astype(int) - np.rint(out2 * 255).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    # the seed matters (the comparison above is not trivially equal)
    assert not np.array_equal(out1, loaded(image, K, c2w, seed=4, output_type="np").frames)


def test_cli_export_matches_checkpoint_and_pins_last_frame(ckpt, tmp_path):
    from vid3d.models.checkpoint import load_model

    folder = main([f"ckpt={ckpt}", f"out={tmp_path / 'cli'}", "num_steps=2", "height=64", "width=96"])
    pipe = CameraVideoPipeline.from_pretrained(folder)
    assert pipe.image_size == [64, 96]
    direct = CameraVideoPipeline(load_model(ckpt), {"_target_": "unused"}, {"num_steps": 2})
    image, K, c2w = inputs()
    last = np.full((64, 96, 3), 200, np.uint8)
    v1 = pipe(image, K, c2w, last_image=last, seed=0, output_type="pt").frames
    v2 = direct(image, K, c2w, last_image=last, seed=0, output_type="pt").frames
    torch.testing.assert_close(v1, v2, rtol=0, atol=0)
    # the last frame is pinned (the tiny model's pixel VAE is lossless); "pt" frames are in [0, 1]
    torch.testing.assert_close(v1[0, -1], torch.full_like(v1[0, -1], 200 / 255), atol=1e-5, rtol=0)


def test_diffusers_loads_the_export(ckpt, tmp_path):
    """diffusers' own loader (its custom-pipeline mechanism) returns a pipeline that generates the same
    frames as vid3d's; the training size travels in the folder."""
    from diffusers import DiffusionPipeline

    pipe = CameraVideoPipeline.from_checkpoint(ckpt, sampler={"num_steps": 2})
    folder = pipe.save_pretrained(tmp_path / "pipe")
    loaded = DiffusionPipeline.from_pretrained(str(folder), trust_remote_code=True)
    assert type(loaded).__name__ == "Vid3dCameraVideoPipeline" and isinstance(loaded, DiffusionPipeline)
    assert loaded.vid3d.image_size == [64, 96] and loaded.vid3d.sampler["num_steps"] == 2
    image, K, c2w = inputs()
    expected = CameraVideoPipeline.from_pretrained(folder)(image, K, c2w, seed=5, output_type="pt").frames
    got = loaded(image, K, c2w, seed=5, output_type="pt")
    assert type(got).__name__ == "CameraVideoPipelineOutput"
    torch.testing.assert_close(got.frames, expected, rtol=0, atol=1e-6)
    assert loaded.vid3d.num_frames == 4  # the training frame count travels too (preset paths' length)


def test_exports_written_before_the_diffusers_entry_still_load(ckpt, tmp_path):
    folder = CameraVideoPipeline.from_checkpoint(ckpt).save_pretrained(tmp_path / "old")
    (folder / "model_index.json").write_text(json.dumps(
        {"_class_name": "CameraVideoPipeline", "_module": "vid3d.sampling.export",
         "format": "vid3d-camera-video-pipeline", "version": 1}))
    assert CameraVideoPipeline.from_pretrained(folder).image_size == [64, 96]
    (folder / "model_index.json").write_text(json.dumps({"_vid3d_format": "other"}))
    with pytest.raises(ValueError, match="vid3d format"):
        CameraVideoPipeline.from_pretrained(folder)


def test_from_pretrained_refuses_pickles(ckpt, tmp_path):
    folder = CameraVideoPipeline.from_checkpoint(ckpt).save_pretrained(tmp_path / "p")
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="pickle"):
        CameraVideoPipeline.from_pretrained(folder)


def test_call_returns_frames_like_svd_takes_presets_and_guards_the_training_size(ckpt, caplog):
    """``.frames`` as diffusers' SVD output ("pil" lists, "np" arrays, "pt" tensors; ``return_dict=False``
    a tuple); a preset name with an amplitude builds the same path as ``make_trajectory``; an image of
    another size than the training size (64x96) is refused, or allowed with ``allow_resize=True``."""
    from vid3d.errors import InputError
    from vid3d.sampling.sampler_settings import SamplerSettingsRefused

    pipe = CameraVideoPipeline.from_checkpoint(ckpt, sampler={"num_steps": 1})
    assert (pipe.image_size, pipe.num_frames) == ([64, 96], 4)
    with pytest.raises(SamplerSettingsRefused, match="num_frames"):  # a received folder's value is bounded
        CameraVideoPipeline(pipe.model, pipe.model_config, num_frames=10**9)
    image, K, _ = inputs()
    path = make_trajectory("orbit_left", 4, amplitude="large").c2w
    by_name = pipe(image, K, "orbit_left", amplitude="large", seed=2, output_type="np").frames
    by_poses = pipe(image, K, path, seed=2, output_type="np").frames
    np.testing.assert_array_equal(by_name, by_poses)
    small = pipe(image, K, "orbit_left", amplitude="small", seed=2, output_type="np").frames
    assert not np.array_equal(by_name, small)  # the amplitude reaches the cameras
    pil = pipe(image, K, path, seed=2).frames  # "pil" is the default, as in diffusers
    assert len(pil) == 1 and len(pil[0]) == 4 and pil[0][0].size == (96, 64)
    np.testing.assert_array_equal(np.stack([np.asarray(im) for im in pil[0]]), np.rint(by_poses[0] * 255))
    (tup,) = pipe(image, K, path, seed=2, output_type="pt", return_dict=False)
    assert tup.shape == (1, 4, 3, 64, 96) and 0 <= float(tup.min()) and float(tup.max()) <= 1
    with pytest.raises(InputError, match=r"unknown camera preset 'orbit_lft'; did you mean orbit_left\?"):
        pipe(image, K, "orbit_lft")
    small_image = image[:32, :48]
    K_small = K * np.array([[0.5], [0.5], [1.0]])
    with pytest.raises(InputError, match=r"image is 32x48 .* trained at 64x96.*allow_resize=True"):
        pipe(small_image, K_small, path, seed=2)
    with caplog.at_level("WARNING", logger="vid3d"):
        out = pipe(small_image, K_small, path, seed=2, output_type="np", allow_resize=True).frames
    assert out.shape == (1, 4, 32, 48, 3) and any("allow_resize" in r.getMessage() for r in caplog.records)
