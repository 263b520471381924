"""PSNR of the reconstruction benchmark's Gaussian fits against their number of steps and fitting resolution.

For context-view pairs of the demo synthetic set (the overlap buckets of ``eval.py benchmark=recon``), the
two reference rows' fits (``context_only + 3dgs``: the two context views; ``all_gt + 3dgs``: every non-target
ground-truth view between them; ``vid3d.evaluation.recon_methods``) are run with the benchmark's settings
(conf/benchmark/recon.yaml: 2000 Gaussians, random init, seed 0, renderer torch) at each step count of
``--steps`` and each fitting scale of ``--scales`` (1: the benchmark's size; 0.5: the fitted views
downsampled by area interpolation with their intrinsics scaled, the targets still rendered at full size),
and scored at the held-out targets as the benchmark scores them (PSNR, SSIM against the ground truth).
Each (pair, row, steps, scale) is its own fit (the learning-rate schedule depends on the step count).
Prints a table, writes JSON and a plot (PSNR against steps, one line per row and scale, mean over pairs).

    PYTHONPATH=. .venv/bin/python -m benchmarks.recon_steps \\
        --data-root data_cache/synthetic_12x48_144x256_s0 \\
        --steps 50,100,200,300 --scales 1,0.5 --pairs 1 --out benchmarks/results/recon_steps
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_bucket_pairs(data_root: str, bucket: str, count: int, data_dir: str | None) -> list:
    """The first ``count`` pairs of an overlap bucket that the reconstruction benchmark would use."""
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.evaluation.overlap.index import select_pairs
    from vid3d.evaluation.sparse_runner import load_pairs
    from vid3d.tasks.sparse_benchmark import free_views, resolve_index

    overrides = ["benchmark=recon", f"overlap={bucket}", f"data.root={data_root}"]
    if data_dir:
        overrides.append(f"paths.data_dir={data_dir}")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=overrides)
    index, _ = resolve_index(cfg)
    need = int(cfg.benchmark.generated_views)
    rows = [r for r in select_pairs(index, float(cfg.overlap.min), float(cfg.overlap.max))
            if free_views(r) >= need][:count]
    size = int(cfg.overlap.height), int(cfg.overlap.width)
    pairs = load_pairs(cfg.data.root, cfg.overlap.split, rows, *size, with_path=True)
    settings = {k: v for k, v in cfg.benchmark.items() if k != "_target_"}
    return pairs, settings


def row_views(pair, row: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames, K_px, c2w) a reference row fits on (``recon_methods``: context_only_method, all_gt_method)."""
    ends = [0, -1]
    if row == "context_only":
        return pair.frames[ends], pair.K_px[ends], pair.c2w[ends]
    path = pair.info["path"]
    return (np.concatenate([pair.frames[ends], path["frames"]]),
            np.concatenate([pair.K_px[ends], path["K_px"]]),
            np.concatenate([pair.c2w[ends], path["c2w"]]))


def fit_and_score(pair, row: str, settings, steps: int, scale: float, metrics) -> dict:
    """One fit of ``row`` with ``steps`` at ``scale`` of the benchmark size, scored at the pair's targets."""
    import cv2

    from vid3d.evaluation.recon_methods import near_far
    from vid3d.geometry import relative_to_first
    from vid3d.reconstruction.fit import FitConfig, fit_frames, render_frames

    s = dataclasses.replace(settings, steps=int(steps))
    frames, K, c2w = row_views(pair, row)
    world = np.asarray(pair.c2w[0], np.float64)
    rel = np.asarray(relative_to_first(np.concatenate([world[None], c2w, pair.c2w[1:-1]])))
    n = len(frames)
    H, W = frames.shape[1:3]
    if scale != 1:
        h, w = round(H * scale), round(W * scale)
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        K = K.copy()
        K[:, 0] *= w / W
        K[:, 1] *= h / H
    near, far = near_far(pair, s)
    cfg = FitConfig(steps=s.steps, lr_scale=s.lr_scale, ssim_weight=s.ssim_weight, renderer=s.renderer,
                    seed=s.seed)
    t0 = time.perf_counter()
    g = fit_frames(frames, K, rel[1 : n + 1], near, far, s.num_gaussians, cfg, s.threads)
    t_fit = time.perf_counter() - t0
    pred = render_frames(g, pair.K_px[1:-1], rel[n + 1 :], H, W, s.renderer)
    scores = metrics(pred, pair.gt_targets)
    return {"pair": pair.pair_id, "row": row, "steps": int(steps), "scale": float(scale), "fit_s": t_fit,
            "psnr": float(np.mean(scores["psnr"])), "ssim": float(np.mean(scores["ssim"]))}


