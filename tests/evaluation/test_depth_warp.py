"""The ``depth_warp`` reference row (``eval.oracle_rows``): frame 0 forward-warped with its true depth.

Warp math against closed forms: a fronto-parallel plane at depth d under a translation t along x moves by
exactly -f*t/d pixels (an integer shift, and a half-pixel one: the mean of the two neighbours); identity
cameras give frame 0 on every pixel; a pure rotation moves near and far (depth 0 = infinity) points alike.
Benchmark wiring: the rows exist, the controls hand the intended cameras, a clip without depth is skipped.
"""

from __future__ import annotations

import numpy as np
import pytest

from vid3d.errors import InputError
from vid3d.evaluation import camera_controls as cc
from vid3d.evaluation.camera_runner import EvalClip, run_camera_eval
from vid3d.evaluation.depth_warp import (
    backward_warp,
    check_oracle_rows,
    crop_resize_depth,
    fill_holes,
    forward_warp,
    warp_video,
)
from vid3d.evaluation.pose import GTPoseEstimator
from vid3d.evaluation.records import read_records
from vid3d.tasks.camera_benchmark import oracle_methods

H, W, F = 12, 16, 4
K = np.array([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]])


def _translation(tx: float, tz: float = 0.0) -> np.ndarray:
    T = np.eye(4)
    T[0, 3], T[2, 3] = tx, tz
    return T


def _rot_y(angle: float) -> np.ndarray:
    T = np.eye(4)
    c, s = np.cos(angle), np.sin(angle)
    T[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    return T


def _frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3)).astype(np.uint8)


@pytest.mark.parametrize("supersample", [1, 2, 4])
def test_plane_shifts_by_f_t_over_d(supersample):
    f0, d = _frame(), 5.0
    depth = np.full((H, W), d)
    for shift in (3, -2):  # pixels: f * t / d
        t = shift * d / K[0, 0]
        img, ok = forward_warp(f0, depth, K, K, np.eye(4), _translation(t), supersample=supersample)
        # camera moved right by t: the scene moves left by f*t/d pixels
        if shift > 0:
            assert ok[:, : W - shift].all() and not ok[:, W - shift:].any()
            assert np.array_equal(img[:, : W - shift], f0[:, shift:].astype(float))
        else:
            assert ok[:, -shift:].all() and not ok[:, :-shift].any()
            assert np.array_equal(img[:, -shift:], f0[:, :shift].astype(float))
    # a half-pixel shift with 2 sub-pixels: each target pixel is the mean of its two source neighbours
    img, ok = forward_warp(f0, depth, K, K, np.eye(4), _translation(2.5 * d / K[0, 0]), supersample=2)
    want = (f0[:, 2:-1].astype(float) + f0[:, 3:]) / 2
    assert ok[:, : W - 3].all()
    np.testing.assert_allclose(img[:, : W - 3], want, atol=1e-12)


def test_identity_cameras_give_frame_0_and_depth_does_not_matter_for_a_rotation():
    f0 = _frame(1)
    depth = np.random.default_rng(2).uniform(1, 10, (H, W))
    depth[:3] = 0  # sky
    pose = _rot_y(0.3) @ _translation(1.0, -2.0)
    img, ok = forward_warp(f0, depth, K, K, pose, pose)
    assert ok.all() and np.array_equal(img, f0.astype(float))
    video = warp_video(f0, depth, K, np.stack([pose, pose]))
    assert np.array_equal(video[0], f0) and np.array_equal(video[1], f0)
    # pure rotation: a homography, the same for near (depth 2) and infinitely far (depth 0) points
    near, ok_near = forward_warp(f0, np.full((H, W), 2.0), K, K, np.eye(4), _rot_y(0.05))
    far, ok_far = forward_warp(f0, np.zeros((H, W)), K, K, np.eye(4), _rot_y(0.05))
    assert np.array_equal(ok_near, ok_far) and ok_near.sum() > H * W // 2
    np.testing.assert_allclose(near, far, atol=1e-9)


def test_nearer_surface_hides_the_farther_one_and_holes_fill_from_the_nearest_pixel():
    f0 = np.zeros((H, W, 3), np.uint8)
    f0[:, :8] = 200  # near half
    depth = np.full((H, W), 10.0)
    depth[:, :8] = 2.0
    # camera moves left by t: the near half moves right by f*t/2 = 4 px, over the far half (moving 0.8 px)
    img, ok = forward_warp(f0, depth, K, K, np.eye(4), _translation(-4 * 2.0 / K[0, 0]))
    assert (img[:, 4:12][ok[:, 4:12]] == 200).all()  # the near surface wins where both land
    assert not ok[:, :4].any()  # the border the camera moved away from
    filled = fill_holes(img, ok)
    assert np.array_equal(filled[:, :4], np.broadcast_to(img[:, 4:5], (H, 4, 3)))


def test_backward_warp_identity_and_crop_resize_depth():
    f0 = _frame(3).astype(np.float32)
    out = backward_warp(f0, np.full((H, W), 3.0), K, np.eye(4))
    np.testing.assert_allclose(out, f0, atol=1e-3)
    depth = np.arange(72 * 128, dtype=float).reshape(72, 128)
    small = crop_resize_depth(depth, 32, 48)  # centre crop 72x108 (x0 = 10), then every 2.25 px
    rows = np.floor((np.arange(32) + 0.5) * 72 / 32).astype(int)
    cols = 10 + np.floor((np.arange(48) + 0.5) * 108 / 48).astype(int)
    assert np.array_equal(small, depth[rows][:, cols])


