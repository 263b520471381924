"""Synthetic dataset: the written cameras describe the rendered pixels (depth consistency across
frames, a marker's projection), trajectories stay clear of geometry, determinism, the manifest /
idempotent / atomic build, and textures rich enough for SIFT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vid3d.data.formats.re10k import list_clips, read_camera_file, read_depth, read_frames, write_clip
from vid3d.data.synthetic import build as build_mod
from vid3d.data.synthetic import build_synthetic_dataset, clip_cameras, make_clip, render_clip
from vid3d.data.synthetic import trajectories as traj
from vid3d.data.synthetic.primitives import Box, Cylinder, Plane, Sphere
from vid3d.data.synthetic.render import Scene
from vid3d.data.synthetic.scenes import ClipSpec
from vid3d.data.synthetic.textures import flat_material, random_material
from vid3d.geometry import project_points, relative_to_first, rotation_angle_between

SMALL = dict(num_train=3, num_test=1, num_frames=6, height=72, width=128, seed=3, image_ext="png")


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """room, outdoor, turntable in train and a room with a real RE10K trajectory in test."""
    return build_synthetic_dataset(tmp_path_factory.mktemp("synth") / "ds", **SMALL)


def _all_clips(root):
    return [c for split in ("train", "test") for c in list_clips(root, split)]


# --------------------------------------------------------------------------------- geometry
def _bilinear(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample img (H, W) at continuous pixel coords (pixel centres at +0.5)."""
    x, y = u - 0.5, v - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    a, b = img[y0, x0], img[y0, x0 + 1]
    c, d = img[y0 + 1, x0], img[y0 + 1, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _depth_agreement(depth_a, depth_b, K_a, c2w_a, K_b, c2w_b) -> tuple[float, float, int]:
    """Back-project every valid pixel of view a (its written camera + rendered depth), project it
    into view b and compare with b's depth there (inverse depth interpolated: exact on planes).
    Returns (median |relative error| and fraction within 1 % over the points not occluded in b,
    fraction within 1 % over all compared points)."""
    H, W = depth_a.shape
    v, u = np.mgrid[0:H, 0:W]
    z = depth_a.astype(float)
    ok = z > 0
    pix = np.stack([u[ok] + 0.5, v[ok] + 0.5, np.ones(ok.sum())], axis=1)
    X_cam = (pix @ np.linalg.inv(K_a).T) * z[ok][:, None]
    X_world = X_cam @ c2w_a[:3, :3].T + c2w_a[:3, 3]
    uv, zb = project_points(K_b, c2w_b, X_world)
    inside = (uv[:, 0] > 1) & (uv[:, 0] < W - 1) & (uv[:, 1] > 1) & (uv[:, 1] < H - 1) & (zb > 0.05)
    uv, zb = uv[inside], zb[inside]
    x0, y0 = np.floor(uv[:, 0] - 0.5).astype(int), np.floor(uv[:, 1] - 0.5).astype(int)
    neigh = np.stack([depth_b[y0, x0], depth_b[y0, x0 + 1], depth_b[y0 + 1, x0], depth_b[y0 + 1, x0 + 1]])
    smooth = (neigh.min(0) > 0) & (neigh.max(0) - neigh.min(0) < 0.05 * neigh.max(0))  # not at an edge
    inv = np.where(depth_b > 0, 1.0 / np.maximum(depth_b, 1e-9), 0.0)
    zs = 1.0 / _bilinear(inv, uv[smooth, 0], uv[smooth, 1])
    rel = (zs - zb[smooth]) / zb[smooth]
    visible = rel > -0.01  # otherwise something nearer occludes the point in view b
    ok = np.abs(rel) < 0.01
    return float(np.median(np.abs(rel[visible]))), float(ok.sum() / visible.sum()), float(ok.mean())


def test_depth_is_consistent_across_frames_with_written_cameras(small_root):
    clips = _all_clips(small_root)
    assert [c.clip_id for c in clips] == ["outdoor_0001", "room_0000", "turntable_0002", "room_0003"]
    for clip in clips:
        cams = read_camera_file(clip.camera_path)
        depth = read_depth(clip, range(len(cams)))
        H, W = depth.shape[1:]
        K, c2w = cams.K_px(H, W), cams.c2w()
        for a, b in ((0, len(cams) - 1), (len(cams) - 1, 2)):
            med, frac, frac_all = _depth_agreement(depth[a], depth[b], K[a], c2w[a], K[b], c2w[b])
            assert med < 2e-3 and frac > 0.9 and frac_all > 0.4, (clip.clip_id, a, b, med, frac, frac_all)


def test_depth_check_detects_a_wrong_camera(small_root):
    """The agreement check fails for the classic bugs: w2c used as c2w, or a camera 0.25 m off."""
    clip = next(c for c in _all_clips(small_root) if c.clip_id.startswith("turntable"))
    cams = read_camera_file(clip.camera_path)
    depth = read_depth(clip, range(len(cams)))
    K, c2w = cams.K_px(*depth.shape[1:]), cams.c2w()
    good = _depth_agreement(depth[0], depth[-1], K[0], c2w[0], K[-1], c2w[-1])
    shifted = c2w[-1].copy()
    shifted[:3, 3] += 0.25 * shifted[:3, 2]
    for wrong in (cams.w2c[-1], shifted):
        bad = _depth_agreement(depth[0], depth[-1], K[0], c2w[0], K[-1], wrong)
        assert bad[2] < 0.5 * good[2], (good, bad)


def _marker_scene(with_marker: bool, marker: np.ndarray) -> Scene:
    rng = np.random.default_rng(11)
    prims = [
        Plane(random_material(rng), n=np.array([0, 1.0, 0]), offset=0.0),
        Plane(random_material(rng), n=np.array([0, 1.0, 0]), offset=-3.0),
    ]
    for axis, off in ((0, -3.0), (0, 3.0), (2, -3.0), (2, 3.0)):
        n = np.zeros(3)
        n[axis] = 1.0
        prims.append(Plane(random_material(rng), n=n, offset=off))
    prims.append(Box(random_material(rng), centre=np.array([0.8, -0.4, 0.5]), half=np.array([0.3, 0.4, 0.3])))
    if with_marker:
        prims.append(Sphere(flat_material((1.0, 0.0, 1.0)), centre=marker, radius=0.05))
    return Scene(prims, ambient=0.6)


def test_marker_projects_where_it_was_drawn(tmp_path):
    marker = np.array([0.3, -1.1, 0.4])
    c2w = traj.orbit(
        5, np.random.default_rng(0), 2.0, target=marker + [0.25, 0.1, -0.1], elevation=0.3, arc=1.2
    )
    spec = ClipSpec("marker_0000", "room", "orbit", _marker_scene(True, marker), c2w, 65.0)
    H, W = 96, 160
    cams = clip_cameras(spec, H, W, seed=0)
    frames, depth = render_clip(spec, cams, H, W)
    write_clip(tmp_path, "test", spec.clip_id, cams, frames, depth=depth, image_ext="png")
    (clip,) = list_clips(tmp_path, "test")
    back = read_camera_file(clip.camera_path)
    images = read_frames(clip, back, range(len(back)))
    spec.scene = _marker_scene(False, marker)
    plain, _ = render_clip(spec, cams, H, W)
    uv, z = project_points(back.K_px(H, W), back.c2w(), np.tile(marker, (len(back), 1, 1)))
    for i, img in enumerate(images):
        is_marker = (img[..., 0] >= 250) & (img[..., 1] <= 5) & (img[..., 2] >= 250)
        assert not ((plain[i][..., 0] >= 250) & (plain[i][..., 1] <= 5) & (plain[i][..., 2] >= 250)).any()
        v, u = np.nonzero(is_marker)
        assert len(u) >= 10, i
        centroid = np.array([u.mean() + 0.5, v.mean() + 0.5])
        assert np.linalg.norm(centroid - uv[i, 0]) < 1.0, (i, centroid, uv[i, 0])
        # the depth at the marker's centre pixel is the distance to its front surface
        pu, pv = (uv[i, 0] - 0.5).round().astype(int)
        assert abs(depth[i, pv, pu] - (z[i, 0] - 0.05)) < 0.01


# ------------------------------------------------------------------------------ trajectories
def _inside(prim, c: np.ndarray, margin: float) -> bool:
    if isinstance(prim, Sphere):
        return np.linalg.norm(c - prim.centre) < prim.radius + margin
    if isinstance(prim, Box):
        cy, sy = np.cos(prim.yaw), np.sin(prim.yaw)
        R = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        return bool(np.all(np.abs(R.T @ (c - prim.centre)) < np.asarray(prim.half) + margin))
    if isinstance(prim, Cylinder):
        return (
            np.hypot(c[0] - prim.cx, c[2] - prim.cz) < prim.radius + margin
            and prim.y0 - margin < c[1] < prim.y1 + margin
        )
    return False


@pytest.mark.parametrize("index", range(12))
def test_cameras_stay_inside_the_scene_and_clear_of_objects(index):
    spec = make_clip(index, 0, 48)
    centres = spec.c2w[:, :3, 3]
    R = spec.c2w[:, :3, :3]
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.tile(np.eye(3), (48, 1, 1)), atol=1e-9)
    step = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert step.max() < 0.35  # smooth: no jumps between frames (< 10 m/s at 30 fps)
    turn = rotation_angle_between(R[1:], R[:-1])
    assert turn.max() < np.deg2rad(6)
    planes = [p for p in spec.scene.primitives if isinstance(p, Plane)]
    for p in planes:  # room walls: camera on the inner side, at least 0.3 m away
        if spec.kind != "outdoor":
            side = np.sign(-p.offset) if p.offset != 0 else -1.0
            assert np.all(side * (centres @ p.n - p.offset) > 0.3), (spec.clip_id, p.n, p.offset)
    assert np.all(centres[:, 1] < -0.3)  # above the floor
    for prim in spec.scene.primitives:
        assert not any(_inside(prim, c, 0.25) for c in centres), (spec.clip_id, prim)


