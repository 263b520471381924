"""Uploads in the studio: a bad image or pose file is one line naming the upload, nothing is kept."""

import json
import struct
import zlib

import imageio.v3 as iio
import numpy as np
import pytest

from vid3d.errors import InputError
from vid3d.studio import uploads
from vid3d.studio.uploads import keep_upload, read_image, read_poses


def _png_declaring(path, width: int, height: int) -> None:
    """A small PNG whose header declares width x height (a decompression bomb's header), CRC valid."""
    iio.imwrite(path, np.zeros((4, 4, 3), np.uint8))
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def _one_line(excinfo, *parts):
    text = str(excinfo.value)
    assert "\n" not in text, text
    for p in parts:
        assert p in text, text


def test_a_good_image_is_read_at_the_model_size_with_fov_intrinsics(tmp_path):
    path = tmp_path / "wide.png"
    iio.imwrite(path, np.full((60, 90, 3), 200, np.uint8))
    img = read_image(path, 32, 48, 90.0)
    assert img.image.shape == (32, 48, 3) and img.name == "wide"
    # 90 degrees over the 90 px width: f = 45 px, scaled by 48/90 after the (aspect-preserving) resize
    assert img.K_px[0, 0] == pytest.approx(45.0 * 48 / 90)


def test_text_named_png_is_refused_in_one_line(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture\n")
    with pytest.raises(InputError) as e:
        read_image(path, 32, 48, 60.0)
    _one_line(e, "notes.png", "cannot be read as an image")
    assert str(tmp_path) not in str(e.value)  # the upload's name, not the temporary folder


def test_a_header_declaring_a_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    _png_declaring(path, 9_000, 9_000)  # 81 M pixels: over vid3d's 64 Mi limit
    with pytest.raises(InputError) as e:
        read_image(path, 32, 48, 60.0)
    _one_line(e, "bomb.png", "9000x9000", "exceeds the size limit")


def test_too_many_bytes_empty_and_wrong_suffix_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    iio.imwrite(path, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    monkeypatch.setattr(uploads, "MAX_IMAGE_BYTES", 1024)
    with pytest.raises(InputError) as e:
        read_image(path, 32, 48, 60.0)
    _one_line(e, "big.png", "more than the 0.0 MiB limit")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError) as e:
        read_image(empty, 32, 48, 60.0)
    _one_line(e, "empty.png", "empty")
    gif = tmp_path / "anim.gif"
    gif.write_bytes(b"GIF89a")
    with pytest.raises(InputError) as e:
        read_image(gif, 32, 48, 60.0)
    _one_line(e, "anim.gif", "expected .png")


def test_a_json_pose_file_is_read_and_resampled_to_the_frames(tmp_path):
    c2w = np.tile(np.eye(4), (16, 1, 1))
    c2w[:, 2, 3] = np.linspace(0, 1.5, 16)
    path = tmp_path / "walk.json"
    path.write_text(json.dumps({"c2w": c2w.tolist()}))
    traj = read_poses(path, 8)
    assert traj.c2w.shape == (8, 4, 4)
    # 16 poses spread over 8 frames: frame j at pose j * 15 / 7, z linear in it
    np.testing.assert_allclose(traj.c2w[:, 2, 3], np.linspace(0, 1.5, 8), atol=1e-12)


@pytest.mark.parametrize(
    ("name", "text", "parts"),
    [
        (
            "nan.json",
            json.dumps({"c2w": [np.eye(4).tolist(), [[float("nan")] * 4] * 4]}).replace("NaN", "NaN"),
            ["nan.json", "pose 1", "NaN or infinite"],
        ),
        ("skew.json", json.dumps([np.eye(4).tolist(), (np.eye(4) * 2).tolist()]), ["skew.json", "pose 1"]),
        ("short.json", json.dumps([np.eye(4).tolist()] * 3), ["short.json", "3 camera pose(s) for 8 frames"]),
        ("garbage.txt", "https://x\n1 2 3\n", ["garbage.txt"]),
        ("poses.csv", "1,2,3\n", ["poses.csv", "expected .txt, .json, .npy"]),
    ],
)
def test_a_broken_pose_file_is_one_line_naming_it(tmp_path, name, text, parts):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as e:
        read_poses(path, 8)
    _one_line(e, *parts)
    assert str(tmp_path) not in str(e.value)


def test_keep_upload_copies_under_a_fixed_name(tmp_path):
    src = tmp_path / "Some Photo.JPG"
    src.write_bytes(b"abc")
    kept = keep_upload(src, tmp_path / "inputs", "image")
    assert kept == tmp_path / "inputs" / "image.jpg" and kept.read_bytes() == b"abc"
