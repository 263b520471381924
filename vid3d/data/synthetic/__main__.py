"""``python -m vid3d.data.synthetic --root DIR [--num-train N ...]``: build the synthetic dataset."""

from __future__ import annotations

import argparse
import sys
import time

from .build import build_synthetic_dataset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vid3d.data.synthetic", description=__doc__)
    p.add_argument("--root", required=True, help="output folder (gets train/, test/, manifest.json)")
    p.add_argument("--num-train", type=int, default=12)
    p.add_argument("--num-test", type=int, default=4)
    p.add_argument("--num-frames", type=int, default=48)
    p.add_argument("--height", type=int, default=144)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-ext", choices=("jpg", "png"), default="jpg")
    p.add_argument("--supersample", type=int, default=1, help="s x s anti-aliasing samples per pixel")
    p.add_argument("--workers", type=int, default=None, help="rendering processes (default: up to 2)")
    a = p.parse_args(argv)
    start = time.perf_counter()
    root = build_synthetic_dataset(
        a.root,
        num_train=a.num_train,
        num_test=a.num_test,
        num_frames=a.num_frames,
        height=a.height,
        width=a.width,
        seed=a.seed,
        image_ext=a.image_ext,
        supersample=a.supersample,
        workers=a.workers,
        verbose=True,
    )
    print(f"{root} ready ({time.perf_counter() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
