"""Atomic writes: a file or folder on disk is always either the previous complete one or the new one.

Every writer goes through a temporary sibling (``.{name}.<random>.tmp``, or ``.{name}.<random>.tmp{suffix}``
for writers that choose the format by the suffix; same folder, so ``os.replace`` is atomic; ``<random>``:
``tempfile.mkstemp``'s 8 characters from ``[a-z0-9_]``, see ``TEMP_RE``) and leaves files readable like any
output (0644; ``mkstemp`` alone gives 0600). ``atomic_target`` lends such a name to writers that need one
(videos, images); ``atomic_dir`` does the same for a folder. A temporary file left by a killed writer is
removed by the next write of the same file once it is older than ``STALE_AFTER_S`` (a live writer of the
same file in another process is never that slow), or at once by :func:`remove_stale_temps` where the caller
knows no other writer exists (a training run's checkpoints). Cleanup matches only that name pattern:
another program's ``*.tmp`` files in the same folder are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o644
DIR_MODE = 0o755
STALE_AFTER_S = 3600.0


# the name of a writer's temporary file: "." + target name + "." + mkstemp's 8 random characters + ".tmp",
# then (atomic_target) the target's own suffix again
TEMP_RE = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>\.[^.]+)?$")


def temp_target(name: str) -> str | None:
    """The file name a writer's temporary file ``name`` was to become, or None when ``name`` is not one."""
    m = TEMP_RE.match(name)
    if m is None:
        return None
    target = m.group("target")
    if m.group("suffix") and Path(target).suffix != m.group("suffix"):
        return None
    return target


def remove_stale_temps(
    path: str | os.PathLike, older_than_s: float = STALE_AFTER_S, suffix: str = ""
) -> int:
    """Remove the writers' temporary siblings of ``path`` (``TEMP_RE`` names only) older than
    ``older_than_s``; or, when ``path`` is a folder, those of every file in it whose name ends with
    ``suffix`` (e.g. ``.ckpt``). Regular files only (a link is not a writer's). Returns how many went."""
    path = Path(path)
    if path.is_dir():
        folder, wanted = path, (lambda target: target.endswith(suffix))
    else:
        folder, wanted = path.parent, (lambda target: target == path.name)
    temps = [t for t in folder.glob(".*.tmp*") if (tg := temp_target(t.name)) is not None and wanted(tg)]
    now, removed = time.time(), 0
    for t in temps:
        try:
            st = t.lstat()
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= older_than_s:
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
        replace_file(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike, keep_suffix: bool = True, fsync: bool = False) -> Iterator[Path]:
    """A temporary sibling of ``path`` (``.{name}.<random>.tmp{suffix}``; ``keep_suffix=False``:
    ``.{name}.<random>.tmp``) for a writer that needs a file name (a video encoder, an image writer
    picking the format by the suffix, ``torch.save``, ``json.dump`` to an ``open(tmp, "w")``). When the
    block ends it is made 0644 (``fsync``: flushed to disk first) and replaces ``path``; on an exception
    it is removed. Stale temporaries of ``path`` are removed first, as by ``atomic_write_bytes``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    suffix = f".tmp{path.suffix}" if keep_suffix else ".tmp"
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        replace_file(tmp, path)
    finally:
        if tmp.exists():  # the block failed (after os.replace the name is gone)
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(final_dir: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling folder (``.{name}.<random>.tmp``, mode 0755) to fill; when the block ends it
    replaces ``final_dir`` (``replace_dir``), on an exception it is removed, so ``final_dir`` is either the
    previous complete folder or the new complete one, never half-written. Temporary folders of
    ``final_dir`` older than ``STALE_AFTER_S`` (left by a killed writer) are removed first."""
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in final_dir.parent.glob(f".{final_dir.name}.*.tmp"):
        try:
            if old.is_dir() and not old.is_symlink() and now - old.stat().st_mtime >= STALE_AFTER_S:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:
            pass
    tmp = Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        replace_dir(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data, indent: int = 2, **dump_kw) -> None:
    """``json.dumps(data, indent=indent, **dump_kw)`` plus a final newline, written atomically (0644)."""
    atomic_write_text(path, json.dumps(data, indent=indent, **dump_kw) + "\n")


def replace_file(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make the complete file ``tmp`` (same file system as ``path``) 0644 and move it onto ``path`` in one
    step (``os.replace``): for files another program wrote whole into a temporary place (a download)."""
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


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


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks). FileNotFoundError names the path."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file (cannot hash it)")
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