def test_re10k_trajectory_keeps_the_real_relative_motion():
    path = traj.re10k_files()[0]
    out = traj.re10k(31, path, extent=1.5)
    src = relative_to_first(read_camera_file(path).c2w())
    scale = np.linalg.norm(src[:, :3, 3], axis=1).max()
    np.testing.assert_allclose(out[0], np.eye(4), atol=1e-9)
    np.testing.assert_allclose(out[-1, :3, :3], src[-1, :3, :3], atol=1e-6)  # file rotations have 9 digits
    np.testing.assert_allclose(out[-1, :3, 3], src[-1, :3, 3] / scale * 1.5, atol=1e-9)
    assert len(traj.re10k_files()) == 10


def test_orbit_looks_at_its_target():
    target = np.array([1.0, -1.0, 2.0])
    c2w = traj.orbit(9, np.random.default_rng(1), 2.0, target=target)
    uv, z = project_points(
        np.array([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]]), c2w, np.tile(target, (9, 1, 1))
    )
    np.testing.assert_allclose(uv[:, 0], np.tile([64.0, 48.0], (9, 1)), atol=1e-9)
    np.testing.assert_allclose(z[:, 0], 2.0, atol=1e-9)
    assert float(rotation_angle_between(c2w[0, :3, :3], c2w[-1, :3, :3])) > np.deg2rad(30)


