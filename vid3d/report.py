"""The one way to merge results into a table: ``python -m vid3d.report DIR [DIR ...] [--kind K] [--out OUT]``.

Three kinds of results merge (``merge``; ``--kind`` picks one, else it is read from the folders):

- ``sweep`` (the default): a sweep's jobs side by side, one row per (job, method) — below.
- ``shards``: the shards of one camera-benchmark run (``eval.py eval.shard=k eval.num_shards=n``), records
  de-duplicated and aggregated with the run's protocol into one ``results.{md,csv,tex,json}``
  (``vid3d.evaluation.merge``). Detected when a records file names more than one shard.
- ``buckets``: sparse-view or reconstruction runs, one per overlap bucket (``eval.py -m
  overlap=small,large``), into one ``sparse_report.{md,csv,tex,json}``
  (``vid3d.evaluation.sparse_report``). Detected from the runs' ``results.json`` protocol.

Every kind reads the runs' records with ``vid3d.evaluation.aggregate.merge_shards``.

For a sweep: finds every ``results.json`` below the sweep folder (a camera-benchmark job writes it into
``<job>/eval/`` with ``post_eval=camera``, or into ``<job>/`` for ``eval.py -m ...``). Each belongs to the
nearest folder above it holding ``.hydra/overrides.yaml`` (the Hydra job); the job's overrides become
columns (those that vary between jobs; the ones shared by all jobs are listed under the table). One row per
(job, method) with n, failures and, per metric, the mean and its 95% CI as written by the benchmark.

Writes ``report.{md,csv,tex,json}`` into ``--out`` (default ``<multirun dir>/report``), atomically, and logs
the table plus one bar chart per metric to W&B (offline without an account; ``--no-wandb`` skips it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vid3d.data.files import load_json, load_yaml
from vid3d.evaluation import tables
from vid3d.evaluation.fvd import FVD_KEY, find_fvd

__all__ = [
    "KINDS", "detect_kind", "merge", "collect", "build_table", "to_markdown", "to_csv", "to_latex",
    "write_report", "main",
]  # fmt: skip
KINDS = ("sweep", "shards", "buckets")

# metrics shown first, in this order, with their labels; any other metric follows by name
METRIC_LABELS = {
    "rot_err_deg": "RotErr (deg)",
    "rot_err_rad": "RotErr (rad)",  # the unit of the published CameraCtrl / CamI2V tables
    "trans_err": "TransErr",
    "cammc": "CamMC",
    "psnr": "PSNR",
    "ssim": "SSIM",
    "lpips": "LPIPS",
    "psnr_gt": "PSNR vs GT (dB)",
}


def _job_dir(results_path: Path, root: Path) -> Path:
    """The nearest folder at or above ``results_path``'s folder (within ``root``) with ``.hydra/``."""
    d = results_path.parent
    while True:
        if (d / ".hydra" / "overrides.yaml").is_file():
            return d
        if d == root or root not in d.parents:
            return results_path.parent
        d = d.parent


def _read_overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    overrides = load_yaml(path)  # regular file, size-limited, no aliases: a YAML bomb answers at once
    if overrides is None:
        return []
    if not isinstance(overrides, list):
        raise ValueError(f"{path}: expected a list of overrides, got {type(overrides).__name__}")
    return [str(o) for o in overrides]


def _override_dict(overrides: list[str]) -> dict[str, str]:
    out = {}
    for o in overrides:
        if "=" in o and not o.startswith("~"):
            k, v = o.split("=", 1)
            # where outputs go, which checkpoint, and whether reference rows were computed say nothing
            # about a row's numbers: never columns
            if not k.lstrip("+").startswith(("hydra.", "paths.", "ckpt", "eval.reference_rows")):
                out[k.lstrip("+")] = v
    return out


