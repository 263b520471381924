import json

import numpy as np
import pytest

from vid3d.data.formats import dl3dv
from vid3d.data.interval import FixedInterval, UniformInterval
from vid3d.geometry import look_at_c2w

H, W = 32, 48


def _scene(n, seed=0):
    rng = np.random.default_rng(seed)
    c2w = np.stack(
        [
            look_at_c2w(np.array([0.1 * k, 0.02 * k, -2.0]) + rng.normal(0, 0.01, 3), np.zeros(3))
            for k in range(n)
        ]
    )
    K = np.array([[40.0, 0, 23.7], [0, 41.0, 16.2], [0, 0, 1]])
    frames = np.stack([np.full((H, W, 3), 15 * k, np.uint8) for k in range(n)])
    return K, c2w, frames


def test_round_trip(tmp_path):
    K, c2w, frames = _scene(5)
    path = dl3dv.write_scene(tmp_path, "s0", K, c2w, frames, downscales=(4,))
    scene = dl3dv.read_transforms(path)
    assert (scene.width, scene.height) == (W, H)
    np.testing.assert_allclose(scene.K_px, np.broadcast_to(K, (5, 3, 3)))
    np.testing.assert_allclose(scene.c2w, c2w, atol=1e-12)
    assert scene.file_paths == [f"images/frame_{k:05d}.png" for k in range(1, 6)]
    img = dl3dv.read_image(dl3dv.resolve_image_path(scene.scene_dir, scene.file_paths[2]))
    np.testing.assert_array_equal(img, frames[2])
    small = dl3dv.read_image(dl3dv.resolve_image_path(scene.scene_dir, scene.file_paths[2], "images_4"))
    assert small.shape == (H // 4, W // 4, 3)


def test_opengl_to_opencv_known_pose(tmp_path):
    """A camera at (1, 2, 3) looking down world -z with y up (OpenGL identity rotation) is, in OpenCV
    axes, x = (1,0,0), y = (0,-1,0), z = (0,0,-1)."""
    c2w_gl = np.eye(4)
    c2w_gl[:3, 3] = [1, 2, 3]
    (tmp_path / "s").mkdir()
    data = {
        "w": 8,
        "h": 6,
        "fl_x": 5,
        "fl_y": 5,
        "cx": 4,
        "cy": 3,
        "frames": [{"file_path": "images/frame_00001.png", "transform_matrix": c2w_gl.tolist()}],
    }
    (tmp_path / "s" / "transforms.json").write_text(json.dumps(data))
    scene = dl3dv.read_transforms(tmp_path / "s" / "transforms.json")
    expected = np.array([[1, 0, 0, 1], [0, -1, 0, 2], [0, 0, -1, 3], [0, 0, 0, 1.0]])
    np.testing.assert_array_equal(scene.c2w[0], expected)
    # a world point in front of the OpenGL camera (at z = 3 - 1) has positive OpenCV depth
    X_cam = np.linalg.inv(scene.c2w[0]) @ np.array([1, 2, 2, 1.0])
    assert X_cam[2] == pytest.approx(1.0)


def test_reduced_resolution_intrinsics(tmp_path):
    K, c2w, frames = _scene(6, seed=1)
    dl3dv.write_scene(tmp_path, "s0", K, c2w, frames, downscales=(4,))
    full = dl3dv.Dl3dvClipDataset(
        tmp_path, num_frames=2, height=H, width=W, image_dir=None, interval=FixedInterval(1)
    )
    red = dl3dv.Dl3dvClipDataset(
        tmp_path, num_frames=2, height=H // 4, width=W // 4, image_dir="images_4", interval=FixedInterval(1)
    )
    s_full, s_red = full[0], red[0]
    np.testing.assert_allclose(s_full["K_px"][0].numpy(), K, rtol=1e-6)  # same size: no crop, no resize
    # images_4 are (8, 12): intrinsics scale by 12 / 48 and 8 / 32
    Kr = np.array([[40.0 / 4, 0, 23.7 / 4], [0, 41.0 / 4, 16.2 / 4], [0, 0, 1]])
    np.testing.assert_allclose(s_red["K_px"][0].numpy(), Kr, rtol=1e-6)
    assert s_red["frames"].shape == (2, 3, H // 4, W // 4)


def test_dataset_skips_bad_scene(tmp_path):
    for k in range(2):
        K, c2w, frames = _scene(6, seed=k)
        dl3dv.write_scene(tmp_path, f"s{k}", K, c2w, frames)
    (tmp_path / "s1" / "images" / "frame_00003.png").unlink()
    t = tmp_path / "s1" / "transforms.json"
    ds = dl3dv.Dl3dvClipDataset(
        tmp_path, num_frames=6, height=16, width=16, image_dir=None, interval=UniformInterval(2, 3)
    )
    samples = [ds[i] for i in range(2)]
    assert [s["clip_id"] for s in samples] == ["s0", "s0"]
    assert ds.known_bad() == {1: "missing_frames"}
    np.testing.assert_allclose(samples[0]["c2w"][0].numpy(), np.eye(4), atol=1e-6)
    data = json.loads(t.read_text())
    del data["fl_x"]
    t.write_text(json.dumps(data))
    with pytest.raises(dl3dv.TransformsError, match="transforms.json: fl_x"):
        dl3dv.read_transforms(t)


def _ids(scenes):
    return [dl3dv.scene_id(s) for s in scenes]


def test_split_conventions(tmp_path):
    """Split folders, DL3DV-10K subset folders, benchmark {hash}/nerfstudio, id lists and exclusions."""
    K, c2w, frames = _scene(2)
    for where in ("train/1K/aaa", "train/2K/bbb", "test/ccc"):
        parent, sid = where.rsplit("/", 1)
        dl3dv.write_scene(tmp_path / "folders" / parent, sid, K, c2w, frames)
    assert _ids(dl3dv.split_scenes(tmp_path / "folders", "train")) == ["aaa", "bbb"]
    assert _ids(dl3dv.split_scenes(tmp_path / "folders", "test")) == ["ccc"]
    assert _ids(dl3dv.split_scenes(tmp_path / "folders", None)) == ["ccc", "aaa", "bbb"]  # by path
    flat = tmp_path / "flat"
    for sid in ("h1", "h2", "h3"):
        dl3dv.write_scene(flat / "1K", sid, K, c2w, frames)
    dl3dv.write_scene(flat / "benchmark" / "h4", "nerfstudio", K, c2w, frames)
    (flat / "test.txt").write_text("# benchmark\nh4\nbenchmark/h2/\n")
    (flat / "bench.txt").write_text("h2\nh4\n")
    assert _ids(dl3dv.split_scenes(flat, "test")) == ["h2", "h4"]  # 1K/h2, benchmark/h4/nerfstudio
    assert _ids(dl3dv.split_scenes(flat, "train", split_file=flat / "bench.txt")) == ["h2", "h4"]
    assert _ids(dl3dv.split_scenes(flat, None, exclude_file=flat / "bench.txt")) == ["h1", "h3"]
    with pytest.raises(FileNotFoundError, match="no DL3DV split 'train'.*train.txt"):
        dl3dv.split_scenes(flat, "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dl3dv.split_scenes(tmp_path / "missing", "train")
    ds = dl3dv.Dl3dvClipDataset(flat, "test", num_frames=2, height=8, width=8, image_dir=None)
    assert sorted(ds[i]["clip_id"] for i in range(len(ds))) == ["h2", "h4"]