# ------------------------------------------------------------------------- build behaviour
def test_build_is_deterministic(small_root, tmp_path):
    again = build_synthetic_dataset(tmp_path / "again", **SMALL)
    files = sorted(p.relative_to(small_root) for p in small_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        if rel.name != "manifest.json":
            assert (small_root / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = build_synthetic_dataset(tmp_path / "other", **{**SMALL, "seed": 4, "num_train": 1, "num_test": 0})
    assert (other / "train/room_0000.txt").read_bytes() != (small_root / "train/room_0000.txt").read_bytes()


def test_manifest_and_idempotence(small_root, monkeypatch):
    manifest = json.loads((small_root / "manifest.json").read_text())
    assert manifest["format_version"] == build_mod.FORMAT_VERSION and manifest["params"]["seed"] == 3
    assert manifest["clips"] == {
        "train": ["room_0000", "outdoor_0001", "turntable_0002"],
        "test": ["room_0003"],
    }

    def boom(*args, **kwargs):
        raise AssertionError("must not render again")

    monkeypatch.setattr(build_mod, "make_clip", boom)
    assert build_synthetic_dataset(small_root, **SMALL) == small_root


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    real = build_mod.make_clip
    calls = []

    def flaky(index, seed, num_frames, texture_scale=1.0):
        calls.append(index)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(index, seed, num_frames, texture_scale)

    monkeypatch.setattr(build_mod, "make_clip", flaky)
    params = {**SMALL, "num_train": 2, "num_test": 0, "num_frames": 2}
    with pytest.raises(KeyboardInterrupt):
        build_synthetic_dataset(tmp_path / "ds", **params)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(build_mod, "make_clip", real)
    root = build_synthetic_dataset(tmp_path / "ds", **params)
    # an interrupted rebuild with other parameters keeps the old dataset intact
    monkeypatch.setattr(build_mod, "make_clip", flaky)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        build_synthetic_dataset(root, **{**params, "seed": 9})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert json.loads((root / "manifest.json").read_text())["params"]["seed"] == 3
    # a finished rebuild with other parameters replaces it
    monkeypatch.setattr(build_mod, "make_clip", real)
    build_synthetic_dataset(root, **{**params, "seed": 9})
    assert json.loads((root / "manifest.json").read_text())["params"]["seed"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_refuses_to_overwrite_other_folders(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a vid3d synthetic dataset"):
        build_synthetic_dataset(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_cli_builds(tmp_path, capsys):
    from vid3d.data.synthetic.__main__ import main

    assert (
        main(
            [
                "--root",
                str(tmp_path / "cli"),
                "--num-train",
                "1",
                "--num-test",
                "0",
                "--num-frames",
                "2",
                "--height",
                "24",
                "--width",
                "32",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert "ready" in capsys.readouterr().out
    (clip,) = list_clips(tmp_path / "cli", "train")
    assert read_frames(clip, read_camera_file(clip.camera_path), [0, 1]).shape == (2, 24, 32, 3)


# ---------------------------------------------------------------------------------- textures
def test_textures_are_rich_enough_for_sift():
    """cv2 SIFT keypoints at 128x192, measured over 24 clips x 6 frames of seed 0: per-frame minimum
    36, per-clip medians 63-396 (COLMAP registered all 16 frames of 15/16 demo clips); the bounds
    (>= 25 per frame, median >= 60 over these 8 frames) leave margin."""
    cv2 = pytest.importorskip("cv2")
    sift = cv2.SIFT_create()
    counts = []
    for index in (0, 1, 2, 3):
        spec = make_clip(index, 0, 48)
        spec.c2w = spec.c2w[[0, 47]]
        cams = clip_cameras(spec, 128, 192, 0)
        frames, depth = render_clip(spec, cams, 128, 192)
        for f in frames:
            assert f.std() > 15.0
            assert min(np.ptp(f[..., ch]) for ch in range(3)) > 60  # colour, not flat
            counts.append(len(sift.detect(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), None)))
    assert min(counts) >= 25 and np.median(counts) >= 60, counts


def _roughness(frames: np.ndarray) -> float:
    """Mean squared difference of adjacent pixels divided by the pixel variance (frames uint8): the
    share of the image's contrast that sits at the finest scale."""
    f = frames.astype(np.float64) / 255.0
    return float((np.mean(np.diff(f, axis=-2) ** 2) + np.mean(np.diff(f, axis=-3) ** 2)) / f.var())


@pytest.mark.parametrize("index", [0, 1, 2])
def test_texture_scale_keeps_scene_and_cameras(index):
    fine, coarse = make_clip(index, 0, 4), make_clip(index, 0, 4, texture_scale=4.0)
    np.testing.assert_array_equal(fine.c2w, coarse.c2w)  # same random draws: same cameras ...
    assert [type(p) for p in fine.scene.primitives] == [type(p) for p in coarse.scene.primitives]
    for p, q in zip(fine.scene.primitives, coarse.scene.primitives):
        np.testing.assert_array_equal(p.material.palette, q.material.palette)  # ... and colours
        assert q.material.base_freq == pytest.approx(p.material.base_freq / 4.0, rel=1e-6)  # 4x larger
    cams = clip_cameras(fine, 24, 32, 0)
    np.testing.assert_array_equal(render_clip(fine, cams, 24, 32)[1], render_clip(coarse, cams, 24, 32)[1])


def test_texture_scale_smooths_the_frames():
    """Over the first six clips (two of each scene kind) at 72 x 128, 4x larger texture features put less
    of the contrast at the pixel scale. Measured 2026-12-03: per-clip ratio 0.51-1.01, mean 0.80; single
    clips dominated by object edges barely change, so the bound is on the mean."""
    ratios = []
    for index in range(6):
        fine, coarse = make_clip(index, 0, 3), make_clip(index, 0, 3, texture_scale=4.0)
        cams = clip_cameras(fine, 72, 128, 0)
        ratios.append(
            _roughness(render_clip(coarse, cams, 72, 128)[0])
            / _roughness(render_clip(fine, cams, 72, 128)[0])
        )
    assert np.mean(ratios) < 0.9, ratios


def test_texture_scale_is_part_of_the_manifest(tmp_path):
    small = dict(SMALL, num_train=1, num_test=0, num_frames=2, height=24, width=32)
    root = build_synthetic_dataset(tmp_path / "ds", **small)
    first = json.loads((root / "manifest.json").read_text())
    assert "texture_scale" not in first["params"]  # the default keeps older manifests matching
    build_synthetic_dataset(tmp_path / "ds", **small, texture_scale=2.0)  # other parameters: rebuilt
    assert json.loads((root / "manifest.json").read_text())["params"]["texture_scale"] == 2.0
    with pytest.raises(ValueError, match="invalid synthetic dataset parameters"):
        build_synthetic_dataset(tmp_path / "other", **small, texture_scale=0.0)


def test_verbose_build_says_what_and_where_with_progress(tmp_path, capsys):
    """A first-use build (what the configs run) names its size and folder and shows its progress (in a
    log: lines for the first clip and the last); reusing the cached set prints nothing."""
    params = {**SMALL, "num_train": 2, "num_test": 1}
    root = build_synthetic_dataset(tmp_path / "ds", **params, verbose=True)
    out, err = capsys.readouterr()
    assert f"2 train + 1 test clips of {SMALL['num_frames']} frames" in out and str(root) in out
    done = [s.split(" | ")[0] for s in out.splitlines() if s.startswith("rendering clips ")]
    assert done == ["rendering clips 1/3 (33.3%)", "rendering clips 3/3 (100.0%)"] and err == ""
    assert "built 3 clips in" in out
    build_synthetic_dataset(tmp_path / "ds", **params, verbose=True)
    assert capsys.readouterr() == ("", "")


def test_test_start_renders_the_held_out_clips_alone(small_root, tmp_path):
    """The test clip of a 3 + 1 build (scene 3) rendered alone with num_train=0, test_start=3: same files."""
    alone = build_synthetic_dataset(tmp_path / "alone", **{**SMALL, "num_train": 0, "test_start": 3})
    manifest = json.loads((alone / "manifest.json").read_text())
    assert manifest["clips"] == {"train": [], "test": ["room_0003"]}
    assert manifest["params"]["test_start"] == 3
    for f in sorted((small_root / "test").rglob("*")):
        if f.is_file():
            assert (alone / "test" / f.relative_to(small_root / "test")).read_bytes() == f.read_bytes(), f
    default = {**SMALL, "num_train": 1, "num_test": 0, "test_start": 1}
    same = build_synthetic_dataset(tmp_path / "same", **default)
    assert "test_start" not in json.loads((same / "manifest.json").read_text())["params"]  # the default
    with pytest.raises(ValueError, match="test_start=0 would reuse training scenes"):
        build_synthetic_dataset(tmp_path / "bad", **{**SMALL, "test_start": 0})
