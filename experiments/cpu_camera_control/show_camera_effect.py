"""See what the camera input changes: one test clip's denoised frames with its own cameras and another's.

    python experiments/cpu_camera_control/show_camera_effect.py CKPT OUT.png [hydra data overrides ...]

At a noise level where the frames are hidden (``--sigma``, default 5), the denoiser's one-step estimate of
the clip (vid3d.evaluation.camera_effect.one_step_estimates: same noise for every camera set) is decoded with
(a) the clip's own cameras, (b) the cameras of another test clip and (c) a static camera. The PNG has one
row per variant under the ground truth, frames left to right, then each variant's error |estimate - ground
truth| x 3 (black = exact): a model that uses its camera has the darkest error row with its own cameras;
one that ignores it gives identical rows. The printed errors are the estimates' latent mean squared errors
(this clip's camera gap is another / own).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vid3d.evaluation.camera_effect import one_step_estimates, panel
from vid3d.tasks.direction_gap import checkpoint_and_test_set


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("out", type=Path)
    p.add_argument("overrides", nargs="*", help="Hydra overrides selecting the data (as in training)")
    p.add_argument("--clip", type=int, default=0, help="test clip index (the cameras come from clip + 1)")
    p.add_argument("--sigma", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=4, help="pixel upscaling of the PNG")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    import imageio.v3 as iio

    from vid3d.atomic import atomic_target

    model, ds = checkpoint_and_test_set(a.ckpt, a.overrides)
    item, other = ds[a.clip], ds[(a.clip + 1) % len(ds)]
    cameras = {
        "own cameras": (item["K_px"], item["c2w"]),
        "another clip's cameras": (other["K_px"], other["c2w"]),
        "static camera": (item["K_px"], item["c2w"][:1].expand_as(item["c2w"])),
    }
    frames = item["frames"].float()
    decoded, errors = one_step_estimates(
        model, frames, cameras, a.sigma, torch.Generator().manual_seed(a.seed)
    )
    for name, err in errors.items():
        print(f"{name:24s} latent error vs ground truth at sigma {a.sigma:g}: {err:.5f}")
    img = panel(frames, decoded).repeat(a.scale, axis=0).repeat(a.scale, axis=1)
    with atomic_target(a.out) as tmp:
        iio.imwrite(tmp, img)
    print(f"wrote {a.out}: rows = ground truth, {', '.join(cameras)}, then their errors x3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
