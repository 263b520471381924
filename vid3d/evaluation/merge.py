"""Merge evaluation shards into one table: ``python -m vid3d.evaluation.merge DIR [DIR ...] --out OUT``.

Each DIR is a shard's run dir (or a multirun folder: its sub-folders holding ``records*.jsonl`` are
used). Records are de-duplicated by (method, clip, trial); the protocol block is taken from the first
shard's ``results.json`` and must agree across shards on the estimator, failure policy and preset; the
preset's rules (outliers, reduction, arithmetic, CamI2V's absolute-scale pairing) apply to the merged records.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .aggregate import aggregate, merge_shards, preset_aggregation, write_results
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


def merge(paths: list[str | Path], out: str | Path) -> dict:
    dirs = shard_dirs(paths)
    protocols = [
        json.loads((d / "results.json").read_text())["protocol"]
        for d in dirs
        if (d / "results.json").is_file()
    ]
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
    Path(out).mkdir(parents=True, exist_ok=True)
    write_results(out, results, protocol)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--out", required=True)
    a = parser.parse_args(argv)
    merge(a.dirs, a.out)
    print((Path(a.out) / "results.md").read_text().split("\nProtocol:")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