def _load_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a regular file (size-limited); ValueError "<path>: not <what> (...)" otherwise."""
    try:
        data = load_json(path)
    except ValueError as e:
        why = str(e).removeprefix(str(path)).lstrip(":0123456789 ")  # the message names the path once
        raise ValueError(f"{path}: not {what} ({why})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not {what} (expected a JSON object, got {type(data).__name__})")
    return data


def collect(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """``[{"job": relative job path, "overrides": {key: value}, "results": {...}, "protocol": {...},
    "path": results.json}]`` for every results.json under ``sweep_dir``, sorted by job."""
    root = Path(sweep_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"sweep directory {sweep_dir} does not exist")
    jobs = []
    for path in sorted(root.rglob("results.json")):
        if "report" in path.relative_to(root).parts[:1]:
            continue  # our own output folder
        payload = _load_object(path, "a benchmark results file")  # a FIFO named results.json never blocks
        if not isinstance(payload.get("results"), dict):
            raise ValueError(f"{path}: not a benchmark results file (no 'results' object)")
        results = payload["results"]
        job = _job_dir(path, root)
        gap_file = path.parent / "camera_gap.json"  # eval's camera-sensitivity table, when it ran
        camera_gap = _load_object(gap_file, "a camera-gap file") if gap_file.exists() else {}
        rel = job.relative_to(root).as_posix() if job != root else "."
        sub = path.parent.relative_to(job).as_posix()
        jobs.append(
            {
                "job": rel if sub == "." else f"{rel}/{sub}",
                "overrides": _override_dict(_read_overrides(job)),
                "results": results,
                "protocol": payload.get("protocol", {}),
                "camera_gap": camera_gap,
                "path": str(path),
            }
        )
    if not jobs:
        raise FileNotFoundError(f"no results.json under {sweep_dir}")
    return jobs


def missing_jobs(sweep_dir: str | Path, jobs: list[dict[str, Any]]) -> list[str]:
    """Hydra job folders under ``sweep_dir`` without any results.json (a failed or unfinished job)."""
    root = Path(sweep_dir).resolve()
    found = [Path(j["path"]) for j in jobs]
    out = []
    for hydra_dir in sorted(root.rglob(".hydra")):
        job = hydra_dir.parent
        if (hydra_dir / "overrides.yaml").is_file() and not any(job in f.parents for f in found):
            out.append(job.relative_to(root).as_posix() if job != root else ".")
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    if isinstance(x, str):  # the sparse benchmark writes +inf as "inf"
        try:
            x = float(x)
        except ValueError:
            return None
    return float(x)


def build_table(jobs: list[dict[str, Any]], methods: list[str] | None = None) -> dict[str, Any]:
    """``{"override_columns", "constant_overrides", "metrics", "rows"}``; a row holds ``job``, each
    varying override, ``method``, ``n``, ``failures`` and per metric ``{mean, ci_low, ci_high}``."""
    keys = sorted({k for j in jobs for k in j["overrides"]})
    varying = [k for k in keys if len({j["overrides"].get(k) for j in jobs}) > 1]
    constant = {k: jobs[0]["overrides"][k] for k in keys if k not in varying and k in jobs[0]["overrides"]}
    present = {
        m
        for j in jobs
        for r in j["results"].values()
        for m, s in r.get("metrics", {}).items()
        if isinstance(s, dict) and s.get("available", True)
    }
    metrics = [m for m in METRIC_LABELS if m in present] + sorted(present - set(METRIC_LABELS))
    # FVD (camera benchmark, when computed): one value per method (mean over trials), no bootstrap CI. A
    # random-init extractor's key ("fvd [random-init (not I3D)]") labels the whole column.
    fvd_keys = {find_fvd(r)[0] for j in jobs for r in j["results"].values() if find_fvd(r)[1].get("computed")}
    fvd_col = sorted(fvd_keys - {FVD_KEY})[0] if fvd_keys - {FVD_KEY} else (FVD_KEY if fvd_keys else None)
    rows = []
    for j in jobs:
        for method, r in j["results"].items():
            if methods and method not in methods:
                continue
            row = {"job": j["job"], **{k: j["overrides"].get(k, "") for k in varying}, "method": method}
            row["n"] = int(r.get("n", 0))
            row["failures"] = int(r.get("failures", 0))
            for m in metrics:
                s = r.get("metrics", {}).get(m) or {}
                row[m] = {k: _num(s.get(k)) for k in ("mean", "ci_low", "ci_high")}
            if fvd_col is not None:
                entry = find_fvd(r)[1]
                value = entry.get("value") if entry.get("computed") else None
                row[fvd_col] = {"mean": _num(value), "ci_low": None, "ci_high": None}
            rows.append(row)
    if fvd_col is not None:
        metrics.append(fvd_col)
    # camera gap (eval's camera_gap.json): one ratio per model, no CI; reference rows have none
    gap_cols = sorted(
        {k for j in jobs for g in j.get("camera_gap", {}).values() for k in g if k.startswith("camera_gap@")},
        key=lambda k: float(k.split("@", 1)[1]),
    )
    for row, (j, method) in zip(rows, _row_sources(jobs, methods), strict=True):
        g = j.get("camera_gap", {}).get(method, {})
        for c in gap_cols:
            row[c] = {"mean": _num(g.get(c)), "ci_low": None, "ci_high": None}
    metrics += gap_cols
    return {"override_columns": varying, "constant_overrides": constant, "metrics": metrics, "rows": rows}


def _row_sources(jobs: list[dict[str, Any]], methods: list[str] | None) -> list[tuple[dict, str]]:
    """(job, method) of each table row, in ``build_table``'s row order."""
    return [(j, m) for j in jobs for m in j["results"] if not methods or m in methods]


