"""Sparse-view evaluation loop: two context views -> generated target views -> PSNR / SSIM / LPIPS.

For every (method, pair, trial) of this shard: skip it if its record exists, else ask the method for the
target frames (given the context frames, the cameras of [context_0, *targets, context_1] and nothing
else of the ground truth), score them against the ground-truth target frames and append one record
(``runner.run_shard``, key (method, pair_id, trial); ``clip_id`` holds the pair id). Then aggregate
the records of ``out_dir`` (this shard's from memory, other shards' files from disk), write
``results.{json,csv,md,tex}`` and return the records and tables. Reruns resume; shards merge.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import tables
from .aggregate import bootstrap_ci, merge_shards
from .batching import Lookahead
from .image_metrics import ImageMetrics
from .records import to_jsonable
from .runner import run_shard, shard_items, trial_seed

__all__ = [
    "METRICS",
    "SparsePair",
    "aggregate_sparse",
    "ground_truth_method",
    "load_pairs",
    "nearest_context_method",
    "run_sparse_eval",
    "shard_pairs",
    "sparse_results_report",
    "write_sparse_results",
]

METRICS = ("psnr", "ssim", "lpips")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}
REFERENCE_ROWS = ("nearest_context", "ground_truth")


@dataclass
class SparsePair:
    """One evaluation pair.

    ``frames`` (n, H, W, 3) uint8, ``K_px`` (n, 3, 3), ``c2w`` (n, 4, 4) are for the frame indices
    ``[context[0], *target, context[1]]`` in that order (c2w in the dataset's world frame).
    """

    pair_id: str
    clip_id: str
    context: tuple[int, int]
    target: tuple[int, ...]
    frames: np.ndarray
    K_px: np.ndarray
    c2w: np.ndarray
    overlap: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_indices(self) -> list[int]:
        return [self.context[0], *self.target, self.context[1]]

    @property
    def gt_targets(self) -> np.ndarray:
        return self.frames[1:-1]

    @property
    def context_frames(self) -> np.ndarray:
        return self.frames[[0, -1]]


Method = Callable[[SparsePair], np.ndarray]  # -> (len(target), H, W, 3) uint8


def load_pairs(
    root: str | Path,
    split: str,
    rows: Sequence[Mapping[str, Any]],
    height: int,
    width: int,
    with_path: bool = False,
) -> list[SparsePair]:
    """SparsePairs for overlap-index rows: frames centre-cropped and resized to (height, width).

    with_path: also ``info["path"]`` = {"indices", "frames", "K_px", "c2w"} of every frame strictly between
    the context views that is not a target (what a reconstruction may be fitted on besides the context
    views; never the targets), and ``info["depth_range"]`` = (min, max) z-depth over the pair's frames when
    the clip has a depth file (the synthetic set), else absent."""
    from vid3d.data.formats.re10k import list_clips, read_camera_file, read_depth, read_frames
    from vid3d.data.transforms import center_crop_resize

    clips = {c.clip_id: c for c in list_clips(root, split, missing="skip")}
    out = []
    for r in rows:
        if r["clip_id"] not in clips:
            raise FileNotFoundError(
                f"{root}/{split}: pair {r['pair_id']}: clip {r['clip_id']} is not in the dataset"
            )
        clip = clips[r["clip_id"]]
        cams = read_camera_file(clip.camera_path, root=root)  # links out of the dataset refused
        idx = np.asarray([r["context"][0], *r["target"], r["context"][1]], dtype=np.int64)
        frames = read_frames(clip, cams, idx, root=root)
        K = cams.K_px(*frames.shape[1:3])[idx]
        frames, K = center_crop_resize(frames, K, height, width)
        info: dict[str, Any] = {}
        if with_path:
            i, j = r["context"]
            path_idx = np.asarray([t for t in range(i + 1, j) if t not in set(r["target"])], dtype=np.int64)
            if len(path_idx):
                pf = read_frames(clip, cams, path_idx, root=root)
                pf, pK = center_crop_resize(pf, cams.K_px(*pf.shape[1:3])[path_idx], height, width)
            else:
                pf, pK = np.zeros((0, height, width, 3), np.uint8), np.zeros((0, 3, 3))
            info["path"] = {
                "indices": path_idx, "frames": pf, "K_px": np.asarray(pK), "c2w": cams.c2w()[path_idx],
            }
            depth = read_depth(clip, np.concatenate([idx, path_idx]), root=root)
            if depth is not None and (depth > 0).any():
                info["depth_range"] = (float(depth[depth > 0].min()), float(depth.max()))
        out.append(
            SparsePair(
                r["pair_id"],
                r["clip_id"],
                tuple(r["context"]),
                tuple(r["target"]),
                frames,
                np.asarray(K),
                cams.c2w()[idx],
                r.get("overlap"),
                info,
            )
        )
    return out


def nearest_context_method(pair: SparsePair) -> np.ndarray:
    """Reference row: each target gets the context view nearest to it in frame index (ties: the first)."""
    i, j = pair.context
    return np.stack([pair.frames[0] if abs(t - i) <= abs(j - t) else pair.frames[-1] for t in pair.target])


def ground_truth_method(pair: SparsePair) -> np.ndarray:
    """Reference row (sanity): the ground-truth targets themselves (PSNR +inf, SSIM 1, LPIPS 0)."""
    return pair.gt_targets


def shard_pairs(pairs: Sequence[SparsePair], shard: int, num_shards: int) -> list[SparsePair]:
    """Pair i of the pairs sorted by id goes to shard i % num_shards."""
    return shard_items(pairs, lambda p: p.pair_id, shard, num_shards)


def _evaluate_one(
    pair: SparsePair, name: str, method: Method, trial: int, metrics: ImageMetrics,
    lookahead: Lookahead | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    seed = trial_seed(name, pair.pair_id, trial)
    torch.manual_seed(seed)
    np.random.seed(seed)
    t0 = time.perf_counter()
    got = lookahead.get(pair, name, seed) if lookahead is not None else None
    if got is not None:  # generated in a batch (eval.batch_size): its share of the batch's time
        pred, t_gen = np.asarray(got[0]), got[1]
    else:
        pred = np.asarray(method(pair))
        t_gen = time.perf_counter() - t0
    gt = pair.gt_targets
    if pred.shape != gt.shape or pred.dtype != np.uint8:
        raise ValueError(
            f"method {name!r} returned {pred.shape} {pred.dtype} for pair {pair.pair_id}, "
            f"expected {gt.shape} uint8"
        )
    per_frame = metrics(pred, gt)
    values = {}
    for m in METRICS:
        v = per_frame.get(m)
        values[m] = None if v is None else float(np.mean(v))
    record = {
        "method": name,
        "clip_id": pair.pair_id,
        "trial": trial,
        "seed": seed,
        "source_clip": pair.clip_id,
        "context": list(pair.context),
        "target": list(pair.target),
        "overlap": pair.overlap,
        "resolution_hw": list(gt.shape[1:3]),
        "success": True,
        # PSNR of identical frames is +inf; JSON has no inf: "psnr_inf" marks it (value stored as null).
        "metrics": {m: (v if v is None or math.isfinite(v) else None) for m, v in values.items()},
        "psnr_inf": bool(values["psnr"] is not None and math.isinf(values["psnr"])),
        "per_frame": {
            m: (None if v is None else [x if math.isfinite(x) else None for x in v])
            for m, v in per_frame.items()
        },
        "timings_s": {"generate": t_gen, "total": time.perf_counter() - t0},
    }
    return record, pred


def _record_value(r: Mapping[str, Any], m: str) -> float | None:
    v = r["metrics"].get(m)
    if m == "psnr" and r.get("psnr_inf"):
        return math.inf
    return None if v is None else float(v)


def aggregate_sparse(
    records: Sequence[Mapping[str, Any]], n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per method: n and, per metric, mean over pairs with a 95% percentile-bootstrap CI (``available``
    False when no record has the metric, e.g. LPIPS without weights)."""
    groups: dict[str, list] = {}
    for r in records:
        groups.setdefault(str(r["method"]), []).append(r)
    out = {}
    # model rows first, then the reference rows
    for method in sorted(groups, key=lambda m: (m in REFERENCE_ROWS, m)):
        recs = groups[method]
        stats = {}
        for m in METRICS:
            vals = [v for v in (_record_value(r, m) for r in recs) if v is not None]
            if not vals:
                stats[m] = {"available": False, "mean": None, "ci_low": None, "ci_high": None, "n": 0}
                continue
            arr = np.asarray(vals, dtype=np.float64)
            if np.isinf(arr).any():  # the ground-truth row's PSNR
                mean, lo, hi = float(arr.mean()), float(arr.mean()), float(arr.mean())
            else:
                mean = float(arr.mean())
                lo, hi = bootstrap_ci(arr, n_boot=n_boot, seed=seed)
            stats[m] = {"available": True, "mean": mean, "ci_low": lo, "ci_high": hi, "n": int(arr.size)}
        out[method] = {"n": len(recs), "metrics": stats}
    return out


DIGITS = {"psnr": 2, "ssim": 3, "lpips": 3}
LABELS = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "lpips": "LPIPS ↓"}


