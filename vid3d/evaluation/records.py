"""Append-only JSONL per-sample records, safe against a run being killed at any moment.

One record = one JSON object on one line, identified by its key ``(method, clip_id, trial)``.
``RecordWriter.append`` writes the complete line (``json + "\\n"``) with a single ``os.write`` on an
``O_APPEND`` descriptor, then ``fsync``s, so a killed run leaves at most one torn trailing line (bytes
after the last newline). Readers ignore that torn line; the writer truncates it away before its next
append, so the file never holds a corrupt line in the middle. A malformed *complete* line is real
corruption and raises ``RecordFileError`` naming the file and line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vid3d.data.files import read_regular_bytes

__all__ = ["RecordFileError", "RecordWriter", "read_records", "record_key", "to_jsonable"]

KEY_FIELDS = ("method", "clip_id", "trial")
RecordKey = tuple[str, str, int]
MAX_RECORDS_BYTES = 1 << 30  # ~1M records; a 1k-clip benchmark writes a few MB
_HELD: set[str] = set()  # lock files this process holds (RecordWriter.exclusive)


class RecordFileError(ValueError):
    """A records file is corrupt (str: "<path>:<line>: <what is wrong>")."""


def record_key(record: dict[str, Any]) -> RecordKey:
    """The identity ``(method, clip_id, trial)`` of a record."""
    missing = [k for k in KEY_FIELDS if k not in record]
    if missing:
        raise KeyError(f"record is missing key field(s) {missing}; needs {list(KEY_FIELDS)}")
    return (str(record["method"]), str(record["clip_id"]), int(record["trial"]))


def to_jsonable(obj: Any, inf_as_str: bool = False) -> Any:
    """numpy arrays/scalars -> lists/Python numbers; non-finite floats -> None (strict JSON), except that
    with ``inf_as_str`` an infinity becomes the string "inf" / "-inf" (a result that is infinite, such as
    the ground-truth row's PSNR, rather than missing)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, inf_as_str) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, inf_as_str) for v in obj]
    if hasattr(obj, "detach"):  # torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), inf_as_str)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and math.isinf(obj) and inf_as_str:
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _complete_length(data: bytes) -> int:
    """Number of leading bytes that form complete (newline-terminated) lines."""
    return data.rfind(b"\n") + 1


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete records of a JSONL file in file order ([] if it does not exist).

    A torn trailing line (no final newline: the writer was killed mid-write) is ignored. Only a regular
    file of at most ``MAX_RECORDS_BYTES`` is read (vid3d.data.files.UnsafePath, a ValueError, otherwise).
    """
    path = Path(path)
    if not path.exists():
        return []
    data = read_regular_bytes(path, MAX_RECORDS_BYTES)  # a FIFO or device never blocks, size is bounded
    return _parse(data, path)


def _parse(data: bytes, path: Path) -> list[dict[str, Any]]:
    """The complete records of a records file's bytes (a torn trailing line ignored)."""
    records = []
    for lineno, line in enumerate(data[: _complete_length(data)].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise RecordFileError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
        if not isinstance(rec, dict):
            raise RecordFileError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        records.append(rec)
    return records


class ShardBusy(RuntimeError):
    """Another process holds the lock of this records file."""


class RecordWriter:
    """Append-only writer of one JSONL records file.

    Args:
        path: the ``.jsonl`` file (created with its parent directory on first append).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._repaired = False

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold an advisory lock (``<file>.lock``, ``flock``) while this process works on the file: a
        second process on the same shard fails at once with :class:`ShardBusy` instead of computing and
        writing every record a second time. Released when the block ends or the process dies.

        Re-entrant within a process: an entry point takes the lock before its slow start (loading the
        model), and the engine's own ``exclusive()`` inside that block reuses it."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        key = str(lock_path.resolve())
        if key in _HELD:
            yield
            return
        with open(lock_path, "a") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ShardBusy(
                    f"{self.path}: another process is evaluating this shard (lock {lock_path}); wait for it "
                    "to finish, or give this job another eval.shard"
                ) from None
            _HELD.add(key)
            try:
                yield
            finally:
                _HELD.discard(key)
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def records(self) -> list[dict[str, Any]]:
        """Complete records already in the file (torn trailing line ignored)."""
        return read_records(self.path)

    def load(self) -> list[dict[str, Any]]:
        """What a run reads of its records file, once, at its start (holding ``exclusive``): the complete
        records an earlier run wrote ([] for no file), with a torn trailing line left by a killed run
        truncated away. From then on the run keeps its records in memory (``append`` returns each one as
        written)."""
        self._repaired = True
        if not self.path.exists():
            return []
        data = read_regular_bytes(self.path, MAX_RECORDS_BYTES)
        self._truncate(len(data), _complete_length(data))
        return _parse(data, self.path)

    def done_keys(self) -> set[RecordKey]:
        """Keys ``(method, clip_id, trial)`` of the complete records already in the file."""
        return {record_key(r) for r in self.records()}

    def repair(self) -> int:
        """Truncate a torn trailing line left by a killed run. Returns the number of bytes removed."""
        if not self.path.exists():
            return 0
        data = read_regular_bytes(self.path, MAX_RECORDS_BYTES)
        return self._truncate(len(data), _complete_length(data))

    def _truncate(self, size: int, keep: int) -> int:
        if keep == size:
            return 0
        with open(self.path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return size - keep

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record as a single complete line (one write, flush, fsync). Returns the record as
        written (``to_jsonable``: lists for arrays, None for NaN), as ``read_records`` would give it back."""
        record_key(record)  # validate the identity fields up front
        as_written = to_jsonable(record)
        line = json.dumps(as_written, allow_nan=False, separators=(",", ":")) + "\n"
        if "\n" in line[:-1]:  # cannot happen with json.dumps, guard the one-line invariant anyway
            raise ValueError("record serialised to more than one line")
        if not self._repaired:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repair()
            self._repaired = True
        payload = line.encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, payload)
            while written < len(payload):  # a short write (rare, e.g. signals) is completed
                written += os.write(fd, payload[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        return as_written

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        for r in records:
            self.append(r)
