"""experiments/*/demo.sh: each entry's sweep runs at a tiny size and ends in its merged table."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _tiny import TINY_SWEEP

ROOT = Path(__file__).resolve().parents[2]
TINY = TINY_SWEEP
REFERENCES = {"gt_video", "static_first_frame"}
# one 12-frame test clip: gaps 2..11 with one target give 5 small-overlap pairs and 1 large (gap 2, 0.67)
SPARSE_TINY = "overlap.gaps=[2,3,4,5,6,7,8,9,10,11] overlap.num_targets=1"


def camera_rows(out: Path) -> list[dict]:
    return list(csv.DictReader((out / "report" / "report.csv").open()))


def check_camera_control(out):
    rows = camera_rows(out)
    assert {r["model"] for r in rows} == {"epipolar", "plucker", "rt", "svd"}
    assert {r["method"] for r in rows} - REFERENCES == {"epipolar", "plucker", "rt", "svd"}


def check_attention(out):
    rows = camera_rows(out)
    assert {r["model/attention"] for r in rows} == {"epipolar", "full", "none"}
    assert {r["method"] for r in rows} - REFERENCES == {"epipolar"}


def check_interval(out):
    rows = camera_rows(out)
    assert {r["data/interval"] for r in rows} == {"linear", "uniform"}
    assert {r["method"] for r in rows} - REFERENCES == {"plucker"}


def check_sparse(out):
    assert (out / "train" / "eval" / "results.json").is_file()  # the model scored on camera control too
    rows = list(csv.DictReader((out / "sparse_report" / "sparse_report.csv").open()))
    n = {(r["method"], r["bucket"]): int(r["n"]) for r in rows}
    assert {b for _, b in n} == {"small", "large"}
    assert {m for m, _ in n} == {"epipolar", "nearest_context", "ground_truth"}
    assert all(n[(m, "small")] == 5 and n[(m, "large")] == 1 for m, _ in n), n
    assert "EMPTY" not in (out / "sparse_report" / "sparse_report.md").read_text()


ENTRIES = {
    "camera_control_re10k": ({}, check_camera_control),
    "attention_ablation": ({}, check_attention),
    "interval_ablation": ({}, check_interval),
    "sparse_view": ({"EVAL_ARGS": SPARSE_TINY}, check_sparse),
}


def test_every_experiment_has_a_demo_and_a_test():
    entries = {p.parent.name for p in (ROOT / "experiments").glob("*/demo.sh")}
    assert entries == set(ENTRIES)
    assert all((ROOT / "experiments" / e / "README.md").is_file() for e in entries)


@pytest.mark.slow
@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_demo_runs_at_tiny_size(entry, tmp_path):
    env_extra, check = ENTRIES[entry]
    out = tmp_path / "exp"
    env = {
        **os.environ,
        "VID3D_DATA_DIR": str(tmp_path / "data"),
        "WANDB_MODE": "offline",
        "HYDRA_FULL_ERROR": "1",
        "PYTHON": sys.executable,
        "OUT": str(out),
        "DEMO_SIZE": " ".join(TINY),
        **env_extra,
    }
    cmd = ["bash", f"experiments/{entry}/demo.sh"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    check(out)
