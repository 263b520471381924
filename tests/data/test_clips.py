import logging
import os
from collections import Counter

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vid3d.data.clips import SKIP_REASONS, ACIDClipDataset, BadClip, Re10kClipDataset, choose_stride_window
from vid3d.data.datamodule import collate_samples
from vid3d.data.formats import re10k
from vid3d.data.interval import FixedInterval, UniformInterval
from vid3d.geometry import look_at_c2w

H0, W0 = 24, 32
F = 4
K_NORM = np.array([[0.9, 0, 0.5], [0, 1.2, 0.5], [0, 0, 1.0]])


def _cams(n, seed=0):
    rng = np.random.default_rng(seed)
    eyes = np.stack([np.array([0.1 * k, 0.05 * np.sin(k), -2.0]) for k in range(n)]) + rng.normal(
        0, 0.01, (n, 3)
    )
    c2w = np.stack([look_at_c2w(e, np.zeros(3)) for e in eyes])
    return re10k.Re10kCameras.from_c2w(c2w, K_NORM, np.arange(n) * 33_333 + 1000, url=f"https://x/{seed}")


def _frames(n):
    """Constant-colour frames: frame k has value 10 * k, so the sample reveals which frame was read."""
    return np.stack([np.full((H0, W0, 3), 10 * k, np.uint8) for k in range(n)])


def _write(root, clip_id, n, seed=0):
    return re10k.write_clip(root, "train", clip_id, _cams(n, seed), _frames(n))


def _edit_camera_line(clip, line_no, fn):
    lines = clip.camera_path.read_text().splitlines()
    lines[line_no] = fn(lines[line_no])
    clip.camera_path.write_text("\n".join(lines) + "\n")


def _replace_token(k, value):
    def fn(line):
        toks = line.split()
        toks[k] = value
        return " ".join(toks)

    return fn


def _frame_files(clip):
    return sorted(clip.frames_dir.iterdir())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("re10k")
    good = {f"good{k}": _write(root, f"good{k}", 10, seed=k) for k in range(3)}
    expected = Counter()

    def bad(name, n=F):
        return _write(root, name, n, seed=len(name))

    _edit_camera_line(bad("bad_truncated"), 2, lambda s: " ".join(s.split()[:10]))
    expected["camera_file"] += 1
    _edit_camera_line(bad("bad_nonnumeric"), 3, _replace_token(5, "abc"))
    expected["camera_file"] += 1
    _edit_camera_line(bad("bad_nan"), 2, _replace_token(9, "nan"))
    expected["non_finite"] += 1
    _edit_camera_line(bad("bad_inf"), 2, _replace_token(12, "inf"))
    expected["non_finite"] += 1
    _edit_camera_line(bad("bad_rotation"), 1, _replace_token(7, "3.0"))
    expected["not_rotation"] += 1
    c = bad("bad_missing")  # one frame renamed to a name no camera maps to: count ok, frame missing
    f = _frame_files(c)[1]
    f.rename(f.with_name("99999999.png"))
    expected["missing_frames"] += 1
    c = bad("bad_empty")
    for f in _frame_files(c):
        f.unlink()
    expected["missing_frames"] += 1
    (root / "train" / "bad_orphan.txt").write_text(_write(root, "tmp_orphan", F).camera_path.read_text())
    for f in _frame_files(re10k.Re10kClip("tmp_orphan", None, root / "train" / "tmp_orphan", None, None)):
        f.unlink()
    (root / "train" / "tmp_orphan").rmdir()
    (root / "train" / "tmp_orphan.txt").unlink()
    expected["missing_frames"] += 1
    c = bad("bad_unreadable")
    _frame_files(c)[2].write_bytes(b"not an image at all")
    expected["unreadable_frames"] += 1
    c = bad("bad_extra")
    (c.frames_dir / "00077.png").write_bytes(_frame_files(c)[0].read_bytes())
    expected["count_mismatch"] += 1
    c = bad("bad_size")
    cv2.imwrite(str(_frame_files(c)[3]), np.zeros((H0 + 4, W0, 3), np.uint8))
    expected["image_size"] += 1
    bad("bad_short", n=F - 1)
    expected["too_short"] += 1
    reasons = {
        "bad_truncated": "camera_file",
        "bad_nonnumeric": "camera_file",
        "bad_nan": "non_finite",
        "bad_inf": "non_finite",
        "bad_rotation": "not_rotation",
        "bad_missing": "missing_frames",
        "bad_empty": "missing_frames",
        "bad_orphan": "missing_frames",
        "bad_unreadable": "unreadable_frames",
        "bad_extra": "count_mismatch",
        "bad_size": "image_size",
        "bad_short": "too_short",
    }
    assert Counter(reasons.values()) == expected
    return root, good, reasons


