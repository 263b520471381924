import argparse
import json

import numpy as np
import pytest
import torch

from vid3d.data.formats import pixelsplat as ps
from vid3d.data.interval import FixedInterval
from vid3d.geometry import c2w_to_w2c, look_at_c2w


def _example(key, n, seed, size=(24, 32)):
    rng = np.random.default_rng(seed)
    c2w = np.stack(
        [look_at_c2w(np.array([0.2 * k, 0.0, -2.0]) + rng.normal(0, 0.01, 3), np.zeros(3)) for k in range(n)]
    )
    K = np.tile(np.array([[0.8, 0, 0.5], [0, 1.1, 0.45], [0, 0, 1.0]]), (n, 1, 1))
    frames = np.stack([np.full((*size, 3), 20 * k, np.uint8) for k in range(n)])
    return (
        ps.make_example(key, f"https://x/{key}", np.arange(n) * 1000, K, np.asarray(c2w_to_w2c(c2w)), frames),
        K,
        c2w,
    )


def test_round_trip_exact(tmp_path):
    exs = [_example(f"k{i}", 5 + i, i)[0] for i in range(5)]
    index = ps.write_split(tmp_path, "train", exs, chunk_size=2)
    assert index == ps.read_index(tmp_path / "train")
    assert sorted(set(index.values())) == ["000000.torch", "000001.torch", "000002.torch"]
    loaded = {}
    for name in set(index.values()):
        loaded.update({e["key"]: e for e in ps.load_chunk(tmp_path / "train" / name)})
    for ex in exs:
        got = loaded[ex["key"]]
        assert got["url"] == ex["url"] and isinstance(got["key"], str)
        assert got["timestamps"].dtype == torch.int64 and torch.equal(got["timestamps"], ex["timestamps"])
        assert got["cameras"].dtype == torch.float32 and torch.equal(got["cameras"], ex["cameras"])
        assert len(got["images"]) == len(ex["images"])
        assert all(torch.equal(a, b) and a.dtype == torch.uint8 for a, b in zip(got["images"], ex["images"]))


def test_camera_layout_and_decoding():
    ex, K, c2w = _example("a", 3, 0)
    cams = ex["cameras"]
    assert cams.shape == (3, 18)
    np.testing.assert_allclose(cams[:, :4].numpy(), np.tile([0.8, 1.1, 0.5, 0.45], (3, 1)), rtol=1e-6)
    assert (cams[:, 4:6] == 0).all()
    w2c = np.linalg.inv(c2w)
    np.testing.assert_allclose(cams[1, 6:].numpy().reshape(3, 4), w2c[1, :3], atol=1e-6)  # row-major 3x4 w2c
    K2, w2c2 = ps.example_cameras(cams)
    np.testing.assert_allclose(K2, K, atol=1e-6)
    np.testing.assert_allclose(w2c2, w2c, atol=1e-6)
    img = ps.decode_image(ex["images"][2])
    assert img.shape == (24, 32, 3) and np.abs(img.astype(int) - 40).max() <= 2
    with pytest.raises(ValueError):
        ps.decode_image(torch.tensor([1, 2, 3], dtype=torch.uint8))


def test_weights_only_load(tmp_path):
    path = tmp_path / "c.torch"
    ps.save_chunk(path, [_example("a", 2, 0)[0]])
    data = torch.load(path, weights_only=True)  # must not raise: only lists, dicts, str, tensors
    assert isinstance(data, list) and isinstance(data[0]["images"], list)
    # a chunk containing an arbitrary object is refused by the safe loader
    torch.save([{"x": argparse.Namespace(a=1)}], tmp_path / "evil.torch")
    with pytest.raises(ps.ChunkFormatError, match="evil.torch"):
        ps.load_chunk(tmp_path / "evil.torch")
    torch.save([{"url": "u", "key": "k"}], tmp_path / "bad.torch")
    with pytest.raises(ps.ChunkFormatError, match="example 0"):
        ps.load_chunk(tmp_path / "bad.torch")


def test_eval_index_parsing(tmp_path):
    p = tmp_path / "eval.json"
    p.write_text(json.dumps({"a": {"context": [0, 4], "target": [1, 2, 3]}, "b": None}))
    idx = ps.read_eval_index(p)
    assert idx == {"a": ps.EvalEntry((0, 4), (1, 2, 3)), "b": None}
    p.write_text(json.dumps({"a": {"context": [0, "x"], "target": [1]}}))
    with pytest.raises(ps.ChunkFormatError, match="'a'.*context"):
        ps.read_eval_index(p)
    p.write_text("{not json")
    with pytest.raises(ps.ChunkFormatError, match="eval.json:1"):
        ps.read_eval_index(p)
    with pytest.raises(ps.ChunkFormatError, match=r"missing\.json: no such file \(an evaluation index"):
        ps.read_eval_index(tmp_path / "missing.json")


def test_chunk_dataset(tmp_path):
    exs = [_example(f"k{i}", 8, i)[0] for i in range(3)]
    bad = _example("kbad", 8, 9)[0]
    bad["cameras"][2, 6] = float("nan")
    short = _example("kshort", 2, 10)[0]
    ps.write_split(tmp_path, "test", exs + [bad, short], chunk_size=2)
    ds = ps.ChunkClipDataset(tmp_path, "test", num_frames=3, height=16, width=16, interval=FixedInterval(2))
    assert len(ds) == 5
    samples = [ds[i] for i in range(len(ds))]
    assert {s["clip_id"] for s in samples} <= {"k0", "k1", "k2"}
    assert {ds.keys[i]: r for i, r in ds.known_bad().items()} == {"kbad": "non_finite", "kshort": "too_short"}
    s = samples[0]
    assert s["frames"].shape == (3, 3, 16, 16)
    idx = s["frame_indices"].numpy()
    np.testing.assert_array_equal(np.diff(idx), 2)
    np.testing.assert_allclose(s["frames"][:, 0, 8, 8].numpy(), 20 * idx / 127.5 - 1, atol=3 / 127.5)
    np.testing.assert_allclose(s["c2w"][0].numpy(), np.eye(4), atol=1e-6)
    # evaluation index: context + target, null and unknown keys dropped
    ev = tmp_path / "eval.json"
    ev.write_text(
        json.dumps(
            {"k1": {"context": [0, 6], "target": [2, 3]}, "k2": None, "zz": {"context": [0], "target": []}}
        )
    )
    eds = ps.ChunkClipDataset(tmp_path, "test", height=16, width=16, eval_index=ev)
    assert len(eds) == 1
    e = eds[0]
    assert e["clip_id"] == "k1" and e["frame_indices"].tolist() == [0, 6, 2, 3]
