"""See what the camera input changes: one test clip's denoised frames with its own cameras and another's.

    python experiments/cpu_camera_control/show_camera_effect.py CKPT OUT.png [hydra data overrides ...]

At a noise level where the frames are hidden (``--sigma``, default 5), the denoiser's estimate of the clip
(``D(x0 + sigma n)``, one step, same noise) is decoded with (a) the clip's own cameras, (b) the cameras of
another test clip and (c) a static camera. The PNG has one row per variant under the ground truth, frames
left to right, then each variant's error |estimate - ground truth| x 3 (black = exact): a model that uses
its camera has the darkest error row with its own cameras; one that ignores it gives identical rows. The
printed errors are those estimates' latent mean squared errors (this clip's camera gap is another / own).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(F, 3, H, W) in [-1, 1] -> (H, F * W, 3) uint8 strip."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(2, 0, 3, 1)  # (H, F, W, 3)
    return x.reshape(x.shape[0], -1, 3).numpy()


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
    from diagnose import checkpoint_and_test_set  # this folder's diagnose.py

    model, ds = checkpoint_and_test_set(a.ckpt, a.overrides)
    item, other = ds[a.clip], ds[(a.clip + 1) % len(ds)]
    frames = item["frames"][None]
    g = torch.Generator().manual_seed(a.seed)
    variants = {
        "own cameras": (item["K_px"], item["c2w"]),
        "another clip's cameras": (other["K_px"], other["c2w"]),
        "static camera": (item["K_px"], item["c2w"][:1].expand_as(item["c2w"])),
    }
    with torch.no_grad():
        x0 = model.encode(frames, generator=g)
        cond = model.conditioning(frames[:, 0], train=False, generator=g)
        x = x0 + a.sigma * torch.randn(x0.shape, generator=g)
        decoded = {}
        for name, (K, c2w) in variants.items():
            cams = model.prepare_cameras(K[None], c2w[None], x0.shape[-2:], image_hw=frames.shape[-2:])
            d = model.denoise(x, torch.full((1,), a.sigma), {**cond, **cams})
            decoded[name] = model.decode(d)[0]
            err = (d - x0).pow(2).mean().item()
            print(f"{name:24s} latent error vs ground truth at sigma {a.sigma:g}: {err:.5f}")
    rows = [to_uint8(frames[0])] + [to_uint8(v) for v in decoded.values()]
    for v in decoded.values():
        rows.append(to_uint8(((v - frames[0]).abs() * 3).clamp(0, 2) - 1))  # |error| x 3, black = exact
    img = np.concatenate(rows, axis=0)
    img = img.repeat(a.scale, axis=0).repeat(a.scale, axis=1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(a.out, img)
    print(f"wrote {a.out}: rows = ground truth, {', '.join(variants)}, then their errors x3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