def _cell(s: dict, digits: int = 3) -> str:
    if s.get("mean") is None:
        return "n/a"
    if s.get("ci_low") is None and s.get("ci_high") is None:  # FVD: a set statistic, no per-clip CI
        return tables.fmt(s["mean"], digits)
    return tables.ci_cell(s["mean"], s["ci_low"], s["ci_high"], digits)


def _label(metric: str) -> str:
    if metric == FVD_KEY or metric.startswith(f"{FVD_KEY} ["):  # no CI; keeps a random-init label
        return "FVD" + metric[len(FVD_KEY):]
    if metric.startswith("camera_gap@"):  # a ratio per model, no CI
        return f"camera gap σ={metric.split('@', 1)[1]}"
    return f"{METRIC_LABELS.get(metric, metric)} [95% CI]"


def _header(table: dict) -> list[str]:
    labels = [_label(m) for m in table["metrics"]]
    return ["job", *table["override_columns"], "method", "n", "failures", *labels]


def _cells(table: dict, row: dict) -> list[str]:
    base = [row["job"], *[row[k] for k in table["override_columns"]], row["method"]]
    cells = [_cell(row[m], 4 if m.startswith("camera_gap@") else 3) for m in table["metrics"]]
    return [*map(str, base), str(row["n"]), str(row["failures"]), *cells]


def _table(table: dict) -> tables.Table:
    """The formatted cells (names: job, override columns, method)."""
    rows = [_cells(table, r) for r in table["rows"]]
    return tables.Table(_header(table), rows, text_columns=2 + len(table["override_columns"]))


def to_markdown(table: dict) -> str:
    notes = []
    if table["constant_overrides"]:
        shared = ", ".join(f"`{k}={v}`" for k, v in table["constant_overrides"].items())
        notes += ["", f"Shared by every job: {shared}"]
    if table.get("missing_jobs"):
        notes += ["", f"Jobs without results (failed or unfinished): {', '.join(table['missing_jobs'])}"]
    notes += [
        "",
        "Mean over clips (camera metrics: per-video sums over frames) [95% percentile-bootstrap CI].",
    ]
    if any(m.startswith("camera_gap@") for m in table["metrics"]):
        notes.append(
            "Camera gap: denoising error with another clip's cameras / with the clip's own, at noise level σ "
            "(> 1: the model uses its camera; a model without camera input reads 1)."
        )
    return tables.text(tables.markdown(_table(table)), notes)


