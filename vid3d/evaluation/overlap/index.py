"""Overlap index: per dataset split, every evaluation pair with its overlap ratio, computed once and cached.

``python -m vid3d.evaluation.overlap.index --root DIR --split test --estimator geometric --out FILE``

JSON file (``format: vid3d.overlap_index``, ``version: 1``)::

    {"format", "version", "estimator": {name + settings}, "thresholds": {"small": [0.05, 0.3], ...},
     "dataset": {"root", "split", "revision", "num_clips"}, "pair_source": {...},
     "pairs": [{"pair_id": "<clip>:<i>-<j>", "clip_id", "context": [i, j], "target": [...],
                "overlap", "ratio_12", "ratio_21", "bucket"}], "skipped": {...}}

``revision`` is a hash of the split's camera files (and the synthetic manifest when there is one): an index
whose revision differs from the dataset's is stale and refused. Buckets are half-open intervals
[lo, hi) of the overlap (NoPoSplat: small 0.05-0.3, medium 0.3-0.55, large 0.55-0.8; others ignored).
Pairs come from a pixelSplat/MVSplat evaluation index (``--eval-index``: scene key = clip id, its
context pair and targets) or, by default, from each clip: context (start, start + gap) for each gap in
``--gaps``, targets evenly spaced strictly between them.

A wrong input (a missing split folder, an unreadable camera, frame, depth or evaluation-index file, a
missing weights file) is one line ``error: <file>: <what is wrong>`` on stderr and exit code 2, and the
``--out`` file is left as it was.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vid3d.atomic import atomic_write_bytes
from vid3d.data.files import load_json, read_regular_bytes
from vid3d.data.formats.re10k import (
    MAX_CAMERA_FILE_BYTES,
    CameraFileError,
    list_clips,
    read_camera_file,
    read_depth,
    read_frames,
)
from vid3d.errors import InputError, user_errors
from vid3d.progress import Progress, ProgressSettings, settings

from .base import OverlapEstimator, OverlapView

__all__ = [
    "DEFAULT_BUCKETS",
    "INDEX_FORMAT",
    "INDEX_VERSION",
    "PairSpec",
    "StaleIndexError",
    "bucket_of",
    "build_index",
    "dataset_revision",
    "default_pairs",
    "load_index",
    "make_estimator",
    "pairs_from_eval_index",
    "select_pairs",
    "write_index",
]

INDEX_FORMAT = "vid3d.overlap_index"
INDEX_VERSION = 1
DEFAULT_BUCKETS: dict[str, tuple[float, float]] = {
    "small": (0.05, 0.3),
    "medium": (0.3, 0.55),
    "large": (0.55, 0.8),
}
DEFAULT_GAPS = (6, 12, 18, 24, 30, 36, 42, 47)


class StaleIndexError(InputError):
    """An overlap index does not match the dataset it is used with (or is not an index file)."""


@dataclass(frozen=True)
class PairSpec:
    clip_id: str
    context: tuple[int, int]
    target: tuple[int, ...]

    @property
    def pair_id(self) -> str:
        return f"{self.clip_id}:{self.context[0]}-{self.context[1]}"


# Camera values enter the revision rounded to this absolute grid (scene units, normalised intrinsics).
# numpy dispatches its float math to the CPU's SIMD level (baseline / AVX2 / AVX-512), which changes the
# last bits of the synthetic renderer's cameras between machines (measured on the demo set: at most
# 8.9e-16, e.g. a rotation entry of -1.2e-18 on one CPU and 4.3e-18 on another); the revision must name
# the dataset, not the CPU that rendered it. A real edit of a camera (>= 1e-9) still changes it.
REVISION_GRID = 1e-9


def _camera_digest(path: Path) -> bytes:
    """The camera file's content as the revision sees it: URL, timestamps, and K_norm / w2c rounded to
    ``REVISION_GRID``; a file that does not parse enters as its raw bytes, one that cannot be read (a FIFO,
    a device, too large) as its refusal."""
    try:
        cams = read_camera_file(path)
    except CameraFileError:
        try:
            return read_regular_bytes(path, MAX_CAMERA_FILE_BYTES)
        except ValueError as e:  # a FIFO or device never blocks the hash; its refusal is hashed instead
            return f"unreadable: {e}".encode()
    except ValueError as e:
        return f"unreadable: {e}".encode()
    values = np.concatenate([cams.K_norm.reshape(-1), cams.w2c.reshape(-1)])
    rounded = np.round(values / REVISION_GRID).astype("<i8")  # integers: identical bytes everywhere
    return cams.url.encode() + b"\0" + cams.timestamps.astype("<i8").tobytes() + rounded.tobytes()


def dataset_revision(root: str | os.PathLike, split: str) -> str:
    """sha256 (first 16 hex digits) of the split's clip ids and cameras (rounded to ``REVISION_GRID``,
    so the same dataset rendered on another CPU has the same revision), plus a synthetic manifest's build
    parameters if present."""
    h = hashlib.sha256()
    manifest = Path(root) / "manifest.json"
    if manifest.is_file():
        try:
            h.update(json.dumps(json.loads(manifest.read_text()).get("params"), sort_keys=True).encode())
        except (json.JSONDecodeError, AttributeError):
            h.update(manifest.read_bytes())
    for clip in list_clips(root, split, missing="skip"):
        h.update(clip.clip_id.encode() + b"\0" + _camera_digest(clip.camera_path) + b"\0")
    return h.hexdigest()[:16]


def _targets(i: int, j: int, num_targets: int) -> tuple[int, ...]:
    return tuple(int(round(x)) for x in np.linspace(i, j, num_targets + 2)[1:-1])


def default_pairs(
    clip_lengths: Mapping[str, int], gaps: Sequence[int] = DEFAULT_GAPS, num_targets: int = 6, start: int = 0
) -> list[PairSpec]:
    """Context (start, start + gap) per clip and gap (gaps that do not fit the clip, or leave fewer than
    ``num_targets`` frames between the two views, are left out); targets evenly spaced between."""
    out = []
    for clip_id in sorted(clip_lengths):
        for gap in sorted(set(int(g) for g in gaps)):
            j = start + gap
            if j < clip_lengths[clip_id] and gap >= num_targets + 1:
                out.append(PairSpec(clip_id, (start, j), _targets(start, j, num_targets)))
    return out


def pairs_from_eval_index(
    path: str | os.PathLike, clip_ids: Sequence[str]
) -> tuple[list[PairSpec], dict[str, int]]:
    """Pairs of a pixelSplat/MVSplat evaluation index (scene key -> {context: [i, j], target: [...]})
    restricted to the dataset's clips. Returns (pairs, skipped counts by reason)."""
    from vid3d.data.formats.pixelsplat import read_eval_index

    entries = read_eval_index(path)
    known = set(clip_ids)
    pairs, skipped = (
        [],
        {"null_entry": 0, "not_in_dataset": 0, "not_two_context_views": 0, "target_outside_context": 0},
    )
    for key in sorted(entries):
        e = entries[key]
        if e is None:
            skipped["null_entry"] += 1
        elif key not in known:
            skipped["not_in_dataset"] += 1
        elif len(e.context) != 2:
            skipped["not_two_context_views"] += 1
        else:
            i, j = sorted(e.context)
            tgt = tuple(sorted(set(e.target)))
            if not tgt or tgt[0] <= i or tgt[-1] >= j:
                skipped["target_outside_context"] += 1  # interpolation needs targets strictly between
            else:
                pairs.append(PairSpec(key, (i, j), tgt))
    return pairs, {k: v for k, v in skipped.items() if v}


