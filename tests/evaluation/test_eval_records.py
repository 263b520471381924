"""RecordWriter: append-only JSONL that survives SIGKILL and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vid3d.evaluation.records as records_module
from vid3d.evaluation.records import RecordFileError, RecordWriter, read_records, record_key

N_TOTAL = 40

_CHILD = textwrap.dedent(
    """
    import importlib.util, sys
    # Load records.py alone (the vid3d.evaluation package imports torch: slow to start).
    spec = importlib.util.spec_from_file_location("records", sys.argv[3])
    records = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(records)
    w = records.RecordWriter(sys.argv[1])
    done = w.done_keys()
    payload = "x" * 200_000  # big lines so a kill can land inside a write
    for i in range(int(sys.argv[2])):
        key = ("m", f"clip{i:03d}", 0)
        if key in done:
            continue
        w.append({"method": "m", "clip_id": f"clip{i:03d}", "trial": 0, "i": i, "payload": payload})
        print(i, flush=True)
    """
)


def _run_child(path, wait_for: int | None):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(N_TOTAL), os.path.abspath(records_module.__file__)],
        stdout=subprocess.PIPE, text=True,
    )
    if wait_for is None:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        return out
    for line in proc.stdout:  # kill once it has written `wait_for` records
        if int(line) >= wait_for:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return None


def test_sigkill_midway_then_resume(tmp_path):
    path = tmp_path / "records.jsonl"
    _run_child(path, wait_for=5)
    recs = read_records(path)  # loads despite a possibly torn trailing line
    assert 6 <= len(recs) < N_TOTAL
    assert [r["i"] for r in recs] == list(range(len(recs)))  # complete records intact, in order
    assert all(len(r["payload"]) == 200_000 for r in recs)
    out = _run_child(path, wait_for=None)
    resumed = [int(x) for x in out.split()]
    assert resumed == list(range(len(recs), N_TOTAL))  # done keys skipped
    final = read_records(path)
    assert [r["i"] for r in final] == list(range(N_TOTAL))
    assert path.read_bytes().endswith(b"\n")


def test_torn_trailing_line_is_ignored_then_repaired(tmp_path):
    path = tmp_path / "r.jsonl"
    w = RecordWriter(path)
    w.append({"method": "a", "clip_id": "c0", "trial": 0, "x": np.float32(1.5)})
    with open(path, "ab") as f:
        f.write(b'{"method":"a","clip_id":"c1","tri')  # a run killed mid-write
    assert RecordWriter(path).done_keys() == {("a", "c0", 0)}
    w2 = RecordWriter(path)
    w2.append({"method": "a", "clip_id": "c1", "trial": 0, "c2w": np.eye(2), "bad": float("nan")})
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    recs = read_records(path)
    assert recs[0]["x"] == 1.5
    assert recs[1]["c2w"] == [[1.0, 0.0], [0.0, 1.0]] and recs[1]["bad"] is None
    assert w2.done_keys() == {("a", "c0", 0), ("a", "c1", 0)}


def test_corrupt_complete_line_raises_with_location(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"method":"a","clip_id":"c","trial":0}\nnot json\n')
    with pytest.raises(RecordFileError, match=r"r\.jsonl:2:"):
        read_records(path)


def test_key_fields_required():
    with pytest.raises(KeyError, match="trial"):
        record_key({"method": "a", "clip_id": "c"})
    assert record_key({"method": "a", "clip_id": 7, "trial": "2"}) == ("a", "7", 2)
