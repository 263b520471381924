"""Overlap index (analytic plane scene), sparse-view runner (records, resume, shards), report, task."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from vid3d.data.formats.re10k import Re10kCameras, write_clip
from vid3d.evaluation.image_metrics import ImageMetrics
from vid3d.evaluation.overlap.geometric import GeometricOverlap
from vid3d.evaluation.overlap.index import (
    StaleIndexError,
    bucket_of,
    build_index,
    load_index,
    select_pairs,
    write_index,
)
from vid3d.evaluation.overlap.index import (
    main as index_main,
)
from vid3d.evaluation.records import read_records
from vid3d.evaluation.sparse_report import merge_sparse
from vid3d.evaluation.sparse_runner import (
    ground_truth_method,
    load_pairs,
    nearest_context_method,
    run_sparse_eval,
)

H, W, FX, D, STEP, N = 32, 48, 40.0, 4.0, 3, 16
ASSETS = Path(__file__).resolve().parents[2] / "vid3d" / "data" / "assets" / "overlap"


def plane_clip(
    root: Path, clip_id: str, seed: int, n: int = N, step: int = STEP, split: str = "test"
) -> None:
    """A camera sliding right over a textured fronto-parallel plane at depth D, STEP pixels per frame:
    frame i is the texture shifted by i * STEP pixels (exact pinhole rendering), depth = D everywhere."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (H, W + n * step, 3), dtype=np.uint8)
    frames = np.stack([tex[:, i * step : i * step + W] for i in range(n)])
    c2w = np.repeat(np.eye(4)[None], n, axis=0)
    c2w[:, 0, 3] = np.arange(n) * step * D / FX
    K_norm = np.array([[FX / W, 0, 0.5], [0, FX / H, 0.5], [0, 0, 1]])
    cams = Re10kCameras.from_c2w(c2w, K_norm, np.arange(n, dtype=np.int64) * 1000, url="plane")
    write_clip(root, split, clip_id, cams, frames, depth=np.full((n, H, W), D, np.float32))


@pytest.fixture(scope="module")
def plane_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plane")
    plane_clip(root, "plane_a", 0)
    plane_clip(root, "plane_b", 1)
    return root


def analytic_overlap(gap: int) -> float:
    return 1 - gap * STEP / W


@pytest.fixture(scope="module")
def index(plane_root) -> dict:
    return build_index(plane_root, "test", GeometricOverlap(), gaps=[3, 4, 8, 11, 12, 15], num_targets=2)


# ------------------------------------------------------------------------------------------- index
def test_index_overlaps_match_analytic_values(index):
    assert len(index["pairs"]) == 12
    for row in index["pairs"]:
        gap = row["context"][1] - row["context"][0]
        assert row["overlap"] == pytest.approx(analytic_overlap(gap), abs=1e-6)
        assert row["bucket"] == bucket_of(analytic_overlap(gap))
        assert row["context"][0] < row["target"][0] < row["target"][-1] < row["context"][1]
    # gaps 3, 4 -> 0.8125, 0.75; 8 -> 0.5; 11, 12 -> 0.3125, 0.25; 15 -> 0.0625 (two clips each)
    assert index["counts"] == {"small": 4, "medium": 4, "large": 2, "outside": 2}


def test_buckets_are_half_open():
    assert bucket_of(0.3) == "medium" and bucket_of(0.2999) == "small"
    assert bucket_of(0.55) == "large" and bucket_of(0.8) is None and bucket_of(0.0499) is None


def test_index_roundtrip_select_and_stale_detection(index, plane_root, tmp_path):
    path = write_index(tmp_path / "idx.json", index)
    loaded = load_index(path, root=plane_root, split="test", estimator="geometric")
    small = select_pairs(loaded, 0.05, 0.3)
    assert [r["pair_id"] for r in small] == ["plane_a:0-12", "plane_a:0-15", "plane_b:0-12", "plane_b:0-15"]
    with pytest.raises(StaleIndexError, match="computed with 'geometric'"):
        load_index(path, estimator="roma")
    other = tmp_path / "other"
    plane_clip(other, "plane_a", 0)
    with pytest.raises(StaleIndexError, match="stale"):
        load_index(path, root=other)


