"""Random vs triangulated initialisation of the Gaussian fit: `python -m benchmarks.recon_init`.

On the synthetic turntable scene (``make_clip(2, 0, 24)``, the scene of ``benchmarks/recon.py``), for each
context pair (views i and i + gap of the 24-view orbit) Gaussians are fitted to the two context views
(``--fit context``) or to the context views and every view between them but the held-out ones
(``--fit context+path``, odd offsets held out), with ``init=random`` (uniform in the frustums) and with
``init=triangulated`` (points from epipolar matches of the two context views with their known cameras,
topped up at random), the same number of Gaussians, steps and seed; PSNR at the held-out in-between views.
Writes ``benchmarks/results/recon_init_<fit>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vid3d.atomic import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    from vid3d.data.synthetic import make_clip, render_views
    from vid3d.reconstruction.fit import FitConfig, fit_frames, render_frames
    from vid3d.reconstruction.triangulate import triangulated_points

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--gaussians", type=int, default=2000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--starts", default="0,8,16")
    p.add_argument("--gap", type=int, default=4)
    p.add_argument("--fit", default="context", choices=["context", "context+path"])
    a = p.parse_args(argv)
    size = a.size
    clip = make_clip(2, 0, 24)
    fx = size / (2 * np.tan(np.deg2rad(clip.hfov_deg) / 2))
    K = np.array([[fx, 0, size / 2], [0, fx, size / 2], [0, 0, 1.0]])
    rgb, depth = render_views(clip.scene, K, clip.c2w, size, size, supersample=2)
    near, far = 0.8 * float(depth[depth > 0].min()), 1.1 * float(depth.max())
    rows = []
    for s in (int(x) for x in a.starts.split(",")):
        i, j = s, s + a.gap
        between = list(range(i + 1, j))
        held = between if a.fit == "context" else between[::2]
        fit_on = [i, j] + [k for k in between if k not in held]
        Ks = np.repeat(K[None], len(fit_on), 0)
        npts = len(triangulated_points(rgb[i], rgb[j], K, clip.c2w[i], K, clip.c2w[j], near, far)[0])
        row = {"context": [i, j], "held_out": held, "fit_views": fit_on, "points": npts}
        for init in ("random", "triangulated"):
            t = time.perf_counter()
            g = fit_frames(rgb[fit_on], Ks, clip.c2w[fit_on], near, far, a.gaussians,
                           FitConfig(steps=a.steps, lr_scale=10.0, renderer="torch"), init=init, pair=(0, 1))
            pred = render_frames(g, np.repeat(K[None], len(held), 0), clip.c2w[held], size, size, "torch")
            mse = np.mean((pred.astype(float) - rgb[held].astype(float)) ** 2, axis=(1, 2, 3))
            row[init] = float(np.mean(10 * np.log10(255.0**2 / mse)))
            row[f"{init}_seconds"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("random", "triangulated")}
    print(f"\nmean held-out PSNR over {len(rows)} pairs: random {mean['random']:.2f} dB, "
          f"triangulated {mean['triangulated']:.2f} dB")
    out = ROOT / "benchmarks" / "results" / f"recon_init_{a.fit}.json"
    atomic_write_json(out, {"settings": vars(a), "rows": rows, "mean_psnr": mean}, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
