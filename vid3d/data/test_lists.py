"""Clip-id lists that restrict a test split to the clips a published table used.

A list is a text file of clip ids (a RealEstate10K/ACID camera file's name without ``.txt``), one per line;
``#`` starts a comment, blank lines are skipped. A *preset* is such a file shipped in
``vid3d/data/assets/test_lists/{name}.txt`` whose header comment cites where the ids come from. Used by
``data.test_list=<file or preset>`` (``Re10kClipDataset(clip_list=...)``) and by
``python -m vid3d.data.acquire --list``.

Presets (only lists that are public; see the README for the ones that are not):

* ``pixelsplat_re10k``: the 6,474 RealEstate10K test clips of pixelSplat's / MVSplat's two-view evaluation
  (``assets/evaluation_index_re10k.json``, the keys with a non-null entry).
* ``pixelsplat_acid``: the same for ACID (1,595 clips, ``assets/evaluation_index_acid.json``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from vid3d.errors import InputError

__all__ = ["PRESET_DIR", "is_clip_id", "keep_listed", "preset_names", "read_clip_list", "resolve_clip_list"]

log = logging.getLogger(__name__)
T = TypeVar("T")

PRESET_DIR = Path(__file__).parent / "assets" / "test_lists"
_CLIP_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
MAX_LIST_BYTES = 16 << 20


def is_clip_id(text: str) -> bool:
    """Letters, digits, ``_``, ``-``, ``.`` (not first): a name safe as a file and folder name."""
    return bool(_CLIP_ID_RE.match(text))


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.txt"))


def read_clip_list(path: str | os.PathLike) -> list[str]:
    """Clip ids of the list file ``path`` in file order, duplicates removed (first kept).

    Raises:
        InputError: ``"<path>:<line>: ..."`` for a line that is not one clip id (letters, digits, ``_``,
            ``-``, ``.``; a ``.txt`` suffix is accepted and removed), a file that is not UTF-8 text, too
            large, or holds no id.
    """
    from vid3d.data.files import UnsafePath, read_regular_bytes

    path = Path(path)
    try:
        data = read_regular_bytes(path, MAX_LIST_BYTES)
    except UnsafePath as e:
        raise InputError(f"clip list: {e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: clip list is not UTF-8 text") from None
    ids: dict[str, None] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if entry.endswith(".txt"):
            entry = entry[:-4]
        if not _CLIP_ID_RE.match(entry):
            raise InputError(
                f"{path}:{lineno}: {entry[:60]!r} is not a clip id (one id per line: letters, digits, '_', "
                "'-', '.'; '#' starts a comment)"
            )
        ids.setdefault(entry, None)
    if not ids:
        raise InputError(f"{path}: clip list holds no clip id")
    return list(ids)


def resolve_clip_list(spec: str | os.PathLike) -> tuple[list[str], str]:
    """Clip ids of ``spec`` (a preset name or a list file) and where they came from (the file read).

    Raises:
        InputError: ``spec`` is neither an existing file nor a preset (the message lists the presets).
    """
    spec_s = str(spec)
    path = Path(spec_s).expanduser()
    if path.is_file():
        return read_clip_list(path), str(path)
    preset = PRESET_DIR / f"{spec_s}.txt"
    if "/" not in spec_s and os.sep not in spec_s and preset.is_file():
        return read_clip_list(preset), f"preset {spec_s} ({preset})"
    raise InputError(
        f"clip list {spec_s!r}: no such file and not a preset (presets: {', '.join(preset_names())})"
    )


def keep_listed(items: Sequence[T], clip_id: Callable[[T], str], ids: Sequence[str], list_source: str,
                split_source: str) -> list[T]:
    """The items whose id is in ``ids``, in the items' order. Listed ids absent from the split are counted
    in one warning (a partly downloaded split is usable); none present is an InputError naming both."""
    wanted = set(ids)
    out = [it for it in items if clip_id(it) in wanted]
    if not out:
        raise InputError(
            f"{split_source}: none of the {len(wanted)} clips of the clip list {list_source} is in this "
            f"split ({len(items)} clips; ids are camera file names without .txt)"
        )
    if len(out) < len(wanted):
        log.warning(
            "%s: %d of the %d clips of the clip list %s are not in this split; using the %d present",
            split_source, len(wanted) - len(out), len(wanted), list_source, len(out),
        )
    return out
