"""benchmark=recon: Gaussians fitted to context / generated / ground-truth views of a pair, scored at the
held-out targets, on a smooth textured plane with exact cameras and depth."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.data.formats.re10k import Re10kCameras, write_clip
from vid3d.evaluation.recon_methods import (
    ReconSettings,
    cached_reference,
    context_only_method,
    generated_method,
    near_far,
    reference_key,
)
from vid3d.evaluation.sparse_runner import load_pairs

H, W, FX, D, STEP, N = 32, 48, 40.0, 4.0, 3, 16
SMALL = ReconSettings(num_gaussians=600, steps=150, generated_views=4)


def smooth_plane_clip(root, clip_id: str, seed: int, depth: bool = True, n: int = N, step: int = STEP,
                      split: str = "test") -> None:
    """A camera sliding right over a fronto-parallel plane at depth D (STEP px per frame) whose texture
    varies smoothly (a 6 x 20 random grid upsampled): frame i = the texture shifted by i * STEP pixels."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, 6, 20))).float()
    tex = F.interpolate(coarse, size=(H, W + n * step), mode="bicubic", align_corners=True)
    tex = tex.clamp(0, 255)[0].permute(1, 2, 0).round().byte().numpy()
    frames = np.stack([tex[:, i * step : i * step + W] for i in range(n)])
    c2w = np.repeat(np.eye(4)[None], n, axis=0)
    c2w[:, 0, 3] = np.arange(n) * step * D / FX
    K_norm = np.array([[FX / W, 0, 0.5], [0, FX / H, 0.5], [0, 0, 1]])
    cams = Re10kCameras.from_c2w(c2w, K_norm, np.arange(n, dtype=np.int64) * 1000, url="plane")
    write_clip(root, split, clip_id, cams, frames,
               depth=np.full((n, H, W), D, np.float32) if depth else None)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("smooth_plane")
    smooth_plane_clip(r, "plane_a", 0)
    smooth_plane_clip(r, "plane_b", 1)
    return r


def one_pair(root, with_path=True):
    row = {"pair_id": "plane_a/0-12", "clip_id": "plane_a", "context": [0, 12], "target": [4, 8],
           "overlap": 0.25}
    return load_pairs(root, "test", [row], H, W, with_path=with_path)[0]


def psnr(a, b):
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def test_pairs_carry_the_non_target_in_between_views_and_the_depth_range(root):
    pair = one_pair(root)
    path = pair.info["path"]
    assert list(path["indices"]) == [1, 2, 3, 5, 6, 7, 9, 10, 11]  # 4 and 8 are the targets
    assert path["frames"].shape == (9, H, W, 3) and path["c2w"].shape == (9, 4, 4)
    np.testing.assert_allclose(path["c2w"][:, 0, 3], np.array([1, 2, 3, 5, 6, 7, 9, 10, 11]) * STEP * D / FX,
                               rtol=1e-6)
    assert pair.info["depth_range"] == pytest.approx((D, D), rel=1e-3)
    assert near_far(pair, SMALL) == pytest.approx((0.8 * D, 1.1 * D), rel=1e-3)
    assert "path" not in one_pair(root, with_path=False).info


def test_generated_views_are_fitted_at_their_own_cameras(root):
    """An oracle generator (the true frame at each requested camera) must reconstruct the targets better
    than the two context views alone; the same frames handed back in reverse order must not. Measured
    2026-12-04: 25.6 dB oracle, 15.7 context only, 11.0 reversed."""
    pair = one_pair(root)
    path = pair.info["path"]
    all_c2w = np.concatenate([pair.c2w[:1], path["c2w"], pair.c2w[-1:]])
    all_frames = np.concatenate([pair.frames[:1], path["frames"], pair.frames[-1:]])

    def oracle(first, last, K, c2w_rel, item):
        x = c2w_rel[:, 0, 3] + pair.c2w[0][0, 3]  # relative to the first context view: add its position back
        return np.stack([all_frames[np.argmin(np.abs(all_c2w[:, 0, 3] - xi))] for xi in x])

    def reversed_oracle(*args):
        v = oracle(*args)
        return np.concatenate([v[:1], v[1:-1][::-1], v[-1:]])

    ctx = np.mean([psnr(p, g) for p, g in zip(context_only_method(SMALL)(pair), pair.gt_targets)])
    good = np.mean([psnr(p, g) for p, g in zip(generated_method(oracle, SMALL)(pair), pair.gt_targets)])
    bad_pred = generated_method(reversed_oracle, SMALL)(pair)
    bad = np.mean([psnr(p, g) for p, g in zip(bad_pred, pair.gt_targets)])
    assert good > ctx + 2.0 and good > bad + 2.0, (good, ctx, bad)


