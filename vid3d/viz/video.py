"""Video / frame writers for sampled videos.

Frames are uint8 RGB arrays (F, H, W, 3) (numpy or torch). Files are written atomically
(``vid3d.atomic.atomic_target``: a temporary sibling, then ``os.replace``) with mode 0644.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vid3d.atomic import atomic_target

__all__ = ["side_by_side", "write_frames", "write_video"]


def _as_frames(frames, what: str = "frames") -> np.ndarray:
    if hasattr(frames, "detach"):  # torch tensor
        frames = frames.detach().cpu().numpy()
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{what} must be (F, H, W, 3) with F >= 1, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 RGB, got dtype {arr.dtype}")
    return arr


def _pad_even(frames: np.ndarray) -> np.ndarray:
    """Pad H and W up to even sizes by repeating the last row/column (yuv420p needs even sizes)."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


# below this much free space a failed write is reported as the full disk it almost surely is (the video
# encoder reports ENOSPC as an EOFError or a generic FFmpeg error)
DISK_FULL_BYTES = 64 * 2**20


def _raise_if_disk_full(path: Path, err: Exception) -> None:
    import errno
    import shutil

    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return  # already says so
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return
    if free < DISK_FULL_BYTES:
        raise OSError(
            errno.ENOSPC,
            f"no space left on device writing {path} ({free / 2**20:.0f} MiB free; the encoder "
            f"said {type(err).__name__}: {err})",
        ) from err


def write_video(path: str | os.PathLike, frames, fps: float = 8) -> Path:
    """Write frames (F, H, W, 3) uint8 to ``path``.

    ``.mp4`` (and other suffixes): H.264 (libx264, yuv420p) through imageio's PyAV plugin; odd H or W
    are padded to even by repeating the last row/column, so the decoded size is
    (H + H % 2, W + W % 2). ``.gif``: looping GIF through Pillow. Returns the path.
    """
    path = Path(path)
    arr = _as_frames(frames)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    import imageio.v3 as iio

    try:
        with atomic_target(path) as tmp:
            if path.suffix.lower() == ".gif":
                iio.imwrite(tmp, arr, extension=".gif", duration=1000.0 / fps, loop=0)
            else:
                iio.imwrite(
                    tmp,
                    _pad_even(arr),
                    plugin="pyav",
                    codec="libx264",
                    fps=int(round(fps)) if float(fps).is_integer() else fps,
                    out_pixel_format="yuv420p",
                )
    except Exception as e:
        _raise_if_disk_full(path, e)
        raise
    return path


def write_frames(directory: str | os.PathLike, frames, start: int = 0) -> list[Path]:
    """Write frames (F, H, W, 3) uint8 as lossless PNGs ``{directory}/{index:05d}.png`` (index from
    ``start``), each written atomically. Returns the paths in frame order."""
    import imageio.v3 as iio

    arr = _as_frames(frames)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(arr):
        target = directory / f"{start + i:05d}.png"
        with atomic_target(target) as tmp:
            iio.imwrite(tmp, frame, extension=".png")
        paths.append(target)
    return paths


HEADER_PX = 14  # height of the label strip above labelled videos


def _label_strip(text: str, width: int, fill: int, right: bool = False) -> np.ndarray:
    """(HEADER_PX, width, 3) uint8: ``text`` in black on ``fill``, left- (or right-) aligned, clipped."""
    import cv2

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    strip = np.full((HEADER_PX, width, 3), fill, np.uint8)
    x = 2
    if right:
        x = max(0, width - 2 - cv2.getTextSize(text, font, scale, 1)[0][0])
    cv2.putText(strip, text, (x, HEADER_PX - 4), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def side_by_side(
    videos: Sequence,
    gap: int = 0,
    fill: int = 255,
    labels: Sequence[str] | None = None,
    frame_numbers: bool = False,
) -> np.ndarray:
    """Concatenate videos (F, H_i, W_i, 3) uint8 along width -> (F, max H, sum W + gap * (n - 1), 3).

    All videos must have the same frame count; shorter ones are padded at the bottom with ``fill``
    (as is the ``gap`` between videos). With ``labels`` (one per video, e.g. "ground truth",
    "generated") and/or ``frame_numbers`` (the frame index "k/F-1", right-aligned), a ``HEADER_PX``
    strip above the videos carries the text: the output is then (F, HEADER_PX + max H, ..., 3).
    """
    if len(videos) == 0:
        raise ValueError("side_by_side needs at least one video")
    arrs = [_as_frames(v, f"videos[{i}]") for i, v in enumerate(videos)]
    n_frames = {a.shape[0] for a in arrs}
    if len(n_frames) != 1:
        raise ValueError(f"side_by_side: videos have different frame counts {[a.shape[0] for a in arrs]}")
    H = max(a.shape[1] for a in arrs)
    F = arrs[0].shape[0]
    pieces = []
    for i, a in enumerate(arrs):
        if i > 0 and gap > 0:
            pieces.append(np.full((F, H, gap, 3), fill, dtype=np.uint8))
        if a.shape[1] < H:
            a = np.concatenate([a, np.full((F, H - a.shape[1], a.shape[2], 3), fill, np.uint8)], axis=1)
        pieces.append(a)
    out = np.concatenate(pieces, axis=2)
    if labels is None and not frame_numbers:
        return out
    labels = list(labels) if labels is not None else [""] * len(arrs)
    if len(labels) != len(arrs):
        raise ValueError(f"side_by_side: {len(labels)} labels for {len(arrs)} videos")
    row = []
    for i, (a, text) in enumerate(zip(arrs, labels, strict=True)):
        if i > 0 and gap > 0:
            row.append(np.full((HEADER_PX, gap, 3), fill, np.uint8))
        row.append(_label_strip(text, a.shape[2], fill))
    header = np.concatenate(row, axis=1)
    headers = np.repeat(header[None], F, axis=0)
    if frame_numbers:  # over the right end of the strip, in the last video's part
        w_last = arrs[-1].shape[2]
        for k in range(F):
            number = _label_strip(f"{k}/{F - 1}", w_last, fill, right=True)
            keep = number.min(axis=-1) < fill  # the number's own pixels
            headers[k, :, -w_last:][keep] = number[keep]
    return np.concatenate([headers, out], axis=1)