def summary(results: list[dict]) -> list[dict]:
    """Mean PSNR / SSIM / fit seconds over pairs per (row, scale, steps)."""
    keys = sorted({(r["row"], r["scale"], r["steps"]) for r in results},
                  key=lambda k: (k[0], -k[1], k[2]))
    out = []
    for row, scale, steps in keys:
        rs = [r for r in results if (r["row"], r["scale"], r["steps"]) == (row, scale, steps)]
        out.append({"row": row, "scale": scale, "steps": steps, "n_pairs": len(rs),
                    **{k: float(np.mean([r[k] for r in rs])) for k in ("psnr", "ssim", "fit_s")}})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| row | fit scale | steps | pairs | PSNR (dB) | SSIM | fit s |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['row']} | {r['scale']:g} | {r['steps']} | {r['n_pairs']} | {r['psnr']:.2f} | "
              f"{r['ssim']:.3f} | {r['fit_s']:.0f} |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in sorted({(r["row"], r["scale"]) for r in rows}):
        rs = [r for r in rows if (r["row"], r["scale"]) == key]
        label = f"{key[0]}, fit scale {key[1]:g}"
        ax.plot([r["steps"] for r in rs], [r["psnr"] for r in rs], "o-", label=label)
    ax.set_xlabel("fit steps")
    ax.set_ylabel("target PSNR (dB), mean over pairs")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default=str(ROOT / "data_cache" / "synthetic_12x48_144x256_s0"))
    ap.add_argument("--data-dir", default=None, help="paths.data_dir (where the overlap index is cached)")
    ap.add_argument("--buckets", default="small,large")
    ap.add_argument("--pairs", type=int, default=1, help="pairs per bucket")
    ap.add_argument("--rows", default="context_only,all_gt")
    ap.add_argument("--steps", default="50,100,200,300")
    ap.add_argument("--scales", default="1,0.5")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "recon_steps"))
    args = ap.parse_args(argv)
    from vid3d.atomic import atomic_write_json
    from vid3d.evaluation.image_metrics import ImageMetrics
    from vid3d.evaluation.recon_methods import ReconSettings

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = ImageMetrics(None)
    results = []
    for bucket in args.buckets.split(","):
        pairs, settings = load_bucket_pairs(args.data_root, bucket, args.pairs, args.data_dir)
        s = ReconSettings(**settings)
        for pair in pairs:
            for row in args.rows.split(","):
                for scale in (float(v) for v in args.scales.split(",")):
                    for steps in (int(v) for v in args.steps.split(",")):
                        r = {"bucket": bucket, **fit_and_score(pair, row, s, steps, scale, metrics)}
                        results.append(r)
                        print(f"{bucket} {r['pair']} {row} scale {scale:g} steps {steps}: "
                              f"PSNR {r['psnr']:.2f} SSIM {r['ssim']:.3f} fit {r['fit_s']:.0f} s", flush=True)
                        atomic_write_json(out / "recon_steps.json", {"results": results,
                                                                     "summary": summary(results)})
    rows = summary(results)
    print()
    print(table(rows))
    plot(rows, out / "recon_steps.png")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_json(out / "recon_steps.json", {"results": results, "summary": rows, "date_utc": stamp})
    print(f"\nwritten: {out / 'recon_steps.json'}, {out / 'recon_steps.png'}")
    return {"results": results, "summary": rows}


if __name__ == "__main__":
    main()
