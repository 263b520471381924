"""Data loading throughput: clips/s to a ready training sample, vid3d's loader vs a CameraCtrl-style loader.

A ready sample is what a training step consumes: 25 frames centre-cropped and resized to 320x512, pixel
intrinsics at that size, camera-to-world poses relative to the first frame, and Plücker maps at the latent
resolution 40x64. Every pipeline below produces it from the same RealEstate10K-layout clips (a folder of
JPEG frames named by timestamp + a camera .txt per clip):

- ``vid3d``: ``Re10kClipDataset(frames_dtype="uint8")``, what training uses: OpenCV decode straight to RGB,
  one crop + INTER_AREA resize per frame on uint8 written into one output array (no float copy, no stack
  of resized frames), validation and bad-clip handling, then ``vid3d.geometry.plucker_embedding`` at 40x64.
  Frames leave the loader as uint8 (F, 3, 320, 512); ``[-1, 1]`` is made once on the device by the
  training step's batch preparation (``VideoDataModule.on_after_batch_transfer``,
  ``vid3d.data.frames.as_unit_range``).
- ``vid3d_float``: the same loader with ``frames_dtype="float32"`` (the evaluation default): frames
  converted to [-1, 1] on the CPU, in the loader, for comparison.
- ``cameractrl``: CameraCtrl's RealEstate10K dataset algorithm (``RealEstate10KPose`` in
  github.com/hehao13/CameraCtrl, ``cameractrl/data/dataset.py``, main and svd branches), written with our
  own code in ``benchmarks.cameractrl_loader``, whose docstring lists what follows CameraCtrl (the camera
  file parsed line by line with ``float()``, ``np.linalg.inv`` per pose, whole frames decoded and resized
  as a float tensor, the Plücker map at the full 320x512) and what differs so that the output equals
  vid3d's (an aspect-keeping resize + centre crop; the Plücker map averaged over 8x8 blocks to 40x64).
- ``cameractrl_latent_plucker``: the same, but the Plücker map is evaluated at the 40x64 latent grid
  directly (not CameraCtrl's algorithm: a stronger baseline, to show how much of the ratio is the
  full-resolution map).
- ``pil_baseline``: per frame ``PIL.Image.open(...).convert("RGB")``, vid3d's crop box, Pillow's
  ``resize(BILINEAR)`` (its triangle filter widens with the downscale), to float on the CPU; vid3d's camera
  parsing and Plücker maps.

Protocol (one command): --clips clips (default 16) of --frames frames (so every pipeline samples the same
frames: the whole clip) at --source-height x --source-width (default 360x640, RealEstate10K's 360p) are
rendered as JPEG (the vid3d synthetic scenes) into a temporary folder (or --cache, reused when the same)
unless --root names a RealEstate10K-layout split. Each pipeline reads every clip once
(untimed: the first pass, which for vid3d includes its one-time whole-clip check per clip and process), then
--rounds rounds each time every pipeline over all clips, the pipelines taking turns within a round (the order
rotates every round), so load from other work on the machine hits all of them alike. Each pass is a torch
DataLoader (batch size 1, --workers workers, default 0 = the main process) with ``collate_samples``. torch and
OpenCV run one thread each. Reported: clips/s over all timed passes, the median pass's ms/clip, and the
ratio to ``cameractrl`` (median over rounds of the per-round time ratio, with min and max). Prints a table
and writes JSON (atomically, default benchmarks/results/dataloader.json).

    .venv/bin/python -m benchmarks.loader_throughput
    .venv/bin/python -m benchmarks.loader_throughput --quick
    python -m benchmarks.loader_throughput --root /path/to/re10k --split train --clips 64 --workers 8
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from vid3d.data.datamodule import collate_samples
from vid3d.data.formats import re10k

from ._loader_common import LoaderSettings, add_sample_arguments, default_out, one_thread, write_result
from .cameractrl_loader import CameraCtrlStyle
from .clip_loaders import LATENT_FACTOR, PilBaseline, VidLoader, check_batch, image_clips, synthetic_root

BASELINE = "cameractrl"
PIPELINES = ("vid3d", "vid3d_float", BASELINE, "cameractrl_latent_plucker", "pil_baseline")


def make_pipelines(s: LoaderSettings, names=PIPELINES) -> dict:
    """{name: dataset} of the compared pipelines over the same clips and sample ``s`` (see the module
    docstring)."""
    make = {
        "vid3d": lambda: VidLoader(s, frames_dtype="uint8"),
        "vid3d_float": lambda: VidLoader(s, frames_dtype="float32"),
        BASELINE: lambda: CameraCtrlStyle(s),
        "cameractrl_latent_plucker": lambda: CameraCtrlStyle(s, plucker="latent"),
        "pil_baseline": lambda: PilBaseline(s),
    }
    return {n: make[n]() for n in names}


def time_pass(loader: DataLoader) -> tuple[float, int, dict]:
    """(seconds, clips, last batch) of one pass over ``loader``."""
    start, n, batch = time.perf_counter(), 0, None
    for batch in loader:
        n += len(batch["clip_id"])
    return time.perf_counter() - start, n, batch


def measure_pipelines(
    pipelines: dict, rounds: int, workers: int, frames: int, height: int, width: int
) -> dict:
    """One untimed first pass per pipeline, then ``rounds`` rounds in which the pipelines take turns (the
    order rotating each round). Returns {"first_pass_s": {name: s}, "rounds": [{name: s}], "clips": n}."""
    kw = {"persistent_workers": True, "prefetch_factor": 2} if workers else {}
    loaders = {
        n: DataLoader(ds, batch_size=1, shuffle=False, num_workers=workers, collate_fn=collate_samples, **kw)
        for n, ds in pipelines.items()
    }
    names = list(pipelines)
    first, per_round, clips = {}, [], None
    for n in names:
        first[n], clips, batch = time_pass(loaders[n])
        check_batch(n, batch, frames, height, width)
    for r in range(rounds):
        times = {}
        for n in names[r % len(names) :] + names[: r % len(names)]:
            times[n], got, batch = time_pass(loaders[n])
            assert got == clips, f"{n}: {got} clips in a pass, expected {clips}"
            check_batch(n, batch, frames, height, width)
        per_round.append(times)
        line = ", ".join(f"{n} {1000 * t / clips:.0f}" for n, t in times.items())
        print(f"  round {r + 1}: {line} ms/clip", flush=True)
    return {"first_pass_s": first, "rounds": per_round, "clips": clips}


def summarize(m: dict) -> list[dict]:
    """Rows: clips/s over all timed passes, median ms/clip, ratio to the baseline per round (median,
    min, max)."""
    clips, rounds = m["clips"], m["rounds"]
    rows = []
    for n in m["first_pass_s"]:
        times = [r[n] for r in rounds]
        row = {
            "pipeline": n,
            "clips_per_s": round(clips * len(times) / sum(times), 3),
            "ms_per_clip_median": round(1000 * statistics.median(times) / clips, 1),
            "first_pass_ms_per_clip": round(1000 * m["first_pass_s"][n] / clips, 1),
        }
        if BASELINE in m["first_pass_s"]:
            ratios = [r[BASELINE] / r[n] for r in rounds]
            row["speedup_vs_cameractrl"] = {
                "median": round(statistics.median(ratios), 2),
                "min": round(min(ratios), 2),
                "max": round(max(ratios), 2),
            }
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_sample_arguments(p, "RealEstate10K layout; default: synthetic clips", "4 clips, 2 rounds")
    p.add_argument("--source-height", type=int, default=360, help="synthetic source frames (RE10K: 360)")
    p.add_argument("--source-width", type=int, default=640, help="synthetic source frames (RE10K: 640)")
    p.add_argument("--workers", type=int, default=0, help="loader workers (0: the main process)")
    p.add_argument("--clips", type=int, default=None, help="clips (16, quick 4)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (5, quick 2)")
    p.add_argument("--pipelines", default=",".join(PIPELINES), help="comma-separated subset")
    p.add_argument(
        "--cache", type=Path, default=None, help="render the synthetic clips here (reused if the same)"
    )
    p.add_argument("--out", type=Path, default=None, help="default benchmarks/results/dataloader.json")
    a = p.parse_args(argv)
    one_thread()
    return run(a, argv)


def run(a: argparse.Namespace, argv: list[str] | None) -> int:
    """The benchmark for parsed arguments: prints the table, writes the JSON; 2 on bad arguments."""
    out = a.out or default_out("dataloader")
    clips = a.clips if a.clips is not None else (4 if a.quick else 16)
    rounds = a.rounds if a.rounds is not None else (2 if a.quick else 5)
    workers = a.workers
    names = [n.strip() for n in a.pipelines.split(",") if n.strip()]
    known = PIPELINES
    if not names or set(names) - set(known):
        print(f"error: --pipelines takes a subset of {','.join(known)}, got {a.pipelines!r}", file=sys.stderr)
        return 2
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="vid3d_bench_") as tmp:
        t0 = time.perf_counter()
        if a.root is None:
            print(
                f"rendering {clips} synthetic clips of {a.frames} frames at "
                f"{a.source_height}x{a.source_width} (JPEG) ...",
                flush=True,
            )
            root = synthetic_root(a.cache or Path(tmp), clips, a.frames, a.source_height, a.source_width)
        else:
            root = a.root
        build_s = time.perf_counter() - t0
        found = image_clips(root, a.split, clips)
        if len(found) < clips:
            print(
                f"error: {root}/{a.split}: {len(found)} image-folder clips, --clips {clips} asked",
                file=sys.stderr,
            )
            return 2
        cams = re10k.read_camera_file(found[0].camera_path)
        source_hw = list(re10k.read_frames(found[0], cams, [0]).shape[1:3])
        pipelines = make_pipelines(LoaderSettings.from_args(a, root, clips), names)
        print(f"{clips} clips, {rounds} rounds, {workers} workers, 1 thread", flush=True)
        m = measure_pipelines(pipelines, rounds, workers, a.frames, a.height, a.width)
    load.append(os.getloadavg()[0])
    rows = summarize(m)
    print()
    print(
        f"source: {a.root or f'synthetic, rendered in {build_s:.0f}s'}: {clips} clips, frames {source_hw[0]}x"
        f"{source_hw[1]} JPEG; sample {a.frames}x3x{a.height}x{a.width} + Plücker {a.frames}x6x"
        f"{a.height // LATENT_FACTOR}x{a.width // LATENT_FACTOR}; {workers} workers, 1 thread, "
        f"{rounds} rounds; load average {load[0]:.1f} -> {load[1]:.1f}"
    )
    has_base = BASELINE in names
    print(
        "| pipeline | frames out | clips/s | ms/clip (median pass) | first pass ms/clip |"
        + (" vs cameractrl (median [min-max] of rounds) |" if has_base else "")
    )
    print("|---|---|---|---|---|" + ("---|" if has_base else ""))
    for r in rows:
        kind = "uint8" if r["pipeline"] == "vid3d" else "float32 [-1, 1]"
        line = (
            f"| {r['pipeline']} | {kind} | {r['clips_per_s']:.2f} | {r['ms_per_clip_median']:.0f} "
            f"| {r['first_pass_ms_per_clip']:.0f} |"
        )
        if has_base:
            s = r["speedup_vs_cameractrl"]
            line += f" {s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}] |"
        print(line)
    result = {
        "benchmark": "dataloader",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "sample": {
            "frames": [a.frames, 3, a.height, a.width],
            "plucker": [a.frames, 6, a.height // LATENT_FACTOR, a.width // LATENT_FACTOR],
            "interval": a.interval,
        },
        "source": str(a.root) if a.root else "synthetic",
        "source_frame_hw": source_hw,
        "clips": clips,
        "rounds": rounds,
        "workers": workers,
        "threads": 1,
        "rows": rows,
        "pass_seconds": {"first": m["first_pass_s"], "rounds": m["rounds"]},
        "load_average": load,
    }
    write_result(out, result, "loader_throughput", argv)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