def test_index_from_pixelsplat_eval_index(plane_root, tmp_path):
    ev = tmp_path / "evaluation_index.json"
    ev.write_text(
        json.dumps(
            {
                "plane_a": {"context": [2, 10], "target": [4, 6, 8]},
                "plane_b": None,
                "unknown": {"context": [0, 5], "target": [2]},
            }
        )
    )
    idx = build_index(plane_root, "test", GeometricOverlap(), eval_index=ev)
    assert [r["pair_id"] for r in idx["pairs"]] == ["plane_a:2-10"]
    assert idx["pairs"][0]["target"] == [4, 6, 8]
    assert idx["pairs"][0]["overlap"] == pytest.approx(analytic_overlap(8), abs=1e-6)
    assert idx["skipped"] == {"null_entry": 1, "not_in_dataset": 1}


def test_index_progress_lines_in_a_log(plane_root, capsys):
    """stdout captured (not a terminal): the first pair, every progress.every_n-th and the last, with the
    pair just measured."""
    from vid3d.progress import configure, settings

    before = settings()
    configure(every_n=5, every_s=0)
    try:
        build_index(plane_root, "test", GeometricOverlap(), gaps=[3, 4, 8, 11, 12, 15], num_targets=2,
                    progress=True)
    finally:
        configure(before)
    lines = [s for s in capsys.readouterr().out.splitlines() if s.startswith("overlap index ")]
    assert [s.split(" | ")[0] for s in lines] == [
        "overlap index 1/12 (8.3%)", "overlap index 5/12 (41.7%)", "overlap index 10/12 (83.3%)",
        "overlap index 12/12 (100.0%)",
    ]
    assert all(re.search(r"\| plane_[ab]:\d+-\d+: overlap \d\.\d{3}$", s) for s in lines), lines


def test_index_cli(plane_root, tmp_path, capsys):
    out = tmp_path / "cli.json"
    assert (
        index_main(
            [
                "--root",
                str(plane_root),
                "--split",
                "test",
                "--out",
                str(out),
                "--gaps",
                "8",
                "--num-targets",
                "3",
            ]
        )
        == 0
    )
    idx = load_index(out, root=plane_root)
    assert [r["target"] for r in idx["pairs"]] == [[2, 4, 6], [2, 4, 6]]


def test_shipped_demo_index_is_valid():
    files = sorted(ASSETS.glob("*.json"))
    assert files
    for f in files:
        idx = load_index(f)
        assert idx["thresholds"] == {"small": [0.05, 0.3], "medium": [0.3, 0.55], "large": [0.55, 0.8]}
        assert all(0 <= r["overlap"] <= 1 for r in idx["pairs"])
        assert idx["counts"]["small"] > 0 and idx["counts"]["large"] > 0


# ------------------------------------------------------------------------------------------ runner
@pytest.fixture(scope="module")
def pairs(index, plane_root):
    return load_pairs(plane_root, "test", select_pairs(index, 0.05, 0.8), H, W)


def np_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((a / 255.0 - b / 255.0) ** 2)))


def test_runner_scores_reference_rows(pairs, tmp_path):
    metrics = ImageMetrics(None)
    s = run_sparse_eval(
        pairs,
        {"nearest_context": nearest_context_method, "ground_truth": ground_truth_method},
        metrics,
        tmp_path,
        progress=False,
        protocol={"bucket": {"name": "all", "range": [0.05, 0.8]}},
    )
    recs = {(r["method"], r["clip_id"]): r for r in read_records(tmp_path / "records.shard0of1.jsonl")}
    assert len(recs) == 2 * len(pairs) == 20
    p = pairs[0]
    want = np.mean([np_psnr(pr, gt) for pr, gt in zip(nearest_context_method(p), p.gt_targets)])
    assert recs[("nearest_context", p.pair_id)]["metrics"]["psnr"] == pytest.approx(want, abs=1e-4)
    gt = recs[("ground_truth", p.pair_id)]
    assert gt["psnr_inf"] and gt["metrics"]["psnr"] is None and gt["metrics"]["ssim"] == pytest.approx(1.0)
    r = s["results"]
    assert r["ground_truth"]["metrics"]["psnr"]["mean"] == float("inf")
    assert r["nearest_context"]["n"] == 10 and not r["nearest_context"]["metrics"]["lpips"]["available"]
    md = (tmp_path / "results.md").read_text()
    assert "| nearest_context | 10 |" in md and "unavailable" in md
    assert (
        json.loads((tmp_path / "results.json").read_text())["results"]["ground_truth"]["metrics"]["psnr"][
            "mean"
        ]
        == "inf"
    )


