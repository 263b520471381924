"""Where a trained checkpoint stands, frame by frame and along its own sampling path (issue 14).

    python experiments/cpu_camera_control/diagnose.py CKPT [hydra data overrides ...]

Prints, on the first ``--clips`` test clips of the data option (default: the embedded synthetic set at the
checkpoint's training size; pass the same ``data.*`` overrides the run used):

1. the denoiser's error per frame at fixed noise levels (x0 + sigma n -> D), beside the error of copying
   the conditioning frame to every frame: a model that has learned SVD's image conditioning has frame 0
   error near 0 at every sigma;
2. one Euler sampling path (``--steps``, sigma_max ``--sigma-max``, no guidance): at each step the x0
   estimate's error against the ground truth, |x - D|^2 / sigma^2 (1 on the data manifold; lower means
   the model takes noise in its input for content), and the estimate's roughness (mean squared difference
   of vertically adjacent latent pixels) beside the ground truth's: a sample rougher than the data looks
   like coloured noise.
"""

from __future__ import annotations

import argparse

import torch

from vid3d.tasks.direction_gap import checkpoint_and_test_set


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("overrides", nargs="*", help="Hydra overrides selecting the data (as in training)")
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--sigma-max", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    from vid3d.sampling.samplers import karras_sigmas

    model, ds = checkpoint_and_test_set(a.ckpt, a.overrides)
    items = [ds[i] for i in range(min(a.clips, len(ds)))]
    frames = torch.stack([x["frames"] for x in items])
    K, c2w = torch.stack([x["K_px"] for x in items]), torch.stack([x["c2w"] for x in items])
    g = torch.Generator().manual_seed(a.seed)

    def rough(z: torch.Tensor) -> float:
        return (z[..., 1:, :] - z[..., :-1, :]).pow(2).mean().item()

    with torch.no_grad():
        x0 = model.encode(frames)
        cond = model.conditioning(frames[:, 0], train=False, generator=g)
        cond.update(model.prepare_cameras(K, c2w, x0.shape[-2:], frames.shape[-2:]))
        copy = ((x0[:, :1] - x0) ** 2).mean(dim=(0, 2, 3, 4))
        print(f"{len(items)} clips, {x0.shape[1]} frames, latents {tuple(x0.shape[2:])}")
        print("per-frame error of D(x0 + sigma n) (frame 0 ... F-1)")
        print(f"  copy frame 0 : {' '.join(f'{v:.3f}' for v in copy.tolist())}")
        for sigma in (0.2, 1.0, 5.0, 20.0):
            d = model.denoise(x0 + sigma * torch.randn(x0.shape, generator=g), sigma, cond)
            err = ((d - x0) ** 2).mean(dim=(0, 2, 3, 4))
            print(f"  sigma {sigma:>5g} : {' '.join(f'{v:.3f}' for v in err.tolist())}")
        s = karras_sigmas(a.steps, 0.002, a.sigma_max, 7.0)
        x = torch.randn(x0.shape, generator=g) * s[0]
        print(f"Euler path (no guidance); ground-truth roughness {rough(x0):.4f}")
        print("  sigma     err(D, GT)  |x-D|^2/sigma^2  roughness(D)")
        for i in range(a.steps):
            d = model.denoise(x, float(s[i]), cond)
            ratio = ((x - d).pow(2).mean() / s[i] ** 2).item()
            err = ((d - x0) ** 2).mean().item()
            print(f"  {float(s[i]):8.3f}  {err:.4f}      {ratio:.3f}            {rough(d):.4f}")
            x = x + (s[i + 1] - s[i]) * (x - d) / s[i]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