_STATS = ("mean", "ci_low", "ci_high")


def _raw_header(table: dict) -> list[str]:
    return ["job", *table["override_columns"], "method", "n", "failures"] + [
        f"{m}_{s}" for m in table["metrics"] for s in _STATS
    ]


def _raw_rows(table: dict) -> list[list[Any]]:
    """Per row the names, n, failures and each metric's mean / CI as numbers (None where absent)."""
    return [
        [r["job"], *[r[k] for k in table["override_columns"]], r["method"], r["n"], r["failures"]]
        + [r[m][s] for m in table["metrics"] for s in _STATS]
        for r in table["rows"]
    ]


def to_csv(table: dict) -> str:
    return tables.csv_text(_raw_header(table), _raw_rows(table))


def to_latex(table: dict) -> str:
    return tables.latex(_table(table))


def _wandb_group(jobs: list[dict]) -> str | None:
    for j in jobs:
        group = (
            ((j["protocol"].get("reproducibility") or {}).get("config") or {}).get("wandb", {}).get("group")
        )
        if group:
            return group
    return None


def log_to_wandb(
    table: dict, jobs: list[dict], out: Path, project: str = "vid3d", mode: str = "auto"
) -> None:
    """The table as a W&B Table and one bar chart per metric (label ``job/method``), in the sweep's group."""
    import wandb

    from vid3d.wandb_setup import prepare_logger

    settings = prepare_logger({"project": project, "mode": mode, "group": _wandb_group(jobs)}, out)
    run = wandb.init(**settings.init_kwargs(job_type="report"))
    run.config.update({"sweep_jobs": [j["job"] for j in jobs]}, allow_val_change=True)
    try:
        labels = [f"{r['job']}/{r['method']}" for r in table["rows"]]
        wt = tables.wandb_table(
            ["label", *_raw_header(table)], [[lab, *row] for lab, row in zip(labels, _raw_rows(table))]
        )
        logs = {"report/table": wt}
        for m in table["metrics"]:
            logs[f"report/{m}"] = wandb.plot.bar(wt, "label", f"{m}_mean", title=METRIC_LABELS.get(m, m))
        run.log(logs)
    finally:
        run.finish()


def write_report(
    sweep_dir: str | Path | list[str | Path],
    out: str | Path | None = None,
    methods: list[str] | None = None,
    wandb_log: bool = True,
    wandb_mode: str = "auto",
) -> dict[str, Any]:
    """Collect, tabulate and write ``report.{md,csv,tex,json}`` into ``out`` (default
    ``<sweep_dir>/report``). ``sweep_dir`` may be a list of folders (e.g. two eval run dirs): their
    jobs are merged, each named by its folder's name; ``out`` is then required."""
    if isinstance(sweep_dir, (list, tuple)):
        if out is None:
            raise ValueError("write_report: give out= when merging several folders")
        jobs, missing = [], []
        for d in sweep_dir:
            name = Path(d).name
            found = collect(d)
            for j in found:
                j["job"] = name if j["job"] == "." else f"{name}/{j['job']}"
            jobs += found
            missing += [name if m == "." else f"{name}/{m}" for m in missing_jobs(d, found)]
    else:
        jobs = collect(sweep_dir)
        missing = missing_jobs(sweep_dir, jobs)
    table = build_table(jobs, methods)
    table["missing_jobs"] = missing
    out = Path(out) if out is not None else Path(sweep_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "md": to_markdown(table),
        "csv": to_csv(table),
        "tex": to_latex(table),
        "json": json.dumps({**table, "sources": [j["path"] for j in jobs]}, indent=2) + "\n",
    }
    tables.write_texts(out, "report", texts)
    if wandb_log:
        log_to_wandb(table, jobs, out, mode=wandb_mode)
    return {**table, "markdown": texts["md"], "out": str(out)}