def test_runner_resumes_and_shards_merge(pairs, tmp_path):
    calls = []

    def method(pair):
        calls.append(pair.pair_id)
        return nearest_context_method(pair)

    m = ImageMetrics(None)
    one = run_sparse_eval(pairs, {"x": method}, m, tmp_path / "one", progress=False)
    assert one["n_new"] == 10 and len(calls) == 10
    again = run_sparse_eval(pairs, {"x": method}, m, tmp_path / "one", progress=False)
    assert again["n_new"] == 0 and again["n_skipped"] == 10 and len(calls) == 10
    for shard in range(3):
        run_sparse_eval(
            pairs, {"x": method}, m, tmp_path / "sharded", shard=shard, num_shards=3, progress=False
        )
    assert len(list((tmp_path / "sharded").glob("records.shard*of3.jsonl"))) == 3
    final = json.loads((tmp_path / "sharded" / "results.json").read_text())["results"]["x"]
    assert final["n"] == 10
    assert final["metrics"]["psnr"]["mean"] == pytest.approx(one["results"]["x"]["metrics"]["psnr"]["mean"])


def test_report_merges_buckets(index, plane_root, tmp_path):
    m = ImageMetrics(None)
    for bucket, (lo, hi) in {"small": (0.05, 0.3), "large": (0.55, 0.8)}.items():
        ps = load_pairs(plane_root, "test", select_pairs(index, lo, hi), H, W)
        proto = {
            "benchmark": "sparse_view",
            "bucket": {"name": bucket, "range": [lo, hi]},
            "overlap_index": {
                k: index[k] for k in ("estimator", "dataset", "thresholds", "pair_source", "counts")
            },
        }
        run_sparse_eval(
            ps,
            {"nearest_context": nearest_context_method},
            m,
            tmp_path / f"0_{bucket}",
            progress=False,
            protocol=proto,
        )
    merged = merge_sparse([tmp_path])
    md = merged["markdown"]
    assert "small: PSNR" in md and "large: PSNR" in md and md.index("small: n") < md.index("large: n")
    row = next(line for line in md.splitlines() if line.startswith("| nearest_context"))
    small = merged["results"]["small"]["nearest_context"]["metrics"]["psnr"]["mean"]
    large = merged["results"]["large"]["nearest_context"]["metrics"]["psnr"]["mean"]
    assert f"{small:.2f}" in row and f"{large:.2f}" in row
    assert (tmp_path / "sparse_report.csv").read_text().count("nearest_context") == 2


# -------------------------------------------------------------------------------------------- task
def test_task_with_reference_rows(plane_root, tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.tasks.evaluate import evaluate

    monkeypatch.setenv("WANDB_MODE", "offline")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[
                "overlap=small",
                "data=re10k",
                f"data.root={plane_root}",
                f"data.height={H}",
                f"data.width={W}",
                f"paths.run_dir={tmp_path / 'run'}",
                f"overlap.cache_dir={tmp_path / 'cache'}",
                "overlap.gaps=[8,12,15]",
                "overlap.num_targets=2",
                "metrics.lpips.net=null",
            ],
        )
    out = evaluate(cfg)
    assert set(out["results"]) == {"nearest_context", "ground_truth"}
    assert out["results"]["nearest_context"]["n"] == 4  # gaps 12 and 15 of both clips
    cached = list((tmp_path / "cache").glob("*.json"))
    assert len(cached) == 1 and load_index(cached[0], root=plane_root)["counts"]["small"] == 4
    proto = json.loads((tmp_path / "run" / "results.json").read_text())["protocol"]
    assert proto["bucket"]["name"] == "small" and proto["overlap_index"]["estimator"]["name"] == "geometric"
    # W&B (offline): one side-by-side image (context | generated | GT rows) per (pair, method)
    pngs = list((tmp_path / "run" / "wandb").rglob("*.png"))
    assert len(pngs) == 2 * 4
    import imageio.v3 as iio

    assert iio.imread(pngs[0]).shape[:2] == (3 * H, 2 * W)  # 2 targets per pair (num_targets=2)