def test_a_scene_without_depth_needs_near_and_far(tmp_path):
    smooth_plane_clip(tmp_path, "plane_a", 0, depth=False)
    pair = one_pair(tmp_path)
    with pytest.raises(ValueError, match="benchmark.near=... benchmark.far="):
        near_far(pair, SMALL)
    assert near_far(pair, ReconSettings(near=1.0, far=9.0)) == (1.0, 9.0)


def test_eval_benchmark_recon_reference_rows(root, tmp_path, monkeypatch):
    """Measured 2026-12-04: all_gt + 3dgs 28.3 dB, context_only + 3dgs 16.0 dB at the targets."""
    from vid3d.tasks.evaluate import evaluate

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    overrides = [
        "benchmark=recon", "overlap=small", "data=re10k", f"data.root={root}", f"data.height={H}",
        f"data.width={W}", f"paths.run_dir={tmp_path / 'run'}", f"overlap.cache_dir={tmp_path / 'cache'}",
        "overlap.gaps=[12]", "overlap.num_targets=2", "metrics.lpips.net=null",
        "benchmark.num_gaussians=600", "benchmark.steps=150",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=overrides)
    out = evaluate(cfg)
    res = out["results"]
    assert set(res) == {"context_only + 3dgs", "all_gt + 3dgs"}
    assert res["context_only + 3dgs"]["n"] == 2  # gap 12 of both clips (overlap 0.25: small)
    ceiling = res["all_gt + 3dgs"]["metrics"]["psnr"]["mean"]
    assert ceiling > res["context_only + 3dgs"]["metrics"]["psnr"]["mean"] + 1.0
    proto = json.loads((tmp_path / "run" / "results.json").read_text())["protocol"]
    assert proto["benchmark"] == "reconstruction" and proto["reconstruction"]["num_gaussians"] == 600
    assert set(proto["reference_rows"]) == set(res)
    records = (tmp_path / "run" / "records.shard0of1.jsonl").read_text().splitlines()
    assert len(records) == 4
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        again = evaluate(compose("eval", overrides=overrides))  # resumes: nothing refitted
    assert (tmp_path / "run" / "records.shard0of1.jsonl").read_text().splitlines() == records
    assert again["results"]["all_gt + 3dgs"]["metrics"]["psnr"]["mean"] == ceiling


def _targets_by_hand(gap: int, k: int) -> list[int]:
    """round(i * gap / (k + 1)) for i = 1..k, with round-half-to-even spelled out (no linspace)."""
    out = []
    for i in range(1, k + 1):
        num, den = i * gap, k + 1
        q, r = divmod(num, den)
        out.append(q + (1 if 2 * r > den or (2 * r == den and q % 2) else 0))
    return out


def test_preset_gaps_leave_room_for_six_generated_views():
    """Every gap of the preset has >= 6 non-target frames between its context views (computed here from the
    target rule); gap 18, the preset's old first gap, has 5 — the reason it starts at 19."""
    from vid3d.tasks.sparse_benchmark import free_views

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=["protocol=sparse2_eval12"])
    assert cfg.benchmark.generated_views == 6 and cfg.overlap.num_targets == 12
    assert (cfg.overlap.height, cfg.overlap.width) == (256, 256)
    assert cfg.overlap.estimator == "roma" and list(cfg.protocol.buckets) == ["small", "large"]
    assert cfg.benchmark.init == "triangulated"
    for gap in cfg.overlap.gaps:
        targets = _targets_by_hand(gap, 12)
        free = [t for t in range(1, gap) if t not in targets]
        assert len(free) >= 6, gap
        assert free_views({"context": [0, gap], "target": targets}) == len(free)
    assert len([t for t in range(1, 18) if t not in _targets_by_hand(18, 12)]) == 5


