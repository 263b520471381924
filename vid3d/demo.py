"""The CPU demo behind `make demo`: build the embedded dataset, train, sample, evaluate, print the table.

Runs the same entry points a user runs (``train.py``, ``sample.py``, ``eval.py``) as subprocesses, so
what the demo shows is what those commands do. Two models train side by side (one CPU thread each): the
camera model (``experiment=demo``: the Plücker encoder) and the same recipe without any camera input
(``model=svd``, the control), so the table shows what the camera input adds; beside sampling, a positive
control trains the same model classes on toy clips whose motion only the camera explains (its camera gap
and an image of it are printed at the end), and after sampling the committed CPU-trained camera model
(``assets/cpu_camera_control/``) is read on 16 held-out clips (printed at the end). Outputs go to
``outputs/demo/{train,train_control,sample,eval,eval_control,report,positive_control,camera_asset}``: the
merged table is
``outputs/demo/report/report.md`` (CSV, LaTeX and JSON beside it; each eval folder keeps its own
``results.json``); W&B runs are offline under each run dir's ``wandb/`` unless an account is configured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The positive control: the same model classes trained on clips whose motion only the camera explains, at
# high noise, where the camera is learned in a few hundred steps (experiments/cpu_camera_control/README.md)
TOY = ROOT / "experiments" / "cpu_camera_control" / "toy_shift.py"
TOY_ARGS = ["--steps", "250", "--every", "250", "--pixels-per-unit", "6", "--p-mean", "1.6", "--p-std", "0.3"]
# The committed CPU-trained camera model (hours of CPU training; assets/cpu_camera_control/README.md) on the
# 16 held-out clips it never saw: own cameras vs mirrored / another clip's / static ones (~30 s)
ASSET = ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big.safetensors"
DIRECTION = ROOT / "experiments" / "cpu_camera_control" / "direction_gap.py"


def run(step: str, args: list[str], env: dict[str, str]) -> float:
    print(f"\n=== {step}: python {' '.join(args)}", flush=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - t


def run_pair(
    step: str,
    shown: list[str],
    quiet: list[str],
    log: Path,
    env: dict[str, str],
    then: list[str] | None = None,
) -> float:
    """Run two entry points at once: ``shown`` (then ``then``, when given) prints to the terminal, ``quiet``
    to ``log`` (its tail is printed if it fails). Raises CalledProcessError when any fails."""
    print(f"\n=== {step}: python {' '.join(shown)}", flush=True)
    print(f"    and python {' '.join(quiet)}  (output: {log})", flush=True)
    t = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        background = subprocess.Popen([sys.executable, *quiet], cwd=ROOT, env=env, stdout=fh, stderr=fh)
        try:
            subprocess.run([sys.executable, *shown], cwd=ROOT, env=env, check=True)
            if then:
                print(f"\n=== then: python {' '.join(then)}", flush=True)
                subprocess.run([sys.executable, *then], cwd=ROOT, env=env, check=True)
        except BaseException:
            background.terminate()
            background.wait()
            raise
        code = background.wait()
    if code:
        print("".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:]), file=sys.stderr)
        raise subprocess.CalledProcessError(code, [sys.executable, *quiet])
    return time.perf_counter() - t


def build_dataset(overrides: list[str]) -> float:
    """Render the embedded dataset the demo's config names (once; both trainings then read it)."""
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.tasks.common import prepare_data

    print("\n=== dataset: the embedded synthetic set (rendered on first use, kept in data_cache/)")
    t = time.perf_counter()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        prepare_data(compose("train", overrides=["experiment=demo", *overrides]))
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="outputs/demo", help="where the run dirs go")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: experiment=demo's)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every step")
    a = parser.parse_args(argv)
    out = Path(a.out)
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    common = ["torch_threads=1", *a.overrides]
    steps = [f"trainer.max_steps={a.steps}"] if a.steps else []
    times = {"dataset": build_dataset(a.overrides)}
    train = ["train.py", "experiment=demo", *steps, *common]
    times["train"] = run_pair(
        "train (camera model, and the model=svd control beside it)",
        [*train, f"hydra.run.dir={out}/train"],
        [*train, "model=svd", f"hydra.run.dir={out}/train_control"],
        out / "train_control.log",
        env,
    )
    ckpt = out / "train" / "checkpoints" / "last.ckpt"
    control = out / "train_control" / "checkpoints" / "last.ckpt"
    control_dir = out / "positive_control"
    asset_json = out / "camera_asset" / "direction_gap.json"
    asset_json.parent.mkdir(parents=True, exist_ok=True)
    times["sample + positive control + asset"] = run_pair(
        "sample, then the committed CPU camera model on held-out clips (the positive control beside them)",
        ["sample.py", f"ckpt={ckpt}", "num_samples=2", f"hydra.run.dir={out}/sample", *common],
        [str(TOY), *TOY_ARGS, "--out", str(control_dir)],
        out / "positive_control.log",
        env,
        then=[str(DIRECTION), str(ASSET), "data=synthetic_heldout600", "--json", str(asset_json)],
    )
    times["eval"] = run_pair(
        "eval (camera model with the reference rows, and the control)",
        ["eval.py", f"ckpt={ckpt}", f"hydra.run.dir={out}/eval", *common],
        ["eval.py", f"ckpt={control}", "eval.reference_rows=false", f"hydra.run.dir={out}/eval_control"]
        + common,
        out / "eval_control.log",
        env,
    )
    from vid3d.report import write_report

    write_report([out / "eval", out / "eval_control"], out / "report", wandb_log=False)  # one table
    print("\n" + "=" * 80)
    print("Camera-control results (tiny demo models, random-init backbone; not a published number). The")
    print("camera gap columns: held-out denoising error with another clip's cameras / with the clip's own")
    print("(> 1: the model uses its camera; the control, with no camera input, reads exactly 1):\n")
    print((out / "report" / "report.md").read_text())
    toy = json.loads((control_dir / "toy_shift.json").read_text())["rows"][-1]
    print(
        f"Positive control (toy clips whose motion only the camera explains; the same model classes, "
        f"{toy['step']} steps at high noise):\ncamera gap at sigma 5 = {toy['camera_gap@5']:.2f} (a model "
        f"that ignores its camera reads 1.00); {control_dir / 'camera_effect.png'} shows it (error rows "
        "with the clip's own cameras darker than with another clip's).\n"
    )
    print_asset(json.loads(asset_json.read_text()))
    print(f"results: {out / 'report'}/report.{{md,csv,tex,json}}; per model: {out}/eval*/results.json")
    print(f"samples: {out / 'sample' / 'samples'} (mp4, frames, cameras.json, trajectory.png)")
    print(f"checkpoints: {ckpt}, {control}")
    print(f"W&B offline runs: {out}/*/wandb (upload later with `wandb sync <dir>`)")
    print("times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    return 0


def print_asset(record: dict) -> None:
    """The committed CPU camera model's direction_gap.py reading (its --json record), as prose."""
    n = record["clips"]
    for sigma, row in record["sigmas"].items():
        parts = [
            f"{v} {r['ratio']:.3f} ({r['own_lower']}/{n} clips)" for v, r in row.items() if v != "own"
        ]
        print(
            f"A vid3d-trained camera model (committed: {ASSET.relative_to(ROOT)}, trained on the CPU by "
            f"experiments/cpu_camera_control/explore.sh HX3big) on {n} held-out clips it never saw: the "
            f"one-step denoising error at sigma {sigma} with other cameras / with the clip's own (> 1: "
            f"the model uses its camera; where own is lower): " + "; ".join(parts) + ".\n"
        )


if __name__ == "__main__":
    raise SystemExit(main())