def test_iterates_good_only_and_counts_each_reason(corpus, caplog):
    root, good, reasons = corpus
    expected = Counter(reasons.values())
    ds = Re10kClipDataset(root, "train", num_frames=F, height=16, width=16, interval=FixedInterval(2), seed=3)
    assert len(ds) == len(good) + len(reasons)
    with caplog.at_level(logging.WARNING, logger="vid3d.data.clips"):
        samples = [ds[i] for i in range(len(ds))]
    assert {s["clip_id"] for s in samples} <= set(good)
    per_sample = torch.stack([s["skipped"] for s in samples]).sum(0)
    counted = {r: int(c) for r, c in zip(SKIP_REASONS, per_sample) if c}
    assert counted == dict(ds.skipped)
    assert set(counted) == set(expected)
    for reason, n in expected.items():
        assert counted[reason] >= n, reason  # each bad clip is met at least at its own index
    assert {ds.clips[i].clip_id: r for i, r in ds.known_bad().items()} == reasons
    logged = caplog.text
    for name in [
        "bad_truncated.txt",
        "bad_nan.txt",
        "bad_rotation.txt",
        "bad_orphan.txt",
        "bad_short",
        "bad_size",
    ]:
        assert name in logged
    s = samples[0]
    assert s["frames"].shape == (F, 3, 16, 16) and s["frames"].dtype == torch.float32
    assert s["K_px"].shape == (F, 3, 3) and s["c2w"].shape == (F, 4, 4)
    assert s["frame_indices"].dtype == torch.int64


def test_no_skip_raises(corpus):
    root, _, _ = corpus
    ds = Re10kClipDataset(root, "train", num_frames=F, height=16, width=16, skip_bad=False)
    idx = [c.clip_id for c in ds.clips].index("bad_nan")
    with pytest.raises(BadClip, match="bad_nan.txt"):
        ds[idx]


def test_sample_content_matches_independent_computation(corpus):
    root, good, _ = corpus
    ds = ACIDClipDataset(root, "train", num_frames=F, height=12, width=12, interval=FixedInterval(3), seed=1)
    i = [c.clip_id for c in ds.clips].index("good1")
    s = ds[i]
    assert s["clip_id"] == "good1" and s["skipped"].sum() == 0
    idx = s["frame_indices"].numpy()
    np.testing.assert_array_equal(np.diff(idx), 3)
    assert 0 <= idx[0] and idx[-1] < 10
    # frame k was constant 10 * k
    expect = torch.tensor(10.0 * idx).float()[:, None, None, None] / 127.5 - 1
    torch.testing.assert_close(s["frames"], expect.expand(F, 3, 12, 12))
    cams = re10k.read_camera_file(good["good1"].camera_path)
    c2w = cams.c2w()[idx]
    rel = np.linalg.inv(c2w[0]) @ c2w
    np.testing.assert_allclose(s["c2w"].numpy(), rel, atol=1e-5)
    np.testing.assert_allclose(s["c2w"][0].numpy(), np.eye(4), atol=1e-6)
    # K: 24x32 -> centre crop 24x24 at x0=4 -> scale 12/24
    fx, fy, cx, cy = 0.9 * 32, 1.2 * 24, 0.5 * 32, 0.5 * 24
    Kexp = np.array([[fx * 0.5, 0, (cx - 4) * 0.5], [0, fy * 0.5, cy * 0.5], [0, 0, 1]])
    np.testing.assert_allclose(s["K_px"].numpy(), np.broadcast_to(Kexp, (F, 3, 3)), rtol=1e-6)