@pytest.mark.parametrize("count", [1, 2, 5, 6])
def test_path_views_gives_exactly_the_count_or_refuses(count):
    from types import SimpleNamespace

    from vid3d.evaluation.recon_methods import path_views

    for n in range(count, 40):
        sel = path_views(SimpleNamespace(info={"path": {"indices": np.arange(n)}}, pair_id="p"), count)
        assert len(set(sel.tolist())) == count and sel.min() >= 0 and sel.max() <= n - 1
        if count > 1:
            assert sel[0] == 0 and sel[-1] == n - 1
    with pytest.raises(ValueError, match="5 non-target frames between the context views, 6 generated"):
        path_views(SimpleNamespace(info={"path": {"indices": np.arange(5)}}, pair_id="p"), 6)


def test_protocol_sparse2_eval12_preset(tmp_path, monkeypatch):
    """2 GT training views (the context) and 12 evaluation views per scene, chosen by a fixed rule that the
    results' protocol block records; the small and the large bucket each in its own folder and one merged
    table. Clips slide 1 px per frame over a plane 48 px wide: gap 19 overlaps 29/48 = 0.60 (large), gap 36
    12/48 = 0.25 (small). The test's own changes (size, geometric overlap) are listed as departures."""
    from vid3d.tasks.evaluate import evaluate

    root = tmp_path / "data"
    for k in range(2):
        smooth_plane_clip(root, f"plane_{k}", k, n=40, step=1)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[
            "protocol=sparse2_eval12", "data=re10k", f"data.root={root}", f"data.height={H}",
            f"data.width={W}", f"paths.run_dir={tmp_path / 'run'}", f"overlap.cache_dir={tmp_path / 'cache'}",
            "overlap.estimator=geometric", "overlap.gaps=[19,36]", "metrics.lpips.net=null",
            "benchmark.num_gaussians=300", "benchmark.steps=20",
        ])
    out = evaluate(cfg)
    assert set(out["results"]) == {"small", "large"}
    for bucket in ("small", "large"):
        assert out["results"][bucket]["context_only + 3dgs"]["n"] == 2  # one pair per clip
        proto = json.loads((tmp_path / "run" / bucket / "results.json").read_text())["protocol"]
        assert proto["bucket"]["name"] == bucket
        assert proto["preset"]["name"] == "sparse2_eval12" and proto["preset"]["eval_views"] == 12
        assert proto["overlap_index"]["pair_source"]["num_targets"] == 12
        rec = proto["reconstruction"]
        assert rec["generated_views"] == 6 and rec["init"] == "triangulated"
        assert proto["pair_rule"]["left_out"]["pairs"] == 0
        assert any(d.startswith("overlap.estimator: geometric") for d in proto["differs_from_preset"])
        assert any(d.startswith("height x width: [32, 48]") for d in proto["differs_from_preset"])
    lines = (tmp_path / "run" / "large" / "records.shard0of1.jsonl").read_text().splitlines()
    (rec,) = [json.loads(x) for x in lines if '"context_only + 3dgs"' in x and "plane_0" in x]
    assert rec["context"] == [0, 19] and rec["target"] == _targets_by_hand(19, 12)
    merged = (tmp_path / "run" / "sparse_report.md").read_text()
    assert "small: n" in merged and "large: n" in merged


