"""RealEstate10K camera files and clip layout: exact round trips, the ten real files shipped with the
package, malformed input errors naming file and line, and the frame/depth/video layout."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vid3d.data.formats import re10k
from vid3d.data.formats.re10k import (
    CameraFileError,
    Re10kCameras,
    list_clips,
    read_camera_file,
    read_depth,
    read_frames,
    write_camera_file,
    write_clip,
)
from vid3d.errors import InputError

ASSETS = Path(re10k.__file__).resolve().parents[1] / "assets" / "re10k_trajectories"


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


def _random_cams(rng: np.random.Generator, n: int = 5, url: str = "https://example.com/v") -> Re10kCameras:
    K = np.zeros((n, 3, 3))
    K[:, 0, 0], K[:, 1, 1] = rng.uniform(0.3, 1.5, n), rng.uniform(0.3, 1.5, n)
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = rng.uniform(0.2, 0.8, n), rng.uniform(0.2, 0.8, n), 1.0
    w2c = np.tile(np.eye(4), (n, 1, 1))
    w2c[:, :3, :3] = _random_rotations(rng, n)
    w2c[:, :3, 3] = rng.normal(scale=10.0, size=(n, 3))
    ts = np.cumsum(rng.integers(1, 100_000, n)) + int(rng.integers(0, 10**12))
    return Re10kCameras(url=url, timestamps=ts, K_norm=K, w2c=w2c)


def _assert_same(a: Re10kCameras, b: Re10kCameras) -> None:
    assert a.url == b.url
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.K_norm, b.K_norm)
    np.testing.assert_array_equal(a.w2c, b.w2c)


def test_round_trip_is_exact(tmp_path):
    cams = _random_cams(np.random.default_rng(0), 20)
    path = tmp_path / "clip.txt"
    write_camera_file(path, cams)
    back = read_camera_file(path)
    _assert_same(cams, back)
    assert back.timestamps.dtype == np.int64 and back.w2c.dtype == np.float64
    assert [p.name for p in tmp_path.iterdir()] == ["clip.txt"]  # no temporary file left


def test_c2w_and_K_px_follow_the_conventions():
    cams = _random_cams(np.random.default_rng(1), 4)
    np.testing.assert_allclose(cams.c2w() @ cams.w2c, np.tile(np.eye(4), (4, 1, 1)), atol=1e-12)
    K = cams.K_px(90, 160)
    np.testing.assert_allclose(K[:, 0, 0], cams.K_norm[:, 0, 0] * 160)
    np.testing.assert_allclose(K[:, 1, 2], cams.K_norm[:, 1, 2] * 90)


@pytest.mark.parametrize("path", sorted(ASSETS.glob("*.txt")), ids=lambda p: p.stem)
def test_real_files_parse(path):
    cams = read_camera_file(path)
    assert len(cams) == 16 and cams.url.startswith("https://www.youtube.com/watch?v=")
    first = path.read_text().splitlines()[1].split()  # independent parse of the first frame line
    assert cams.timestamps[0] == int(first[0])
    np.testing.assert_array_equal(cams.w2c[0, :3].reshape(-1), np.array(first[7:], dtype=float))
    R = cams.w2c[:, :3, :3]
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.tile(np.eye(3), (16, 1, 1)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-6)
    np.testing.assert_allclose(cams.K_norm[:, 0, 0] / cams.K_norm[:, 1, 1], 9 / 16, rtol=1e-6)
    np.testing.assert_allclose(cams.K_norm[:, :2, 2], 0.5)
    assert np.all(np.diff(cams.timestamps) > 0)
    np.testing.assert_array_equal(cams.w2c[:, 3], np.tile([0.0, 0.0, 0.0, 1.0], (16, 1)))


def test_all_ten_real_files_are_shipped():
    assert len(list(ASSETS.glob("*.txt"))) == 10 and (ASSETS / "README.md").is_file()


GOOD = "0 0.5 0.9 0.5 0.5 0 0 1 0 0 0.1 0 1 0 0.2 0 0 1 0.3"
ROT90 = "0 0.5 0.9 0.5 0.5 0 0 0 -1 0 0 1 0 0 0 0 0 1 0"


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("", 1, "empty file"),
        ("https://x\n", 2, "no camera lines"),
        ("https://x\n\n\n", 4, "no camera lines"),
        (f"https://x\n{GOOD}\n0 0.5 0.9 0.5\n", 3, "expected 19 numbers, found 4"),
        (f"https://x\n{GOOD} 7\n", 2, "found 20"),
        ("https://x\n" + GOOD.replace("0.9", "abc") + "\n", 2, "fy: 'abc' is not a number"),
        ("https://x\n" + GOOD.replace("0.1", "nan") + "\n", 2, "t1: 'nan' is not finite"),
        ("https://x\n" + GOOD.replace("0.2", "-inf") + "\n", 2, "t2: '-inf' is not finite"),
        ("https://x\n" + GOOD.replace("0 0.5", "1.5 0.5", 1) + "\n", 2, "timestamp: '1.5' is not an integer"),
        ("https://x\n" + GOOD.replace("0.5 0.9", "-0.5 0.9") + "\n", 2, "focal lengths must be positive"),
        ("https://x\n" + GOOD.replace(" 1 0 0 0.1", " 2 0 0 0.1") + "\n", 2, "not orthonormal"),
        ("https://x\n" + GOOD.replace("0 0 1 0.3", "0 0 -1 0.3") + "\n", 2, "det"),
        (f"https://x\n{GOOD}\n{ROT90}\n", 3, "timestamp 0 repeats line 2"),
        (f"{GOOD}\n{ROT90}\n", 1, "must be the video URL"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(CameraFileError) as exc:
        read_camera_file(path)
    assert str(exc.value).startswith(f"{path}:{line}: "), str(exc.value)
    assert what in str(exc.value)
    assert exc.value.line == line and exc.value.path == str(path)


def test_invalid_utf8_and_crlf(tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"https://x\n" + GOOD.encode() + b"\n\xff\xfe\n")
    with pytest.raises(CameraFileError, match=r"bin\.txt:3: not valid UTF-8"):
        read_camera_file(path)
    path.write_bytes(b"https://x\r\n" + GOOD.encode() + b"\r\n")
    cams = read_camera_file(path)
    assert cams.url == "https://x" and len(cams) == 1
    np.testing.assert_array_equal(cams.w2c[0, :3, 3], [0.1, 0.2, 0.3])


def test_write_is_atomic_when_replace_fails(tmp_path, monkeypatch):
    path = tmp_path / "clip.txt"
    cams = _random_cams(np.random.default_rng(2), 3)
    write_camera_file(path, cams)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(re10k.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_camera_file(path, _random_cams(np.random.default_rng(3), 3))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["clip.txt"]


# ------------------------------------------------------------------------------- property tests
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-6, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 6),
    url=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30),
    fx=positive,
    t=finite,
)
def test_property_random_valid_cameras_round_trip(tmp_path, seed, n, url, fx, t):
    cams = _random_cams(np.random.default_rng(seed), n, url=url)
    cams.K_norm[0, 0, 0] = fx
    cams.w2c[-1, 2, 3] = t
    path = tmp_path / "p.txt"
    write_camera_file(path, cams)
    back = read_camera_file(path)
    cams.url = cams.url.strip()
    _assert_same(cams, back)


TOKENS = st.sampled_from(
    [
        "0",
        "1",
        "-1",
        "0.5",
        "1e308",
        "1e400",
        "nan",
        "inf",
        "-0",
        "abc",
        "1,5",
        "0x10",
        "",
        "\t",
        "١",
        "1_0",
        "9" * 30,
        "\u00a0",
        "\x00",
        "e",
        "+",
        ".",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.lists(TOKENS | st.text(max_size=6), max_size=22).map(" ".join), max_size=5),
    keep_valid=st.booleans(),
)
def test_property_garbage_only_raises_camera_file_error(tmp_path, lines, keep_valid):
    body = ([GOOD] if keep_valid else []) + lines
    path = tmp_path / "g.txt"
    path.write_text("https://x\n" + "\n".join(body) + "\n", encoding="utf-8")
    try:
        cams = read_camera_file(path)
    except CameraFileError as e:
        assert str(e).startswith(f"{path}:")
    else:
        assert len(cams) >= 1 and np.isfinite(cams.w2c).all() and np.isfinite(cams.K_norm).all()


# ----------------------------------------------------------------------------------- clip layout
def _frames(rng, n=3, h=12, w=20):
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_write_clip_png_round_trip_with_depth(tmp_path):
    rng = np.random.default_rng(4)
    cams, frames = _random_cams(rng, 3), _frames(rng)
    depth = rng.uniform(0.5, 5.0, (3, 12, 20)).astype(np.float32)
    clip = write_clip(tmp_path, "train", "a_0001", cams, frames, depth=depth)
    yy, xx = np.mgrid[0:12, 0:20]
    smooth = np.stack([np.stack([xx * 12, yy * 20, xx * 6 + yy * 9 + 30 * i], -1) for i in range(3)])
    smooth = smooth.astype(np.uint8)
    write_clip(tmp_path, "train", "b_0002", cams, smooth, image_ext="jpg")
    clips = list_clips(tmp_path, "train")
    assert [c.clip_id for c in clips] == ["a_0001", "b_0002"] and clips[0] == clip
    assert clips[1].depth_path is None and read_depth(clips[1], [0]) is None
    assert sorted(os.listdir(clip.frames_dir)) == sorted(f"{t}.png" for t in cams.timestamps)
    _assert_same(read_camera_file(clip.camera_path), cams)
    np.testing.assert_array_equal(read_frames(clip, cams, [2, 0]), frames[[2, 0]])
    np.testing.assert_array_equal(read_depth(clip, [1, -1]), depth[[1, 2]])
    # a frame the depth file does not have: one InputError line naming the file (still an IndexError)
    where = re.escape(str(clip.depth_path))
    with pytest.raises(InputError, match=rf"^{where}: frame index 3 out of range for 3 depth maps$"):
        read_depth(clip, [3])
    jpg = read_frames(clips[1], cams, [0, 1, 2]).astype(int)
    assert jpg.shape == frames.shape and np.abs(jpg - smooth).mean() < 3  # lossy but close
    assert not [p for p in (tmp_path / "train").iterdir() if p.name.startswith(".")]
    # rewriting a clip replaces it, and dropping depth removes the stale depth file
    clip2 = write_clip(tmp_path, "train", "a_0001", cams, frames[:, :, ::-1].copy())
    assert clip2.depth_path is None and not (tmp_path / "train" / "a_0001.depth.npz").exists()
    np.testing.assert_array_equal(read_frames(clip2, cams, [1]), frames[[1], :, ::-1])


def test_index_named_frames_and_errors(tmp_path):
    import cv2

    rng = np.random.default_rng(5)
    cams, frames = _random_cams(rng, 3), _frames(rng)
    split = tmp_path / "test"
    (split / "c").mkdir(parents=True)
    write_camera_file(split / "c.txt", cams)
    for i in (0, 2):
        cv2.imwrite(str(split / "c" / f"{i:05d}.png"), frames[i][..., ::-1])
    (clip,) = list_clips(tmp_path, "test")
    np.testing.assert_array_equal(read_frames(clip, cams, [2, 0]), frames[[2, 0]])
    with pytest.raises(FileNotFoundError, match=rf"{split / 'c'}: no frame for camera 1 .*00001\.png"):
        read_frames(clip, cams, [1])
    with pytest.raises(IndexError, match="out of range for 3 cameras"):
        read_frames(clip, cams, [3])
    (split / "c" / "00001.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"00001\.png: cannot decode"):
        read_frames(clip, cams, [1])
    write_camera_file(split / "orphan.txt", cams)
    with pytest.raises(FileNotFoundError, match=r"orphan\.txt: no frames"):
        list_clips(tmp_path, "test")
    assert [c.clip_id for c in list_clips(tmp_path, "test", missing="skip")] == ["c"]
    with pytest.raises(FileNotFoundError, match="split folder"):
        list_clips(tmp_path, "val")


def test_mp4_frames_map_to_camera_lines(tmp_path):
    av = pytest.importorskip("av")
    n, h, w = 6, 32, 48
    cams = _random_cams(np.random.default_rng(6), n)
    # frame i is a flat grey level 40 * i: survives lossy coding and identifies the frame
    frames = np.stack([np.full((h, w, 3), 40 * i, np.uint8) for i in range(n)])
    split = tmp_path / "train"
    split.mkdir()
    write_camera_file(split / "v.txt", cams)
    with av.open(str(split / "v.mp4"), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    (clip,) = list_clips(tmp_path, "train")
    assert clip.video_path is not None and clip.frames_dir is None
    got = read_frames(clip, cams, [4, 1, 5])
    assert got.shape == (3, h, w, 3)
    np.testing.assert_allclose(got.reshape(3, -1).mean(1), [160, 40, 200], atol=6)
    longer = Re10kCameras(
        cams.url, np.arange(n + 2), np.tile(cams.K_norm[:1], (n + 2, 1, 1)), np.tile(np.eye(4), (n + 2, 1, 1))
    )
    with pytest.raises(ValueError, match=r"v\.mp4: video ends after 6 decoded frames"):
        read_frames(clip, longer, [7])


def test_write_clip_validates_inputs(tmp_path):
    rng = np.random.default_rng(7)
    cams = _random_cams(rng, 3)
    with pytest.raises(ValueError, match="frames must be"):
        write_clip(tmp_path, "train", "x", cams, _frames(rng, n=2))
    with pytest.raises(ValueError, match="invalid clip_id"):
        write_clip(tmp_path, "train", "../x", cams, _frames(rng))
    with pytest.raises(ValueError, match="depth must have shape"):
        write_clip(tmp_path, "train", "x", cams, _frames(rng), depth=np.zeros((3, 2, 2)))
