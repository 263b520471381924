"""`benchmarks/gpu_check.py --dry` runs every part of the prepared GPU check on a CPU, so it cannot rot."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_runs_every_part(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--dry", "--steps", "1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    parts = {r["part"]: r for r in report["results"]}
    assert report["dry"] and len(parts) == 10
    bad = {k: r.get("error") for k, r in parts.items() if r["status"] == "failed"}
    assert not bad, bad
    assert parts["deepspeed zero-2 resume"]["status"] == "skipped"  # CUDA only, with its reason
    assert all(r["step_ms"] > 0 for k, r in parts.items() if k.startswith("train"))
    assert parts["sampling"]["seconds_per_video"] > 0
    assert (tmp_path / "gpu_check.md").read_text().count("\n") == 12  # header + rule + 10 parts
    att = parts["attention kernels vs SDPA dense"]
    assert att["within_tol"] and len(att["rows"]) == 12  # dense + 5 kernels, forward and forward+backward
    assert (tmp_path / "attention.md").read_text().count("\n") == 14
    assert parts["gsplat vs torch rasteriser"]["status"] == "skipped"
    options = parts["sampling options (cache, bf16 autocast)"]["variants"]
    assert set(options) == {"fp32 reference (no cache)", "fp32 cached"}
    assert all(v["s_per_step"] > 0 and v["max_abs_diff"] < 1e-4 for v in options.values())
    compiled = parts["sampling compiled UNet"]["variants"]
    assert compiled["compiled UNet"]["max_abs_diff"] < 1e-4
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == sorted(
        f"train_step_{s}.json"
        for s in ("4x64x96_b1_32", "4x64x96_b1_bf16-mixed_ckpt", "4x96x128_b1_32_ckpt"))
