"""Reading files named by a dataset: only regular files, only inside the dataset root.

Paths come from index files, transforms files and folder listings a user hands us. ``confined`` resolves
a path (symlinks followed) and refuses one that leaves its root (``../../etc/passwd``, an absolute path,
a symlink pointing out); ``read_regular_bytes`` refuses anything that is not a regular file before
opening it, so a FIFO, a device or a directory never blocks or misleads a reader. Both raise
:class:`UnsafePath` (a ``ValueError``) naming the path. ``check_image_pixels`` refuses an image whose
header declares more than ``MAX_IMAGE_PIXELS`` before anything decodes it (:class:`ImageTooLarge`).
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


# pixels an image may declare before it is decoded: 8192 x 8192 (a 4K frame has 8.3 M). A 20000 x 20000
# PNG (a few kB on disk, 1.2 GB decoded) is refused from its header, before any decoding.
MAX_IMAGE_PIXELS = 1 << 26


class ImageTooLarge(ValueError):
    """An image whose header declares more than the pixel limit (str names the file and its size)."""


def image_header_size(data: bytes, where: str | os.PathLike = "image") -> tuple[int, int]:
    """(width, height) an encoded image declares in its header, read by PIL without decoding a pixel.
    ValueError naming ``where`` if PIL does not recognise the format (vid3d reads PNG and JPEG frames;
    anything else is refused rather than handed to a decoder unchecked)."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError as e:  # PIL's own (larger) limit: the size is in its message
        raise ImageTooLarge(
            f"{where}: image exceeds the size limit of {MAX_IMAGE_PIXELS} pixels ({e})"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{where}: cannot decode image (header: {str(e).splitlines()[0][:80]})") from None


def check_image_pixels(
    data: bytes, where: str | os.PathLike = "image", max_pixels: int = MAX_IMAGE_PIXELS
) -> None:
    """ImageTooLarge naming ``where`` if the header of ``data`` declares more than ``max_pixels``
    pixels (or a zero side); cheap: only the header is parsed."""
    w, h = image_header_size(data, where)
    if w <= 0 or h <= 0 or w * h > max_pixels:
        raise ImageTooLarge(
            f"{where}: image of {w}x{h} pixels exceeds the size limit of {max_pixels} pixels (not decoded)"
        )


def check_video_pixels(stream, where: str | os.PathLike) -> None:
    """ImageTooLarge naming ``where`` if a PyAV video ``stream`` declares frames of more than
    ``MAX_IMAGE_PIXELS`` pixels (read from the stream header: call before decoding any frame)."""
    w, h = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if w * h > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(
            f"{where}: video frames of {w}x{h} pixels exceed the size limit of {MAX_IMAGE_PIXELS} pixels"
        )


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """uint8 (H, W, 3) RGB from a regular image file; ValueError naming the file if undecodable or if
    its header declares more than ``MAX_IMAGE_PIXELS`` pixels (checked before decoding)."""
    import cv2

    raw = read_regular_bytes(path)
    if raw:
        check_image_pixels(raw, path)
    data = np.frombuffer(raw, dtype=np.uint8)
    rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB (no swap)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR if rgb is None else rgb) if data.size else None
    if img is None:
        raise ValueError(f"{path}: cannot decode image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if rgb is None else img
