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
        [sys.executable, "benchmarks/gpu_check.py", "--dry", "--steps", "1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    parts = {r["part"]: r for r in report["results"]}
    assert report["dry"] and len(parts) == 6
    bad = {k: r.get("error") for k, r in parts.items() if r["status"] == "failed"}
    assert not bad, bad
    assert parts["deepspeed zero-2 resume"]["status"] == "skipped"  # CUDA only, with its reason
    assert all(r["step_ms"] > 0 for k, r in parts.items() if k.startswith("train"))
    assert parts["sampling"]["seconds_per_video"] > 0
    assert (tmp_path / "gpu_check.md").read_text().count("\n") == 8  # header + rule + 6 parts
