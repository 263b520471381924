"""Time and memory of a 3D Gaussian reconstruction: `python -m benchmarks.recon [--sizes 64,128,256]`.

For each image size, a fresh process fits Gaussians (``vid3d.reconstruction.fit.fit_frames``) to N views
of a synthetic turntable scene (exact cameras) for a few steps and reports the median seconds per step
(steps after the first two), the process' peak RSS, and both as ratios to the smallest size in the same
run. ``--renderer gsplat --device cuda`` runs the same on gsplat's rasteriser (a CUDA machine with
gsplat). ``--out DIR`` additionally fits a full run at the
smallest size and writes ``DIR/recon_heldout.png`` (rows: held-out ground truth, render) and its PSNR.
Writes ``benchmarks/results/recon.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from vid3d.data.synthetic import make_clip, render_views
from vid3d.reconstruction.fit import FitConfig, fit_gaussians
from vid3d.reconstruction.gaussians import init_in_frustums
size, views, gaussians, steps = {size}, {views}, {gaussians}, {steps}
renderer, device = {renderer!r}, {device!r}
torch.set_num_threads({threads})
clip = make_clip(2, 0, views)
fx = size / (2 * np.tan(np.deg2rad(clip.hfov_deg) / 2))
K = np.array([[fx, 0, size / 2], [0, fx, size / 2], [0, 0, 1.0]])
rgb, depth = render_views(clip.scene, K, clip.c2w, size, size)
f = (torch.from_numpy(rgb).float() / 255).to(device)
Kt = torch.from_numpy(K).float().expand(views, 3, 3).contiguous().to(device)
c2w = torch.from_numpy(clip.c2w).float().to(device)
g0 = init_in_frustums(Kt.cpu(), c2w.cpu(), size, size, gaussians, 0.8 * float(depth[depth > 0].min()),
                      1.1 * float(depth.max())).to(device)
times = []
last = [time.perf_counter()]
def tick(step, loss):
    if device == "cuda":
        torch.cuda.synchronize()
    now = time.perf_counter(); times.append(now - last[0]); last[0] = now
fit_gaussians(g0, f, Kt, c2w, FitConfig(steps=steps, lr_scale=10.0, renderer=renderer, densify=False), tick)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
print(json.dumps({{"s_per_step": float(np.median(times[2:])), "peak_rss_mib": peak, "peak_gpu_mib": gpu}}))
"""


def run_child(size, args) -> dict:
    code = CHILD.format(size=size, views=args.views, gaussians=args.gaussians,
                        steps=args.steps, renderer=args.renderer, device=args.device, threads=args.threads)
    # run from the repository root, so the child imports this tree's vid3d
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def heldout_picture(out_dir: Path, size: int, args) -> dict:
    """A full fit at ``size`` on every other view; renders of the held-out views beside the truth."""
    import imageio.v3 as iio
    import numpy as np

    from vid3d.atomic import atomic_target
    from vid3d.data.synthetic import make_clip, render_views
    from vid3d.reconstruction.fit import FitConfig, fit_frames, render_frames

    n = args.views
    clip = make_clip(2, 0, 2 * n)
    fx = size / (2 * np.tan(np.deg2rad(clip.hfov_deg) / 2))
    K = np.array([[fx, 0, size / 2], [0, fx, size / 2], [0, 0, 1.0]])
    rgb, depth = render_views(clip.scene, K, clip.c2w, size, size, supersample=2)
    Ks = np.repeat(K[None], 2 * n, 0)
    train, held = np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)
    g = fit_frames(rgb[train], Ks[train], clip.c2w[train], 0.8 * float(depth[depth > 0].min()),
                   1.1 * float(depth.max()), args.gaussians, FitConfig(steps=args.full_steps, lr_scale=10.0),
                   threads=args.threads)
    pred = render_frames(g, Ks[held], clip.c2w[held], size, size)
    mse = np.mean((pred.astype(float) - rgb[held].astype(float)) ** 2, axis=(1, 2, 3))
    psnr = float(np.mean(10 * np.log10(255.0**2 / mse)))
    k = min(6, len(held))
    strip = np.concatenate([np.concatenate(list(rgb[held][:k]), 1), np.concatenate(list(pred[:k]), 1)], 0)
    with atomic_target(out_dir / "recon_heldout.png") as tmp:
        iio.imwrite(tmp, strip, extension=".png")
    return {"size": size, "train_views": int(len(train)), "heldout_views": int(len(held)),
            "steps": args.full_steps, "gaussians": args.gaussians, "heldout_psnr": psnr,
            "picture": str(out_dir / "recon_heldout.png")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="64,128,256")
    p.add_argument("--views", type=int, default=12)
    p.add_argument("--gaussians", type=int, default=3000)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--full-steps", type=int, default=400)
    p.add_argument("--renderer", default="torch", choices=["torch", "gsplat"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="also write a held-out render picture here")
    a = p.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    rows = []
    for s in sizes:
        r = run_child(s, a)
        rows.append({"size": s, **r})
        print(f"{s}x{s}: {r['s_per_step']:.3f} s/step, peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
    base = rows[0]
    print(f"\n{a.views} views, {a.gaussians} Gaussians, renderer={a.renderer}, device={a.device}, "
          f"{a.threads} thread(s)\n")
    print("| size | s / step | x smallest | peak RSS (MiB) | x smallest |")
    print("|---|---|---|---|---|")
    for r in rows:
        r["time_ratio"] = r["s_per_step"] / base["s_per_step"]
        r["rss_ratio"] = r["peak_rss_mib"] / base["peak_rss_mib"]
        print(f"| {r['size']}x{r['size']} | {r['s_per_step']:.3f} | {r['time_ratio']:.1f} | "
              f"{r['peak_rss_mib']:.0f} | {r['rss_ratio']:.2f} |")
    result = {"settings": vars(a), "rows": rows}
    if a.out:
        result["heldout"] = heldout_picture(Path(a.out), sizes[0], a)
        print(f"\nheld-out PSNR at {sizes[0]}x{sizes[0]} after {a.full_steps} steps: "
              f"{result['heldout']['heldout_psnr']:.2f} dB -> {result['heldout']['picture']}")
    out = ROOT / "benchmarks" / "results" / "recon.json"
    from vid3d.atomic import atomic_write_json

    atomic_write_json(out, result, indent=1)
    print(f"\n-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
