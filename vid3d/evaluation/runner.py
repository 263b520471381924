"""The one evaluation engine every benchmark runs on: items -> shard -> resume -> records -> progress.

A benchmark supplies its items (anything with a unique string id: camera clips, sparse-view pairs), the
methods to compare and one function ``evaluate(item, method_name, trial) -> record``; the engine owns
what is the same for all of them:

- sharding: item i of the items sorted by id goes to shard i % num_shards (``shard_items``), so shards
  on separate machines cover every item once whatever order the items came in;
- resuming: records are appended to ``{out_dir}/records.shard{shard}of{num_shards}.jsonl`` (one
  ``records.RecordWriter``, key (method, item id, trial)); a rerun reads that file once, at its start, and
  skips every key already written;
- results in memory: the shard's records (the earlier run's and the new ones, as written) come back in
  ``ShardRun.records``, so a benchmark aggregates them without reading its own file again;
- one process per shard file (``RecordWriter.exclusive``: a second one stops with ``ShardBusy``);
- progress: a bar on a terminal, a line per evaluated item in a log (count/total, rate, ETA, the
  method, item and trial just done; vid3d/progress.py).

Aggregating the records and writing the tables stays with the benchmark (its metrics differ).
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from vid3d.progress import Progress, format_duration

from .records import RecordWriter, record_key

__all__ = ["ShardRun", "run_shard", "shard_file", "shard_items", "shard_lock", "trial_seed"]

T = TypeVar("T")


def trial_seed(method: str, item_id: str, trial: int) -> int:
    """Stable 31-bit seed of a (method, item, trial), independent of the shard layout and process."""
    return zlib.crc32(f"{method}\x00{item_id}\x00{trial}".encode()) & 0x7FFFFFFF


def shard_items(items: Sequence[T], item_id: Callable[[T], str], shard: int, num_shards: int) -> list[T]:
    """Items of ``shard``: item i of ``items`` sorted by ``item_id`` goes to shard i % num_shards.

    Raises ValueError on a bad (shard, num_shards) or duplicate ids."""
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ValueError(f"need 0 <= shard < num_shards, got shard={shard}, num_shards={num_shards}")
    ordered = sorted(items, key=item_id)
    ids = [item_id(x) for x in ordered]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"item ids must be unique; repeated: {dup[:5]}")
    return [x for i, x in enumerate(ordered) if i % num_shards == shard]


def shard_file(out_dir: str | Path, shard: int, num_shards: int) -> Path:
    """The records file of one shard."""
    return Path(out_dir) / f"records.shard{shard}of{num_shards}.jsonl"


@dataclass
class ShardRun(Generic[T]):
    """What ``run_shard`` did: ``todo`` the (item, method, trial) it evaluated, in order; ``n_skipped``
    the ones whose records already existed; ``records`` every complete record of the shard's file
    (``path``) in file order: those an earlier run wrote, then the new ones, each as written
    (``RecordWriter.append``)."""

    todo: list[tuple[T, str, int]]
    n_skipped: int
    path: Path
    records: list[dict[str, Any]]

    @property
    def n_new(self) -> int:
        return len(self.todo)


def shard_lock(out_dir: str | Path, shard: int, num_shards: int) -> contextlib.AbstractContextManager[None]:
    """The lock of one shard's records file (``RecordWriter.exclusive``), for an entry point to hold from
    before its slow start (loading a model) to the end: a second process on the same shard answers with
    ``ShardBusy`` at once. ``run_shard`` inside the block reuses it."""
    return RecordWriter(shard_file(out_dir, shard, num_shards)).exclusive()


def _progress(label: str, total: int, enabled: bool) -> Progress | None:
    """A bar on a terminal, a line per evaluated item in a log (vid3d/progress.py); None when disabled."""
    if not (enabled and total):
        return None
    return Progress(label, total, unit="item", default_every_n=1)


def run_shard(
    items: Sequence[T],
    item_id: Callable[[T], str],
    methods: Mapping[str, Any] | Sequence[str],
    evaluate: Callable[[T, str, int], dict[str, Any]],
    out_dir: str | Path,
    *,
    shard: int = 0,
    num_shards: int = 1,
    trials: int = 1,
    label: str = "eval",
    progress: bool = True,
    before: Callable[[list[tuple[T, str, int]]], None] | None = None,
    after: Callable[[T, str, int, dict[str, Any]], None] | None = None,
    applies: Callable[[T, str], bool] | None = None,
) -> ShardRun[T]:
    """Evaluate every (item, method, trial) of this shard that has no record yet; resumable.

    Args:
        items: all items of the benchmark (ids unique); this process takes its shard of them.
        item_id: an item's id (the record's ``clip_id``).
        methods: method names (a mapping's keys), evaluated in this order for each item.
        evaluate: ``(item, method_name, trial) -> record`` with keys ``method``, ``clip_id``, ``trial``;
            each record is appended (and flushed) as soon as it returns, so a kill loses at most the one
            being computed.
        out_dir: where the shard's records file is (created if missing, also for a shard with no item, so
            reports find the run).
        trials: samples per (item, method), trial = 0 .. trials-1.
        before: called once with the to-do list before the first evaluation (e.g. to precompute
            per-item features), inside the shard lock.
        after: called with (item, method_name, trial, record) once the record is written.
        applies: ``(item, method_name) -> bool``; a pair it rejects is not evaluated and gets no record
            (None: every pair is evaluated).
    """
    writer = RecordWriter(shard_file(out_dir, shard, num_shards))
    names = list(methods)
    with writer.exclusive():  # one process per shard (a second one stops with ShardBusy)
        records = writer.load()  # an earlier run's records: the one read of this file
        writer.path.touch()
        done = {record_key(r) for r in records}
        mine = shard_items(items, item_id, shard, num_shards)
        pairs = [(item, name) for item in mine for name in names if applies is None or applies(item, name)]
        todo = [
            (item, name, trial)
            for item, name in pairs
            for trial in range(trials)
            if (name, item_id(item), trial) not in done
        ]
        if before is not None:
            before(todo)
        where = f" shard {shard}/{num_shards}" if num_shards > 1 else ""
        bar = _progress(f"{label}{where}", len(todo), progress)
        with bar if bar is not None else contextlib.nullcontext():
            for item, name, trial in todo:
                iid = item_id(item)
                t0 = time.monotonic()
                record = evaluate(item, name, trial)
                key = (record.get("method"), record.get("clip_id"), record.get("trial"))
                if key != (want := (name, iid, trial)):
                    raise ValueError(f"evaluate returned a record keyed {key} for {want}")
                records.append(writer.append(record))
                if after is not None:
                    after(item, name, trial, record)
                if bar is not None:
                    bar.update(note=f"{name} {iid} trial {trial} in {format_duration(time.monotonic() - t0)}")
    return ShardRun(todo=todo, n_skipped=len(pairs) * trials - len(todo), path=writer.path,
                    records=records)

