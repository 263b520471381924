"""RealEstate10K -> DL3DV / pixelSplat chunk conversion: cameras and frames carried over, CLI."""

import json

import numpy as np
import pytest

from vid3d.data.formats import dl3dv, pixelsplat, re10k
from vid3d.data.formats.convert import main, re10k_to_chunks, re10k_to_dl3dv
from vid3d.geometry import look_at_c2w

H, W = 16, 24


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "re10k"
    rng = np.random.default_rng(0)
    for split, ids in (("train", ["a", "b"]), ("test", ["c"])):
        for k, cid in enumerate(ids):
            n = 4 + k
            c2w = np.stack([look_at_c2w(np.array([0.3 * j, 0.1, -2.0]), np.zeros(3)) for j in range(n)])
            K = np.array([[0.9, 0, 0.45], [0, 1.3, 0.55], [0, 0, 1.0]])
            cams = re10k.Re10kCameras.from_c2w(c2w, K, np.arange(n) * 1000 + 7, url=f"https://x/{cid}")
            yy, xx = np.mgrid[0:H, 0:W]
            grad = (
                (4 * xx + 3 * yy)[None, :, :, None]
                + np.array([0, 10, 20])
                + 20 * np.arange(n)[:, None, None, None]
            )
            frames = (grad + rng.integers(0, 3, grad.shape)).astype(np.uint8)  # smooth: JPEG keeps it close
            re10k.write_clip(root, split, cid, cams, frames)
    # a bad source clip is reported and left out, not fatal
    (root / "train" / "zbad.txt").write_text("https://x\n1 2 3\n")
    (root / "train" / "zbad").mkdir()
    return root


def _source(src, split, cid):
    clip = next(c for c in re10k.list_clips(src, split) if c.clip_id == cid)
    cams = re10k.read_camera_file(clip.camera_path)
    return cams, re10k.read_frames(clip, cams, np.arange(len(cams)))


def test_to_dl3dv_is_exact(src, tmp_path):
    out = re10k_to_dl3dv(src, tmp_path / "d", downscales=(2,))
    assert out["train"] == ["a", "b"] and out["test"] == ["c"]
    assert len(out["errors"]) == 1 and "zbad.txt" in out["errors"][0]
    for split, cid in (("train", "b"), ("test", "c")):
        cams, frames = _source(src, split, cid)
        scene = dl3dv.read_transforms(tmp_path / "d" / split / cid / "transforms.json")
        np.testing.assert_allclose(scene.c2w, cams.c2w(), atol=1e-12)
        np.testing.assert_allclose(scene.K_px, cams.K_px(H, W), rtol=1e-12)
        for k, fp in enumerate(scene.file_paths):
            np.testing.assert_array_equal(
                dl3dv.read_image(dl3dv.resolve_image_path(scene.scene_dir, fp)), frames[k]
            )
        small = dl3dv.read_image(dl3dv.resolve_image_path(scene.scene_dir, scene.file_paths[0], "images_2"))
        assert small.shape == (H // 2, W // 2, 3)


def test_to_chunks_cameras_images_and_eval_index(src, tmp_path):
    out = re10k_to_chunks(src, tmp_path / "c", chunk_size=1, eval_index=True)
    assert out["train"] == ["a", "b"]
    assert pixelsplat.read_index(tmp_path / "c" / "train") == {"a": "000000.torch", "b": "000001.torch"}
    cams, frames = _source(src, "train", "b")
    (ex,) = pixelsplat.load_chunk(tmp_path / "c" / "train" / "000001.torch")
    assert ex["key"] == "b" and ex["url"] == cams.url
    np.testing.assert_array_equal(ex["timestamps"].numpy(), cams.timestamps)
    K, w2c = pixelsplat.example_cameras(ex["cameras"])
    np.testing.assert_allclose(K, cams.K_norm, atol=1e-7)  # float32 in the chunk
    np.testing.assert_allclose(w2c, cams.w2c, atol=1e-6)
    img = pixelsplat.decode_image(ex["images"][2])
    assert img.shape == (H, W, 3) and np.abs(img.astype(int) - frames[2]).mean() < 3  # JPEG
    ev = json.loads((tmp_path / "c" / "evaluation_index_test.json").read_text())
    assert ev == {"c": {"context": [0, 3], "target": [1, 2]}}
    assert pixelsplat.read_eval_index(tmp_path / "c" / "evaluation_index_test.json")["c"].target == (1, 2)


def test_cli(src, tmp_path, capsys):
    assert main(["--from", "re10k", "--to", "dl3dv", str(src), str(tmp_path / "d"), "--splits", "test"]) == 0
    assert "test: 1 clips" in capsys.readouterr().out
    assert [p.name for p in dl3dv.list_scenes(tmp_path / "d")] == ["c"]
    assert main(["--to", "chunks", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    assert "no train/ or test/ split folder" in capsys.readouterr().err
