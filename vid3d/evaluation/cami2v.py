"""CamI2V's camera-error arithmetic and its aggregation rules, written from its evaluation code's rules
(CamI2V @c5d7b2f: ``evaluation/glomap_evaluation.py``, ``evaluation/utils/common.py``,
``evaluation/utils/merge.py``, ``evaluation/utils/summary.py``) for ``protocol=cami2v``.

Arithmetic (``cami2v_errors``), on (n, 4, 4) OpenCV camera-to-world poses:

- world-to-camera by vid3d's rigid inversion (``invert_rigid``: rotations exactly the file's), then
  CamI2V's steps: c2w = inverse(w2c) and relative = [I, inverse(c2w_0) @ c2w_i] with general 4x4 inverses
  (no re-orthonormalisation; frame 0 is the identity exactly);
- RotErr = sum_i arccos(clamp((tr(R_gt_i^T R_gen_i) - 1) / 2, -1, 1)) in radians on those raw
  rotations (vid3d's own arithmetic, ``camera_errors``: atan2 after projection onto SO(3));
- each trajectory's translations divided by (its largest camera-centre norm + 1e-9): a static
  trajectory (all centres at the first) is divided by 1e-9, so centre noise of 1e-12 becomes 1e-3
  (vid3d's own arithmetic zeroes a static trajectory's translations);
- TransErr = sum_i ||t_gt_i - t_gen_i||, CamMC = sum_i ||[R|t]_gt_i - [R|t]_gen_i||_F (3x4).

Absolute scale (``cami2v_abs_errors``): CamI2V's TransErr_abs / CamMC_abs compare the generated video's
COLMAP trajectory with COLMAP on the ground-truth video of the same trial (not the camera file), each
multiplied by its own metric-depth scale (``depth_scale``), then both divided by the reference's largest
centre norm + 1e-9.

Aggregation (``cami2v_reduce``): a trial is one pose-estimation run; an entry is one (video, trial)
success with its metrics. An entry is dropped when any metric lies more than k (10) population standard
deviations from the mean, both pooled over every entry of the method; the kept entries are averaged per
video, then the videos. CamI2V's summary reads its per-video CSV with ``skiprows=[0]``, so the first video
becomes the header row and is left out of the means: ``skip_first_video=True`` reproduces that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vid3d.geometry import invert_rigid

__all__ = [
    "CAMI2V_EPS",
    "CAMI2V_RULE_METRICS",
    "attach_abs_errors",
    "cami2v_abs_errors",
    "cami2v_errors",
    "cami2v_reduce",
    "cami2v_relative",
    "depth_scale",
    "normalize_t",
    "sample_depth",
]

CAMI2V_EPS = 1e-9  # added to the largest centre norm (CamI2V's normalize_t)
# the metrics whose 10-sigma test drops an entry (CamI2V's five; the degree column is the radian one x 180/pi)
CAMI2V_RULE_METRICS = ("rot_err_rad", "trans_err", "cammc", "trans_err_abs", "cammc_abs")


def _c2w44(c2w: Any, name: str) -> np.ndarray:
    arr = np.asarray(c2w.detach().cpu().double().numpy() if hasattr(c2w, "detach") else c2w, np.float64)
    if arr.ndim != 3 or arr.shape[1:] not in ((4, 4), (3, 4)) or arr.shape[0] < 1:
        raise ValueError(f"{name}: expected (n, 4, 4) camera-to-world poses, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: poses contain NaN/inf")
    if arr.shape[1] == 3:
        arr = np.concatenate([arr, np.broadcast_to([[[0.0, 0.0, 0.0, 1.0]]], (len(arr), 1, 4))], axis=1)
    return arr


def cami2v_relative(c2w: Any) -> np.ndarray:
    """(n, 4, 4) relative camera-to-world poses by CamI2V's steps: w2c (vid3d's rigid inversion), c2w =
    inv(w2c), then [I, inv(c2w_0) @ c2w_i for i >= 1] with general matrix inverses (raw rotations)."""
    w2c = np.asarray(invert_rigid(_c2w44(c2w, "c2w")), dtype=np.float64)
    c2w_raw = np.linalg.inv(w2c)
    rel = np.linalg.inv(c2w_raw[0]) @ c2w_raw
    rel[0] = np.eye(4)
    return rel


def normalize_t(c2w_rel: np.ndarray, ref_rel: np.ndarray | None = None) -> np.ndarray:
    """Translations of ``c2w_rel`` (n, 4, 4) divided by max_i ||t_ref_i|| + 1e-9 (``ref_rel`` defaults to
    ``c2w_rel`` itself); rotations unchanged."""
    ref = c2w_rel if ref_rel is None else ref_rel
    scale = float(np.linalg.norm(ref[:, :3, 3], axis=-1).max()) + CAMI2V_EPS
    out = np.array(c2w_rel, dtype=np.float64)
    out[:, :3, 3] = out[:, :3, 3] / scale
    return out


def _trans_cammc(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    trans = np.linalg.norm(a[:, :3, 3] - b[:, :3, 3], axis=-1).sum()
    cammc = np.linalg.norm((a[:, :3, :4] - b[:, :3, :4]).reshape(len(a), -1), axis=-1).sum()
    return float(trans), float(cammc)


def cami2v_errors(gen_c2w: Any, gt_c2w: Any) -> dict[str, Any]:
    """RotErr / TransErr_rel / CamMC_rel by CamI2V's arithmetic (module docstring).

    Args:
        gen_c2w, gt_c2w: (n, 4, 4) OpenCV camera-to-world poses (any world frame and scale).
    Returns:
        ``rot_err_rad`` (radians, sum over frames), ``rot_err_deg`` (the same in degrees), ``trans_err``,
        ``cammc`` (sums), their ``*_per_frame`` (sums / n), ``n_frames`` and ``arithmetic: "cami2v"``.
    """
    gen, gt = cami2v_relative(gen_c2w), cami2v_relative(gt_c2w)
    if len(gen) != len(gt):
        raise ValueError(f"gen_c2w has {len(gen)} frames but gt_c2w has {len(gt)}")
    n = len(gen)
    cos = (np.einsum("nji,nji->n", gt[:, :3, :3], gen[:, :3, :3]) - 1.0) / 2.0  # tr(R_gt^T R_gen)
    rot = float(np.arccos(np.clip(cos, -1.0, 1.0)).sum())
    trans, cammc = _trans_cammc(normalize_t(gt), normalize_t(gen))
    out: dict[str, Any] = {
        "rot_err_rad": rot,
        "rot_err_deg": math.degrees(rot),
        "trans_err": trans,
        "cammc": cammc,
    }
    for key in list(out):
        out[f"{key}_per_frame"] = out[key] / n
    out.update({"n_frames": n, "arithmetic": "cami2v"})
    return out


def depth_scale(z_cam: Sequence[float] | np.ndarray, metric_depth: Sequence[float] | np.ndarray) -> float:
    """CamI2V's metric scale of a reconstruction: median over the reconstruction's 3D points seen in the
    first frame of (metric depth at the point's pixel / the point's depth z in the first camera)."""
    z = np.asarray(z_cam, dtype=np.float64)
    d = np.asarray(metric_depth, dtype=np.float64)
    if z.shape != d.shape or z.size == 0:
        raise ValueError(f"depth_scale: need equal non-empty arrays, got {z.shape} and {d.shape}")
    return float(np.median(d / z))


def sample_depth(depth: np.ndarray, uv: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Values of a (h, w) depth map at pixel positions ``uv`` (m, 2) of an (H, W) image, CamI2V's way:
    u / W * w and v / H * h truncated to integers (nearest lower cell, no interpolation)."""
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"metric depth must be an (h, w) map, got shape {depth.shape}")
    H, W = image_hw
    u = np.asarray(uv[:, 0], dtype=np.float64) / W * depth.shape[1]
    v = np.asarray(uv[:, 1], dtype=np.float64) / H * depth.shape[0]
    return depth[v.astype(np.int32), u.astype(np.int32)]


