"""A user's own inputs to sample.py: trajectory files (intrinsics, too few poses) and image files (a video,
a text file, a missing path) — each wrong one is one ``InputError`` line naming the file (issue 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.data.formats.re10k import Re10kCameras, write_camera_file
from vid3d.errors import InputError, user_errors
from vid3d.geometry import axis_angle_to_matrix
from vid3d.sampling.io import InputImage, load_image
from vid3d.sampling.modes import SingleMode
from vid3d.sampling.trajectories import load_trajectory_file

ROOT = Path(__file__).resolve().parents[2]
K_FILE = np.array([[0.9, 0.0, 0.48], [0.0, 1.6, 0.52], [0.0, 0.0, 1.0]])  # normalised, not the image's


def _re10k_file(path: Path, n: int) -> Path:
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = np.asarray(
        axis_angle_to_matrix(np.tile([0.0, 1.0, 0.0], (n, 1)), np.linspace(0, 0.3, n))
    )
    c2w[:, 0, 3] = np.linspace(0.0, 1.0, n)
    cams = Re10kCameras(
        url="https://example.com/v",
        timestamps=np.arange(n) * 33_366,
        K_norm=np.broadcast_to(K_FILE, (n, 3, 3)),
        w2c=np.linalg.inv(c2w),
    )
    write_camera_file(path, cams)
    return path


def test_too_few_poses_is_an_error_naming_the_file_unless_resample(tmp_path):
    path = _re10k_file(tmp_path / "short.txt", 3)
    with pytest.raises(
        InputError, match=r"short\.txt: 3 camera pose\(s\) for 8 frames.*trajectory.resample=true"
    ):
        load_trajectory_file(path, num_frames=8)
    one = _re10k_file(tmp_path / "one.txt", 1)
    with pytest.raises(InputError, match=r"one\.txt: 1 camera pose"):
        load_trajectory_file(one, num_frames=8)
    assert len(load_trajectory_file(path, num_frames=8, resample=True)) == 8
    assert len(load_trajectory_file(_re10k_file(tmp_path / "long.txt", 20), num_frames=8)) == 8  # subsampled
    with pytest.raises(InputError, match=r"nothere\.txt.*trajectory.path"):
        load_trajectory_file(tmp_path / "nothere.txt", num_frames=8)


def test_a_re10k_file_brings_its_intrinsics_rescaled_to_the_output_size(tmp_path):
    traj = load_trajectory_file(_re10k_file(tmp_path / "cams.txt", 10), num_frames=5)
    K_image = np.array([[50.0, 0.0, 48.0], [0.0, 50.0, 32.0], [0.0, 0.0, 1.0]])  # what fov_deg gives
    K = traj.scaled_K(K_image, 64, 96)
    expected = np.array([[0.9 * 96, 0.0, 0.48 * 96], [0.0, 1.6 * 64, 0.52 * 64], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(K, np.broadcast_to(expected, (5, 3, 3)), rtol=1e-5)  # file precision
    # through the sampling mode: the job's cameras are the file's
    image = InputImage("img", np.zeros((64, 96, 3), np.uint8), K_image)
    (job,) = SingleMode().jobs([[image]], None, traj)
    np.testing.assert_allclose(job.K_px, K)
    # opting out keeps the image's own intrinsics
    plain = load_trajectory_file(tmp_path / "cams.txt", num_frames=5, use_intrinsics=False)
    assert plain.K_norm is None
    np.testing.assert_allclose(plain.scaled_K(K_image, 64, 96), np.broadcast_to(K_image, (5, 3, 3)))


def test_image_that_is_a_video_a_text_file_or_missing(tmp_path):
    video = tmp_path / "clip.mp4"
    iio.imwrite(video, np.zeros((6, 32, 48, 3), np.uint8), fps=8)
    with pytest.raises(InputError, match=r"clip\.mp4 holds 6 frames .*one image"):
        load_image(video, 32, 48)
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    with pytest.raises(InputError, match=r"notes\.png cannot be read as an image"):
        load_image(text, 32, 48)
    with pytest.raises(InputError, match=r"missing\.png does not exist"):
        load_image(tmp_path / "missing.png", 32, 48)
    grey = tmp_path / "grey.png"
    iio.imwrite(grey, np.full((20, 30), 128, np.uint8))
    assert load_image(grey, 16, 24).image.shape == (16, 24, 3)


def test_sample_task_stops_in_one_line_before_loading_the_checkpoint(tmp_path, capsys):
    from vid3d.tasks.sample import sample

    short = _re10k_file(tmp_path / "short.txt", 2)

    def cfg_with(*extra: str):
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            return compose(
                "sample",
                overrides=[
                    f"ckpt={tmp_path / 'no_such.ckpt'}",
                    f"paths.output_dir={tmp_path / 'out'}",
                    "trajectory=file",
                    f"trajectory.path={short}",
                    *extra,
                ],
            )

    cfg = cfg_with("image=whatever.png")
    with pytest.raises(SystemExit) as e, user_errors():
        sample(cfg)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "whatever.png" in err  # the image comes first
    Path(tmp_path / "whatever.png").write_bytes(b"")  # exists now, but holds no image
    cfg = cfg_with()
    with pytest.raises(SystemExit) as e, user_errors():  # Hydra wraps it: the cause is what is printed
        sample(cfg)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith(f"error: {short}: 2 camera pose(s)") and "\n" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("samples"))


@pytest.mark.slow
def test_sample_cli_with_a_video_as_image_is_one_line(tmp_path):
    video = tmp_path / "clip.mp4"
    iio.imwrite(video, np.zeros((4, 32, 48, 3), np.uint8), fps=8)
    # a real checkpoint (the committed CPU model, trained at 32x48): the image is the next input checked
    ckpt = ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big.safetensors"
    proc = subprocess.run(
        [
            sys.executable,
            "sample.py",
            f"ckpt={ckpt}",
            "data.height=32",
            "data.width=48",
            f"image={video}",
            "trajectory=zoom_in",
            f"paths.output_dir={tmp_path / 'out'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "clip.mp4 holds 4 frames" in lines[0], proc.stderr[-2000:]


def _cami2v_style_file(path: Path, angles_deg: np.ndarray) -> Path:
    """A pose file laid out as CamI2V's ``demo/camera_pose_files/look left.txt``: URL placeholder, the
    dummy timestamp 114514 on every line, K_norm 0.5, and w2c rotations with det -1 (its first line is
    diag(-1, 1, 1)): R_i = [[-cos a, 0, sin a], [0, 1, 0], [sin a, 0, cos a]], zero translation."""
    lines = ["https://xxx"]
    for a in np.radians(angles_deg):
        c, s = np.cos(a), np.sin(a)
        R = [[-c, 0.0, s], [0.0, 1.0, 0.0], [s, 0.0, c]]
        nums = [v for row in R for v in (*row, 0.0)]
        lines.append("114514 0.5 0.5 0.5 0.5 0.0 0.0 " + " ".join(f"{v:.9g}" for v in nums))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cami2v_pose_file_is_read_with_one_warning_and_turns_left(tmp_path, caplog):
    angles = np.linspace(0.0, 90.0, 16)
    path = _cami2v_style_file(tmp_path / "look left.txt", angles)
    with caplog.at_level("WARNING", logger="vid3d"):
        traj = load_trajectory_file(path, num_frames=16)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "114514" in warnings[0] and "placeholder" in warnings[0], warnings
    assert "det -1" in warnings[0] and str(path) in warnings[0]
    # independent expectation: relative c2w_i = R_0 R_i^T (zero translations), computed here by hand:
    # a rotation about the camera's y axis by -a, so the forward axis (third column) is (-sin a, 0, cos a):
    # the camera looks left, as pan_left does
    a = np.radians(angles)
    forward = traj.c2w[:, :3, 2]
    np.testing.assert_allclose(forward, np.stack([-np.sin(a), 0 * a, np.cos(a)], -1), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(traj.c2w[:, :3, :3]), 1.0, atol=1e-6)
    np.testing.assert_allclose(traj.c2w[:, :3, 3], 0.0, atol=1e-9)
    from vid3d.sampling.trajectories import make_trajectory

    pan = make_trajectory("pan_left", 16, amplitude=90.0)
    np.testing.assert_allclose(traj.c2w, pan.c2w, atol=1e-6)
    np.testing.assert_allclose(traj.K_norm[0][:2, :], [[0.5, 0, 0.5], [0, 0.5, 0.5]])


def test_repeats_and_reflections_stay_errors_where_they_are_not_a_pattern(tmp_path):
    from vid3d.data.formats.re10k import CameraFileError, read_camera_file

    path = _cami2v_style_file(tmp_path / "p.txt", np.linspace(0.0, 30.0, 4))
    with pytest.raises(CameraFileError, match=r"p\.txt:2: rotation has det -1 < 0"):
        read_camera_file(path)  # a clip's (dataset) camera file: neither liberty is taken there
    text = path.read_text().splitlines()
    text[3] = text[3].replace("114514", "7", 1)  # one line differs: a real repeat, not a placeholder
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(CameraFileError, match=r"p\.txt:3: timestamp 114514 repeats line 2"):
        load_trajectory_file(path)
    mixed = _cami2v_style_file(tmp_path / "m.txt", np.linspace(0.0, 30.0, 3))
    lines = mixed.read_text().splitlines()
    lines[2] = "114514 0.5 0.5 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0"  # det +1 among det -1 lines
    mixed.write_text("\n".join(lines) + "\n")
    with pytest.raises(CameraFileError, match=r"m\.txt:3: rotation has det 1 while line 2's has -1"):
        load_trajectory_file(mixed)
