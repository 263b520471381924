"""Does a model use WHICH WAY its camera moves, or only HOW MUCH? (issue 14)

    python experiments/cpu_camera_control/direction_gap.py CKPT [hydra data overrides ...] [--sigma 5]

On the first ``--clips`` held-out clips, the one-step denoising error (latent MSE of D(x0 + sigma n), same
noise for every variant, as the camera gap) with: the clip's own cameras; the same trajectory mirrored
left-right (every camera-to-world pose conjugated by diag(-1, 1, 1): the same distances and angles, the
sideways motion and the turns reversed); the trajectory played backwards in the other direction
(frame k's pose relative to frame 0 inverted: same magnitude, opposite motion); another clip's cameras;
a static camera. A model that only knows how much the camera moves reads the same error with the
mirrored and reversed cameras as with its own; one that knows the direction reads them worse.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's diagnose.py


def variants(c2w: torch.Tensor) -> dict[str, torch.Tensor]:
    """c2w (B, F, 4, 4) OpenCV camera-to-world -> the camera variants (same shape)."""
    b = c2w.shape[0]
    rel = torch.linalg.inv(c2w[:, :1]) @ c2w  # poses relative to frame 0 (frame 0 = identity)
    m = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=c2w.dtype))
    shift = torch.roll(torch.arange(b), -1)
    return {
        "own": c2w,
        "mirrored": c2w[:, :1] @ (m @ rel @ m),
        "reversed": c2w[:, :1] @ torch.linalg.inv(rel),
        "another clip's": c2w[shift],
        "static": c2w[:, :1].expand_as(c2w).clone(),
    }


@torch.no_grad()
def direction_errors(model, clips, sigmas, seed: int = 0) -> dict[float, dict[str, torch.Tensor]]:
    """{sigma: {variant: per-clip latent MSE (n,) float64}} of the one-step estimate D(x0 + sigma n) for
    dataset samples ``clips`` (>= 2, one size), the same noise for every variant (module docstring)."""
    from vid3d.data.frames import as_unit_range

    n = len(clips)
    frames = torch.stack([as_unit_range(c["frames"]).float() for c in clips])
    K_px = torch.stack([c["K_px"].float() for c in clips])
    c2w = torch.stack([c["c2w"].float() for c in clips])
    shift = torch.roll(torch.arange(n), -1)
    g = torch.Generator().manual_seed(seed)
    latents = model.encode(frames, generator=g)
    cond = model.conditioning(frames[:, 0], train=False, generator=g)
    noise = torch.randn(latents.shape, generator=g)
    cams = variants(c2w)
    prepared = {
        v: model.prepare_cameras(
            K_px[shift] if v == "another clip's" else K_px, c, latents.shape[-2:], image_hw=frames.shape[-2:]
        )
        for v, c in cams.items()
    }
    out = {}
    for sigma in sigmas:
        x = latents + sigma * noise
        out[sigma] = {}
        for v in cams:
            d = model.denoise(x, sigma, cond, prepared[v]).double()
            out[sigma][v] = (d - latents.double()).pow(2).flatten(1).mean(1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("overrides", nargs="*", help="Hydra overrides selecting the data (as in training)")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--sigma", type=float, nargs="+", default=[5.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None,
                   help="also write {sigma: {variant: {error, ratio, own_lower}}} and the clip count here")
    a = p.parse_args(argv)

    from diagnose import checkpoint_and_test_set

    from vid3d.atomic import atomic_write_bytes

    torch.set_num_threads(1)  # small tensors: one thread is as fast, and leaves the other core free
    model, test_set = checkpoint_and_test_set(a.ckpt, a.overrides)
    n = min(a.clips, len(test_set))
    record: dict = {"ckpt": str(a.ckpt), "clips": n, "sigmas": {}}
    for sigma, err in direction_errors(model, [test_set[i] for i in range(n)], a.sigma, a.seed).items():
        record["sigmas"][f"{sigma:g}"] = {
            v: {"error": float(e.mean()), "ratio": float(e.mean() / err["own"].mean()),
                "own_lower": int((e > err["own"]).sum())}
            for v, e in err.items()
        }
        print(f"sigma {sigma:g}, {n} clips: latent MSE of the one-step estimate (ratio to own; clips "
              "where own is lower)")
        for v, e in err.items():
            wins = int((e > err["own"]).sum())
            print(f"  {v:<15} {float(e.mean()):.5f}  {float(e.mean() / err['own'].mean()):.4f}  "
                  f"{wins}/{n}" if v != "own" else f"  {v:<15} {float(e.mean()):.5f}  1.0000")
    if a.json is not None:
        atomic_write_bytes(a.json, (json.dumps(record, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
