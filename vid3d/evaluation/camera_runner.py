"""Model-independent camera-accuracy evaluation loop: generate -> estimate poses -> errors -> records.

For every (method, clip, trial) of this shard: skip it if its record exists, else generate the video
with the method, estimate its camera poses, compare them with the clip's ground truth
(``camera_errors``) and append one record (``runner.run_shard``). Finally aggregate the records of
``out_dir`` (this shard's from memory, other shards' files from disk), write ``results.{json,csv,md,tex}``
and return the records, results and tables, which the caller prints and logs without reading a file.
Killing and rerunning resumes where it stopped; shards can run on separate machines into separate (or
the same) directories and be merged with ``aggregate.merge_shards``. With an ``fvd.FVDMetric`` each record
also stores the I3D features of its generated video and of its clip's ground truth, so the FVD of a
resumed or merged run is that of one uninterrupted run (``fvd.fvd_entry``).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vid3d.geometry import rescale_K

from .aggregate import ARITHMETICS, DEFAULT_METRICS, aggregate, merge_shards, results_report
from .batching import Lookahead
from .camera_errors import camera_errors
from .cami2v import attach_abs_errors, cami2v_errors, depth_scale, sample_depth
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
        depth0: (H, W) z-depth of frame 0 at the frames' size (0 = no surface), or None where the dataset
            has none; read only for the ``depth_warp`` reference row (``eval.oracle_rows``).
    """

    clip_id: str
    frames: np.ndarray
    K_px: np.ndarray
    gt_c2w: np.ndarray
    frame_indices: np.ndarray
    depth0: np.ndarray | None = None

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
        if self.depth0 is not None:
            self.depth0 = np.asarray(self.depth0, dtype=np.float64)
            if self.depth0.shape != self.frames.shape[1:3]:
                raise ValueError(
                    f"clip {self.clip_id}: depth0 is {self.depth0.shape}, frames are {self.frames.shape[1:3]}"
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


_VID3D_ARITHMETIC = {
    "rot_err_rad": "vid3d exact: sum over frames of atan2(sin, cos) of the angle of R_gen R_gt^T after each "
                   "rotation is projected onto SO(3) (rad; rot_err_deg the same in degrees)",
    "normalisation": "each trajectory's translations divided by its furthest camera-centre distance from the "
                     "first camera (static trajectory, < 1e-8: zero translations, no scaling)",
}
_CAMI2V_ARITHMETIC = {
    "rot_err_rad": "CamI2V's: sum over frames of arccos(clamp((tr(R_gt^T R_gen) - 1) / 2)) on the raw "
                   "relative rotations (general 4x4 inverses, no re-orthonormalisation) (rad; rot_err_deg "
                   "the same in degrees)",
    "normalisation": "CamI2V's: each trajectory's translations divided by (its largest centre norm + 1e-9); "
                     "a static trajectory is divided by 1e-9",
}


def protocol_block(
    estimator: PoseEstimator,
    failure_policy: str,
    trials: int,
    trials_are: str = "generations",
    reduction: str = "flat",
    skip_first_video: bool = False,
    arithmetic: str = "vid3d",
    outlier_sigma: float | None = None,
) -> dict[str, Any]:
    """The 'protocol' block of results.json: how the numbers were produced, which arithmetic each column
    uses and which aggregation rules were applied."""
    arith = _CAMI2V_ARITHMETIC if arithmetic == "cami2v" else _VID3D_ARITHMETIC
    if reduction == "cami2v":
        rule = ("none" if outlier_sigma is None else
                "a whole (clip, trial) entry is dropped when any of rot_err_rad, trans_err, cammc (and the "
                f"abs metrics when computed) lies more than {outlier_sigma:g} population standard deviations "
                "from the mean, both pooled over every entry of the method")
        reduction_text = (
            "CamI2V's merge + summary: failed estimations skipped; outlier entries dropped; the kept trials "
            "averaged per clip, then the clips; CI: 95% percentile bootstrap over the per-clip means (1000 "
            "resamples, seed 0); std over clips"
            + ("; the first clip of the per-clip table (ascending trials, clips in id order) is left out "
               "(CamI2V summary.py's skiprows=[0])" if skip_first_video else
               "; every clip counts (CamI2V's skiprows=[0] quirk, which leaves out the first clip, is off: "
               "protocol=cami2v_skiprows turns it on)")
        )
    else:
        rule = ("none" if outlier_sigma is None else
                f"per metric, values further than {outlier_sigma:g} standard deviations from the method's "
                "mean are dropped")
        reduction_text = (
            "metrics are per-video sums over frames, averaged over every (clip, trial) with a 95% percentile "
            "bootstrap CI (1000 resamples, seed 0); per_frame_mean = mean over videos of (sum / n_frames)"
        )
    trial_text = (
        f"{trials} pose estimations of one generated video per (method, clip) (generation seeded with "
        "trial 0's seed; estimator seed + trial)" if trials_are == "estimations" else
        f"{trials} generations per (method, clip), each estimated once"
    )
    return {
        "pose_estimator": estimator.describe(),
        "pose_convention": "OpenCV camera-to-world; each trajectory made relative to its first frame",
        "arithmetic": arithmetic,
        "normalisation": arith["normalisation"],
        "metrics": {
            "rot_err_rad": arith["rot_err_rad"],
            "trans_err": "sum over frames of ||t_gt - t_gen||_2 on normalised camera centres (unitless)",
            "cammc": "sum over frames of ||[R|t]_gt - [R|t]_gen||_F, 3x4 normalised c2w (unitless)",
            "trans_err_abs, cammc_abs": (
                "CamI2V's absolute-scale metrics: against COLMAP on the ground-truth video (same trial), "
                "both trajectories times their metric-depth scale, divided by the reference's largest "
                "centre norm + 1e-9; 'not computed' with the reason when no metric scale exists"
            ),
        },
        "reduction": reduction_text,
        "outlier_rule": rule,
        "failure_policy": failure_policy,
        "fidelity": (
            "psnr_gt: PSNR (dB) of the generated frames 1..N-1 against the clip's ground-truth frames "
            "(frame 0 is the conditioning image), mean over frames, then over videos with a 95% bootstrap "
            "CI; every video counts, whatever its pose estimation did; identical frames read 100 dB"
        ),
        "trials": trials,
        "trials_are": trial_text,
        "seeding": "torch and numpy global RNGs seeded with crc32(method, clip_id, trial) before generation "
                   "(a camera-control row: its model row's method name, so both draw the same noise)",
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


TRIALS_ARE = ("generations", "estimations")
NO_METRIC_DEPTH = (
    "no metric-depth model configured (protocol.metric_depth): CamI2V scales each COLMAP trajectory by "
    "Depth Anything V2 Metric (Hypersim, ViT-L) on the first frame; vid3d ships no such model or weights"
)


def metric_scale_of(
    frames: np.ndarray, points: np.ndarray | None, metric_depth: Callable[[np.ndarray], np.ndarray] | None
) -> tuple[float | None, str | None]:
    """CamI2V's metric scale of a reconstruction: ``depth_scale`` of the first frame's points (``u, v, z``
    rows of ``PoseResult.first_frame_points``) against ``metric_depth(frames[0])`` ((h, w) metres).
    Returns (scale, None) or (None, why not)."""
    if metric_depth is None:
        return None, NO_METRIC_DEPTH
    if points is None or len(points) == 0:
        return None, "the pose estimator gave no 3D points seen in the first frame"
    depth = np.asarray(metric_depth(frames[0]), dtype=np.float64)
    d = sample_depth(depth, points[:, :2], frames.shape[1:3])
    return depth_scale(points[:, 2], d), None


def seed_name(name: str, method: Method) -> str:
    """The row name whose seeds ``method`` uses: its own, or ``method.seed_as`` (a control row sampled with
    its model row's seeds, so that only its input differs: ``eval.camera_controls``)."""
    return getattr(method, "seed_as", None) or name


def _generate(
    clip: EvalClip, name: str, method: Method, seed: int, lookahead: Lookahead | None = None
) -> tuple[np.ndarray, float]:
    torch.manual_seed(seed)
    np.random.seed(seed)
    t0 = time.perf_counter()
    got = lookahead.get(clip, name, seed) if lookahead is not None else None
    if got is not None:  # generated in a batch (eval.batch_size): its share of the batch's time
        frames, t_gen = check_frames(got[0]), got[1]
    else:
        frames, t_gen = check_frames(method(clip)), None
    n = len(clip.frames)
    if len(frames) != n:
        raise ValueError(
            f"method {name!r} returned {len(frames)} frames for clip {clip.clip_id}, expected {n}"
        )
    return frames, (time.perf_counter() - t0) if t_gen is None else t_gen


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
    trials_are: str = "generations",
    cache: dict | None = None,
    metric_depth: Callable[[np.ndarray], np.ndarray] | None = None,
    lookahead: Lookahead | None = None,
) -> dict:
    # trials_are="estimations" (CamI2V): one video per (method, clip), generated with trial 0's seed; each
    # trial is a new pose estimation of it with the estimator's seed + trial.
    gen_trial = 0 if trials_are == "estimations" else trial
    seed = trial_seed(seed_name(name, method), clip.clip_id, gen_trial)
    t0 = time.perf_counter()
    cached = (cache or {}).get((name, clip.clip_id)) if trials_are == "estimations" else None
    if cached is None:
        frames, t_gen = _generate(clip, name, method, seed, lookahead)
        if cache is not None and trials_are == "estimations":
            cache.clear()  # one video held at a time: trials of a (method, clip) run back to back
            cache[(name, clip.clip_id)] = (frames, t_gen)
    else:
        frames, t_gen = cached
    n = len(clip.frames)
    video_path = None
    if video_dir is not None:  # written before the record: a record never points at a missing video
        from vid3d.atomic import remove_stale_temps
        from vid3d.viz import write_video

        video_path = video_relpath(name, clip.clip_id, gen_trial)
        if cached is None or not (video_dir / video_path).exists():
            # run_shard holds this shard's lock and a clip belongs to one shard: no live writer of this
            # video exists, so a temporary .mp4 left by a killed run goes now, not only after STALE_AFTER_S
            remove_stale_temps(video_dir / video_path, older_than_s=0)
            write_video(video_dir / video_path, frames, fps=fps)
    # Intrinsics follow the generated resolution (a model may generate at a lower resolution than GT).
    K = rescale_K(clip.K_px, clip.frames.shape[1:3], frames.shape[1:3])
    trial_estimator = estimator.for_trial(trial) if trials_are == "estimations" else estimator
    result = trial_estimator.estimate(frames, K, gt_c2w=clip.gt_c2w)
    record: dict[str, Any] = {
        "method": name,
        "clip_id": clip.clip_id,
        "trial": trial,
        "trials_are": trials_are,
        "seed": seed,
        "estimator_seed": getattr(trial_estimator, "seed", None),
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
        record["errors_cami2v"] = cami2v_errors(result.c2w[mask], clip.gt_c2w[mask])
        record["errors_on_registered_only"] = bool(not mask.all())
        scale, why = metric_scale_of(frames, result.first_frame_points, metric_depth)
        record["metric_scale"], record["metric_scale_reason"] = scale, why
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
    trials_are: str = "generations",
    reduction: str = "flat",
    skip_first_video: bool = False,
    arithmetic: str = "vid3d",
    metric_depth: Callable[[np.ndarray], np.ndarray] | None = None,
    batch_size: int = 1,
) -> dict[str, Any]:
    """Evaluate camera accuracy of ``methods`` on this shard of ``clips``; resumable.

    Args:
        clips: evaluation clips (ids unique).
        methods: name -> callable returning generated (n, H', W', 3) uint8 frames for a clip (same n). A
            method with an ``applies(clip) -> bool`` attribute is evaluated only on the clips it applies to
            (``depth_warp`` on clips with depth); the others get no record of it.
            Before each call the torch/numpy global RNGs are seeded with ``trial_seed`` (of the name in
            the method's ``seed_as`` attribute where it has one: a control row seeded as its model row).
        estimator: pose estimator applied to every generated video.
        out_dir: records go to ``out_dir/records.shard{shard}of{num_shards}.jsonl``; results.* are
            written from all ``records*.jsonl`` files in ``out_dir``.
        shard, num_shards: this process handles clip i (sorted by id) with i % num_shards == shard.
        trials: samples per (method, clip), trial = 0 .. trials-1.
        progress: report each item (vid3d/progress.py: a bar, or lines in a log).
        failure_policy: see ``aggregate.aggregate``.
        extra_protocol: more entries for the protocol block (e.g. versions, commit, composed config).
        save_videos: also write each generated video to ``out_dir/videos/{method}/{clip_id}_t{trial}.mp4``
            (H.264, ``video_fps``; path in the record's ``video`` field) before its record is appended.
            Resumed samples are not regenerated, so they keep whatever video an earlier run wrote.
        outlier_sigma: see ``aggregate.aggregate`` (None: no outlier removal; protocol=cami2v: 10).
        trials_are: "generations" (each trial a new video, seeded by ``trial_seed``) or "estimations"
            (CamI2V: one video per (method, clip) from trial 0's seed, each trial a new pose estimation
            with ``estimator.for_trial(trial)``). A resumed run regenerates the video from that seed, so its
            remaining trials see the same video only where generation is deterministic (the CPU).
        reduction, skip_first_video: see ``aggregate.aggregate`` ("cami2v": CamI2V's merge + summary).
        arithmetic: "vid3d" (``camera_errors``) or "cami2v" (``cami2v.cami2v_errors``): which errors the
            table reports; records always hold both (``errors``, ``errors_cami2v``).
        metric_depth: (H, W, 3) uint8 first frame -> (h, w) metric depth; gives each record a
            ``metric_scale`` and the TransErr_abs / CamMC_abs columns (``attach_abs_errors``). None: those
            columns say why they are not computed.
        fvd: when given, every new record stores the features of its generated video and of its clip's
            ground-truth video (computed for this shard's clips before any generation, which also checks
            the network on the clips' shape), and each method's results get an FVD entry
            (``fvd.fvd_entry``; without it the entry says FVD was not computed).
        batch_size: videos per forward for methods with a ``batch`` entry point (``batching.Lookahead``;
            same seeds per item, same records to float rounding); 1: one by one.
    Returns:
        {"results": per-method aggregate, "protocol": ..., "paths": written files, "n_new": records added,
        "n_skipped": already done, "records": the records aggregated (sorted by key; JSON values, as in
        the files), "table": the results ``tables.Table``, "summary_md": the table and its notes,
        "markdown": results.md's text}.
    """
    if trials_are not in TRIALS_ARE:
        raise ValueError(f"trials_are must be one of {TRIALS_ARE}, got {trials_are!r}")
    if arithmetic not in ARITHMETICS:
        raise ValueError(f"arithmetic must be one of {tuple(ARITHMETICS)}, got {arithmetic!r}")
    out = Path(out_dir)
    gt_features: dict[str, Any] = {}
    cache: dict = {}
    ahead: dict[str, Lookahead] = {}

    def features_of_todo(todo: list[tuple[EvalClip, str, int]]) -> None:
        gen_trial = (lambda t: 0) if trials_are == "estimations" else (lambda t: t)
        entries = [(c, name, trial_seed(seed_name(name, methods[name]), c.clip_id, gen_trial(t)))
                   for c, name, t in todo]
        ahead["videos"] = Lookahead(entries, methods, batch_size, lambda c: c.clip_id)
        if fvd is not None:
            for clip in {c.clip_id: c for c, _, _ in todo}.values():
                gt_features[clip.clip_id] = fvd.features(clip.frames[None])[0]

    def evaluate(clip: EvalClip, name: str, trial: int) -> dict[str, Any]:
        return _evaluate_one(
            clip, name, methods[name], trial, estimator, video_dir=out if save_videos else None,
            fps=video_fps, fvd=fvd, gt_features=gt_features.get(clip.clip_id), trials_are=trials_are,
            cache=cache, metric_depth=metric_depth, lookahead=ahead.get("videos"),
        )

    run = run_shard(
        clips, lambda c: c.clip_id, methods, evaluate, out, shard=shard, num_shards=num_shards,
        trials=trials, label="camera eval", progress=progress, before=features_of_todo,
        applies=lambda clip, name: bool(getattr(methods[name], "applies", lambda _: True)(clip)),
    )
    records = merge_shards([out], known={run.path: run.records})
    scored = copy.deepcopy(records)  # the returned records stay as in the files
    attach_abs_errors(scored)
    results = aggregate(
        scored, metrics=metrics, failure_policy=failure_policy, outlier_sigma=outlier_sigma,
        reduction=reduction, skip_first_video=skip_first_video, errors_key=ARITHMETICS[arithmetic],
    )
    fvd_protocol = {"computed": False, "reason": "metrics.fvd.i3d not set"} if fvd is None else fvd.describe()
    block = protocol_block(estimator, failure_policy, trials, trials_are, reduction, skip_first_video,
                           arithmetic, outlier_sigma)
    protocol = {**block, "fvd": fvd_protocol, **dict(extra_protocol or {})}
    report = results_report(results, protocol)
    paths = report.write(out, "results")
    return {
        "results": results, "protocol": protocol, "paths": paths,
        "n_new": run.n_new, "n_skipped": run.n_skipped,
        "records": records, "table": report.table, "summary_md": report.summary, "markdown": report.markdown,
    }
