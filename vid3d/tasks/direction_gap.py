"""Does a checkpoint use WHICH WAY its camera moves, or only HOW MUCH? (issue 14)

    python -m vid3d.tasks.direction_gap CKPT [hydra data overrides ...] [--sigma 5] [--clips 16] [--json F]

On the first ``--clips`` test clips of the data option, the one-step denoising error (latent MSE of
D(x0 + sigma n), the same noise for every variant) with the clip's own cameras and with the mirrored,
reversed, another clip's and static cameras (``vid3d.evaluation.camera_gap``: ``DIRECTION_VARIANTS``).
``make demo`` runs it on the committed CPU camera model (assets/cpu_camera_control/) with
``data=synthetic_heldout600``, the 16 held-out clips it never saw.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch


def checkpoint_and_test_set(ckpt: str | Path, overrides: list[str]) -> tuple[Any, Any]:
    """(the checkpoint's model in eval mode, the data option's test dataset) for a checkpoint and the
    ``data.*`` overrides its run used (the dataset is rendered first if it is not on disk yet)."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from vid3d.config import CONFIG_DIR
    from vid3d.models.checkpoint import load_model
    from vid3d.tasks.common import prepare_data

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt={ckpt}", *overrides])
    prepare_data(cfg)
    return load_model(ckpt).eval(), instantiate(cfg.data.test_dataset)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("overrides", nargs="*", help="Hydra overrides selecting the data (as in training)")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--sigma", type=float, nargs="+", default=[5.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write {ckpt, clips, sigmas: {sigma: {variant: {error, ratio, own_lower}}}} here",
    )
    a = p.parse_args(argv)
    if a.clips < 2:
        p.error(f"--clips must be >= 2 (another clip's cameras need a second clip), got {a.clips}")

    from vid3d.atomic import atomic_write_json
    from vid3d.evaluation.camera_gap import direction_gap_lines, measure_direction_gap

    torch.set_num_threads(1)  # small tensors: one thread is as fast, and leaves the other core free
    model, test_set = checkpoint_and_test_set(a.ckpt, a.overrides)
    n = min(a.clips, len(test_set))
    record = {
        "ckpt": str(a.ckpt),
        **measure_direction_gap(model, [test_set[i] for i in range(n)], a.sigma, a.seed),
    }
    print("\n".join(direction_gap_lines(record)))
    if a.json is not None:
        atomic_write_json(a.json, record, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