def cami2v_abs_errors(gen_c2w: Any, gen_scale: float, ref_c2w: Any, ref_scale: float) -> dict[str, float]:
    """TransErr_abs / CamMC_abs: the generated video's estimated trajectory against the reference (COLMAP
    on the ground-truth video, same trial), relative poses (``cami2v_relative``) with translations times
    each one's metric ``*_scale`` (``depth_scale``), both divided by the reference's largest centre
    norm + 1e-9. Returns ``trans_err_abs``, ``cammc_abs`` (sums over frames) and their ``*_per_frame``."""
    gen, ref = cami2v_relative(gen_c2w), cami2v_relative(ref_c2w)
    if len(gen) != len(ref):
        raise ValueError(f"gen_c2w has {len(gen)} frames but ref_c2w has {len(ref)}")
    gen[:, :3, 3] *= float(gen_scale)
    ref[:, :3, 3] *= float(ref_scale)
    trans, cammc = _trans_cammc(normalize_t(ref, ref), normalize_t(gen, ref))
    n = len(gen)
    return {
        "trans_err_abs": trans,
        "cammc_abs": cammc,
        "trans_err_abs_per_frame": trans / n,
        "cammc_abs_per_frame": cammc / n,
    }


def cami2v_reduce(
    entries: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    k: float | None = 10.0,
    skip_first_video: bool = False,
    rule_metrics: Sequence[str] = CAMI2V_RULE_METRICS,
) -> dict[str, Any]:
    """CamI2V's merge + summary on one method's successful entries.

    Args:
        entries: dicts with ``video`` (str), ``trial`` (int) and ``values`` ({metric: float}), one per
            successful (video, trial) pose estimation (failures are simply absent, as in CamI2V).
        metrics: the metrics to average.
        k: an entry is dropped when, for any rule metric, |x - mean| > k * std (population std; mean and
            std pooled over all entries); None keeps every entry. A metric takes part in the rule only
            when every entry has a finite value for it (CamI2V always has all five).
        skip_first_video: leave out the first video of the per-video table (CamI2V's ``skiprows=[0]``).
            The table lists videos in order of first appearance, reading trials in ascending order and
            each trial's entries in the given order (CamI2V: its trial files in glob order, each in
            sorted file-name order), keeping only videos with a kept entry.
        rule_metrics: the metrics of the outlier rule (those present in every entry).
    Returns:
        {"per_video": {video: {metric: mean over kept trials}} (in table order, the skipped one
        included), "order": [videos], "means": {metric: mean over the averaged videos},
        "averaged_videos": [videos], "skipped_video": video or None, "dropped": [(video, trial)],
        "rule_metrics": [the metrics tested], "n_entries", "n_kept"}.
    """
    if k is not None and not k > 0:
        raise ValueError(f"outlier_sigma must be > 0, got {k}")
    ordered = sorted(range(len(entries)), key=lambda i: int(entries[i]["trial"]))  # stable in-trial order

    def finite(m: str) -> bool:
        return all(math.isfinite(float(e["values"].get(m, math.nan))) for e in entries)

    tested = [m for m in rule_metrics if entries and k is not None and finite(m)]
    table = np.array([[float(e["values"][m]) for m in tested] for e in entries], dtype=np.float64)
    table = table.reshape(len(entries), len(tested))
    mean, std = (table.mean(axis=0), table.std(axis=0)) if len(entries) else (None, None)
    keep = [not np.any(np.abs(table[i] - mean) > k * std) for i in range(len(entries))]

    per_video: dict[str, dict[str, list[float]]] = {}
    for i in ordered:
        if keep[i]:
            e = entries[i]
            row = per_video.setdefault(str(e["video"]), {m: [] for m in metrics})
            for m in metrics:
                v = float(e["values"].get(m, math.nan))
                if math.isfinite(v):
                    row[m].append(v)
    means_per_video = {
        v: {m: float(np.mean(vals)) if vals else math.nan for m, vals in row.items()}
        for v, row in per_video.items()
    }
    order = list(means_per_video)
    averaged = order[1:] if skip_first_video else order
    means = {}
    for m in metrics:
        vals = [means_per_video[v][m] for v in averaged if math.isfinite(means_per_video[v][m])]
        means[m] = float(np.mean(vals)) if vals else math.nan
    return {
        "per_video": means_per_video,
        "order": order,
        "means": means,
        "averaged_videos": averaged,
        "skipped_video": order[0] if skip_first_video and order else None,
        "dropped": [(str(entries[i]["video"]), int(entries[i]["trial"])) for i in ordered if not keep[i]],
        "rule_metrics": tested,
        "n_entries": len(entries),
        "n_kept": int(sum(keep)),
    }


