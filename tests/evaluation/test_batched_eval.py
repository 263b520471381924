"""The batched evaluation path (``eval.batch_size``, vid3d/evaluation/batching.py): several clips per forward
give the records of the one-by-one path (each item seeded as alone), in the camera and sparse benchmarks.

The model is the tiny backbone with the Plücker encoder and epipolar attention, its zero-initialised camera
outputs given random values (so the cameras change the videos), 2 sampler steps with CFG. Tolerances: the
batched forward changes float rounding only, so a uint8 pixel may move by one level (|diff| <= 1) and the
PSNRs of the records agree to 0.05 dB; a wrong seed per item changes the videos completely (tested).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid3d.evaluation.batching import Lookahead
from vid3d.evaluation.camera_runner import EvalClip, gt_video_method, run_camera_eval
from vid3d.evaluation.image_metrics import ImageMetrics
from vid3d.evaluation.pose import GTPoseEstimator
from vid3d.evaluation.records import read_records
from vid3d.evaluation.sparse_runner import SparsePair, run_sparse_eval
from vid3d.sampling.video_sampler import VideoSampler

H, W, N = 32, 48, 4


@pytest.fixture(scope="module")
def model():
    from vid3d.models.backbone import build_tiny_backbone
    from vid3d.models.video_diffusion import CameraVideoDiffusion

    torch.set_num_threads(1)
    m = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker", attention="epipolar")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in (m.camera_encoder, m.attention_adapter):
            for p in module.parameters():
                if not p.any():
                    p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return m.eval()


def _trajectory(i: int) -> np.ndarray:
    c2w = np.tile(np.eye(4), (N, 1, 1))
    c2w[:, 0, 3] = 0.2 * (i + 1) * np.arange(N)
    c2w[:, 2, 3] = 0.1 * np.arange(N)
    return c2w


def _clips(n: int = 3) -> list[EvalClip]:
    rng = np.random.default_rng(0)
    K = np.array([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]])
    return [EvalClip(f"c{i}", rng.integers(0, 255, (N, H, W, 3), dtype=np.uint8), K, _trajectory(i),
                     np.arange(N)) for i in range(n)]


def _strip(records):
    return [{k: v for k, v in r.items() if k not in ("timings_s", "fidelity")} for r in records]


def test_batch_entry_point_gives_each_clips_video_alone(model):
    from vid3d.tasks.camera_benchmark import model_method

    method = model_method(model, VideoSampler(num_steps=2), seed=7)
    clips, seeds = _clips(3), [11, 12, 13]
    batched = method.batch(clips, seeds)
    alone = []
    for clip, s in zip(clips, seeds):
        torch.manual_seed(s)  # the engine seeds the global RNG with the item's seed before a call
        alone.append(method(clip))
    for a, b in zip(alone, batched):
        assert a.shape == b.shape == (N, H, W, 3)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    # the seed reaches each item: another item's seed gives another video
    wrong = method.batch(clips[:2], [seeds[1], seeds[0]])
    assert np.abs(wrong[0].astype(int) - alone[0].astype(int)).mean() > 5


def test_camera_records_batched_equal_one_by_one(model, tmp_path):
    from vid3d.tasks.camera_benchmark import model_method

    clips = _clips(2)
    methods = {"tiny": model_method(model, VideoSampler(num_steps=2), seed=0), "gt_video": gt_video_method}
    runs = {}
    for bs in (1, 2):
        out = run_camera_eval(clips, methods, GTPoseEstimator(), tmp_path / f"b{bs}", progress=False,
                              batch_size=bs)
        assert out["n_new"] == 4
        runs[bs] = read_records(tmp_path / f"b{bs}" / "records.shard0of1.jsonl")
    one, many = runs[1], runs[2]
    assert _strip(one) == _strip(many)
    for a, b in zip(one, many):
        assert abs(a["fidelity"]["psnr_gt"] - b["fidelity"]["psnr_gt"]) < 0.05


def _pairs(n: int = 3) -> list[SparsePair]:
    rng = np.random.default_rng(1)
    K = np.tile(np.array([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]), (N, 1, 1))
    return [SparsePair(f"p{i}", f"c{i}", (0, N - 1), tuple(range(1, N - 1)),
                       rng.integers(0, 255, (N, H, W, 3), dtype=np.uint8), K, _trajectory(i))
            for i in range(n)]


def test_sparse_records_batched_equal_one_by_one(model, tmp_path):
    from vid3d.tasks.sparse_benchmark import model_method

    pairs = _pairs(2)
    methods = {"tiny": model_method(model, VideoSampler(num_steps=2), 0)}
    runs = {}
    for bs in (1, 2):
        run_sparse_eval(pairs, methods, ImageMetrics(None), tmp_path / f"b{bs}", progress=False,
                        batch_size=bs)
        runs[bs] = read_records(tmp_path / f"b{bs}" / "records.shard0of1.jsonl")
    assert len(runs[1]) == len(runs[2]) == 2
    for a, b in zip(runs[1], runs[2]):
        assert (a["clip_id"], a["seed"]) == (b["clip_id"], b["seed"])
        assert abs(a["metrics"]["psnr"] - b["metrics"]["psnr"]) < 0.05
        assert abs(a["metrics"]["ssim"] - b["metrics"]["ssim"]) < 1e-3


class _Counting:
    """A batchable fake method: the video is the item's frames plus its seed mod 7; counts batch calls."""

    def __init__(self):
        self.batches = []

    def __call__(self, item):
        raise AssertionError("batched methods are not called one by one")

    def batch(self, items, seeds):
        self.batches.append([it.clip_id for it in items])
        return [it.frames + np.uint8(s % 7) for it, s in zip(items, seeds)]


def test_lookahead_batches_same_method_and_shape_in_order():
    clips = _clips(3) + [EvalClip("d0", np.zeros((N, 16, 16, 3), np.uint8), np.eye(3), _trajectory(0),
                                  np.arange(N))]
    fake = _Counting()
    entries = [(c, "m", i) for i, c in enumerate(clips)] + [(c, "ref", 0) for c in clips]
    ahead = Lookahead(entries, {"m": fake, "ref": gt_video_method}, 2, lambda c: c.clip_id)
    assert ahead.get(clips[0], "ref", 0) is None  # no batch entry point: the caller generates
    for i, c in enumerate(clips):
        frames, _ = ahead.get(c, "m", i)
        assert np.array_equal(frames, c.frames + np.uint8(i % 7))
    # c0+c1, then c2 alone (d0 has another shape), then d0
    assert fake.batches == [["c0", "c1"], ["c2"], ["d0"]]
    with pytest.raises(ValueError, match="batch_size"):
        Lookahead(entries, {"m": fake}, 0, lambda c: c.clip_id)
