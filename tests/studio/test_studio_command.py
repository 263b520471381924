"""The studio's request -> sample.py overrides: composed by Hydra into the config the request means, and
the command line read back by a real shell into the same overrides."""

import subprocess

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vid3d.config import CONFIG_DIR
from vid3d.errors import InputError
from vid3d.sampling.trajectories import make_trajectory
from vid3d.studio.command import REPO_ROOT, Request, reproduce_command, sample_command, sample_overrides

ASSET = "assets/cpu_camera_control/epipolar_32x48_hx3big.safetensors"


def _req(**kw) -> Request:
    return Request(**{"ckpt": ASSET, "height": 32, "width": 48, "num_frames": 8, "image": "in.png", **kw})


def _compose(overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("sample", overrides=overrides)


def _shell_words(command: str) -> list[str]:
    """The words bash makes of ``command`` after ``python sample.py``."""
    script = command.replace("python sample.py", "printf '%s\\0'", 1)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


def test_a_preset_request_composes_into_its_config_and_trajectory():
    req = _req(
        preset="pan_left",
        amplitude=22.5,
        speed=0.75,
        steps=7,
        seed=3,
        guidance_min=1.5,
        guidance_max=2.5,
        fov_deg=50.0,
        fps=6,
    )
    cfg = _compose(sample_overrides(req))
    assert cfg.ckpt == ASSET and cfg.image == "in.png"
    assert (cfg.data.height, cfg.data.width, cfg.data.num_frames) == (32, 48, 8)
    assert (cfg.sampler.num_steps, cfg.sampler.guidance_min, cfg.sampler.guidance_max) == (7, 1.5, 2.5)
    assert (cfg.seed, cfg.fov_deg, cfg.fps, cfg.reconstruct) == (3, 50.0, 6, False)
    traj = instantiate(cfg.trajectory)
    want = make_trajectory("pan_left", 8, amplitude=22.5, speed=0.75).c2w
    np.testing.assert_allclose(traj.c2w, want, atol=1e-12)


def test_named_amplitudes_and_reconstruction_settings_compose():
    req = _req(preset="zoom_in", amplitude="large", reconstruct={"steps": 40, "num_gaussians": 500})
    cfg = _compose(sample_overrides(req))
    assert cfg.trajectory.amplitude == "large"
    assert cfg.reconstruct is True
    assert (cfg.reconstruction.steps, cfg.reconstruction.num_gaussians) == (40, 500)
    assert cfg.reconstruction.near == 0.5  # the rest of sample.yaml's block is kept


def test_a_clip_request_samples_the_first_n_clips_of_its_data_option():
    req = _req(image=None, data="synthetic_heldout600", clip_index=4, path="clip")
    ov = sample_overrides(req)
    cfg = _compose(ov)
    assert cfg.num_samples == 5 and cfg.image is None and cfg.get("trajectory") is None
    assert cfg.data.build.test_start == 600  # the held-out scenes' option was selected
    assert (cfg.data.height, cfg.data.width) == (32, 48)


def test_file_paths_compose_and_odd_characters_survive_hydra_and_the_shell(tmp_path):
    odd = str(tmp_path / "my dir" / "it's=a,[pose] file.json")
    req = _req(image=str(tmp_path / "an image (1).png"), path="keyframes", trajectory_file=odd)
    ov = sample_overrides(req)
    cfg = _compose(ov)
    assert cfg.trajectory._target_.endswith("load_trajectory_file")
    assert cfg.trajectory.path == odd
    assert cfg.image == str(tmp_path / "an image (1).png")
    for multiline in (False, True):
        assert _shell_words(sample_command(req, multiline=multiline)) == ov


def test_the_multiline_command_is_one_override_per_line():
    text = sample_command(_req(preset="orbit_right"), multiline=True)
    lines = text.splitlines()
    assert lines[0] == "python sample.py \\"
    assert len(lines) == 1 + len(sample_overrides(_req(preset="orbit_right")))
    assert all(line.endswith(" \\") for line in lines[:-1])


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"path": "clip"}, "an uploaded image has no trajectory of its own"),
        ({"preset": "spin"}, "preset: unknown 'spin'"),
        ({"path": "file"}, "no pose file"),
        ({"path": "bezier"}, "choose one of preset, keyframes, file, clip"),
        ({"image": None}, "upload an image, or pick a clip"),
        ({"image": None, "data": "synthetic", "clip_index": -1}, "the index must be >= 0"),
    ],
)
def test_a_request_the_command_cannot_express_is_one_line(fields, match):
    with pytest.raises(InputError, match=match) as e:
        sample_overrides(_req(**fields))
    assert "\n" not in str(e.value)


def test_the_shown_checkpoint_is_relative_to_the_root_it_runs_from(tmp_path):
    root = tmp_path / "repo"
    ckpt = root / "assets" / "cpu camera" / "model.safetensors"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    req = _req(ckpt=str(ckpt))  # the studio's requests carry the absolute path it loaded
    words = _shell_words(sample_command(req, root=root))
    assert words[0] == "ckpt='assets/cpu camera/model.safetensors'"
    assert words[1:] == sample_overrides(req)[1:]  # nothing else changes
    assert req.ckpt == str(ckpt)  # the request itself (what the studio runs) keeps its path
    # a "..": the same file, still under the root
    dotted = root / "assets" / ".." / "assets" / "cpu camera" / "model.safetensors"
    assert _shell_words(sample_command(_req(ckpt=str(dotted)), root=root))[0] == words[0]
    # outside the root (a sibling whose name shares the root's prefix): the absolute path is kept
    other = tmp_path / "repo-old" / "model.safetensors"
    assert _shell_words(sample_command(_req(ckpt=str(other)), root=root))[0] == f"ckpt={other}"
    assert _shell_words(sample_command(req)) == sample_overrides(req)  # no root: as given
    assert sample_overrides(req)[0] == f"ckpt='{ckpt}'"


def test_a_results_command_names_the_default_model_by_its_repository_path(tmp_path):
    from vid3d.studio.__main__ import DEFAULT_MODEL

    assert (REPO_ROOT / "sample.py").is_file()  # the folder `python sample.py` runs from
    req = _req(ckpt=str(DEFAULT_MODEL))  # absolute, as the studio loads it
    words = _shell_words(reproduce_command(req))
    assert words[0] == f"ckpt={ASSET}" and words[1:] == sample_overrides(req)[1:]
    assert _shell_words(reproduce_command(req, multiline=True)) == words
    elsewhere = tmp_path / "run" / "last.ckpt"  # outside the repository: kept absolute
    assert _shell_words(reproduce_command(_req(ckpt=str(elsewhere))))[0] == f"ckpt={elsewhere}"


def test_the_page_starts_from_the_samplers_default_steps():
    """The studio's steps (and so its command line) default to the sampler's own default, not a copy of it."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="sample")
    assert Request(ckpt="m", height=32, width=48, num_frames=8).steps == cfg.sampler.num_steps == 12
