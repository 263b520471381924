"""Which video size does a pose estimator need? Registration and errors of the ground-truth clips per size.

    python -m vid3d.tools.pose_sizes --sizes 32x48 64x96 --estimators flow colmap colmap-global ladder \
        --out outputs/pose_sizes.json [data=synthetic_heldout600] [more Hydra overrides]

For each size the data option's test clips are loaded as the camera benchmark loads them (``eval_clips``:
centre crop + resize to the size, intrinsics to match) and each estimator runs on the ground-truth frames.
Per (size, estimator) it prints: the fraction of clips with every frame registered, the registered frames,
and the medians over the fully registered clips of RotErr (degrees) and TransErr with the benchmark's own
definitions (``camera_errors``: relative to the first frame, scale normalised by the furthest frame, sums
over the frames), and the median seconds per clip. JSON (written atomically): the table and every clip's
record.

Estimators: ``flow`` (conf/pose/flow.yaml), ``colmap`` (conf/pose/colmap.yaml: incremental mapper, known
intrinsics fixed), ``colmap-global`` (the same with GLOMAP's global mapper), ``ladder`` (video_to_poses'
retry ladder: incremental, global, then both with more features, each checked against the two-view
geometry; its first two rungs reuse the ``colmap`` and ``colmap-global`` results of the same clip).
``--colmap-upscale F`` gives COLMAP (all three, and the ladder's two-view check) frames upscaled F times
(bicubic, intrinsics scaled).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vid3d.evaluation.pose.base import PoseEstimator, PoseResult

__all__ = ["Upscaled", "measure_clip", "parse_size", "summarise", "table", "upscale"]

ESTIMATORS = ("flow", "colmap", "colmap-global", "ladder")


def parse_size(text: str) -> tuple[int, int]:
    """'64x96' -> (64, 96) (height x width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--sizes: {text!r} is not HEIGHTxWIDTH (e.g. 64x96)") from None
    if h < 8 or w < 8:
        raise ValueError(f"--sizes: {text!r} is smaller than 8x8")
    return h, w


class Upscaled(PoseEstimator):
    """``estimator`` on frames upscaled ``factor`` times (bicubic) with the intrinsics scaled to match;
    the poses are those of the upscaled video (a resize leaves the cameras unchanged)."""

    def __init__(self, estimator: PoseEstimator, factor: int) -> None:
        self.estimator = estimator
        self.factor = int(factor)
        self.name = estimator.name if self.factor == 1 else f"{estimator.name} x{self.factor}"

    def estimate(self, frames, K_px, gt_c2w=None) -> PoseResult:
        return self.estimator.estimate(*upscale(frames, K_px, self.factor))


def upscale(frames: np.ndarray, K_px: np.ndarray | None, factor: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, H, W, 3) uint8 frames resized ``factor`` times (bicubic) and their (3, 3) pixel intrinsics to
    match (pixel centres at +0.5: x' = factor * x); unchanged for factor 1."""
    if factor == 1:
        return frames, K_px
    from vid3d.geometry import rescale_K

    h, w = frames.shape[1:3]
    H, W = h * factor, w * factor
    big = np.stack([cv2.resize(f, (W, H), interpolation=cv2.INTER_CUBIC) for f in frames])
    K = None if K_px is None else np.asarray(rescale_K(np.asarray(K_px, np.float64), (h, w), (H, W)))
    return big, K


@dataclass
class _Cached(PoseEstimator):
    """A ladder rung whose result was computed already (the same estimator on the same clip)."""

    result: PoseResult
    name: str = "cached"

    def estimate(self, frames, K_px, gt_c2w=None) -> PoseResult:
        return self.result


def _record(clip, label: str, res: PoseResult, extra: dict | None = None) -> dict:
    from vid3d.evaluation.camera_errors import camera_errors

    rec = {
        "clip_id": clip.clip_id, "estimator": label, "n_frames": len(clip.frames),
        "n_registered": int(res.n_registered), "success": bool(res.success), "reason": res.reason,
        "seconds": round(float(res.seconds), 3), "rot_err_deg": None, "trans_err": None,
    }
    full = res.c2w is not None and res.success and bool(res.registered_mask().all())
    rec["fully_registered"] = bool(full)
    if full:
        e = camera_errors(res.c2w, clip.gt_c2w)
        rec["rot_err_deg"], rec["trans_err"] = e["rot_err_deg"], e["trans_err"]
    if extra:
        rec.update(extra)
    return rec


def measure_clip(clip, estimators: dict[str, PoseEstimator], ladder_rungs=None, ladder_upscale: int = 1
                 ) -> list[dict]:
    """Records (one per estimator label) of one ``EvalClip``'s ground-truth frames. ``ladder_rungs``
    (a list of ``pose_ladder.Rung``, COLMAP's) adds the "ladder" record, run (rungs and two-view check) on
    the frames upscaled ``ladder_upscale`` times; its first two rungs reuse the "colmap" and
    "colmap-global" results when those were measured (on frames upscaled as much)."""
    from vid3d.tools.pose_ladder import Rung, run_ladder

    out, results = [], {}
    for label, est in estimators.items():
        results[label] = est.estimate(clip.frames, clip.K_px)
        out.append(_record(clip, label, results[label]))
    if ladder_rungs is not None:
        t0 = time.perf_counter()
        rungs = list(ladder_rungs)
        for i, label in ((0, "colmap"), (1, "colmap-global")):
            if label in results and i < len(rungs):
                rungs[i] = Rung(rungs[i].name, _Cached(results[label]))
        lad = run_ladder(*upscale(clip.frames, clip.K_px, ladder_upscale), rungs)
        failed = PoseResult(None, None, False, lad.failure_line(), 0.0, 0)
        kept = lad.kept.result if lad.kept is not None else failed
        reused = sum(r.result.seconds for r in lad.tried if r.name in ("benchmark", "global"))
        kept.seconds = time.perf_counter() - t0 + reused
        out.append(_record(clip, "ladder", kept, {"kept_rung": None if lad.kept is None else lad.kept.name}))
    return out


def summarise(records: list[dict]) -> dict:
    """Per-estimator summary of one size's records: clips, fully_registered (count and fraction),
    registered frames (count and fraction), median RotErr (deg) / TransErr over the fully registered
    clips (None when none), median seconds per clip."""
    def med(xs):
        xs = [x for x in xs if x is not None]
        return float(np.median(xs)) if xs else None

    return {
        "clips": len(records),
        "fully_registered": sum(r["fully_registered"] for r in records),
        "fully_registered_fraction": sum(r["fully_registered"] for r in records) / max(1, len(records)),
        "registered_frames": sum(r["n_registered"] for r in records),
        "frames": sum(r["n_frames"] for r in records),
        "median_rot_err_deg": med(r["rot_err_deg"] for r in records),
        "median_trans_err": med(r["trans_err"] for r in records),
        "median_seconds": med(r["seconds"] for r in records),
    }


def _fmt(x, d=2):
    return "—" if x is None or not math.isfinite(x) else f"{x:.{d}f}"


def table(summary: dict[str, dict[str, dict]]) -> str:
    """Markdown table of ``{size: {estimator: summarise(...)}}``."""
    from vid3d.evaluation.tables import Table, markdown

    header = ["size", "estimator", "fully registered", "frames registered", "RotErr ° (median)",
              "TransErr (median)", "s / clip"]
    rows = [
        [size, label, f"{s['fully_registered']}/{s['clips']} ({100 * s['fully_registered_fraction']:.0f}%)",
         f"{s['registered_frames']}/{s['frames']}", _fmt(s["median_rot_err_deg"]),
         _fmt(s["median_trans_err"], 3), _fmt(s["median_seconds"], 1)]
        for size, by_estimator in summary.items()
        for label, s in by_estimator.items()
    ]
    return "\n".join(markdown(Table(header, rows, text_columns=2)))


def _clips(size: tuple[int, int], overrides: list[str], max_clips: int | None):
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.tasks.camera_benchmark import eval_clips

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[*overrides, f"data.height={size[0]}", f"data.width={size[1]}"])
    if max_clips is not None:
        cfg.eval.max_clips = max_clips
    return eval_clips(cfg)[0]


def build_estimators(names: list[str], colmap_upscale: int):
    """({label: estimator}, ladder rungs or None) for the estimator names."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from vid3d.config import CONFIG_DIR
    from vid3d.tools.video_to_poses import build_rungs

    ests: dict[str, PoseEstimator] = {}
    if "flow" in names:
        ests["flow"] = instantiate(OmegaConf.load(CONFIG_DIR / "pose" / "flow.yaml"))
    colmap = [n for n in names if n != "flow"]
    rungs = None
    if colmap:
        rungs = build_rungs("colmap", known_focal=True)  # the ladder upscales the clip itself
        if "colmap" in names:
            ests["colmap"] = Upscaled(rungs[0].estimator, colmap_upscale)
        if "colmap-global" in names:
            ests["colmap-global"] = Upscaled(rungs[1].estimator, colmap_upscale)
    return ests, (rungs if "ladder" in names else None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*",
                   help="Hydra overrides selecting the data (default data=synthetic_heldout600)")
    p.add_argument("--sizes", nargs="+", default=["32x48", "64x96"])
    p.add_argument("--estimators", nargs="+", default=list(ESTIMATORS), choices=ESTIMATORS)
    p.add_argument("--colmap-upscale", type=int, default=1,
                   help="COLMAP sees frames upscaled this many times")
    p.add_argument("--clips", type=int, default=None, help="at most this many clips (default: all)")
    p.add_argument("--out", type=Path, default=None, help="JSON file for the table and the per-clip records")
    a = p.parse_args(argv)
    try:
        sizes = [parse_size(s) for s in a.sizes]
    except ValueError as e:
        print(f"pose_sizes: {e}", file=sys.stderr)
        return 2
    if a.colmap_upscale < 1:
        print(f"pose_sizes: --colmap-upscale must be >= 1, got {a.colmap_upscale}", file=sys.stderr)
        return 2
    overrides = a.overrides or ["data=synthetic_heldout600"]
    ests, rungs = build_estimators(a.estimators, a.colmap_upscale)
    summary: dict[str, dict[str, dict]] = {}
    records: list[dict] = []
    for size in sizes:
        key = f"{size[0]}x{size[1]}"
        clips = _clips(size, overrides, a.clips)
        size_records = []
        for i, clip in enumerate(clips):
            recs = measure_clip(clip, ests, rungs, a.colmap_upscale)
            for r in recs:
                r["size"] = key
            size_records += recs
            line = ", ".join(f"{r['estimator']} {r['n_registered']}/{r['n_frames']} "
                             f"{_fmt(r['rot_err_deg'], 1)}° {r['seconds']:.1f}s" for r in recs)
            print(f"[{key} {i + 1}/{len(clips)}] {clip.clip_id}: {line}", flush=True)
        records += size_records
        labels = [*ests] + (["ladder"] if rungs is not None else [])
        summary[key] = {lab: summarise([r for r in size_records if r["estimator"] == lab]) for lab in labels}
        if a.out is not None:  # after every size: a long run keeps what it measured
            from vid3d.atomic import atomic_write_json

            a.out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(a.out, {"overrides": overrides, "colmap_upscale": a.colmap_upscale,
                                      "summary": summary, "records": records})
    print(table(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
