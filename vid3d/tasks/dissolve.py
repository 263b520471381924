"""Why do late frames of sampled videos dissolve? (issue 37 item 1)

    python -m vid3d.tasks.dissolve CKPT [hydra data overrides ...] [--clips 16] [--steps 25] [--json F]

On the first ``--clips`` test clips of the data option (pass the ``data.*`` overrides the run used; the
committed CPU model: ``data=synthetic_heldout600``), prints the measurements of
``vid3d.evaluation.dissolve``: the per-frame one-step denoiser error by sigma beside the share of the
checkpoint's training sigmas below it, the x0 estimate's error per step and frame along an Euler sampling
path (``--steps``, ``--sigma-min``, ``--sigma-max``, ``--rho``; no guidance), and the error with the
conditioning latent replaced by noise or another clip's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("overrides", nargs="*", help="Hydra overrides selecting the data (as in training)")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--sigma-min", type=float, default=0.002)
    p.add_argument("--sigma-max", type=float, default=700.0)
    p.add_argument("--rho", type=float, default=7.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    a = p.parse_args(argv)
    if a.clips < 1 or a.steps < 1 or not 0 < a.sigma_min < a.sigma_max:
        p.error("need --clips >= 1, --steps >= 1 and 0 < --sigma-min < --sigma-max")

    from vid3d.atomic import atomic_write_json
    from vid3d.evaluation.dissolve import diagnose, report_lines
    from vid3d.tasks.direction_gap import checkpoint_and_test_set

    torch.set_num_threads(1)
    model, test_set = checkpoint_and_test_set(a.ckpt, a.overrides)
    clips = [test_set[i] for i in range(min(a.clips, len(test_set)))]
    rec = diagnose(model, clips, a.steps, a.sigma_min, a.sigma_max, a.rho, a.seed)
    print("\n".join(report_lines(rec)))
    if a.json is not None:
        atomic_write_json(a.json, {"ckpt": str(a.ckpt), **rec}, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
