"""The CPU demo behind `make demo`: build the embedded dataset, train, sample, evaluate, print the table.

Runs the same entry points a user runs (``train.py``, ``sample.py``, ``eval.py``) as subprocesses, so
what the demo shows is what those commands do. Outputs go to ``outputs/demo/{train,sample,eval}``; the
results table is ``outputs/demo/eval/results.md`` (JSON and CSV beside it), W&B runs are offline under
each run dir's ``wandb/`` unless an account is configured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(step: str, args: list[str], env: dict[str, str]) -> float:
    print(f"\n=== {step}: python {' '.join(args)}", flush=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="outputs/demo", help="where the three run dirs go")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: experiment=demo's)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for all three steps")
    a = parser.parse_args(argv)
    out = Path(a.out)
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    common = ["torch_threads=1", *a.overrides]
    steps = [f"trainer.max_steps={a.steps}"] if a.steps else []
    times = {
        "train": run(
            "train", ["train.py", "experiment=demo", f"hydra.run.dir={out}/train", *steps, *common], env
        ),
    }
    ckpt = out / "train" / "checkpoints" / "last.ckpt"
    times["sample"] = run(
        "sample", ["sample.py", f"ckpt={ckpt}", "num_samples=2", f"hydra.run.dir={out}/sample", *common], env
    )
    times["eval"] = run("eval", ["eval.py", f"ckpt={ckpt}", f"hydra.run.dir={out}/eval", *common], env)
    print("\n" + "=" * 80)
    print("Camera-control results (tiny demo model, random-init backbone; not a published number):\n")
    print((out / "eval" / "results.md").read_text().split("\nProtocol:")[0])
    gap = out / "eval" / "camera_gap.md"
    if gap.is_file():
        print("Camera gap (held-out denoising error with another clip's cameras / with the clip's own;")
        print("> 1: the model uses its camera; a model without camera input reads exactly 1):\n")
        print(gap.read_text())
    print(f"results: {out / 'eval' / 'results.json'} (.csv, .md beside it)")
    print(f"samples: {out / 'sample' / 'samples'} (mp4, frames, cameras.json, trajectory.png)")
    print(f"checkpoint: {ckpt}")
    print(f"W&B offline runs: {out}/*/wandb (upload later with `wandb sync <dir>`)")
    print("times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