def attach_abs_errors(records: Sequence[dict[str, Any]], reference: str = "gt_video") -> None:
    """Add CamI2V's TransErr_abs / CamMC_abs (``cami2v.cami2v_abs_errors``) to each successful record, in
    place, into both ``errors`` and ``errors_cami2v``: the record's estimated trajectory against the one
    estimated on the ground-truth video (method ``reference``) for the same clip and trial, each scaled by
    its ``metric_scale``. A record that cannot have them gets ``abs_reason`` instead (no metric scale, no
    reference record, failed reference)."""
    index = {(r["method"], r["clip_id"], int(r["trial"])): r for r in records}
    for r in records:
        if not r.get("success") or r.get("errors") is None:
            continue
        ref = index.get((reference, r["clip_id"], int(r["trial"])))
        why = None
        if r.get("metric_scale") is None:
            why = r.get("metric_scale_reason") or "no metric scale recorded"
        elif ref is None:
            why = f"no {reference} record for this clip and trial (the reference: COLMAP on the GT video)"
        elif not ref.get("success"):
            why = f"pose estimation on the ground-truth video failed ({ref.get('reason')})"
        elif ref.get("metric_scale") is None:
            why = f"{reference}: {ref.get('metric_scale_reason') or 'no metric scale recorded'}"
        elif r.get("errors_on_registered_only") or ref.get("errors_on_registered_only"):
            why = "partial registration (CamI2V needs every frame)"
        if why is not None:
            r["abs_reason"] = why
            continue
        err = cami2v_abs_errors(np.asarray(r["est_c2w"]), float(r["metric_scale"]),
                                np.asarray(ref["est_c2w"]), float(ref["metric_scale"]))
        for key in ("errors", "errors_cami2v"):
            if r.get(key) is not None:
                r[key].update(err)
