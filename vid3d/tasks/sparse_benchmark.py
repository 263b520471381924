"""SparseBenchmark (``benchmark=sparse``, selected by ``python eval.py overlap=small ckpt=...``).

Pairs of context views from the data option's test split, selected by overlap bucket from the split's
overlap index (computed once and cached); the model generates the views between them in interpolation
mode (first view conditions the model, the last is pinned by replacement) at the target cameras; the
generated targets are scored against the ground-truth frames with PSNR / SSIM / LPIPS. Reference rows:
``nearest_context`` (each target = the nearer context view) and ``ground_truth`` (sanity). Writes
``records.shard*.jsonl`` and ``results.{json,csv,md,tex}`` in the run dir; a rerun resumes.
``python -m vid3d.report <multirun dir>`` merges buckets into one table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vid3d.evaluation.overlap.index import (
    StaleIndexError,
    build_index,
    load_index,
    select_pairs,
    write_index,
)
from vid3d.evaluation.runner import shard_lock
from vid3d.evaluation.sparse_runner import (
    SparsePair,
    ground_truth_method,
    load_pairs,
    nearest_context_method,
    run_sparse_eval,
)
from vid3d.evaluation.wandb_log import log_pair_results
from vid3d.tasks.common import (
    log,
    prepare_data,
    pretrained_choice,
    print_config_tree,
    reproducibility,
    run_dir,
)

__all__ = ["SparseBenchmark", "evaluate_sparse", "free_views", "model_method", "resolve_index", "run_buckets"]

ASSETS = Path(__file__).resolve().parents[1] / "data" / "assets" / "overlap"


def _estimator(cfg: DictConfig):
    """The overlap estimator of the node ``overlap.<estimator>`` (its ``_target_``; conf/overlap/_common)."""
    o = cfg.overlap
    if o.estimator not in o or "_target_" not in o[o.estimator]:
        raise ValueError(f"overlap.estimator={o.estimator!r}: no overlap.{o.estimator} node with a _target_ "
                         "(geometric or roma)")
    from hydra.utils import get_class

    # the class called directly (not hydra's instantiate): its own errors (missing RoMa weights) reach the
    # user unwrapped, as one line
    settings = OmegaConf.to_container(o[o.estimator], resolve=True)
    return get_class(settings.pop("_target_"))(**settings)


def resolve_index(cfg: DictConfig) -> tuple[dict[str, Any], Path]:
    """The overlap index of the data option's split: ``overlap.index`` if given (must match the dataset);
    else the cached one in ``overlap.cache_dir``, else the one shipped for the demo set, else computed
    now and cached."""
    o = cfg.overlap
    root = Path(cfg.data.root)
    if o.index:
        return load_index(o.index, root=root, split=o.split, estimator=o.estimator), Path(o.index)
    suffix = f"_{Path(o.eval_index).stem}" if o.eval_index else ""
    name = f"{root.resolve().name}_{o.split}_{o.estimator}{suffix}.json"
    thresholds = {k: list(v) for k, v in o.thresholds.items()}
    for candidate in (Path(o.cache_dir) / name, ASSETS / name):
        if candidate.is_file():
            try:
                index = load_index(candidate, root=root, split=o.split, estimator=o.estimator)
            except StaleIndexError as e:
                log.info("overlap index %s not used: %s", candidate, e)
                continue
            src = index["pair_source"]
            same_pairs = bool(o.eval_index) or (
                src.get("gaps") == sorted(set(o.gaps)) and src.get("num_targets") == int(o.num_targets)
            )
            if index["thresholds"] == thresholds and same_pairs:
                log.info("overlap index: %s", candidate)
                return index, candidate
    log.info("computing the overlap index of %s/%s with %s (once; cached)", root, o.split, o.estimator)
    index = build_index(
        root,
        o.split,
        _estimator(cfg),
        eval_index=o.eval_index,
        gaps=list(o.gaps),
        num_targets=int(o.num_targets),
        thresholds={k: tuple(v) for k, v in thresholds.items()},
        progress=True,
    )
    path = write_index(Path(o.cache_dir) / name, index)
    return index, path


def model_method(model, sampler, seed_offset: int = 0):
    """Generate a pair's targets with the model in interpolation mode (vid3d.sampling.modes)."""
    from vid3d.geometry import relative_to_first
    from vid3d.sampling.io import SampleJob
    from vid3d.sampling.modes import InterpolateMode
    from vid3d.tasks.camera_benchmark import uses_global_rng

    mode = InterpolateMode(poses="path")

    def job_of(pair: SparsePair) -> SampleJob:
        c2w = np.asarray(relative_to_first(pair.c2w))
        return SampleJob(pair.pair_id, pair.frames[0], pair.K_px, c2w, image_end=pair.frames[-1])

    def generator(item_seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed_offset + int(item_seed % 1_000_003))

    def generate(pair: SparsePair) -> np.ndarray:
        return mode.run(model, sampler, job_of(pair), generator=generator(torch.initial_seed()))[1:-1]

    def generate_batch(pairs: list[SparsePair], item_seeds: list[int]) -> list[np.ndarray]:
        jobs, gens = [job_of(p) for p in pairs], [generator(s) for s in item_seeds]
        videos = mode.run_batch(model, sampler, jobs, gens)
        return [v[1:-1] for v in videos]

    if not uses_global_rng(model):  # eval.batch_size: several pairs per forward, same seeds per pair
        generate.batch = generate_batch
    return generate