def bucket_of(
    overlap: float | None, thresholds: Mapping[str, Sequence[float]] = DEFAULT_BUCKETS
) -> str | None:
    """Name of the bucket [lo, hi) holding ``overlap`` (None: outside every bucket, or no value)."""
    if overlap is None or not math.isfinite(overlap):
        return None
    for name, (lo, hi) in thresholds.items():
        if lo <= overlap < hi:
            return name
    return None


def make_estimator(name: str, **settings: Any) -> OverlapEstimator:
    """``geometric`` or ``roma`` with its settings (None values dropped)."""
    settings = {k: v for k, v in settings.items() if v is not None}
    if name == "geometric":
        from .geometric import GeometricOverlap

        return GeometricOverlap(**settings)
    if name == "roma":
        from .roma import RomaOverlap

        return RomaOverlap(**settings)
    raise ValueError(f"overlap.estimator must be 'geometric' or 'roma', got {name!r}")


def _views(
    clip, cams, pair: PairSpec, needs: tuple[str, ...], root: str | os.PathLike
) -> tuple[OverlapView, OverlapView]:
    """The pair's two context views; frame and depth files that leave ``root`` are refused (UnsafePath)."""
    idx = np.asarray(pair.context)
    images = read_frames(clip, cams, idx, root=root) if "image" in needs else None
    depth = None
    if "depth" in needs:
        depth = read_depth(clip, idx, root=root)
        if depth is None:
            raise FileNotFoundError(
                f"{clip.camera_path}: clip {clip.clip_id} has no depth ({clip.clip_id}.depth.npz): "
                "the geometric "
                "overlap needs depth; use --estimator roma (overlap.estimator=roma) for real footage"
            )
    hw = depth.shape[1:3] if depth is not None else images.shape[1:3]
    K = cams.K_px(*hw)[idx]
    c2w = cams.c2w()[idx]
    return tuple(
        OverlapView(
            image=None if images is None else images[k],
            K_px=K[k],
            c2w=c2w[k],
            depth=None if depth is None else depth[k],
        )
        for k in range(2)
    )


