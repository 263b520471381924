"""Strange files and paths in a dataset: a FIFO never blocks, nothing outside the dataset root is opened."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

from vid3d.data.files import UnsafePath, confined, decode_image
from vid3d.data.formats import dl3dv
from vid3d.data.formats import pixelsplat as ps
from vid3d.data.formats.re10k import _read_image
from vid3d.data.interval import FixedInterval
from vid3d.geometry import c2w_to_w2c, look_at_c2w

H, W = 16, 24


def _cams(n: int) -> tuple[np.ndarray, np.ndarray]:
    c2w = np.stack([look_at_c2w(np.array([0.1 * k, 0.0, -2.0]), np.zeros(3)) for k in range(n)])
    return np.array([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]]), c2w


@pytest.mark.timeout(30)
def test_a_fifo_frame_is_refused_at_once(tmp_path):
    fifo = tmp_path / "00000.png"
    os.mkfifo(fifo)
    for read in (_read_image, decode_image, dl3dv.read_image):
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match="not a regular file"):
            read(fifo)
        assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ValueError, match="not a regular file"):
        decode_image(tmp_path)  # a directory


def test_confined_follows_symlinks_and_refuses_escapes(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (tmp_path / "outside.png").write_bytes(b"x")
    assert confined(root / "a" / ".." / "a", root) == (root / "a").resolve()
    for p in (root / ".." / "outside.png", tmp_path / "outside.png", "/etc/passwd"):
        with pytest.raises(UnsafePath, match="outside the dataset root"):
            confined(p, root)
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(UnsafePath, match="outside the dataset root"):
        confined(root / "link.png", root)
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(UnsafePath):
        read_from = root / "loop"
        confined(read_from, root)
        decode_image(read_from)


def test_dl3dv_file_paths_outside_the_root_are_skipped_not_opened(tmp_path):
    """transforms.json file_path values that leave the dataset (``../``, absolute) with image_dir=null."""
    K, c2w = _cams(4)
    frames = np.stack([np.full((H, W, 3), 40 * k, np.uint8) for k in range(4)])
    root = tmp_path / "dl3dv"
    good = dl3dv.write_scene(root / "test", "good", K, c2w, frames)
    bad = dl3dv.write_scene(root / "test", "bad", K, c2w, frames)
    secret = tmp_path / "secret.png"
    shutil.copy(good.parent / "images" / "frame_00001.png", secret)  # a decodable image outside the root
    data = json.loads(bad.read_text())
    for k, fr in enumerate(data["frames"]):
        fr["file_path"] = "../../../secret.png" if k % 2 else str(secret)
    bad.write_text(json.dumps(data))
    ds = dl3dv.Dl3dvClipDataset(
        root, "test", num_frames=2, height=8, width=8, image_dir=None, interval=FixedInterval(1)
    )
    ids = [ds[i]["clip_id"] for i in range(len(ds))]
    assert ids and set(ids) == {"good"}
    assert ds.skipped["outside_root"] >= 1 and set(ds.skipped) == {"outside_root"}


def test_pixelsplat_index_entries_outside_the_split_are_skipped(tmp_path):
    K, c2w = _cams(4)
    Kn = np.tile(np.array([[0.8, 0, 0.5], [0, 1.1, 0.5], [0, 0, 1.0]]), (4, 1, 1))
    frames = np.stack([np.full((H, W, 3), 30 * k, np.uint8) for k in range(4)])
    exs = [
        ps.make_example(k, f"https://x/{k}", np.arange(4) * 1000, Kn, np.asarray(c2w_to_w2c(c2w)), frames)
        for k in ("k0", "k1")
    ]
    ps.write_split(tmp_path / "set", "test", exs, chunk_size=1)
    split = tmp_path / "set" / "test"
    shutil.copy(next(split.glob("*.torch")), tmp_path / "outside.torch")
    index = json.loads((split / "index.json").read_text())
    index["k1"] = "../../outside.torch"
    (split / "index.json").write_text(json.dumps(index))
    ds = ps.ChunkClipDataset(
        tmp_path / "set", "test", num_frames=2, height=8, width=8, interval=FixedInterval(1)
    )
    assert {ds[i]["clip_id"] for i in range(len(ds))} == {"k0"}
    assert ds.skipped["outside_root"] >= 1


def test_re10k_frame_symlinked_outside_the_root_is_skipped(tmp_path):
    from vid3d.data.clips import Re10kClipDataset
    from vid3d.data.synthetic import build_synthetic_dataset

    root = build_synthetic_dataset(
        tmp_path / "set", num_train=2, num_test=1, num_frames=6, height=72, width=128
    )
    clips = sorted(p for p in (root / "train").iterdir() if p.is_dir())
    frames = sorted(clips[1].glob("*.jpg"))
    outside = tmp_path / "outside.jpg"
    frames[2].rename(outside)
    frames[2].symlink_to(outside)  # decodable, but outside the dataset
    ds = Re10kClipDataset(root, "train", num_frames=2, height=32, width=48, interval=FixedInterval(1))
    assert {ds[i]["clip_id"] for i in range(4)} == {clips[0].name}
    assert ds.known_bad() == {1: "outside_root"}


@pytest.mark.timeout(30)
def test_re10k_depth_symlinked_outside_the_root_is_refused(tmp_path):
    from vid3d.data.formats.re10k import Re10kCameras, list_clips, read_depth, write_clip

    K, c2w = _cams(3)
    K_norm = K / np.array([[W], [H], [1.0]])  # pixels -> fractions of the image size
    cams = Re10kCameras.from_c2w(c2w, K_norm, np.arange(3) * 1000)
    depth = np.arange(3 * H * W, dtype=np.float32).reshape(3, H, W)
    root = tmp_path / "set"
    write_clip(root, "test", "c0", cams, np.zeros((3, H, W, 3), np.uint8), depth=depth)
    (clip,) = list_clips(root, "test")
    np.testing.assert_array_equal(read_depth(clip, [2, 0], root=root), depth[[2, 0]])
    outside = tmp_path / "outside.depth.npz"
    clip.depth_path.rename(outside)
    clip.depth_path.symlink_to(outside)  # a valid depth file, but outside the dataset
    with pytest.raises(UnsafePath, match="outside the dataset root") as e:
        read_depth(clip, [0], root=root)
    assert e.value.reason == "outside_root" and str(clip.depth_path) in str(e.value)
    assert "\n" not in str(e.value)
    np.testing.assert_array_equal(read_depth(clip, [1]), depth[[1]])  # no root given: not confined
    clip.depth_path.unlink()
    os.mkfifo(clip.depth_path)
    with pytest.raises(UnsafePath, match="not a regular file"):
        read_depth(clip, [0], root=root)
    clip.depth_path.unlink()
    clip.depth_path.write_bytes(b"not an npz archive")
    with pytest.raises(ValueError, match=f"^{clip.depth_path}: cannot read depth") as e:
        read_depth(clip, [0], root=root)
    assert "\n" not in str(e.value)
