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
# LPIPS off: its AlexNet weights are fetched on first use, and the test machine is offline (with them
# missing the sparse benchmark stops in one line, tests/weights)
SPARSE_TINY = "overlap.gaps=[2,3,4,5,6,7,8,9,10,11] overlap.num_targets=1 metrics.lpips.net=null"


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


def experiment_env(tmp_path, out, **extra: str) -> dict[str, str]:
    """The environment an experiments/* script runs in under test: its own data cache and output folder,
    offline W&B, full Hydra errors, this interpreter; ``extra`` sets the size knobs."""
    return {
        **os.environ,
        "VID3D_DATA_DIR": str(tmp_path / "data"),
        "WANDB_MODE": "offline",
        "HYDRA_FULL_ERROR": "1",
        "PYTHON": sys.executable,
        "OUT": str(out),
        **extra,
    }


@pytest.mark.slow
@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_demo_runs_at_tiny_size(entry, tmp_path):
    env_extra, check = ENTRIES[entry]
    out = tmp_path / "exp"
    env = experiment_env(tmp_path, out, DEMO_SIZE=" ".join(TINY), **env_extra)
    cmd = ["bash", f"experiments/{entry}/demo.sh"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    check(out)


# experiments/cpu_camera_control/run.sh at a tiny size: two steps per model, two test clips (the camera gap
# needs two), GT poses (the plumbing check), the recipe's factor-2 pixel autoencoder and smoother scenes
CPU_TABLE_TINY = [
    "experiment=demo",
    "logger=csv",
    "callbacks.media.every_n_steps=0",
    "torch_threads=1",
    "data.build.num_train=2",
    "data.build.num_test=2",
    "data.build.num_frames=12",
    "data.build.height=72",
    "data.build.width=128",
    "data.build.texture_scale=4.0",
    "data.root=${paths.data_dir}/smooth_tiny",
    "data.num_frames=4",
    "data.height=32",
    "data.width=48",
    "model.backbone.vae.factor=2",
    "data.datamodule.num_workers=0",
    "data.datamodule.batch_size=1",
    "trainer.max_steps=2",
    "module.warmup_steps=1",
    "post_eval=camera",
    "post_eval.sampler_steps=2",
    "post_eval.pose=gt",
]


@pytest.mark.slow
def test_cpu_camera_control_table_runs_at_tiny_size(tmp_path):
    out = tmp_path / "exp"
    env = experiment_env(tmp_path, out, RECIPE=" ".join(CPU_TABLE_TINY))
    proc = subprocess.run(
        ["bash", "experiments/cpu_camera_control/run.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    rows = list(csv.DictReader((out / "report" / "report.csv").open()))
    models = {"epipolar", "plucker", "rt", "svd"}
    assert {r["model"] for r in rows} == models
    assert {r["method"] for r in rows} == models | REFERENCES
    for r in rows:  # every model row has its camera gap and PSNR vs GT; reference rows have no gap
        has_gap = r["camera_gap@5_mean"] != ""
        assert has_gap == (r["method"] in models), r
        assert float(r["psnr_gt_mean"]) > 0
        if r["method"] == "svd":  # no camera input: exactly 1
            assert float(r["camera_gap@5_mean"]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.slow
def test_toy_shift_writes_its_rows_and_camera_effect_image(tmp_path):
    """The positive control `make demo` runs (at 2 steps): gap rows at steps 0 and 2 in toy_shift.json, and
    camera_effect.png, a 1300x520 figure (title, two labelled image panels of 2 clips x 5 rows, a per-frame
    error plot with its legend; layout checked by eye, issue 34)."""
    import json

    import imageio.v3 as iio

    proc = subprocess.run(
        [sys.executable, "experiments/cpu_camera_control/toy_shift.py", "--steps", "2", "--every", "2",
         "--p-mean", "1.6", "--p-std", "0.3", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "toy_shift.json").read_text())["rows"]
    assert [r["step"] for r in rows] == [0, 2]
    assert rows[0]["camera_gap@5"] == pytest.approx(1.0, abs=1e-9)  # zero-initialised camera path
    img = iio.imread(tmp_path / "camera_effect.png")
    assert img.shape[:2] == (520, 1300) and img[..., :3].std() > 10  # a drawn figure, not a blank canvas


def test_direction_gap_variants_keep_the_magnitude_and_flip_the_direction():
    """direction_gap.py's mirrored / reversed trajectories: frame 0 unchanged, the same distance and rotation
    angle from frame 0 as the own cameras, the sideways motion and the yaw of opposite sign."""
    import importlib.util
    import math

    import torch

    from vid3d.geometry import axis_angle_to_matrix

    spec = importlib.util.spec_from_file_location(
        "direction_gap", ROOT / "experiments/cpu_camera_control/direction_gap.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    F = 4
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, F, 1, 1)
    start = torch.eye(4, dtype=torch.float64)
    start[:3, :3] = axis_angle_to_matrix(torch.tensor([0.1, 0.7, -0.2], dtype=torch.float64), 0.8)
    start[:3, 3] = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    for k in range(F):  # yaw left by 0.1 rad per frame while moving right and forward
        rel = torch.eye(4, dtype=torch.float64)
        rel[:3, :3] = axis_angle_to_matrix(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), 0.1 * k)
        rel[:3, 3] = torch.tensor([0.2 * k, 0.0, 0.3 * k], dtype=torch.float64)
        c2w[:, k] = start @ rel
    v = mod.variants(c2w)

    def angle(r: torch.Tensor) -> torch.Tensor:  # rotation angle of (..., 4, 4) poses
        return torch.arccos(((r[..., 0, 0] + r[..., 1, 1] + r[..., 2, 2] - 1) / 2).clamp(-1, 1))

    for name in ("mirrored", "reversed"):
        rel_own = torch.linalg.inv(c2w[:, :1]) @ c2w
        rel_v = torch.linalg.inv(v[name][:, :1]) @ v[name]
        torch.testing.assert_close(v[name][:, 0], c2w[:, 0], atol=1e-12, rtol=0)
        torch.testing.assert_close(rel_v[..., :3, 3].norm(dim=-1), rel_own[..., :3, 3].norm(dim=-1),
                                   atol=1e-12, rtol=0)
        torch.testing.assert_close(angle(rel_v), angle(rel_own), atol=1e-7, rtol=0)
    rel_m = torch.linalg.inv(v["mirrored"][:, :1]) @ v["mirrored"]
    x_flipped = torch.tensor([-0.6, 0.0, 0.9], dtype=torch.float64)
    torch.testing.assert_close(rel_m[0, 3, :3, 3], x_flipped, atol=1e-12, rtol=0)
    assert rel_m[0, 3, 0, 2] == pytest.approx(-math.sin(0.3), abs=1e-12)  # the yaw flipped
    rel_r = torch.linalg.inv(v["reversed"][:, :1]) @ v["reversed"]
    rel_own = torch.linalg.inv(c2w[:, :1]) @ c2w
    eye = torch.eye(4, dtype=torch.float64)
    torch.testing.assert_close(rel_r[0, 2] @ rel_own[0, 2], eye, atol=1e-12, rtol=0)  # the inverse motion
    torch.testing.assert_close(v["static"], c2w[:, :1].expand_as(c2w))
