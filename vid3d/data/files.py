"""Reading files named by a dataset: only regular files, only inside the dataset root.

Paths come from index files, transforms files and folder listings a user hands us. ``confined`` resolves
a path (symlinks followed) and refuses one that leaves its root (``../../etc/passwd``, an absolute path,
a symlink pointing out); ``read_regular_bytes`` refuses anything that is not a regular file before
opening it, so a FIFO, a device or a directory never blocks or misleads a reader, and refuses a file
larger than its size limit before reading it. Both raise :class:`UnsafePath` naming the path.
``load_json`` / ``load_yaml`` read results, records and Hydra files the same way; the YAML loader refuses
aliases (no "billion laughs") and nesting deeper than ``MAX_DEPTH``. ``check_image_pixels`` refuses an image
whose header declares more than ``MAX_IMAGE_PIXELS`` before anything decodes it (:class:`ImageTooLarge`).
Every refusal here is a ``vid3d.errors.InputError`` (so a ``ValueError``) whose message names the file: an
entry point prints it as one line.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from vid3d.errors import InputError

MAX_FILE_BYTES = 1 << 30  # default limit of read_regular_bytes: nothing vid3d reads is near 1 GiB
MAX_IMAGE_BYTES = 256 << 20  # one encoded frame
MAX_TEXT_BYTES = 64 << 20  # results.json, transforms.json, index files
MAX_YAML_BYTES = 1 << 20  # Hydra's overrides.yaml / config.yaml are a few kB
MAX_DEPTH = 64  # nesting of JSON / YAML containers (vid3d's own files nest < 10 deep)


class UnsafePath(InputError):
    """A path outside its root, or a file that is not a regular file."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "outside_root" | "not_regular" | "too_large"


def confined(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """``path`` resolved (symlinks followed); UnsafePath("outside_root") unless it lies inside ``root``."""
    try:
        real, real_root = Path(path).resolve(), Path(root).resolve()
    except (RuntimeError, OSError) as e:  # a symlink loop
        raise UnsafePath("not_regular", f"{path}: cannot be resolved ({e})") from None
    if real != real_root and real_root not in real.parents:
        raise UnsafePath("outside_root", f"{path}: resolves to {real}, outside the dataset root {real_root}")
    return real


def read_regular_bytes(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file (symlinks followed); FileNotFoundError if absent, UnsafePath
    ("not_regular") for a FIFO, device, socket or directory, ("too_large") above ``max_bytes``.

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so neither a FIFO nor
    a file swapped for one between a check and the open can block the reader, and ``/dev/zero`` is refused
    before a byte is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as e:  # a symlink loop, a permission problem, a socket
        raise UnsafePath("not_regular", f"{path}: cannot be read ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath("not_regular", f"{path}: not a regular file")
        if st.st_size > max_bytes:
            raise UnsafePath("too_large", f"{path}: {st.st_size} bytes, more than the limit of {max_bytes}")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)  # a file growing while read stops at the limit too
    if len(data) > max_bytes:
        raise UnsafePath("too_large", f"{path}: more than the limit of {max_bytes} bytes")
    return data


def read_regular_text(path: str | os.PathLike, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """UTF-8 text of a regular file (see ``read_regular_bytes``); InputError naming the file if not UTF-8."""
    try:
        return read_regular_bytes(path, max_bytes).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from None


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of lists / dicts in ``obj`` (iterative; stops counting past ``limit``)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (list, dict)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def load_json(path: str | os.PathLike, max_bytes: int = MAX_TEXT_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON file read by ``read_regular_text``; InputError ``"<path>:<line>: ..."`` for invalid JSON or
    containers nested deeper than ``max_depth`` (never a RecursionError)."""
    text = read_regular_text(path, max_bytes)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested more than {max_depth} levels deep") from None
    if _depth(data, max_depth) > max_depth:
        raise InputError(f"{path}: JSON nested more than {max_depth} levels deep")
    return data


def _yaml_loader(path: str | os.PathLike, max_depth: int):
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader refusing aliases (each may expand to a copy of a whole subtree) and deep nesting."""

        depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise InputError(f"{path}:{mark.line + 1}: YAML aliases (*name) are not accepted")
            self.depth += 1
            try:
                if self.depth > max_depth:
                    raise InputError(f"{path}: YAML nested more than {max_depth} levels deep")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Loader


def load_yaml(path: str | os.PathLike, max_bytes: int = MAX_YAML_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """A YAML file as plain Python (safe tags only) read by ``read_regular_text``; InputError naming the
    file for invalid YAML, an alias or nesting deeper than ``max_depth``."""
    import yaml

    text = read_regular_text(path, max_bytes)
    try:
        return yaml.load(text, Loader=_yaml_loader(path, max_depth))  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise InputError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None


# pixels an image may declare before it is decoded: 8192 x 8192 (a 4K frame has 8.3 M). A 20000 x 20000
# PNG (a few kB on disk, 1.2 GB decoded) is refused from its header, before any decoding.
MAX_IMAGE_PIXELS = 1 << 26


class ImageTooLarge(InputError):
    """An image whose header declares more than the pixel limit (str names the file and its size)."""


def image_header_size(data: bytes, where: str | os.PathLike = "image") -> tuple[int, int]:
    """(width, height) an encoded image declares in its header, read by PIL without decoding a pixel.
    InputError naming ``where`` if PIL does not recognise the format (vid3d reads PNG and JPEG frames;
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
        raise InputError(f"{where}: cannot decode image (header: {str(e).splitlines()[0][:80]})") from None


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
    """uint8 (H, W, 3) RGB from a regular image file; InputError naming the file if undecodable or if
    its header declares more than ``MAX_IMAGE_PIXELS`` pixels (checked before decoding)."""
    import cv2

    raw = read_regular_bytes(path, MAX_IMAGE_BYTES)
    if raw:
        check_image_pixels(raw, path)
    data = np.frombuffer(raw, dtype=np.uint8)
    rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB (no swap)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR if rgb is None else rgb) if data.size else None
    if img is None:
        raise InputError(f"{path}: cannot decode image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if rgb is None else img
