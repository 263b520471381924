"""A watch on a folder's files during a run: which files the run wrote, and which of those it read back.

Every ``open`` / ``io.open`` / ``os.open`` and every ``os.replace`` / ``os.rename`` onto a file below
``root`` is seen (the atomic writers end in ``os.replace``). A read of a file after the same run wrote or
created it is a read-back. W&B's own folder (``wandb/``) and the saved videos (``videos/``, media W&B copies
by path) are not watched."""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

IGNORED_PARTS = ("wandb", "videos")


class ReadBackWatch:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.written: set[Path] = set()
        self.reads: list[Path] = []
        self.read_back: list[Path] = []

    def _watched(self, path) -> Path | None:
        if isinstance(path, int):
            return None
        try:
            p = Path(os.fsdecode(path)).resolve()
            rel = p.relative_to(self.root)
        except (TypeError, ValueError):
            return None
        return None if any(part in IGNORED_PARTS for part in rel.parts) else p

    def _saw(self, path, writes: bool) -> None:
        p = self._watched(path)
        if p is None:
            return
        if writes:
            self.written.add(p)
        else:
            self.reads.append(p)
            if p in self.written:
                self.read_back.append(p)

    def install(self, monkeypatch) -> ReadBackWatch:
        real_open, real_os_open = builtins.open, os.open
        real_replace, real_rename = os.replace, os.rename

        def watched_open(file, mode="r", *args, **kwargs):
            self._saw(file, any(c in mode for c in "wax+"))
            return real_open(file, mode, *args, **kwargs)

        def watched_os_open(path, flags, *args, **kwargs):
            self._saw(path, bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)))
            return real_os_open(path, flags, *args, **kwargs)

        def watched_replace(src, dst, *args, **kwargs):
            real_replace(src, dst, *args, **kwargs)
            self._saw(dst, True)

        def watched_rename(src, dst, *args, **kwargs):
            real_rename(src, dst, *args, **kwargs)
            self._saw(dst, True)

        monkeypatch.setattr(builtins, "open", watched_open)
        monkeypatch.setattr(io, "open", watched_open)
        monkeypatch.setattr(os, "open", watched_os_open)
        monkeypatch.setattr(os, "replace", watched_replace)
        monkeypatch.setattr(os, "rename", watched_rename)
        return self