def free_views(row: dict) -> int:
    """Frames strictly between a pair's context views that are not its targets."""
    i, j = row["context"]
    return (j - i - 1) - len({t for t in row["target"] if i < t < j})


def run_buckets(cfg: DictConfig, buckets, run_one) -> dict:
    """``run_one(cfg)`` once per overlap bucket (``overlap.thresholds[b]``), each into ``<run_dir>/<b>/``,
    then one table of all of them from what each returned (``sparse_report.bucket_report``:
    sparse_report.{md,json,csv,tex} in the run dir). Returns {results_md, summary_md, run_dir, results:
    {bucket: results}, table}."""
    import copy

    from omegaconf import open_dict

    from vid3d.evaluation.sparse_report import bucket_report

    root = run_dir(cfg)
    results, protos, records = {}, {}, {}
    for b in buckets:
        if b not in cfg.overlap.thresholds:
            raise ValueError(f"protocol.buckets: {b!r} is not in overlap.thresholds "
                             f"{list(cfg.overlap.thresholds)}")
        c = copy.deepcopy(cfg)
        with open_dict(c):
            lo, hi = (float(x) for x in cfg.overlap.thresholds[b])
            c.overlap.bucket, c.overlap.min, c.overlap.max = b, lo, hi
            c.paths.run_dir = str(root / b)
        one = run_one(c)
        results[b], protos[b], records[b] = one["results"], one["protocol"], one["records"]
    merged = bucket_report(protos, records, {b: [root / b] for b in buckets}, out=root)
    print(merged["summary_md"])
    return {"results_md": merged["markdown"], "summary_md": merged["summary_md"], "run_dir": str(root),
            "results": results, "table": merged["table"]}


class SparseBenchmark:
    """``conf/benchmark/sparse.yaml``: ``run(cfg)`` scores ``cfg.ckpt`` (and the reference rows) on the pairs
    of the ``cfg.overlap`` bucket and returns what it computed: {results_md (results.md's text), summary_md
    (what it printed), run_dir, results, protocol, records, table}."""

    name = "sparse"

    def run(self, cfg: DictConfig) -> dict:
        return evaluate_sparse(cfg)


SPARSE_VIEWS = (
    "two context views [i, j] and targets strictly between, centre-cropped and resized to {h}x{w}; generated "
    "in interpolation mode (first view conditions, last view pinned by replacement) at the GT target cameras "
    "(poses relative to the first context view)"
)
SPARSE_REFERENCE_ROWS = {
    "nearest_context": "the context view nearer in frame index",
    "ground_truth": "GT targets (sanity)",
}


def sparse_methods(cfg: DictConfig, model) -> dict:
    """The sparse-view benchmark's rows: the model's generated targets and the two reference rows."""
    methods = {}
    if model is not None:
        methods[model.name] = model_method(model, instantiate(cfg.sampler), int(cfg.seed))
    if cfg.eval.reference_rows:
        methods["nearest_context"] = nearest_context_method
        methods["ground_truth"] = ground_truth_method
    return methods


def evaluate_sparse(cfg: DictConfig) -> dict:
    return evaluate_pairs(cfg, sparse_methods, "sparse_view", SPARSE_VIEWS, SPARSE_REFERENCE_ROWS)


def evaluate_pairs(cfg: DictConfig, *args, **kwargs) -> dict:
    """``_evaluate_pairs`` holding the shard's lock from the start: a second process on this shard answers
    at once (``ShardBusy``), not after loading the model."""
    with shard_lock(run_dir(cfg), int(cfg.eval.shard), int(cfg.eval.num_shards)):
        return _evaluate_pairs(cfg, *args, **kwargs)


