"""Atomic writes: a file or folder on disk is always either the previous complete one or the new one.

Every writer goes through a temporary sibling (``.{name}.<random>.tmp``, same folder, so ``os.replace`` is
atomic) and leaves files readable like any output (0644; ``mkstemp`` alone gives 0600). A temporary file
left by a killed writer is removed by the next write of the same file once it is older than
``STALE_AFTER_S`` (a live writer of the same file in another process is never that slow), or at once by
:func:`remove_stale_temps` where the caller knows no other writer exists (a training run's checkpoints).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

FILE_MODE = 0o644
STALE_AFTER_S = 3600.0


def _temps(path: Path) -> list[Path]:
    return list(path.parent.glob(f".{path.name}.*.tmp"))


def remove_stale_temps(path: str | os.PathLike, older_than_s: float = STALE_AFTER_S) -> int:
    """Remove temporary siblings of ``path`` (``.{name}.*.tmp``) older than ``older_than_s``; or, when
    ``path`` is a folder, those of every file in it. Returns how many were removed."""
    path = Path(path)
    temps = list(path.glob(".*.tmp")) if path.is_dir() else _temps(path)
    now, removed = time.time(), 0
    for t in temps:
        try:
            if t.is_file() and now - t.stat().st_mtime >= older_than_s:
                t.unlink()
                removed += 1
        except FileNotFoundError:  # removed by someone else meanwhile
            pass
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and ``os.replace`` (mode 0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def replace_dir(tmp_dir: str | os.PathLike, final_dir: str | os.PathLike) -> None:
    """Move ``tmp_dir`` to ``final_dir`` (same file system), replacing an existing folder: the old one is
    renamed aside first and removed afterwards, so ``final_dir`` is never half-written."""
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    old = None
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old-{os.getpid()}-{os.urandom(3).hex()}")
        os.rename(final_dir, old)
    os.rename(tmp_dir, final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