def _clip(cid: str, i: int, depth: bool = True) -> EvalClip:
    c2w = np.stack([_rot_y(0.3 * i) @ _translation(0.2 * f * (i + 1), 0.1 * f) for f in range(F)])
    frames = np.repeat(_frame(i)[None], F, axis=0)
    d = np.full((H, W), 4.0 + i) if depth else None
    return EvalClip(cid, frames, K, c2w, np.arange(F), depth0=d)


def test_rows_exist_and_controls_hand_the_intended_cameras():
    clips = [_clip("c1", 1), _clip("c0", 0), _clip("c2", 2)]
    by_id = {c.clip_id: c for c in clips}
    rows = oracle_methods(["depth_warp"], ["static", "other"], clips)
    assert list(rows) == ["depth_warp", "depth_warp[static cameras]", "depth_warp[other clip's cameras]"]
    donor = {"c0": "c1", "c1": "c2", "c2": "c0"}
    for clip in clips:
        want = {
            "depth_warp": clip.gt_c2w,
            "depth_warp[static cameras]": cc.static_cameras(clip.gt_c2w),
            "depth_warp[other clip's cameras]": cc.reanchored(clip.gt_c2w, by_id[donor[clip.clip_id]].gt_c2w),
        }
        for name, method in rows.items():
            expected = warp_video(clip.frames[0], clip.depth0, clip.K_px, want[name])
            assert np.array_equal(method(clip), expected)
        assert np.array_equal(rows["depth_warp[static cameras]"](clip), clip.frames)  # the static camera
        assert not np.array_equal(rows["depth_warp"](clip)[1:], clip.frames[1:])  # the clip's camera moves
    assert list(oracle_methods(["depth_warp"], [], clips)) == ["depth_warp"]
    with pytest.raises(InputError, match="unknown reference row"):
        check_oracle_rows(["depth_wrap"])


def test_a_clip_without_depth_is_skipped_by_the_oracle_rows_only(tmp_path):
    clips = [_clip("c0", 0), _clip("c1", 1, depth=False), _clip("c2", 2)]
    methods = {"gt": lambda c: c.frames, **oracle_methods(["depth_warp"], ["static"], clips)}
    out = run_camera_eval(clips, methods, GTPoseEstimator(), tmp_path, progress=False)
    records = read_records(tmp_path / "records.shard0of1.jsonl")
    got = {(r["method"], r["clip_id"]) for r in records}
    assert got == {("gt", c) for c in ("c0", "c1", "c2")} | {
        (m, c) for m in ("depth_warp", "depth_warp[static cameras]") for c in ("c0", "c2")
    }
    again = run_camera_eval(clips, methods, GTPoseEstimator(), tmp_path, progress=False)
    assert out["n_new"] == 7 and again["n_new"] == 0 and again["n_skipped"] == 7  # resumes: nothing to redo


def test_preflight_accepts_controls_of_an_oracle_row_without_a_ckpt():
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.tasks.preflight import check_camera_controls

    def cfg(overrides):
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            return compose("eval", overrides=overrides)

    check_camera_controls(cfg(["eval.oracle_rows=[depth_warp]", "eval.camera_controls=[static,other]"]))
    with pytest.raises(InputError, match="pass ckpt="):
        check_camera_controls(cfg(["eval.camera_controls=[static]"]))
    with pytest.raises(InputError) as e:
        check_camera_controls(cfg(["eval.oracle_rows=[warp]"]))
    assert "\n" not in str(e.value) and "eval.oracle_rows" in str(e.value) and "'depth_warp'" in str(e.value)


def test_eval_without_a_ckpt_scores_the_oracle_rows_and_skips_a_clip_without_depth(
    tmp_path, offline_wandb, caplog
):
    """The entry point's path (``tasks.evaluate``) on 3 synthetic clips, one with its depth file removed:
    the depth_warp rows and their controls exist without a ckpt, score the 2 clips with depth (the static
    control is the first frame repeated: the same video as static_first_frame), and the third is counted."""
    import json

    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.data.synthetic import build_synthetic_dataset
    from vid3d.tasks.evaluate import evaluate

    root = build_synthetic_dataset(tmp_path / "set", num_train=0, num_test=3, num_frames=6, height=40,
                                   width=56)
    ids = sorted(p.stem for p in (root / "test").glob("*.txt"))
    (root / "test" / f"{ids[1]}.depth.npz").unlink()
    out = tmp_path / "out"
    overrides = [
        "data=re10k", f"data.root={root}", "data.num_frames=3", "data.height=32", "data.width=48",
        "pose=gt", f"paths.output_dir={out}", "torch_threads=1", "eval.save_videos=false",
        "wandb.media=false",
        "eval.oracle_rows=[depth_warp]", "eval.camera_controls=[static,other]",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=overrides)
    with caplog.at_level("WARNING"):
        evaluate(cfg)
    recs = read_records(out / "eval" / "records.shard0of1.jsonl")
    oracle = ("depth_warp", "depth_warp[static cameras]", "depth_warp[other clip's cameras]")
    got = {(r["method"], r["clip_id"]) for r in recs}
    assert got == {(m, c) for m in ("gt_video", "static_first_frame") for c in ids} | {
        (m, c) for m in oracle for c in (ids[0], ids[2])
    }
    by = {(r["method"], r["clip_id"]): r for r in recs}
    for c in (ids[0], ids[2]):
        assert by[("depth_warp[static cameras]", c)]["fidelity"] == by[("static_first_frame", c)]["fidelity"]
        assert by[("depth_warp", c)]["fidelity"] != by[("static_first_frame", c)]["fidelity"]
    payload = json.loads((out / "eval" / "results.json").read_text())
    assert payload["protocol"]["oracle_rows_skipped_clips"]["clip_ids"] == [ids[1]]
    lines = [r.getMessage() for r in caplog.records if "have no depth file" in r.getMessage()]
    assert len(lines) == 1 and ids[1] in lines[0]
