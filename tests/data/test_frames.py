"""uint8 frames from the loader, [-1, 1] once where they are used (vid3d/data/frames.py, issue 21)."""

import numpy as np
import pytest
import torch

from vid3d.data.clips import Re10kClipDataset
from vid3d.data.datamodule import VideoDataModule, collate_samples
from vid3d.data.formats import re10k
from vid3d.data.frames import as_unit_range, hwc_to_chw_uint8
from vid3d.data.interval import FixedInterval
from vid3d.data.transforms import center_crop_resize


def test_uint8_to_unit_range_is_exact():
    """0 -> -1 and 255 -> 1 exactly; every level is x / 127.5 - 1 to float32 rounding (within 1 ulp of the
    float64 value) and bitwise the formula ``x.float() / 127.5 - 1``; float input is returned as is."""
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 1, 256).expand(2, 3, 4, 256)
    out = as_unit_range(levels)
    assert out.dtype == torch.float32 and out.is_contiguous() and out.shape == levels.shape
    row = out[0, 0, 0]
    assert row[0].item() == -1.0 and row[255].item() == 1.0
    exact = np.arange(256) / 127.5 - 1.0
    np.testing.assert_allclose(row.double().numpy(), exact, rtol=0, atol=np.finfo(np.float32).eps)
    assert torch.equal(out, levels.float() / 127.5 - 1.0)
    f = torch.rand(2, 3, 4, 5) * 2 - 1
    assert as_unit_range(f) is f
    with pytest.raises(TypeError, match="int16"):
        as_unit_range(torch.zeros(1, 3, 2, 2, dtype=torch.int16))


def test_channels_last_view_shares_memory_and_batches_to_the_same_values():
    a = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    t = hwc_to_chw_uint8(a)
    assert t.shape == (3, 3, 5, 7) and t.dtype == torch.uint8 and np.shares_memory(t.numpy(), a)
    assert torch.equal(t[1, 2], torch.from_numpy(a[1, :, :, 2]))
    batch = collate_samples([{"frames": t}, {"frames": t}])["frames"]
    assert torch.equal(as_unit_range(batch)[0], torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1)
    with pytest.raises(ValueError, match="uint8"):
        hwc_to_chw_uint8(a.astype(np.float32))


@pytest.fixture
def clip_root(tmp_path):
    """One clip of 6 random 24x40 PNG frames (lossless: decode is exact)."""
    rng = np.random.default_rng(3)
    n = 6
    K = np.tile(np.array([[0.9, 0, 0.5], [0, 1.2, 0.5], [0, 0, 1]]), (n, 1, 1))
    w2c = np.tile(np.eye(4), (n, 1, 1))
    w2c[:, 0, 3] = np.linspace(0, 1, n)
    cams = re10k.Re10kCameras("https://example.com/v", np.arange(n, dtype=np.int64) * 1000, K, w2c)
    frames = rng.integers(0, 256, (n, 24, 40, 3), dtype=np.uint8)
    re10k.write_clip(tmp_path, "train", "c0", cams, frames, image_ext="png")
    return tmp_path, frames


def test_uint8_dataset_sample_is_the_float_sample_before_conversion(clip_root):
    root, frames = clip_root
    kw = dict(num_frames=4, height=16, width=24, interval=FixedInterval(1), seed=2)
    u8 = Re10kClipDataset(root, "train", frames_dtype="uint8", **kw)[0]
    f32 = Re10kClipDataset(root, "train", **kw)[0]
    assert u8["frames"].dtype == torch.uint8 and u8["frames"].shape == (4, 3, 16, 24)
    assert f32["frames"].dtype == torch.float32
    assert torch.equal(as_unit_range(u8["frames"]), f32["frames"])
    for k in ("K_px", "c2w", "frame_indices"):
        assert torch.equal(u8[k], f32[k]), k
    # the values are OpenCV's crop + INTER_AREA resize of the decoded frames
    idx = u8["frame_indices"].numpy()
    ref, _ = center_crop_resize(frames[idx], np.eye(3), 16, 24)
    assert torch.equal(u8["frames"], torch.from_numpy(ref).permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match="frames_dtype"):
        Re10kClipDataset(root, "train", frames_dtype="float16", **kw)


def test_datamodule_converts_uint8_frames_after_the_transfer():
    dm = VideoDataModule(train_dataset=[])
    u8 = torch.tensor([0, 51, 255], dtype=torch.uint8).reshape(1, 1, 3, 1, 1)
    out = dm.on_after_batch_transfer({"frames": u8, "clip_id": ["a"]}, 0)
    assert out["frames"].dtype == torch.float32
    assert out["frames"].flatten().tolist() == [-1.0, pytest.approx(51 / 127.5 - 1), 1.0]
    f = torch.zeros(1, 1, 3, 1, 1)
    assert dm.on_after_batch_transfer({"frames": f}, 0)["frames"] is f


@pytest.mark.parametrize("channels", [1, 3])
def test_resize_of_a_crop_view_matches_per_frame_resize(channels):
    """center_crop_resize resizes the crop view in place into one array: the same pixels as resizing each
    cropped frame on its own (and with one channel the channel axis is kept)."""
    import cv2

    a = np.random.default_rng(1).integers(0, 256, (3, 30, 50, channels), dtype=np.uint8)
    out, _ = center_crop_resize(a, np.eye(3), 12, 16)  # crop 30x40 at x0 = 5, shrink: INTER_AREA
    assert out.shape == (3, 12, 16, channels) and out.dtype == np.uint8
    for k in range(3):
        ref = cv2.resize(np.ascontiguousarray(a[k, :, 5:45]), (16, 12), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(out[k], ref.reshape(12, 16, channels))
