"""What the benchmarks log to W&B: one run per evaluation run dir (offline without an account), everything
inside the run dir (set up by ``vid3d.wandb_setup.prepare_logger``). Camera benchmark: the results table,
summary scalars, a per-sample table and the media as captioned plain lists; pair benchmarks (sparse views,
reconstruction): the table and one context | predicted | ground-truth image per (pair, method)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from vid3d.wandb_setup import prepare_logger

from . import tables
from .camera_runner import EvalClip
from .fvd import find_fvd, fvd_column
from .sparse_runner import SparsePair, metric_cell


def init_run(cfg: DictConfig, out: Path, job_type: str, tags: list[str] | None = None):
    """The W&B run of an evaluation's run dir ``out``, set up from ``cfg.wandb`` by
    ``vid3d.wandb_setup.prepare_logger`` (offline without credentials, everything under ``out``, the
    multirun's group, a rerun in ``out`` continuing the same run); the resolved config as the run config."""
    import wandb

    run = wandb.init(**prepare_logger(cfg.wandb, out).init_kwargs(job_type=job_type, tags=tags or None))
    # set after init: a rerun continuing the run may bring a changed config
    run.config.update(OmegaConf.to_container(cfg, resolve=True), allow_val_change=True)
    return run


def trajectory_image(record: dict, gt_c2w: np.ndarray | None) -> np.ndarray | None:
    """GT vs estimated trajectory plot (both relative to the first frame and scale-normalised, as the
    metrics see them; a partial registration shows only the registered frames), or None."""
    from vid3d.evaluation.camera_errors import prepare_trajectory
    from vid3d.viz import plot_trajectory

    gt = record.get("gt_c2w", gt_c2w)
    if gt is None:
        return None
    gt = np.asarray(gt, dtype=np.float64)
    est = record.get("est_c2w")
    trajs = {}
    if est is not None:
        est = np.asarray([[[np.nan if v is None else v for v in row] for row in m] for m in est], np.float64)
        mask = np.all(np.isfinite(est.reshape(len(est), -1)), axis=1)
        if mask.any() and len(est) == len(gt):
            gt = gt[mask]
            trajs["estimated"] = prepare_trajectory(est[mask])[0]
    trajs = {"GT": prepare_trajectory(gt)[0], **trajs}
    status = "ok" if record.get("success") else "FAILED"
    title = f"{record['method']} | {record['clip_id']} | trial {record['trial']} | {status}"
    return plot_trajectory(trajs, title=title, size_px=360)


MEDIA_COLUMNS = [
    "method", "clip_id", "trial", "caption", "video_file", "success", "reason", "n_registered", "n_frames",
    "rot_err_deg", "rot_err_deg_per_frame", "trans_err", "trans_err_per_frame", "cammc", "estimate_s",
]


def media_caption(rec: dict) -> str:
    status = "ok" if rec.get("success") else "FAILED"
    return f"{rec['method']} | {rec['clip_id']} | trial {rec['trial']} | {status}"


def sample_media(out: Path, records: list[dict], clips: dict[str, EvalClip], max_media_rows: int):
    """Per (method, clip, trial): a W&B table of numbers, plus the media of the first ``max_media_rows`` rows
    as two plain lists (generated videos from the runner's saved mp4s; GT-vs-estimated trajectory plots), each
    captioned as the row's ``caption`` column. Plain media, not media inside the table: W&B writes plain
    media into the run's own ``files/media`` folder (relative paths, so a copied offline run dir syncs
    whole) but stages a table's media elsewhere by absolute path. ``video_file`` is the mp4's path in the
    eval run dir. Returns (table, videos, plots)."""
    import wandb

    rows, videos, plots = [], [], []
    for i, rec in enumerate(records):
        caption = media_caption(rec)
        if i < max_media_rows:
            if rec.get("video") and (out / rec["video"]).is_file():
                videos.append(wandb.Video(str(out / rec["video"]), format="mp4", caption=caption))
            clip = clips.get(rec["clip_id"])
            image = trajectory_image(rec, None if clip is None else clip.gt_c2w)
            if image is not None:
                plots.append(wandb.Image(image, caption=caption))
        err = rec.get("errors") or {}
        rows.append([
            rec["method"], rec["clip_id"], int(rec["trial"]), caption, rec.get("video"),
            bool(rec.get("success")), rec.get("reason"), rec.get("n_registered"), rec.get("n_frames"),
            err.get("rot_err_deg"), err.get("rot_err_deg_per_frame"), err.get("trans_err"),
            err.get("trans_err_per_frame"), err.get("cammc"), (rec.get("timings_s") or {}).get("estimate"),
        ])
    return tables.wandb_table(MEDIA_COLUMNS, rows), videos, plots


def log_to_wandb(
    cfg: DictConfig,
    out: Path,
    results: dict,
    records: list[dict] | None = None,
    clips: dict[str, EvalClip] | None = None,
    warning: str | None = None,
    tags: list[str] | None = None,
    camera_gap: dict[str, dict[str, float]] | None = None,
) -> None:
    """The results table (one scalar per row/metric, FVD under its results key, e.g.
    ``eval/<method>/fvd``), the model's camera gap (``eval/<method>/camera_gap@<sigma>``) and, with
    ``wandb.media``, the per-sample table and media (``sample_media``) as a W&B run; offline without
    credentials, everything inside ``out``."""

    run = init_run(
        cfg, out, "eval", tags if tags is not None else (["random-init-poses"] if warning else None)
    )
    if warning:
        run.summary["eval/WARNING"] = warning
    metrics = ["rot_err_deg", "trans_err", "cammc"]
    columns = ["method", "n", "failures", "success_rate"] + [f"{m}_mean" for m in metrics]
    columns += [f"{m}_std_over_trials" for m in metrics]
    fvd_col = fvd_column(results)
    rows = []
    for method, row in results.items():
        values = [row["metrics"].get(m, {}).get("mean") for m in metrics]
        spread = [row["metrics"].get(m, {}).get("std_over_trials") for m in metrics]
        fvd_key, fvd = find_fvd(row)
        fvd_value = fvd.get("value") if fvd.get("computed") else None
        rows.append([method, row["n"], row["failures"], row["success_rate"], *values, *spread, fvd_value,
                     fvd.get("n_generated")])
        run.summary[f"eval/{method}/success_rate"] = row["success_rate"]
        for m, v in zip(metrics, values):
            if v is not None and v == v:  # NaN when every estimation failed
                run.summary[f"eval/{method}/{m}"] = v
        # not computed: a string, never a number that could pass for an FVD
        run.summary[f"eval/{method}/{fvd_key}"] = fvd_value if fvd_value is not None else "not computed"
    for method, gap in (camera_gap or {}).items():
        for k, v in gap.items():
            if k.startswith("camera_gap"):
                run.summary[f"eval/{method}/{k}"] = v
    logs = {"eval/camera_results": tables.wandb_table(columns + [fvd_col, f"{fvd_col}_n_generated"], rows)}
    if records and cfg.wandb.get("media", True):
        max_rows = int(cfg.wandb.get("max_media_rows", 100))
        logs["eval/samples"], videos, plots = sample_media(out, records, clips or {}, max_rows)
        if videos:
            logs["eval/sample_videos"] = videos
        if plots:
            logs["eval/sample_trajectories"] = plots
    run.log(logs)
    run.finish()


def side_by_side(pair: SparsePair, pred: np.ndarray) -> np.ndarray:
    """(3H, max(2, T)W, 3) uint8: row 1 the two context views, row 2 the generated targets, row 3 GT."""
    h, w = pair.frames.shape[1:3]
    cols = max(2, len(pred))

    def row(frames: np.ndarray) -> np.ndarray:
        r = np.zeros((h, cols * w, 3), np.uint8)
        r[:, : len(frames) * w] = np.concatenate(list(frames), axis=1)
        return r

    return np.concatenate([row(pair.context_frames), row(pred), row(pair.gt_targets)], axis=0)


def log_pair_results(cfg: DictConfig, out: Path, results: dict, images: list, name: str = "sparse") -> None:
    import wandb

    run = init_run(cfg, out, f"eval_{name}")
    table = tables.wandb_table(
        ["method", "n", "PSNR", "SSIM", "LPIPS"],
        [[method, r["n"], *(metric_cell(r["metrics"][m], m) for m in ("psnr", "ssim", "lpips"))]
         for method, r in results.items()],
    )
    key = f"eval/{name}_{cfg.overlap.bucket}"
    # One image per (pair, method): context views | predicted targets | ground-truth targets, as rows.
    # (Plain image lists: wandb tables do not keep their images in offline runs.)
    samples = [
        wandb.Image(
            side_by_side(pair, pred),
            caption=f"{pair.pair_id} {method} overlap={pair.overlap} psnr={rec['metrics']['psnr']} "
            "(rows: context, predicted, ground truth)",
        )
        for pair, method, pred, rec in images
    ]
    run.log({f"{key}/results": table, **({f"{key}/samples": samples} if samples else {})})
    run.finish()
