"""The camera benchmark's control rows (``eval.camera_controls``, issue 37 item 3): the same model sampled
along static cameras / another clip's cameras with its model row's seeds, scored against the clip's GT.

The sampler is a recorder: it keeps the c2w it is handed and returns noise drawn from the generator it is
given, so a video says which seed made it (same seed -> identical uint8 frames; another seed differs by
tens of levels on average). Pose math checked against closed forms to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.errors import InputError
from vid3d.evaluation import camera_controls as cc
from vid3d.evaluation.camera_runner import EvalClip, gt_video_method, run_camera_eval
from vid3d.evaluation.pose import GTPoseEstimator
from vid3d.evaluation.records import read_records
from vid3d.tasks.camera_benchmark import control_methods, model_method

H, W, N = 8, 12, 4


class RecordingSampler:
    """``sampler(model, image, K, c2w, generator=...)`` -> (B, N, 3, H, W) noise from each item's generator;
    every call's c2w (B, N, 4, 4) is kept in ``calls``."""

    def __init__(self):
        self.calls: list[torch.Tensor] = []

    def __call__(self, model, image, K, c2w, generator):
        self.calls.append(c2w.clone())
        gens = generator if isinstance(generator, list) else [generator]
        return torch.stack([torch.rand(N, 3, H, W, generator=g) * 2 - 1 for g in gens])


def _pose(angle: float, axis, t) -> np.ndarray:
    T = np.eye(4)
    k = np.asarray(axis, float)
    k_x = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    T[:3, :3] = np.eye(3) + np.sin(angle) * k_x + (1 - np.cos(angle)) * k_x @ k_x  # Rodrigues, |k| = 1
    T[:3, 3] = t
    return T


def _trajectory(i: int) -> np.ndarray:
    start = _pose(0.3 * i, [0, 1, 0], [i, -0.5 * i, 2.0])
    return np.stack([start @ _pose(0.1 * f * (i + 1), [1, 0, 0], [0.2 * f * (i + 1), 0, 0.1 * f])
                     for f in range(N)])


def _clips(n: int = 3) -> list[EvalClip]:
    rng = np.random.default_rng(0)
    K = np.array([[10.0, 0, W / 2], [0, 10.0, H / 2], [0, 0, 1]])
    # ids out of order on purpose: the derangement follows sorted ids
    ids = ["c2", "c0", "c1"][:n]
    return [EvalClip(cid, rng.integers(0, 255, (N, H, W, 3), dtype=np.uint8), K, _trajectory(int(cid[1])),
                     np.arange(N)) for cid in ids]


def test_pose_math():
    c2w, donor = _trajectory(1), _trajectory(2)
    s = cc.static_cameras(c2w)
    assert s.shape == (N, 4, 4) and np.allclose(s, c2w[0], atol=1e-12)
    r = cc.reanchored(c2w, donor)
    assert np.allclose(r[0], c2w[0], atol=1e-12)  # starts where the clip starts
    for f in range(N):  # moves as the donor does, relative to frame 0
        assert np.allclose(np.linalg.inv(r[0]) @ r[f], np.linalg.inv(donor[0]) @ donor[f], atol=1e-12)
    d = cc.donors(["b", "c", "a"])
    assert d == {"a": "b", "b": "c", "c": "a"}  # cyclic in sorted order: no clip keeps its own
    with pytest.raises(InputError, match="at least 2 clips"):
        cc.donors(["a"])


def test_control_rows_hand_the_intended_cameras_with_the_model_rows_seeds():
    clips = _clips(3)
    by_id = {c.clip_id: c for c in clips}
    sampler = RecordingSampler()
    own = model_method(None, sampler, seed=5)
    rows = control_methods(None, sampler, 5, "m", ["static", "other"], clips)
    assert list(rows) == ["m[static cameras]", "m[other clip's cameras]"]
    donor = {"c0": "c1", "c1": "c2", "c2": "c0"}
    expected = {
        "m[static cameras]": lambda c: np.repeat(c.gt_c2w[:1], N, axis=0),
        "m[other clip's cameras]": lambda c: cc.reanchored(c.gt_c2w, by_id[donor[c.clip_id]].gt_c2w),
    }
    for name, method in rows.items():
        assert method.seed_as == "m"
        for clip in clips:
            torch.manual_seed(123)
            video = method(clip)
            assert np.allclose(sampler.calls[-1][0].double().numpy(), expected[name](clip), atol=1e-6)
            torch.manual_seed(123)
            ref = own(clip)  # the model row with the same item seed: the same noise
            assert np.allclose(sampler.calls[-1][0].double().numpy(), clip.gt_c2w, atol=1e-6)
            assert np.array_equal(video, ref)
        # the batched path hands the same cameras
        method.batch(clips, [1, 2, 3])
        for b, clip in enumerate(clips):
            assert np.allclose(sampler.calls[-1][b].double().numpy(), expected[name](clip), atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_rows_in_the_benchmark_and_the_model_row_unchanged(tmp_path, batch_size):
    clips = _clips(3)

    def methods(controls):
        sampler = RecordingSampler()
        out = {"m": model_method(None, sampler, 0)}
        out.update(control_methods(None, sampler, 0, "m", controls, clips))
        out["gt_video"] = gt_video_method
        return out

    def run(controls, where):
        run_camera_eval(clips, methods(controls), GTPoseEstimator(), tmp_path / where, progress=False,
                        batch_size=batch_size)
        return read_records(tmp_path / where / "records.shard0of1.jsonl")

    def model_row(records):
        rows = [{k: v for k, v in r.items() if k != "timings_s"} for r in records if r["method"] == "m"]
        return sorted(rows, key=lambda r: (r["clip_id"], r["trial"]))

    plain, with_controls = run([], "plain"), run(["static", "other"], "controls")
    rows = {r["method"] for r in with_controls}
    assert rows == {"m", "m[static cameras]", "m[other clip's cameras]", "gt_video"}
    assert len(model_row(plain)) == len(clips) and model_row(with_controls) == model_row(plain)
    model_rows = {r["clip_id"]: r for r in with_controls if r["method"] == "m"}
    for r in with_controls:
        if r["method"].startswith("m["):
            own = model_rows[r["clip_id"]]
            assert r["seed"] == own["seed"]  # the model row's seed
            assert r["fidelity"] == own["fidelity"]  # the recorder ignores cameras: the same video
            gt = next(c for c in clips if c.clip_id == r["clip_id"]).gt_c2w
            assert np.allclose(np.asarray(r["gt_c2w"]), gt)  # scored against the clip's own GT


def _cfg(overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("eval", overrides=overrides)


def test_a_misspelt_control_is_refused_in_one_line():
    from vid3d.tasks.preflight import check_camera_controls

    check_camera_controls(_cfg(["ckpt=x", "eval.camera_controls=[static,other]"]))  # accepted
    check_camera_controls(_cfg([]))  # none asked
    with pytest.raises(InputError) as e:
        check_camera_controls(_cfg(["ckpt=x", "eval.camera_controls=[static,othr]"]))
    msg = str(e.value)
    assert "\n" not in msg and "eval.camera_controls" in msg and "'othr'" in msg and "'other'" in msg
    with pytest.raises(InputError, match="named twice"):
        check_camera_controls(_cfg(["ckpt=x", "eval.camera_controls=[static,static]"]))
    with pytest.raises(InputError, match="pass ckpt="):
        check_camera_controls(_cfg(["eval.camera_controls=[static]"]))
    with pytest.raises(InputError, match="unknown camera control"):  # the API refuses as the entry point
        control_methods(None, RecordingSampler(), 0, "m", ["mirrored"], _clips(2))
