"""Pose estimators on the synthetic set: seconds per video, and RotErr / TransErr of the ground-truth video.

For each available estimator the ground-truth frames of every test clip of a synthetic dataset
(``vid3d.data.synthetic.build_synthetic_dataset``, exact cameras) go through the evaluation runner
(``run_camera_eval`` with the ``gt_video`` method), i.e. exactly the benchmark protocol: errors after
relative-to-first + scale normalisation, failures counted. The GT-video error is the estimator's own
noise floor on this footage.

Estimators: ``gt`` (oracle, 0 error: a check of the harness), ``colmap`` (the defaults of
conf/pose/colmap.yaml), and ``dust3r``: with ``--dust3r-checkpoint`` the real model; without it the tiny
random-init model of the same class, timed as a **plumbing check only** (its errors are not printed or
stored: they would say nothing about DUSt3R). Prints a Markdown table and writes JSON atomically.

    .venv/bin/python -m benchmarks.pose --quick
    .venv/bin/python -m benchmarks.pose --dust3r-checkpoint /path/DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vid3d.atomic import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


def build_estimators(args) -> list[tuple[str, object, bool]]:
    """(label, estimator, errors_meaningful) for each estimator that can run here."""
    from vid3d.evaluation.pose import GTPoseEstimator

    out: list[tuple[str, object, bool]] = [("gt", GTPoseEstimator(), True)]
    if "colmap" in args.estimators:
        # the settings eval.py uses (conf/pose/colmap.yaml), not the class defaults
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        from vid3d.config import CONFIG_DIR

        cfg = OmegaConf.load(CONFIG_DIR / "pose" / "colmap.yaml")
        cfg.num_threads = args.threads
        out.append(("colmap", instantiate(cfg), True))
    if "dust3r" in args.estimators:
        try:
            from vid3d.evaluation.pose.dust3r import Dust3rPoseEstimator
        except ImportError as e:  # mini-dust3r is installed by `make` (--no-deps)
            print(f"dust3r skipped: {e}", file=sys.stderr)
            return out
        if args.dust3r_checkpoint:
            est = Dust3rPoseEstimator(checkpoint=args.dust3r_checkpoint, image_size=args.dust3r_size,
                                      device=args.device, niter=args.dust3r_niter)
            out.append(("dust3r", est, True))
        else:
            # known focal: random pointmaps give no focal estimate; the timing covers the same network
            # calls (of a tiny model) and the same global alignment as the real one at this image size
            est = Dust3rPoseEstimator(random_init=True, image_size=args.dust3r_size, device=args.device,
                                      niter=args.dust3r_niter, known_focal=True)
            out.append(("dust3r (tiny random-init: plumbing timing only)", est, False))
    return out


def _fmt(x, digits=2):
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="3 clips x 8 frames (stride 2) at 128x192; DUSt3R at 224, 30 alignment iterations")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--frames", type=int, default=14, help="frames per video")
    p.add_argument("--stride", type=int, default=3, help="source-frame stride between video frames")
    p.add_argument("--height", type=int, default=144)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--estimators", default="colmap,dust3r")
    p.add_argument("--dust3r-checkpoint", default=os.environ.get("DUST3R_CHECKPOINT"))
    p.add_argument("--dust3r-size", type=int, default=512)
    p.add_argument("--dust3r-niter", type=int, default=300)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch threads (COLMAP runs single-threaded)")
    p.add_argument("--data-dir", default=os.environ.get("VID3D_DATA_DIR", str(ROOT / "data_cache")))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pose.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.clips, args.frames, args.stride, args.height, args.width = 3, 8, 2, 128, 192
        args.dust3r_size, args.dust3r_niter = 224, 30
    args.estimators = [e.strip() for e in args.estimators.split(",") if e.strip()]

    import torch

    from vid3d.data.synthetic import build_synthetic_dataset
    from vid3d.evaluation.aggregate import merge_shards
    from vid3d.evaluation.camera_runner import eval_clips_from_re10k, gt_video_method, run_camera_eval
    from vid3d.evaluation.records import to_jsonable

    torch.set_num_threads(args.threads)
    n_src = args.stride * (args.frames - 1) + 1
    root = Path(args.data_dir) / f"bench_pose_{args.clips}x{n_src}_{args.height}x{args.width}"
    t0 = time.perf_counter()
    build_synthetic_dataset(root, num_train=0, num_test=args.clips, num_frames=n_src, height=args.height,
                            width=args.width)
    clips = eval_clips_from_re10k(root, "test", num_frames=args.frames, stride=args.stride)
    print(f"synthetic set: {len(clips)} clips x {args.frames} frames at {args.height}x{args.width} "
          f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)

    rows = []
    for label, est, meaningful in build_estimators(args):
        print(f"running {label} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="vid3d_bench_pose_") as tmp:
            out = run_camera_eval(clips, {"gt_video": gt_video_method}, est, tmp, progress=False)
            recs = merge_shards([tmp])
        secs = np.array([r["timings_s"]["estimate"] for r in recs])
        res = out["results"]["gt_video"]
        row = {
            "estimator": label,
            "settings": est.describe(),
            "videos": len(recs),
            "failures": res["failures"],
            "failure_reasons": res["failure_reasons"],
            "seconds_per_video_mean": float(secs.mean()),
            "seconds_per_video_median": float(np.median(secs)),
            "errors_meaningful": meaningful,
        }
        if meaningful:
            m = res["metrics"]
            row.update({
                "rot_err_deg_mean": m["rot_err_deg"]["mean"],
                "rot_err_deg_ci": [m["rot_err_deg"]["ci_low"], m["rot_err_deg"]["ci_high"]],
                "rot_err_deg_per_frame": m["rot_err_deg"]["per_frame_mean"],
                "trans_err_mean": m["trans_err"]["mean"],
                "trans_err_per_frame": m["trans_err"]["per_frame_mean"],
            })
        rows.append(row)
        print(f"{label}: {row['seconds_per_video_mean']:.2f} s/video, {row['failures']} failures",
              file=sys.stderr, flush=True)

    header = (
        "| estimator | videos | failures | s / video (mean, median) | RotErr Σ frames (deg) [95% CI] "
        "| RotErr / frame (deg) | TransErr Σ frames | TransErr / frame |"
    )
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        if r["errors_meaningful"]:
            ci = r["rot_err_deg_ci"]
            errs = (f"{_fmt(r['rot_err_deg_mean'])} [{_fmt(ci[0])}, {_fmt(ci[1])}] | "
                    f"{_fmt(r['rot_err_deg_per_frame'], 3)} | {_fmt(r['trans_err_mean'], 3)} | "
                    f"{_fmt(r['trans_err_per_frame'], 4)}")
        else:
            errs = "not measured (random weights) | — | — | —"
        lines.append(
            f"| {r['estimator']} | {r['videos']} | {r['failures']} | {r['seconds_per_video_mean']:.2f}, "
            f"{r['seconds_per_video_median']:.2f} | {errs} |"
        )
    table = "\n".join(lines)
    print(table)

    payload = {
        "benchmark": "pose estimators on synthetic GT videos (benchmarks/pose.py)",
        "command": "benchmarks/pose.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "dataset": {"clips": len(clips), "frames": args.frames, "stride": args.stride,
                    "height": args.height, "width": args.width, "root": str(root)},
        "protocol": "GT frames -> estimator -> camera_errors (relative to first frame, scale-normalised); "
                    "failures counted and excluded from the means",
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cpu_count": os.cpu_count(), "torch_threads": args.threads,
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "rows": rows,
        "table_md": table,
    }
    out_path = Path(args.out)
    atomic_write_json(out_path, to_jsonable(payload), default=str, allow_nan=False)
    print(f"wrote {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