def _evaluate_pairs(
    cfg: DictConfig,
    make_methods,
    benchmark: str,
    views: str,
    reference_rows: dict[str, str],
    extra_protocol: dict | None = None,
    with_path: bool = False,
    wandb_name: str = "sparse",
    min_free_views: int = 0,
) -> dict:
    """The benchmarks on context-view pairs of an overlap bucket (sparse views, reconstruction): pairs from
    the split's overlap index, ``make_methods(cfg, model) -> {name: pair -> predicted targets}``, scored by
    the one engine (``run_sparse_eval``) into records and results.{json,csv,md,tex}. ``with_path`` also loads
    the frames between the context views that are not targets (``load_pairs``); ``min_free_views``: pairs
    with fewer such frames are left out (and counted in the protocol block)."""
    if cfg.get("overlap") is None or cfg.overlap.get("bucket") is None:
        raise ValueError(f"benchmark={benchmark} needs an overlap bucket: overlap=small|medium|large|all")
    out = run_dir(cfg)
    print_config_tree(cfg, save_to=out / "config.yaml")
    prepare_data(cfg)
    o = cfg.overlap
    index, index_path = resolve_index(cfg)  # before the model: missing RoMa weights answer at once
    model = None
    if cfg.ckpt:
        from vid3d.models.checkpoint import load_model

        model = load_model(cfg.ckpt, pretrained=pretrained_choice(cfg))
        from vid3d.sampling.model_defaults import apply_model_sampler_defaults

        apply_model_sampler_defaults(cfg)  # the checkpoint's manifest's sampler settings, unless given
    # the metrics' weights (LPIPS) next: missing ones stop the run in seconds, before any pair is generated
    metrics = instantiate(cfg.metrics, _convert_="all").image()  # conf/metrics/: the suite's _target_
    rows = select_pairs(index, float(o.min), float(o.max))
    short = [r for r in rows if free_views(r) < min_free_views]
    if short:
        log.warning("%d pair(s) have fewer than %d non-target frames between their context views: left out",
                    len(short), min_free_views)
        rows = [r for r in rows if free_views(r) >= min_free_views]
    if o.max_pairs is not None:
        rows = rows[: int(o.max_pairs)]
    empty = None
    if not rows:
        # An empty bucket is a finding about the split, not an error: the run writes n = 0 for every method
        # and says why, so `-m overlap=small,large` still ends in its merged table (sparse_report).
        empty = (
            f"no pair of {index_path} has {o.min} <= overlap < {o.max} (counts: {index.get('counts')}): "
            "n = 0 for every method"
        )
        log.warning("overlap=%s: %s", o.bucket, empty)
    pairs = load_pairs(cfg.data.root, o.split, rows, int(o.height), int(o.width), with_path=with_path)
    methods = make_methods(cfg, model)
    if not methods:
        raise ValueError("nothing to evaluate: give ckpt=... or keep eval.reference_rows=true")

    protocol = {
        "benchmark": benchmark,
        "bucket": {"name": o.bucket, "range": [float(o.min), float(o.max)], "rule": "lo <= overlap < hi"},
        "overlap_index": {
            "file": str(index_path),
            "estimator": index["estimator"],
            "dataset": index["dataset"],
            "thresholds": index["thresholds"],
            "pair_source": index["pair_source"],
            "counts": index["counts"],
        },
        "views": views.format(h=int(o.height), w=int(o.width)),
        "reference_rows": reference_rows,
        "reduction": (
            "per pair: mean over its targets; table: mean over pairs, 95% percentile bootstrap CI "
            "(1000 resamples, seed 0)"
        ),
        "trials": int(cfg.eval.trials),
        **(extra_protocol or {}),
        "reproducibility": reproducibility(cfg),
    }
    preset = cfg.get("protocol")
    if preset is not None and preset.get("benchmark") == benchmark:  # e.g. protocol=sparse2_eval12
        protocol["preset"] = OmegaConf.to_container(preset, resolve=True)
    if min_free_views:
        protocol["pair_rule"] = {
            "free_views": f"every pair has >= {min_free_views} non-target frames between its context views "
            f"(j - i - 1 - targets), i.e. gap >= targets + {min_free_views} + 1",
            "left_out": {"pairs": len(short),
                         "gaps": sorted({r["context"][1] - r["context"][0] for r in short})},
        }
    protocol["methods"] = list(methods)  # also when the bucket is empty: the report shows each with n = 0
    if empty:
        protocol["empty_bucket"] = empty
    images: list = []
    keep = int(o.wandb_images)

    def collect(pair, name, pred, rec):
        if len(images) < keep * len(methods):
            images.append((pair, name, pred, rec))

    summary = run_sparse_eval(
        pairs,
        methods,
        metrics,
        out,
        shard=int(cfg.eval.shard),
        num_shards=int(cfg.eval.num_shards),
        trials=int(cfg.eval.trials),
        batch_size=int(cfg.eval.batch_size),
        protocol=protocol,
        on_record=collect,
    )
    table, shown = summary["markdown"], summary["summary_md"]
    if empty:
        table, shown = f"EMPTY BUCKET: {empty}\n\n{table}", f"EMPTY BUCKET: {empty}\n\n{shown}"
    print(shown)
    log_pair_results(cfg, out, summary["results"], images, wandb_name)
    log.info("results written to %s", out)
    return {"results_md": table, "summary_md": shown, "run_dir": str(out), "results": summary["results"],
            "protocol": summary["protocol"], "records": summary["records"], "table": summary["table"]}
