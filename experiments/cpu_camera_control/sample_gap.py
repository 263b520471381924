"""Do SAMPLED videos follow their cameras? The camera gap's question asked of whole sampling runs (issue 14).

    python experiments/cpu_camera_control/sample_gap.py CKPT [hydra data overrides ...] [--out strip.png]

For the first ``--clips`` test clips of the data option (pass the ``data.*`` overrides the run used), one
video per camera variant is sampled from the clip's first frame with the same seed: the clip's own cameras,
another clip's (clip i takes clip i+1's) and a static camera (every frame at frame 0's pose). Each video is
scored against the clip's ground truth on frames 1..F-1 (mean squared error in [-1, 1], and PSNR), beside
copying frame 0. A model whose samples follow their cameras has the lowest error with its own cameras; the
ratios another / own and static / own are the sampled-video camera gaps (1 for a model without camera
input). ``--out`` writes a PNG: per clip, ground truth then the three variants, frames left to right.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

VARIANTS = ("own", "another", "static")  # vid3d.evaluation.sampled_gap.VARIANTS


def _strip(x: torch.Tensor) -> np.ndarray:
    """(F, 3, H, W) in [-1, 1] -> (H, F * W, 3) uint8."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(2, 0, 3, 1)
    return x.reshape(x.shape[0], -1, 3).numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("overrides", nargs="*", help="Hydra overrides selecting the data (as in training)")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=1.0, help="CFG scale at frame 0 (1: no guidance)")
    p.add_argument("--guidance-max", type=float, default=None,
                   help="CFG scale at the last frame, rising linearly (default: --guidance, constant)")
    p.add_argument("--solver", default="edm_euler", help="a vid3d.sampling.samplers.SOLVERS name")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sigma-max", type=float, default=700.0, help="first sigma of the schedule (SVD: 700)")
    p.add_argument("--sigma-min", type=float, default=0.002,
                   help="last sigma before the final step to 0 (EDM: 0.002); the output is D(x; sigma_min)")
    p.add_argument("--pin-first", action="store_true",
                   help="pin frame 0 to the conditioning image by replacement (VideoSampler known_frames)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--scale", type=int, default=3, help="pixel upscaling of the PNG")
    a = p.parse_args(argv)

    from vid3d.data.frames import as_unit_range
    from vid3d.evaluation.sampled_gap import frame_errors, sample_variants
    from vid3d.sampling.video_sampler import VideoSampler
    from vid3d.tasks.direction_gap import checkpoint_and_test_set

    model, test_set = checkpoint_and_test_set(a.ckpt, a.overrides)
    n = min(a.clips, len(test_set))
    if n < 2:
        raise SystemExit(f"{a.ckpt}: need at least 2 test clips (cameras are swapped across clips), got {n}")
    clips = [test_set[i] for i in range(n)]
    frames = torch.stack([as_unit_range(c["frames"]).float() for c in clips])  # (B, F, 3, H, W)
    K_px = torch.stack([c["K_px"].float() for c in clips])
    c2w = torch.stack([c["c2w"].float() for c in clips])
    sampler = VideoSampler(
        solver=a.solver, num_steps=a.steps, sigma_min=a.sigma_min, sigma_max=a.sigma_max,
        guidance_min=a.guidance, guidance_max=a.guidance if a.guidance_max is None else a.guidance_max,
    )
    known = {0: frames[:, 0]} if a.pin_first else None
    # the same noise for every variant (vid3d.evaluation.sampled_gap)
    videos = sample_variants(model, sampler, frames, K_px, c2w, VARIANTS, a.seed, known_frames=known)
    gt = frames[:, 1:]
    err = {v: frame_errors(videos[v], frames) for v in VARIANTS}
    err["copy frame 0"] = (frames[:, :1].expand_as(frames)[:, 1:] - gt).pow(2).flatten(1).mean(1)
    size = f"{frames.shape[-2]}x{frames.shape[-1]}"
    print(f"{n} test clips, {frames.shape[1]} frames at {size}, {a.steps} {a.solver} steps from sigma "
          f"{a.sigma_max:g} to {a.sigma_min:g}, guidance {sampler.guidance_min:g}..{sampler.guidance_max:g}"
          f"{', frame 0 pinned' if a.pin_first else ''}; "
          "frames 1..F-1 against the ground truth")
    print(f"{'cameras':<14} {'MSE':>8} {'PSNR (dB)':>10}   per clip MSE")
    for k, e in err.items():
        psnr = 10 * math.log10(4.0 / float(e.mean()))  # [-1, 1] range: peak-to-peak 2
        print(f"{k:<14} {float(e.mean()):8.4f} {psnr:10.2f}   " + " ".join(f"{x:.3f}" for x in e.tolist()))
    # per frame: where along the video do samples leave the truth (the late frames "dissolve")?
    per_frame = {v: (videos[v][:, 1:] - gt).pow(2).flatten(2).mean(2).mean(0) for v in VARIANTS}
    per_frame["copy frame 0"] = (frames[:, :1] - gt).pow(2).flatten(2).mean(2).mean(0)
    print("MSE per frame (mean over clips), frames 1.." + str(gt.shape[1]))
    for k, e in per_frame.items():
        print(f"{k:<14} " + " ".join(f"{x:.4f}" for x in e.tolist()))
    wins_copy = int((err["copy frame 0"] > err["own"]).sum())
    last_own, last_copy = float(per_frame["own"][-1]), float(per_frame["copy frame 0"][-1])
    print(f"own cameras closer than copying frame 0: {wins_copy}/{n} clips; "
          f"last frame MSE own {last_own:.4f} vs copy frame 0 {last_copy:.4f}")
    own = err["own"]
    for v in ("another", "static"):
        ratio = float(err[v].mean() / own.mean())
        wins = int((err[v] > own).sum())
        print(f"sampled camera gap, {v} / own: {ratio:.4f} "
              f"(own cameras closer to the truth: {wins}/{n} clips)")
    if a.out is not None:
        import cv2

        rows = []
        for i in range(n):
            rows += [_strip(frames[i])] + [_strip(videos[v][i]) for v in VARIANTS]
            rows.append(np.full((2, rows[-1].shape[1], 3), 255, np.uint8))
        img = np.concatenate(rows[:-1], axis=0)
        img = np.kron(img, np.ones((a.scale, a.scale, 1), np.uint8))
        a.out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(a.out), img[..., ::-1])
        print(f"wrote {a.out}: per clip the ground truth, then own / another clip's / static cameras")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