def metric_cell(s: Mapping[str, Any], m: str) -> str:
    if not s.get("available"):
        return "unavailable" if m == "lpips" else "n/a"
    return tables.ci_cell(s["mean"], s["ci_low"], s["ci_high"], DIGITS[m], nan="nan")


def results_table(results: Mapping[str, Any]) -> tables.Table:
    """One row per method: n and each image metric's mean [95% CI] (W&B logs the same table)."""
    return tables.Table(
        ["method", "n", *(f"{LABELS[m]} [95% CI]" for m in METRICS)],
        [
            [method, str(r["n"]), *(metric_cell(r["metrics"][m], m) for m in METRICS)]
            for method, r in results.items()
        ],
    )


def sparse_results_report(results: Mapping[str, Any], protocol: Mapping[str, Any]) -> tables.Report:
    """The texts of results.json ({"protocol", "results"}; +inf written as "inf"), results.csv, results.md
    and the table as LaTeX (results.tex), with the table and its Markdown summary (``tables.Report``)."""
    payload = {"protocol": to_jsonable(dict(protocol)), "results": tables.jsonable_inf(results)}
    stats = ("mean", "ci_low", "ci_high")
    csv_rows = [
        [method, r["n"]]
        + [r["metrics"][m].get(s) if r["metrics"][m].get("available") else "" for m in METRICS for s in stats]
        for method, r in results.items()
    ]
    table = results_table(results)
    bucket = protocol.get("bucket", {})
    summary = tables.text(
        [f"Sparse view, overlap bucket {bucket.get('name', '?')} {bucket.get('range', '')}", ""],
        tables.markdown(table),
    )
    return tables.Report(table, summary, {
        "json": tables.json_text(payload),
        "csv": tables.csv_text(["method", "n"] + [f"{m}_{s}" for m in METRICS for s in stats], csv_rows),
        "md": summary + tables.text(tables.protocol_lines(protocol)),
        "tex": tables.latex(table),
    })


