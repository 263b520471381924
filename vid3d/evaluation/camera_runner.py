"""Model-independent camera-accuracy evaluation loop: generate -> estimate poses -> errors -> records.

For every (method, clip, trial) of this shard: skip it if its record exists, else generate the video
with the method, estimate its camera poses, compare them with the clip's ground truth
(``camera_errors``) and append one record (``runner.run_shard``). Finally aggregate every record
found in ``out_dir`` and write ``results.{json,csv,md,tex}``. Killing and rerunning resumes where it
stopped; shards can run on separate machines into separate (or the same) directories and be merged
with ``aggregate.merge_shards``. With an ``fvd.FVDMetric`` each record also stores the I3D features of its
generated video and of its clip's ground truth, so the FVD of a resumed or merged run is that of one
uninterrupted run (``fvd.fvd_entry``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vid3d.geometry import rescale_K

from .aggregate import DEFAULT_METRICS, aggregate, merge_shards, write_results
from .camera_errors import camera_errors
from .fvd import FVDMetric
from .pose.base import PoseEstimator, check_frames
from .runner import run_shard, shard_items, trial_seed

__all__ = [
    "EvalClip",
    "Method",
    "eval_clips_from_re10k",
    "gt_video_method",
    "protocol_block",
    "run_camera_eval",
    "video_relpath",
    "shard_clips",
    "static_first_frame_method",
    "trial_seed",
]


@dataclass
class EvalClip:
    """One evaluation clip.

    Attributes:
        clip_id: unique id (shard assignment and record keys use it).
        frames: (n, H, W, 3) uint8 RGB ground-truth frames.
        K_px: (3, 3) pixel intrinsics at (H, W).
        gt_c2w: (n, 4, 4) OpenCV camera-to-world ground-truth poses (any world frame/scale).
        frame_indices: (n,) indices of the frames in the source video.
    """

    clip_id: str
    frames: np.ndarray
    K_px: np.ndarray
    gt_c2w: np.ndarray
    frame_indices: np.ndarray

    def __post_init__(self) -> None:
        self.frames = check_frames(self.frames)
        n = len(self.frames)
        self.K_px = np.asarray(self.K_px, dtype=np.float64)
        self.gt_c2w = np.asarray(self.gt_c2w, dtype=np.float64)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64)
        if self.K_px.shape != (3, 3):
            raise ValueError(f"clip {self.clip_id}: K_px must be (3, 3), got {self.K_px.shape}")
        if self.gt_c2w.shape != (n, 4, 4) or self.frame_indices.shape != (n,):
            raise ValueError(
                f"clip {self.clip_id}: {n} frames but gt_c2w {self.gt_c2w.shape}, "
                f"frame_indices {self.frame_indices.shape}"
            )


Method = Callable[[EvalClip], np.ndarray]


def eval_clips_from_re10k(
    root: str | Path,
    split: str,
    num_frames: int = 8,
    stride: int = 3,
    start: int = 0,
    height: int | None = None,
    width: int | None = None,
    max_clips: int | None = None,
) -> list[EvalClip]:
    """EvalClips from a RealEstate10K-layout dataset (``vid3d.data.formats.re10k``).

    Frames ``start + stride * arange(num_frames)`` of each clip (sorted by id; clips that are too short
    are skipped), resized with area interpolation to (height, width) when given; ``K_px`` is taken from
    the camera file's ``K_norm`` at the final resolution.
    """
    import cv2

    from vid3d.data.formats.re10k import list_clips, read_camera_file, read_frames

    out: list[EvalClip] = []
    for clip in list_clips(root, split):
        if max_clips is not None and len(out) >= max_clips:
            break
        cams = read_camera_file(clip.camera_path, root=root)  # links out of the dataset refused
        idx = start + stride * np.arange(num_frames)
        if idx[-1] >= len(cams):
            continue
        frames = read_frames(clip, cams, idx, root=root)
        h, w = frames.shape[1:3]
        if height is not None and width is not None and (h, w) != (height, width):
            frames = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])
            h, w = height, width
        K_px = cams.K_px(h, w)[idx[0]]
        out.append(EvalClip(clip.clip_id, frames, K_px, cams.c2w()[idx], idx))
    return out


def gt_video_method(clip: EvalClip) -> np.ndarray:
    """Reference row: the ground-truth video itself (measures the pose estimator's own error)."""
    return clip.frames


def static_first_frame_method(clip: EvalClip) -> np.ndarray:
    """Reference row: the first frame repeated n times (a model that ignores the camera entirely)."""
    return np.repeat(clip.frames[:1], len(clip.frames), axis=0)


def shard_clips(clips: Sequence[EvalClip], shard: int, num_shards: int) -> list[EvalClip]:
    """Clips of ``shard``: clip i of the clips sorted by id goes to shard i % num_shards."""
    return shard_items(clips, lambda c: c.clip_id, shard, num_shards)


def protocol_block(estimator: PoseEstimator, failure_policy: str, trials: int) -> dict[str, Any]:
    """The 'protocol' block of results.json: how the numbers were produced."""
    return {
        "pose_estimator": estimator.describe(),
        "pose_convention": "OpenCV camera-to-world; each trajectory made relative to its first frame",
        "normalisation": (
            "each trajectory's translations divided by its furthest camera-centre distance from the first "
            "camera (static trajectory: zero translations, no scaling)"
        ),
        "metrics": {
            "rot_err_deg": "sum over frames of the geodesic angle between estimated and GT rotations (deg)",
            "trans_err": "sum over frames of ||t_gt - t_gen||_2 on normalised camera centres (unitless)",
            "cammc": "sum over frames of ||[R|t]_gt - [R|t]_gen||_F, 3x4 normalised c2w (unitless)",
        },
        "reduction": (
            "metrics are per-video sums over frames, averaged over videos with a 95% percentile bootstrap CI "
            "(1000 resamples, seed 0); per_frame_mean = mean over videos of (sum / n_frames)"
        ),
        "failure_policy": failure_policy,
        "fidelity": (
            "psnr_gt: PSNR (dB) of the generated frames 1..N-1 against the clip's ground-truth frames "
            "(frame 0 is the conditioning image), mean over frames, then over videos with a 95% bootstrap "
            "CI; every video counts, whatever its pose estimation did; identical frames read 100 dB"
        ),
        "trials": trials,
        "seeding": "torch and numpy global RNGs seeded with crc32(method, clip_id, trial) before generation",
    }


def video_relpath(method: str, clip_id: str, trial: int) -> str:
    """Where a generated video is saved, relative to the run dir: ``videos/{method}/{clip_id}_t{trial}.mp4``
    (characters other than letters, digits, '.', '_', '-' replaced by '_')."""

    def safe(s: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip(".") or "_"

    return f"videos/{safe(method)}/{safe(clip_id)}_t{trial}.mp4"


PSNR_MSE_FLOOR = 1e-10  # identical frames: PSNR 100 dB instead of +inf (JSON has no inf)


def fidelity_to_gt(frames: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """How close a generated video is to the clip's ground truth on frames 1..N-1 (frame 0 is the
    conditioning image): ``psnr_gt`` = mean over those frames of 10 log10(1 / MSE) with pixels in [0, 1]
    (MSE floored at ``PSNR_MSE_FLOOR``), ``mse_gt`` = their mean MSE. ``frames``, ``gt``: (N, H, W, 3)
    uint8; ground truth at another resolution is resized to the generated one (area interpolation).
    Independent of pose estimation: every video gets a value."""
    import cv2

    if gt.shape[1:3] != frames.shape[1:3]:
        h, w = frames.shape[1:3]
        gt = np.stack([cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA) for g in gt])
    if len(frames) < 2:
        return {"psnr_gt": float("nan"), "mse_gt": float("nan")}
    diff = frames[1:].astype(np.float64) / 255.0 - gt[1:].astype(np.float64) / 255.0
    mse = np.mean(diff * diff, axis=(1, 2, 3))
    psnr = 10.0 * np.log10(1.0 / np.maximum(mse, PSNR_MSE_FLOOR))
    return {"psnr_gt": float(psnr.mean()), "mse_gt": float(mse.mean())}


def _evaluate_one(
    clip: EvalClip,
    name: str,
    method: Method,
    trial: int,
    estimator: PoseEstimator,
    video_dir: Path | None = None,
    fps: float = 8,
    fvd: FVDMetric | None = None,
    gt_features: np.ndarray | None = None,
) -> dict:
    seed = trial_seed(name, clip.clip_id, trial)
    torch.manual_seed(seed)
    np.random.seed(seed)
    t0 = time.perf_counter()
    frames = check_frames(method(clip))
    t_gen = time.perf_counter() - t0
    n = len(clip.frames)
    if len(frames) != n:
        raise ValueError(
            f"method {name!r} returned {len(frames)} frames for clip {clip.clip_id}, expected {n}"
        )
    video_path = None
    if video_dir is not None:  # written before the record: a record never points at a missing video
        from vid3d.atomic import remove_stale_temps
        from vid3d.viz import write_video

        video_path = video_relpath(name, clip.clip_id, trial)
        # run_shard holds this shard's lock and a clip belongs to one shard: no live writer of this video
        # exists, so a temporary .mp4 left by a killed run goes now, not only after atomic.STALE_AFTER_S
        remove_stale_temps(video_dir / video_path, older_than_s=0)
        write_video(video_dir / video_path, frames, fps=fps)
    # Intrinsics follow the generated resolution (a model may generate at a lower resolution than GT).
    K = rescale_K(clip.K_px, clip.frames.shape[1:3], frames.shape[1:3])
    result = estimator.estimate(frames, K, gt_c2w=clip.gt_c2w)
    record: dict[str, Any] = {
        "method": name,
        "clip_id": clip.clip_id,
        "trial": trial,
        "seed": seed,
        "frame_indices": clip.frame_indices,
        "resolution_hw": list(frames.shape[1:3]),
        "success": bool(result.success),
        "reason": result.reason,
        "n_registered": result.n_registered,
        "n_frames": n,
        "estimator": estimator.name,
        "gt_c2w": clip.gt_c2w,
        "est_c2w": result.c2w,
        "est_K_px": result.K_px,
        "errors": None,
        "fidelity": fidelity_to_gt(frames, clip.frames),
        "timings_s": {"generate": t_gen, "estimate": result.seconds},
    }
    if video_path is not None:
        record["video"] = video_path
    if fvd is not None:
        record["fvd_features"] = fvd.sample_features(frames, gt_features)
    if result.success:
        if result.c2w is None or result.c2w.shape != (n, 4, 4):
            raise ValueError(f"estimator {estimator.name!r} reported success without (n, 4, 4) poses")
        mask = result.registered_mask()
        # Partial registrations (allowed only when the estimator's min fraction < 1) are compared on the
        # registered frames, relative to the first registered frame; the record says so.
        record["errors"] = camera_errors(result.c2w[mask], clip.gt_c2w[mask])
        record["errors_on_registered_only"] = bool(not mask.all())
    record["timings_s"]["total"] = time.perf_counter() - t0
    return record


def run_camera_eval(
    clips: Sequence[EvalClip],
    methods: Mapping[str, Method],
    estimator: PoseEstimator,
    out_dir: str | Path,
    shard: int = 0,
    num_shards: int = 1,
    trials: int = 1,
    progress: bool = True,
    failure_policy: str = "exclude",
    metrics: Sequence[str] = DEFAULT_METRICS,
    extra_protocol: Mapping[str, Any] | None = None,
    save_videos: bool = False,
    video_fps: float = 8,
    fvd: FVDMetric | None = None,
    outlier_sigma: float | None = None,
) -> dict[str, Any]:
    """Evaluate camera accuracy of ``methods`` on this shard of ``clips``; resumable.

    Args:
        clips: evaluation clips (ids unique).
        methods: name -> callable returning generated (n, H', W', 3) uint8 frames for a clip (same n).
            Before each call the torch/numpy global RNGs are seeded with ``trial_seed``.
        estimator: pose estimator applied to every generated video.
        out_dir: records go to ``out_dir/records.shard{shard}of{num_shards}.jsonl``; results.* are
            written from all ``records*.jsonl`` files in ``out_dir``.
        shard, num_shards: this process handles clip i (sorted by id) with i % num_shards == shard.
        trials: samples per (method, clip), trial = 0 .. trials-1.
        progress: show a rich progress bar.
        failure_policy: see ``aggregate.aggregate``.
        extra_protocol: more entries for the protocol block (e.g. versions, commit, composed config).
        save_videos: also write each generated video to ``out_dir/videos/{method}/{clip_id}_t{trial}.mp4``
            (H.264, ``video_fps``; path in the record's ``video`` field) before its record is appended.
            Resumed samples are not regenerated, so they keep whatever video an earlier run wrote.
        outlier_sigma: see ``aggregate.aggregate`` (None: no outlier removal; protocol=cami2v: 10).
        fvd: when given, every new record stores the features of its generated video and of its clip's
            ground-truth video (computed for this shard's clips before any generation, which also checks
            the network on the clips' shape), and each method's results get an FVD entry
            (``fvd.fvd_entry``; without it the entry says FVD was not computed).
    Returns:
        {"results": per-method aggregate, "protocol": ..., "paths": written files, "n_new": records added,
        "n_skipped": already done}.
    """
    out = Path(out_dir)
    gt_features: dict[str, Any] = {}

    def features_of_todo(todo: list[tuple[EvalClip, str, int]]) -> None:
        if fvd is not None:
            for clip in {c.clip_id: c for c, _, _ in todo}.values():
                gt_features[clip.clip_id] = fvd.features(clip.frames[None])[0]

    def evaluate(clip: EvalClip, name: str, trial: int) -> dict[str, Any]:
        return _evaluate_one(
            clip, name, methods[name], trial, estimator, video_dir=out if save_videos else None,
            fps=video_fps, fvd=fvd, gt_features=gt_features.get(clip.clip_id),
        )

    run = run_shard(
        clips, lambda c: c.clip_id, methods, evaluate, out, shard=shard, num_shards=num_shards,
        trials=trials, label="camera eval", progress=progress, before=features_of_todo,
    )
    records = merge_shards([out])
    results = aggregate(records, metrics=metrics, failure_policy=failure_policy, outlier_sigma=outlier_sigma)
    fvd_protocol = {"computed": False, "reason": "metrics.fvd.i3d not set"} if fvd is None else fvd.describe()
    protocol = {**protocol_block(estimator, failure_policy, trials), "fvd": fvd_protocol,
                **dict(extra_protocol or {})}
    paths = write_results(out, results, protocol)
    return {
        "results": results, "protocol": protocol, "paths": paths,
        "n_new": run.n_new, "n_skipped": run.n_skipped,
    }