def build_index(
    root: str | os.PathLike,
    split: str,
    estimator: OverlapEstimator,
    eval_index: str | os.PathLike | None = None,
    gaps: Sequence[int] = DEFAULT_GAPS,
    num_targets: int = 6,
    thresholds: Mapping[str, Sequence[float]] = DEFAULT_BUCKETS,
    progress: bool = False,
) -> dict[str, Any]:
    """Compute the overlap of every pair of a split (see module docstring); returns the index dict.
    ``progress``: a bar on a terminal, a line every 25 pairs / progress.every_s seconds in a log."""
    clips = {c.clip_id: c for c in list_clips(root, split, missing="skip")}
    cams = {k: read_camera_file(c.camera_path, root=root) for k, c in clips.items()}
    if eval_index is not None:
        pairs, skipped = pairs_from_eval_index(eval_index, list(clips))
        source = {"kind": "pixelsplat_eval_index", "file": Path(eval_index).name}
    else:
        pairs = default_pairs({k: len(v) for k, v in cams.items()}, gaps, num_targets)
        skipped = {}
        source = {
            "kind": "per_clip_gaps",
            "gaps": sorted(set(int(g) for g in gaps)),
            "num_targets": num_targets,
            "start": 0,
        }
    rows = []
    opts = settings() if progress else ProgressSettings(mode="off")
    bar = Progress("overlap index", len(pairs), unit="pair", default_every_n=25, opts=opts)
    for pair in pairs:
        if pair.context[1] >= len(cams[pair.clip_id]) or (
            pair.target and pair.target[-1] >= len(cams[pair.clip_id])
        ):
            skipped["index_out_of_range"] = skipped.get("index_out_of_range", 0) + 1
            bar.update(note=f"{pair.pair_id}: index out of range")
            continue
        v1, v2 = _views(clips[pair.clip_id], cams[pair.clip_id], pair, estimator.needs(), root)
        res = estimator.estimate(v1, v2)
        rows.append(
            {
                "pair_id": pair.pair_id,
                "clip_id": pair.clip_id,
                "context": list(pair.context),
                "target": list(pair.target),
                **{k: round(v, 6) for k, v in res.as_dict().items()},
                "bucket": bucket_of(res.overlap, thresholds),
            }
        )
        bar.update(note=f"{pair.pair_id}: overlap {res.overlap:.3f}")
    bar.close()
    counts = {name: sum(r["bucket"] == name for r in rows) for name in thresholds}
    counts["outside"] = sum(r["bucket"] is None for r in rows)
    return {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "estimator": estimator.describe(),
        "thresholds": {k: [float(lo), float(hi)] for k, (lo, hi) in thresholds.items()},
        "bucket_rule": "lo <= overlap < hi; pairs outside every bucket are ignored",
        "dataset": {
            "root_name": Path(root).resolve().name,
            "split": split,
            "revision": dataset_revision(root, split),
            "num_clips": len(clips),
        },
        "pair_source": source,
        "counts": counts,
        "skipped": skipped,
        "pairs": rows,
    }