def write_sparse_results(
    out_dir: str | Path, results: Mapping[str, Any], protocol: Mapping[str, Any]
) -> dict[str, Path]:
    """``sparse_results_report`` written into ``out_dir`` as results.{json,csv,md,tex}, each atomically.
    Returns their paths."""
    return sparse_results_report(results, protocol).write(out_dir, "results")


def run_sparse_eval(
    pairs: Sequence[SparsePair],
    methods: Mapping[str, Method],
    metrics: ImageMetrics,
    out_dir: str | Path,
    shard: int = 0,
    num_shards: int = 1,
    trials: int = 1,
    progress: bool = True,
    protocol: Mapping[str, Any] | None = None,
    on_record: Callable[[SparsePair, str, np.ndarray, dict], None] | None = None,
    batch_size: int = 1,
) -> dict[str, Any]:
    """Evaluate ``methods`` on this shard of ``pairs``; resumable (see module docstring).

    Records go to ``out_dir/records.shard{shard}of{num_shards}.jsonl``; results.* are written from all
    ``records*.jsonl`` in ``out_dir`` (this shard's kept in memory, not read again).
    ``on_record(pair, method, predicted targets, record)`` is called after each new record (e.g. to collect
    images for W&B). ``batch_size``: pairs per forward for methods with a ``batch`` entry point
    (``batching.Lookahead``; same seeds per pair, same records to float rounding).
    Returns {"results", "protocol", "paths", "n_new", "n_skipped", "records" (sorted by key, as in the
    files), "table" (``tables.Table``), "summary_md" (title and table), "markdown" (results.md's text)}.
    """
    out = Path(out_dir)
    predicted: dict[tuple[str, str, int], np.ndarray] = {}
    ahead: dict[str, Lookahead] = {}

    def batches(todo: list[tuple[SparsePair, str, int]]) -> None:
        entries = [(p, name, trial_seed(name, p.pair_id, t)) for p, name, t in todo]
        ahead["videos"] = Lookahead(entries, methods, batch_size, lambda p: p.pair_id)

    def evaluate(pair: SparsePair, name: str, trial: int) -> dict[str, Any]:
        rec, pred = _evaluate_one(pair, name, methods[name], trial, metrics, ahead.get("videos"))
        if on_record is not None:
            predicted[(name, pair.pair_id, trial)] = pred
        return rec

    def after(pair: SparsePair, name: str, trial: int, rec: dict[str, Any]) -> None:
        if on_record is not None:
            on_record(pair, name, predicted.pop((name, pair.pair_id, trial)), rec)

    run = run_shard(
        pairs, lambda p: p.pair_id, methods, evaluate, out, shard=shard, num_shards=num_shards,
        trials=trials, label="sparse eval", progress=progress, before=batches, after=after,
    )
    records = merge_shards([out], known={run.path: run.records})
    results = aggregate_sparse(records)
    proto = {**dict(protocol or {}), "image_metrics": metrics.describe()}
    report = sparse_results_report(results, proto)
    paths = report.write(out, "results")
    return {
        "results": results, "protocol": proto, "paths": paths, "n_new": run.n_new, "n_skipped": run.n_skipped,
        "records": records, "table": report.table, "summary_md": report.summary, "markdown": report.markdown,
    }