def test_deterministic_per_seed_epoch_index(corpus):
    root, _, _ = corpus
    kw = dict(num_frames=F, height=8, width=8, interval=UniformInterval(1, 3), seed=7)
    a, b = Re10kClipDataset(root, **kw), Re10kClipDataset(root, **kw)
    ia = [a[i]["frame_indices"].tolist() for i in range(len(a))]
    assert ia == [b[i]["frame_indices"].tolist() for i in range(len(b))]
    a.set_epoch(1)
    assert [a[i]["frame_indices"].tolist() for i in range(len(a))] != ia


def test_short_clip_rule():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(np.diff(choose_stride_window(7, 4, 3, rng)), 2)  # shrink 3 -> (7-1)//3 = 2
    np.testing.assert_array_equal(choose_stride_window(4, 4, 9, rng), [0, 1, 2, 3])
    for _ in range(20):
        idx = choose_stride_window(20, 4, 5, rng)
        assert idx[-1] <= 19 and (np.diff(idx) == 5).all()
    with pytest.raises(BadClip) as e:
        choose_stride_window(3, 4, 1, rng)
    assert e.value.reason == "too_short"
    with pytest.raises(BadClip):
        choose_stride_window(7, 4, 3, rng, shrink=False)
    assert choose_stride_window(1, 1, 5, rng).tolist() == [0]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs")
def test_counts_aggregate_across_workers(corpus):
    root, good, reasons = corpus
    kw = dict(num_frames=F, height=8, width=8, interval=FixedInterval(1), seed=5)
    ref = Re10kClipDataset(root, **kw)
    ref_total = torch.stack([ref[i]["skipped"] for i in range(len(ref))]).sum(0)
    loader = DataLoader(Re10kClipDataset(root, **kw), batch_size=3, num_workers=2, collate_fn=collate_samples)
    batches = list(loader)
    total = torch.stack([b["skipped"].sum(0) for b in batches]).sum(0)
    assert torch.equal(total, ref_total) and total.sum() >= len(reasons)
    assert all(isinstance(b["clip_id"], list) for b in batches)


def test_window_start_first_for_evaluation():
    rng = np.random.default_rng(0)
    idx = choose_stride_window(20, 4, 3, rng, start="first")
    assert idx.tolist() == [0, 3, 6, 9]
    assert choose_stride_window(7, 4, 3, rng, start="first").tolist() == [0, 2, 4, 6]  # shrunk stride
    starts = {int(choose_stride_window(20, 4, 3, np.random.default_rng(s))[0]) for s in range(40)}
    assert starts == set(range(0, 20 - 9))  # random: every start where the window fits
    with pytest.raises(ValueError, match="window_start"):
        ACIDClipDataset("/nonexistent", window_start="middle")


def test_frames_to_unit_range_is_the_formula_bitwise():
    """uint8 (F, H, W, 3) -> (F, 3, H, W) float32 x / 127.5 - 1, contiguous; 0 -> -1, 255 -> 1."""
    import numpy as np
    import torch

    from vid3d.data.clips import frames_to_unit_range

    a = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    a[0, 0, 0] = (0, 255, 128)
    out = frames_to_unit_range(a)
    ref = torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    assert out.shape == (3, 3, 5, 7) and out.dtype == torch.float32 and out.is_contiguous()
    assert torch.equal(out, ref)
    assert out[0, :, 0, 0].tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1.0], abs=1e-7)
