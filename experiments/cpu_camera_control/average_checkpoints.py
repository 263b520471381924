"""Does averaging late checkpoints raise the camera gap? (weight averaging over a plateau, issue 14)

    python experiments/cpu_camera_control/average_checkpoints.py RUN_DIR STEP [STEP ...] \
        [--seeds 3] [--clips 16] [--out averaged.ckpt] -- [hydra data overrides of the run ...]

The camera gap (vid3d.evaluation.camera_gap) of each listed checkpoint (``RUN_DIR/checkpoints/
step_%07d.ckpt``) and of the uniform average of their trained weights, each measured with ``--seeds`` noise
draws on the same ``--clips`` held-out clips (the callback uses one draw, so its readings swing by ±0.02).
Prints one row per model: mean error with own cameras at each σ, camera gap and static-camera gap
(mean over seeds, and their spread). ``--out`` writes the averaged checkpoint (the first checkpoint's
file with its ``state_dict`` replaced, no optimiser state) so sample.py / eval.py can load it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def average_state(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform average of floating-point tensors (other tensors are taken from the first state)."""
    out = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            out[k] = torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype)
        else:
            out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("steps", type=int, nargs="+")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.2, 1.0, 5.0])
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--skip-single", action="store_true", help="measure only the average")
    a, overrides = p.parse_known_args(argv)
    overrides = [o for o in overrides if o != "--"]
    torch.set_num_threads(1)
    from vid3d.evaluation.camera_gap import measure_camera_gap
    from vid3d.models.checkpoint import load_checkpoint_file, save_checkpoint_file
    from vid3d.tasks.direction_gap import checkpoint_and_test_set

    paths = [a.run_dir / "checkpoints" / f"step_{s:07d}.ckpt" for s in a.steps]
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"{path}: no such checkpoint")
    model, ds = checkpoint_and_test_set(str(paths[0]), overrides)
    samples = [ds[i] for i in range(min(a.clips, len(ds)))]
    states = [load_checkpoint_file(path)["state_dict"] for path in paths]

    def measure(name: str, state: dict[str, torch.Tensor]) -> None:
        model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()}, strict=False)
        model.eval()
        rows = [measure_camera_gap(model, samples, a.sigmas, seed=seed) for seed in range(a.seeds)]
        cells = []
        for s in a.sigmas:
            key = f"{s:g}"
            err = sum(r[f"error_own@{key}"] for r in rows) / len(rows)
            gaps = torch.tensor([r[f"camera_gap@{key}"] for r in rows])
            stat = torch.tensor([r[f"camera_gap_static@{key}"] for r in rows])
            cells.append(f"{err:.4f} | {gaps.mean():.4f} ±{gaps.std(unbiased=False):.4f} | {stat.mean():.4f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)

    head = " | ".join(f"error σ{s:g} | gap σ{s:g} | static σ{s:g}" for s in a.sigmas)
    print(f"| model | {head} |\n|---|" + "---|" * (3 * len(a.sigmas)), flush=True)
    if not a.skip_single:
        for step, state in zip(a.steps, states, strict=True):
            measure(f"step {step}", state)
    avg = average_state(states)
    measure("average of " + ",".join(str(s) for s in a.steps), avg)
    if a.out is not None:
        ckpt = load_checkpoint_file(paths[0])
        ckpt["state_dict"] = avg
        for k in ("optimizer_states", "lr_schedulers", "loops", "callbacks"):
            ckpt.pop(k, None)
        save_checkpoint_file(ckpt, a.out)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
