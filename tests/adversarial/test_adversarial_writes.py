"""After a kill: stale temp files go, outputs are 0644, resume takes the newest complete checkpoint."""

from __future__ import annotations

import os
import stat
import time

import torch

from vid3d.atomic import atomic_write_bytes, remove_stale_temps
from vid3d.models.checkpoint import (
    is_complete_checkpoint,
    newest_complete_checkpoint,
    save_checkpoint_file,
)
from vid3d.tasks.train import resume_path


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_write_mode_and_stale_temp_cleanup(tmp_path):
    target = tmp_path / "results.json"
    stale = tmp_path / ".results.json.abc123de.tmp"  # left by a writer killed long ago
    fresh = tmp_path / ".results.json.def456gh.tmp"  # a writer that may still be running
    other = tmp_path / ".other.json.xyz789ab.tmp"  # another file's: not ours to remove
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}" and _mode(target) == 0o644
    assert not stale.exists() and fresh.exists() and other.exists()
    assert remove_stale_temps(tmp_path, older_than_s=0) == 2 and not list(tmp_path.glob(".*.tmp"))


def test_checkpoint_mode_matches_results(tmp_path):
    save_checkpoint_file({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "last.ckpt")
    atomic_write_bytes(tmp_path / "results.md", b"x")
    assert _mode(tmp_path / "last.ckpt") == _mode(tmp_path / "results.md") == 0o644


def test_resume_takes_the_newest_complete_checkpoint(tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    save_checkpoint_file({"global_step": 2}, ckpts / "last.ckpt")
    save_checkpoint_file({"global_step": 4}, ckpts / "step_0000004.ckpt")  # killed before last.ckpt
    (ckpts / "step_0000006.ckpt").write_bytes(b"\x00" * 40)  # a torn write that was never replaced
    (ckpts / ".last.ckpt.k1ll3d00.tmp").write_bytes(b"partial")
    t = time.time()
    for name, age in (("last.ckpt", 30), ("step_0000004.ckpt", 20), ("step_0000006.ckpt", 10)):
        os.utime(ckpts / name, (t - age, t - age))
    os.utime(ckpts / ".last.ckpt.k1ll3d00.tmp", (t - 120, t - 120))
    assert not is_complete_checkpoint(ckpts / "step_0000006.ckpt")
    assert newest_complete_checkpoint(tmp_path / "run") == ckpts / "step_0000004.ckpt"
    assert resume_path(str(tmp_path / "run"), ckpts) == str(ckpts / "step_0000004.ckpt")
    assert not (ckpts / ".last.ckpt.k1ll3d00.tmp").exists()
    assert resume_path(str(ckpts / "last.ckpt")) == str(ckpts / "last.ckpt")  # a file: as given


def test_a_second_process_on_the_same_eval_shard_stops_at_once(tmp_path):
    """Two evals on one shard: the second exits with a clear message instead of computing it all again."""
    import subprocess
    import sys

    import pytest

    from vid3d.evaluation.records import RecordWriter, ShardBusy

    path = tmp_path / "records.shard0of2.jsonl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from vid3d.evaluation.records import RecordWriter\n"
            f"w = RecordWriter({str(path)!r})\n"
            "with w.exclusive():\n    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ShardBusy, match="another process is evaluating this shard"):
            with RecordWriter(path).exclusive():
                pass
        with RecordWriter(tmp_path / "records.shard1of2.jsonl").exclusive():  # another shard: free
            pass
    finally:
        holder.kill()
        holder.wait()
    with RecordWriter(path).exclusive():  # the lock dies with its process
        pass


def test_a_full_disk_is_named_when_the_video_encoder_hides_it(tmp_path, monkeypatch):
    """PyAV reports ENOSPC as an EOFError; the writer names the cause and leaves no partial file."""
    import errno
    import shutil
    from collections import namedtuple

    import imageio.v3 as iio
    import numpy as np
    import pytest

    from vid3d.viz import video

    def broken_imwrite(*a, **k):
        raise EOFError("End of file")

    monkeypatch.setattr(iio, "imwrite", broken_imwrite)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 4096))
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(OSError) as e:
        video.write_video(tmp_path / "v.mp4", frames)
    assert e.value.errno == errno.ENOSPC and "no space left" in str(e.value) and "EOFError" in str(e.value)
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 0, 10**9))  # space left: the real error
    with pytest.raises(EOFError):
        video.write_video(tmp_path / "v.mp4", frames)