def test_empty_bucket_reports_n_zero_instead_of_failing(plane_root, tmp_path, monkeypatch):
    """A bucket without pairs (here: large, gaps 12/15 have overlap 0.25/0.06) writes n = 0 and says why;
    the merged table keeps the bucket as a column of zeros."""
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.tasks.evaluate import evaluate

    monkeypatch.setenv("WANDB_MODE", "offline")
    outs = {}
    for bucket in ("small", "large"):
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(
                "eval",
                overrides=[
                    f"overlap={bucket}",
                    "data=re10k",
                    f"data.root={plane_root}",
                    f"data.height={H}",
                    f"data.width={W}",
                    f"paths.run_dir={tmp_path / 'sweep' / bucket}",
                    f"overlap.cache_dir={tmp_path / 'cache'}",
                    "overlap.gaps=[12,15]",
                    "overlap.num_targets=2",
                    "metrics.lpips.net=null",
                    "overlap.wandb_images=0",
                ],
            )
        outs[bucket] = evaluate(cfg)
    assert outs["large"]["results"] == {} and outs["large"]["results_md"].startswith("EMPTY BUCKET: no pair")
    proto = json.loads((tmp_path / "sweep" / "large" / "results.json").read_text())["protocol"]
    assert "0.55 <= overlap < 0.8" in proto["empty_bucket"] and "'large': 0" in proto["empty_bucket"]
    assert proto["methods"] == ["nearest_context", "ground_truth"]  # named, so the report shows them n = 0
    assert (tmp_path / "sweep" / "large" / "records.shard0of1.jsonl").read_text() == ""
    merged = merge_sparse([tmp_path / "sweep"], tmp_path / "report")
    assert set(merged["results"]) == {"small", "large"} and merged["results"]["large"] == {}
    row = next(line for line in merged["markdown"].splitlines() if line.startswith("| nearest_context"))
    assert row.split(" | ")[1] == "4" and row.split(" | ")[5] == "0"  # small: 4 pairs; large: n = 0
    assert "EMPTY BUCKETS (no pair of the overlap index in range; n = 0): large." in merged["markdown"]
    assert "nearest_context,large,0," in (tmp_path / "report" / "sparse_report.csv").read_text()


@pytest.mark.slow
def test_multirun_with_trained_model_and_report(tmp_path):
    """train 1 step -> `-m overlap=small,large ckpt=...` (Hydra multirun) -> sparse_report table."""
    import os
    import subprocess
    import sys

    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.tasks.train import train

    root = tmp_path / "plane48"
    for k in range(2):  # 48 frames, 1 px per frame: default gaps 12..47 give overlaps 0.75 .. 0.02
        plane_clip(root, f"plane_{k}", k, n=48, step=1, split="test")
        plane_clip(root, f"train_{k}", 10 + k, n=48, step=1, split="train")
    small = [
        "data=re10k",
        f"data.root={root}",
        "data.num_frames=4",
        f"data.height={H}",
        f"data.width={W}",
        "data.datamodule.num_workers=0",
        "torch_threads=1",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "model=plucker",
                "trainer.max_steps=1",
                "logger=csv",
                "module.warmup_steps=1",
                f"paths.output_dir={tmp_path}",
                *small,
            ],
        )
    ckpt = train(cfg)["last_checkpoint"]
    sweep = tmp_path / "multirun"
    env = {
        **os.environ,
        "VID3D_DATA_DIR": str(tmp_path / "data"),
        "WANDB_MODE": "offline",
        "HYDRA_FULL_ERROR": "1",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "eval.py",
            "-m",
            "overlap=small,large",
            f"ckpt={ckpt}",
            "sampler.num_steps=2",
            "metrics.lpips.net=null",  # no AlexNet weights here (offline: eval.py would stop for them)
            f"hydra.sweep.dir={sweep}",
            *small,
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    merged = merge_sparse([sweep])
    assert set(merged["results"]) == {"small", "large"}
    for bucket in ("small", "large"):
        rows = merged["results"][bucket]
        assert set(rows) == {
            "nearest_context",
            "ground_truth",
            next(m for m in rows if m not in ("nearest_context", "ground_truth")),
        }
        assert all(r["n"] == 4 for r in rows.values())  # two clips x two gaps per bucket
    assert (sweep / "sparse_report.md").is_file()
