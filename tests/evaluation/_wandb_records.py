"""Read an offline W&B run's transaction log (``run-<id>.wandb``) back with W&B's own record definitions.

wandb >= 0.19 writes the log from its Go core and ships no Python reader, so the framing is read here: a
7-byte file header (``:W&B``, magic 0xBEE1 little-endian, version 0), then 32 KiB blocks of chunks, each
with a 7-byte header (CRC32C, little-endian length, type FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4); a chunk
never spans a block and fewer than 7 bytes left in a block are padding. Every assembled payload is one
``wandb_internal_pb2.Record``.

``run.finish()`` returns before W&B's core process has written the log out (on a loaded machine the file
can still be its 7-byte header), so ``history`` waits for the run's ``exit`` record.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

BLOCK = 32768
HEADER = 7


def records(path: str | Path) -> Iterator:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1, f"{path}: not a W&B log"
    pos, parts = HEADER, []
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        if kind == 0 and length == 0:  # zero padding at the end of a block
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        parts.append(chunk)
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(b"".join(parts))
            parts = []
            yield rec


def complete_records(path: str | Path, timeout_s: float = 120.0) -> list:
    """The log's records once it ends with the run's ``exit`` record (polled; AssertionError after
    ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            recs = list(records(path))
        except Exception:  # noqa: BLE001 - a chunk still being written
            recs = []
        if any(r.WhichOneof("record_type") == "exit" for r in recs):
            return recs
        assert time.monotonic() < deadline, f"{path}: no exit record after {timeout_s} s"
        time.sleep(0.2)


def history(path: str | Path) -> list[dict]:
    """Every logged history row as {key: decoded value}."""
    rows = []
    for rec in complete_records(path):
        if rec.WhichOneof("record_type") == "history":
            rows.append({"/".join([it.key, *it.nested_key]).strip("/"): json.loads(it.value_json)
                         for it in rec.history.item})
    return rows


def media_paths(value) -> list[str]:
    """Every run-file path a logged value refers to (strings under ``media/``, nested lists included)."""
    if isinstance(value, str):
        return [value] if value.startswith("media/") else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [p for v in value for p in media_paths(v)]
    return []