def test_sparse2_eval12_without_roma_weights_is_one_line(tmp_path, capsys, monkeypatch):
    """The preset's RoMa overlap with no weights (and no precomputed index), offline: one line naming the key
    and the file to fetch, before any model is loaded."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    from vid3d.errors import user_errors
    from vid3d.tasks.evaluate import evaluate

    root = tmp_path / "data"
    smooth_plane_clip(root, "plane_0", 0, n=20, step=1)
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[
            "protocol=sparse2_eval12", "data=re10k", f"data.root={root}", f"paths.run_dir={tmp_path / 'run'}",
            f"overlap.cache_dir={tmp_path / 'cache'}", f"ckpt={tmp_path / 'never_read.safetensors'}",
        ])
    with pytest.raises(SystemExit) as e, user_errors():
        evaluate(cfg)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "overlap.roma.weights" in err and "roma_outdoor.pth" in err


@pytest.mark.slow
def test_multirun_recon_with_a_trained_model_and_merged_table(tmp_path):
    """train 1 step -> `eval.py -m benchmark=recon overlap=small,large ckpt=...` -> one merged table with the
    model's row and both reference rows per bucket."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from vid3d.evaluation.sparse_report import merge_sparse
    from vid3d.tasks.train import train

    root = tmp_path / "plane48"
    for k in range(2):  # 48 frames, 1 px per frame: gaps 12..47 give overlaps 0.75 .. 0.02
        smooth_plane_clip(root, f"plane_{k}", k, n=48, step=1)
        smooth_plane_clip(root, f"train_{k}", 10 + k, n=48, step=1, split="train")
    small = ["data=re10k", f"data.root={root}", "data.num_frames=4", f"data.height={H}", f"data.width={W}",
             "data.datamodule.num_workers=0", "torch_threads=1"]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=plucker", "trainer.max_steps=1", "logger=csv",
                                          "module.warmup_steps=1", f"paths.output_dir={tmp_path}", *small])
    ckpt = train(cfg)["last_checkpoint"]
    sweep = tmp_path / "multirun"
    env = {**os.environ, "VID3D_DATA_DIR": str(tmp_path / "data"), "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, "eval.py", "-m", "benchmark=recon", "overlap=small,large", f"ckpt={ckpt}",
         "sampler.num_steps=2", "overlap.gaps=[12,40]", "overlap.num_targets=2",
         "benchmark.num_gaussians=300", "benchmark.steps=20", "benchmark.generated_views=2",
         "metrics.lpips.net=null",
         f"hydra.sweep.dir={sweep}", *small],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    merged = merge_sparse([sweep])
    assert merged["protocol"]["benchmark"] == "reconstruction"
    assert set(merged["results"]) == {"small", "large"}
    for bucket in ("small", "large"):
        assert set(merged["results"][bucket]) == {"plucker + 3dgs", "context_only + 3dgs", "all_gt + 3dgs"}
        assert all(r["n"] == 2 for r in merged["results"][bucket].values())  # one gap per bucket, two clips
    table = (sweep / "sparse_report.md").read_text()
    assert table.index("plucker + 3dgs") < table.index("context_only + 3dgs")  # model rows first

def test_reference_row_is_fitted_once_and_read_back(root, tmp_path):
    """benchmark.reference_cache: a reference row is fitted once per pair, settings and code, then read
    back."""
    pair = one_pair(root)
    s = ReconSettings(num_gaussians=200, steps=10, generated_views=4, reference_cache=str(tmp_path / "keep"))
    calls = []
    fresh = context_only_method(s)

    def counted(p):
        calls.append(p.pair_id)
        return fresh(p)

    method = cached_reference(counted, "context_only", s)
    first = method(pair)
    assert calls == ["plane_a/0-12"] and first.shape == pair.gt_targets.shape and first.dtype == np.uint8
    kept = list((tmp_path / "keep" / "context_only").glob("*.npy"))
    assert len(kept) == 1
    again = method(pair)
    assert calls == ["plane_a/0-12"] and np.array_equal(again, first)  # read back, not refitted
    assert np.array_equal(fresh(pair), first)  # the fit is deterministic: a kept render is a new fit's
    # another model's run (generated_views) shares it; other fit settings do not
    assert reference_key(pair, "context_only", dataclasses.replace(s, generated_views=6)) == kept[0].stem
    assert reference_key(pair, "context_only", dataclasses.replace(s, steps=11)) != kept[0].stem
    assert reference_key(pair, "all_gt", s) != kept[0].stem
    # a damaged file is refitted and replaced
    kept[0].write_bytes(b"not an array")
    assert np.array_equal(method(pair), first) and len(calls) == 2
    assert np.array_equal(np.load(kept[0]), first)


def test_no_reference_cache_leaves_the_method_unchanged():
    s = ReconSettings(num_gaussians=200, steps=10)
    method = context_only_method(s)
    assert cached_reference(method, "context_only", s) is method
