"""Merge the shards of one camera-benchmark run into one table (``merge_camera_shards``); the command is
``python -m vid3d.report DIR [DIR ...] --kind shards --out OUT`` (``vid3d.report.merge``, every kind).

Each DIR is a shard's run dir (or a multirun folder: its sub-folders holding ``records*.jsonl`` are
used). Records are de-duplicated by (method, clip, trial); the protocol block is taken from the first
shard's ``results.json`` and must agree across shards on the estimator, failure policy and preset; the
preset's rules (outliers, reduction, arithmetic, CamI2V's absolute-scale pairing) apply to the merged records.
"""

from __future__ import annotations

import json
from pathlib import Path

from vid3d.data.files import load_json

from .aggregate import aggregate, merge_shards, preset_aggregation, results_report
from .cami2v import attach_abs_errors


def shard_dirs(paths: list[str | Path]) -> list[Path]:
    """The given dirs, plus any sub-dir of them that holds records (a Hydra multirun folder)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise FileNotFoundError(f"shard directory {p} does not exist")
        out += [
            d for d in [p, *sorted(x for x in p.iterdir() if x.is_dir())] if any(d.glob("records*.jsonl"))
        ]
    if not out:
        raise FileNotFoundError(f"no records*.jsonl under {[str(p) for p in paths]}")
    return out


def _protocol(path: Path) -> dict:
    """The protocol block of a shard's results.json (a regular, size-limited file; a FIFO never blocks)."""
    payload = load_json(path)
    if not isinstance(payload, dict) or not isinstance(payload.get("protocol"), dict):
        raise ValueError(f"{path}: not a benchmark results file (no 'protocol' object)")
    return payload["protocol"]


def merge_camera_shards(paths: list[str | Path], out: str | Path) -> dict:
    """Merge the shards under ``paths`` (module docstring) into ``out/results.{json,csv,md,tex}``.

    Returns {"results": {method: aggregate}, "protocol", "markdown" (the table without the protocol
    lines), "report" (the tables.Report written), "out"}; ValueError / FileNotFoundError naming the file or
    the disagreement."""
    dirs = shard_dirs(paths)
    protocols = [_protocol(d / "results.json") for d in dirs if (d / "results.json").exists()]
    if not protocols:
        raise FileNotFoundError(f"none of {[str(d) for d in dirs]} has a results.json with a protocol block")
    for key in ("pose_estimator", "failure_policy", "preset"):
        values = {json.dumps(p.get(key), sort_keys=True) for p in protocols}
        if len(values) > 1:
            raise ValueError(f"shards disagree on {key}: {sorted(values)}")
    protocol = {**protocols[0], "merged_from": [str(d) for d in dirs]}
    records = merge_shards(dirs)
    preset = protocol.get("preset") or {}
    policy = protocol.get("failure_policy", "exclude")
    attach_abs_errors(records)
    results = aggregate(records, failure_policy=policy, **preset_aggregation(preset))
    report = results_report(results, protocol)
    report.write(out, "results")
    return {"results": results, "protocol": protocol, "markdown": report.summary, "report": report,
            "out": str(out)}
