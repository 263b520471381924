"""Merge sparse-view (or reconstruction: ``benchmark=recon``) runs into one table (``merge_sparse``); the
command is ``python -m vid3d.report DIR [DIR ...] [--kind buckets] [--out OUT]`` (``vid3d.report.merge``).

Each DIR is a run dir of ``eval.py overlap=<bucket>`` or a Hydra multirun folder (every folder below it
holding records is used). Runs are grouped by overlap bucket (from their ``results.json`` protocol); shards of
one bucket are merged (records de-duplicated by (method, pair, trial)); runs must agree on the overlap
index (estimator, dataset revision) and the image metrics. Writes ``sparse_report.{md,json,csv,tex}`` into
OUT (default: the first DIR): one row per method, per bucket n and PSNR / SSIM / LPIPS with 95% CIs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vid3d.data.files import load_json

from . import tables
from .aggregate import merge_shards
from .records import to_jsonable
from .sparse_runner import LABELS, METRICS, REFERENCE_ROWS, aggregate_sparse, metric_cell

PAIR_BENCHMARKS = ("sparse_view", "reconstruction")
RECON_REFERENCE_ROWS = ("context_only + 3dgs", "all_gt + 3dgs")  # vid3d.tasks.recon_benchmark

__all__ = ["bucket_report", "merge_sparse"]

BUCKET_ORDER = ("small", "medium", "large", "all")


def run_dirs(paths: list[str | Path]) -> list[Path]:
    """The given dirs and every folder below them holding ``records*.jsonl`` (Hydra multirun job dirs,
    also when an override such as ``ckpt=/a/b`` nested them), sorted."""
    out: set[Path] = set()
    for p in map(Path, paths):
        if not p.is_dir():
            raise FileNotFoundError(f"run directory {p} does not exist")
        out |= {f.parent for f in p.rglob("records*.jsonl")}
    if not out:
        raise FileNotFoundError(f"no records*.jsonl under {[str(p) for p in paths]}")
    return sorted(out)


def _protocol(d: Path) -> dict[str, Any]:
    path = d / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{d}: has records but no results.json (rerun that job to write it)")
    payload = load_json(path)  # a regular file only: a FIFO named results.json never blocks
    proto = payload.get("protocol") if isinstance(payload, dict) else None
    if not isinstance(proto, dict):
        raise ValueError(f"{path}: not a benchmark results file (no 'protocol' object)")
    if proto.get("benchmark") not in PAIR_BENCHMARKS:
        raise ValueError(
            f"{path}: not a sparse-view or reconstruction result (protocol.benchmark = "
            f"{proto.get('benchmark')!r})"
        )
    return proto


def merge_sparse(paths: list[str | Path], out: str | Path | None = None) -> dict[str, Any]:
    """The runs below ``paths`` (their results.json protocols and records files) as one table,
    ``bucket_report``, written into ``out`` (default: the first path)."""
    dirs = run_dirs(paths)
    by_bucket: dict[str, list[Path]] = {}
    protos: dict[str, dict] = {}
    for d in dirs:
        p = _protocol(d)
        name = p["bucket"]["name"]
        by_bucket.setdefault(name, []).append(d)
        protos.setdefault(name, p)
    kinds = {p["benchmark"] for p in protos.values()}
    if len(kinds) > 1:
        raise ValueError(f"{[str(d) for d in dirs]}: results of different benchmarks {sorted(kinds)}: merge "
                         "each benchmark's runs on their own")
    records = {b: merge_shards(ds) for b, ds in by_bucket.items()}
    return bucket_report(protos, records, by_bucket, Path(out) if out is not None else Path(paths[0]))


def bucket_report(
    protos: dict[str, dict[str, Any]],
    records: dict[str, list[dict[str, Any]]],
    sources: dict[str, list[Path]],
    out: str | Path,
) -> dict[str, Any]:
    """One row per method, per bucket n and PSNR / SSIM / LPIPS with 95% CIs, from each bucket's protocol
    (``protos``) and records, in memory; written as ``sparse_report.{md,json,csv,tex}`` into ``out``.
    ``sources``: the run dirs each bucket came from (the protocol's ``merged_from``). Returns {"results",
    "protocol", "markdown", "summary_md" (the table and its notes), "table", "out"}."""
    first = next(iter(protos.values()))
    for name, p in protos.items():
        for key in ("estimator", "dataset"):
            if p["overlap_index"][key] != first["overlap_index"][key]:
                raise ValueError(
                    f"bucket {name!r} used another overlap index {key}: {p['overlap_index'][key]} vs "
                    f"{first['overlap_index'][key]}"
                )
        if p.get("image_metrics") != first.get("image_metrics"):
            raise ValueError(
                f"bucket {name!r} used other image metrics: {p.get('image_metrics')} vs "
                f"{first.get('image_metrics')}"
            )
    buckets = sorted(protos, key=lambda b: (BUCKET_ORDER.index(b) if b in BUCKET_ORDER else 99, b))
    results = {b: aggregate_sparse(records[b]) for b in buckets}
    # methods with records, and those a run was asked for (an empty bucket has no records to name them)
    named = {m for p in protos.values() for m in p.get("methods", [])}
    references = set(REFERENCE_ROWS) | set(RECON_REFERENCE_ROWS)
    methods = sorted({m for r in results.values() for m in r} | named, key=lambda m: (m in references, m))
    protocol = {
        "benchmark": first["benchmark"],
        "buckets": {b: protos[b]["bucket"] for b in buckets},
        "overlap_index": {
            k: first["overlap_index"][k] for k in ("estimator", "dataset", "thresholds", "pair_source")
        },
        "image_metrics": first.get("image_metrics"),
        "views": first.get("views"),
        "reduction": first.get("reduction"),
        "merged_from": {b: [str(d) for d in sources[b]] for b in buckets},
        "empty_buckets": {b: protos[b].get("empty_bucket") for b in buckets if not results[b]},
    }
    header = ["method"] + [
        col for b in buckets for col in (f"{b}: n", *(f"{b}: {LABELS[m]}" for m in METRICS))
    ]
    rows = []
    for method in methods:
        cells = [method]
        for b in buckets:
            r = results[b].get(method)
            cells += (
                ["0"] + ["n/a"] * len(METRICS)
                if r is None
                else [str(r["n"])] + [metric_cell(r["metrics"][m], m) for m in METRICS]
            )
        rows.append(cells)
    table = tables.Table(header, rows)
    ranges = ", ".join(
        f"{b} = [{protos[b]['bucket']['range'][0]}, {protos[b]['bucket']['range'][1]})" for b in buckets
    )
    empty = [b for b in buckets if not results[b]]
    notes = [
        "",
        f"Overlap buckets ({first['overlap_index']['estimator']['name']} overlap): {ranges}. "
        "Cells: mean over pairs "
        "[95% percentile-bootstrap CI]; per pair the mean over its target views.",
        *(
            [f"EMPTY BUCKETS (no pair of the overlap index in range; n = 0): {', '.join(empty)}."]
            if empty
            else []
        ),
    ]
    summary = tables.text(tables.markdown(table), notes)
    md = summary + tables.text(tables.protocol_lines(protocol))
    stats = ("mean", "ci_low", "ci_high")
    csv_rows = []
    for method in methods:
        for b in buckets:
            r = results[b].get(method)
            if r is None:  # no pair of this bucket (or this method not run on it): n = 0, no values
                csv_rows.append([method, b, 0] + [""] * (len(stats) * len(METRICS)))
            else:
                metrics = r["metrics"]
                csv_rows.append(
                    [method, b, r["n"]]
                    + [metrics[m].get(s) if metrics[m]["available"] else "" for m in METRICS for s in stats]
                )
    out = Path(out)
    payload = {"protocol": to_jsonable(protocol), "results": tables.jsonable_inf(results)}
    tables.write_texts(out, "sparse_report", {
        "md": md,
        "json": tables.json_text(payload),
        "csv": tables.csv_text(
            ["method", "bucket", "n"] + [f"{m}_{s}" for m in METRICS for s in stats], csv_rows
        ),
        "tex": tables.latex(table),
    })
    return {"results": results, "protocol": protocol, "markdown": md, "summary_md": summary, "table": table,
            "out": out}
