"""Reading files named by a dataset: only regular files, only inside the dataset root.

Paths come from index files, transforms files and folder listings a user hands us. ``confined`` resolves
a path (symlinks followed) and refuses one that leaves its root (``../../etc/passwd``, an absolute path,
a symlink pointing out); ``read_regular_bytes`` refuses anything that is not a regular file before
opening it, so a FIFO, a device or a directory never blocks or misleads a reader. Both raise
:class:`UnsafePath` (a ``ValueError``) naming the path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np


class UnsafePath(ValueError):
    """A path outside its root, or a file that is not a regular file."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "outside_root" | "not_regular"


def confined(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """``path`` resolved (symlinks followed); UnsafePath("outside_root") unless it lies inside ``root``."""
    try:
        real, real_root = Path(path).resolve(), Path(root).resolve()
    except (RuntimeError, OSError) as e:  # a symlink loop
        raise UnsafePath("not_regular", f"{path}: cannot be resolved ({e})") from None
    if real != real_root and real_root not in real.parents:
        raise UnsafePath("outside_root", f"{path}: resolves to {real}, outside the dataset root {real_root}")
    return real


def read_regular_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file; FileNotFoundError if absent, UnsafePath("not_regular") for a FIFO,
    device, socket or directory (checked before opening, so nothing blocks)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as e:  # a symlink loop, a permission problem
        raise UnsafePath("not_regular", f"{path}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath("not_regular", f"{path}: not a regular file")
    with open(path, "rb") as f:
        return f.read()


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """uint8 (H, W, 3) RGB from a regular image file; ValueError naming the file if undecodable."""
    import cv2

    data = np.frombuffer(read_regular_bytes(path), dtype=np.uint8)
    rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB (no swap)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR if rgb is None else rgb) if data.size else None
    if img is None:
        raise ValueError(f"{path}: cannot decode image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if rgb is None else img