def write_index(path: str | os.PathLike, index: Mapping[str, Any]) -> Path:
    """Write the index JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(index, indent=1, sort_keys=False) + "\n").encode())
    return path


def load_index(
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    split: str | None = None,
    estimator: str | None = None,
) -> dict[str, Any]:
    """Read and validate an index; with ``root`` it must match the dataset's revision (StaleIndexError
    otherwise), with ``estimator`` the estimator that computed it."""
    path = Path(path)
    try:  # a regular file only (a FIFO never blocks), size- and depth-limited
        index = load_json(path)
    except ValueError as e:
        raise StaleIndexError(str(e)) from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise StaleIndexError(f"{path}: not a vid3d overlap index (format != {INDEX_FORMAT!r})")
    if index.get("version") != INDEX_VERSION:
        raise StaleIndexError(f"{path}: index version {index.get('version')} != {INDEX_VERSION}; rebuild it")
    if split is not None and index["dataset"]["split"] != split:
        raise StaleIndexError(f"{path}: index is for split {index['dataset']['split']!r}, not {split!r}")
    if estimator is not None and index["estimator"]["name"] != estimator:
        raise StaleIndexError(
            f"{path}: index was computed with {index['estimator']['name']!r}, not {estimator!r}"
        )
    if root is not None:
        rev = dataset_revision(root, index["dataset"]["split"])
        if rev != index["dataset"]["revision"]:
            raise StaleIndexError(
                f"{path}: dataset revision {index['dataset']['revision']} != {rev} of {root}: the index is "
                f"stale; rebuild it (python -m vid3d.evaluation.overlap.index --root {root} "
                f"--split {index['dataset']['split']} --out ...)"
            )
    return index


def select_pairs(index: Mapping[str, Any], lo: float, hi: float) -> list[dict[str, Any]]:
    """Pairs with lo <= overlap < hi, sorted by pair_id."""
    rows = [r for r in index["pairs"] if r.get("overlap") is not None and lo <= r["overlap"] < hi]
    return sorted(rows, key=lambda r: r["pair_id"])


def _gaps(text: str) -> list[int]:
    """``--gaps`` "6,12,18" -> [6, 12, 18]; InputError unless each is a whole number >= 1."""
    try:
        gaps = [int(g) for g in text.split(",") if g.strip()]
    except ValueError:
        gaps = []
    if not gaps or min(gaps) < 1:
        raise InputError(f"--gaps {text!r}: expected context gaps in frames, whole numbers >= 1: 6,12,18")
    return gaps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, help="RealEstate10K-layout dataset root")
    p.add_argument("--split", default="test")
    p.add_argument("--estimator", default="geometric", choices=["geometric", "roma"])
    p.add_argument("--out", required=True, help="index JSON to write")
    p.add_argument("--eval-index", default=None, help="pixelSplat/MVSplat evaluation index JSON (pair list)")
    p.add_argument("--gaps", default=",".join(map(str, DEFAULT_GAPS)), help="context gaps (frames) per clip")
    p.add_argument("--num-targets", type=int, default=6)
    p.add_argument("--roma-weights", default=None)
    p.add_argument("--dinov2-weights", default=None)
    p.add_argument("--certainty-threshold", type=float, default=0.005)
    a = p.parse_args(argv)
    with user_errors():  # a wrong input: one line on stderr, exit code 2, --out untouched
        gaps = _gaps(a.gaps)
        if a.num_targets < 1:
            raise InputError(f"--num-targets {a.num_targets}: need 1 or more targets between the two views")
        if a.estimator == "roma":
            est = make_estimator(
                "roma",
                weights=a.roma_weights,
                dinov2_weights=a.dinov2_weights,
                certainty_threshold=a.certainty_threshold,
            )
        else:
            est = make_estimator("geometric")
        index = build_index(
            a.root, a.split, est, eval_index=a.eval_index, gaps=gaps, num_targets=a.num_targets, progress=True
        )
        write_index(a.out, index)
    print(f"{len(index['pairs'])} pairs -> {a.out}; per bucket: {index['counts']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