def detect_kind(paths: list[str | Path]) -> str:
    """``buckets`` when a ``results.json`` below ``paths`` is a sparse-view or reconstruction result,
    ``shards`` when a records file names more than one shard (``records.shard{k}of{n}.jsonl``, n > 1), else
    ``sweep``."""
    from vid3d.evaluation.sparse_report import PAIR_BENCHMARKS

    for root in map(Path, paths):
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such folder")
        for results in sorted(root.rglob("results.json")):
            try:  # a regular, size-limited file: a FIFO never blocks
                payload = load_json(results)
            except (ValueError, OSError):  # said in one line by the reader of the kind, with its context
                continue
            proto = payload.get("protocol") if isinstance(payload, dict) else None
            if isinstance(proto, dict) and proto.get("benchmark") in PAIR_BENCHMARKS:
                return "buckets"
        for records in root.rglob("records.shard*of*.jsonl"):
            if records.name.removesuffix(".jsonl").rsplit("of", 1)[-1] not in ("", "1"):
                return "shards"
    return "sweep"


def merge(
    paths: list[str | Path],
    out: str | Path | None = None,
    kind: str | None = None,
    methods: list[str] | None = None,
    wandb_log: bool = True,
    wandb_mode: str = "auto",
) -> dict[str, Any]:
    """Merge the results under ``paths`` into one table of ``kind`` (``KINDS``; None: ``detect_kind``).

    Returns {"kind", "markdown" (the table, protocol lines left out), "out" (the folder written)} and, by
    kind, the sweep table's fields, or "results" (shards: {method: aggregate}; buckets: {bucket: {method:
    aggregate}}). ``out`` defaults to ``<first path>/report`` (sweep) or the first path (buckets); shards
    need it. ``methods`` and W&B apply to sweeps."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("give at least one folder to merge")
    kind = kind or detect_kind(paths)
    if kind == "sweep":
        rep = write_report(paths[0] if len(paths) == 1 else paths, out, methods, wandb_log, wandb_mode)
        return {"kind": kind, **rep}
    if kind == "shards":
        from vid3d.evaluation.merge import merge_camera_shards

        if out is None:
            raise ValueError("merging shards: give --out (a folder for the merged results)")
        return {"kind": kind, **merge_camera_shards(paths, out)}
    if kind == "buckets":
        from vid3d.evaluation.sparse_report import merge_sparse

        merged = merge_sparse(paths, out)
        return {"kind": kind, **merged, "markdown": merged["markdown"].split("\nProtocol:")[0]}
    raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")


WRITTEN = {"sweep": "report", "shards": "results", "buckets": "sparse_report"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vid3d.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dirs", nargs="+", help="a Hydra multirun folder, run folders or shard folders")
    p.add_argument("--kind", choices=KINDS, default=None, help="what to merge (default: from the folders)")
    p.add_argument("--out", default=None, help="output folder (sweep: <dir>/report; buckets: the first dir)")
    p.add_argument("--methods", nargs="*", default=None, help="sweep: only these rows (e.g. the model names)")
    p.add_argument("--no-wandb", action="store_true", help="sweep: do not log the table to W&B")
    p.add_argument("--wandb-mode", default="auto", help="auto | online | offline | disabled")
    a = p.parse_args(argv)
    try:
        rep = merge(a.dirs, a.out, a.kind, a.methods, wandb_log=not a.no_wandb, wandb_mode=a.wandb_mode)
    except (ValueError, FileNotFoundError) as e:  # a broken, strange or missing file: one line naming it
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(rep["markdown"])
    print(f"{rep['kind']}: written to {rep['out']}/{WRITTEN[rep['kind']]}.{{md,csv,tex,json}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
