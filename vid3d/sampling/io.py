"""Sampling inputs and outputs: user images (single or a list), and the files written per sample.

Conventions: images uint8 (H, W, 3) RGB at the model size; intrinsics ``K_px`` in pixels at that size;
poses OpenCV camera-to-world (x right, y down, z forward), the first frame = identity.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vid3d.atomic import atomic_write_json
from vid3d.data.files import read_regular_text
from vid3d.errors import InputError

__all__ = [
    "CAMERA_CONVENTION",
    "InputImage",
    "SampleJob",
    "image_list",
    "load_image",
    "load_inputs",
    "write_cameras",
    "write_sample",
]

CAMERA_CONVENTION = (
    "OpenCV camera axes (x right, y down, z forward); camera-to-world 4x4; intrinsics in pixels at the "
    "frame size; pixel (u, v) centre at (u + 0.5, v + 0.5); poses relative to the first frame"
)


@dataclass
class InputImage:
    """A user image at the model size with its pinhole intrinsics."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8
    K_px: np.ndarray  # (3, 3) float64


@dataclass
class SampleJob:
    """One output sample: what to generate and what to write.

    ``K_px`` (N, 3, 3) and ``c2w`` (N, 4, 4) cover every output frame (for explore: the whole composed
    path). ``image_end``: the known last frame (interpolate). ``segments``: per-segment (K_px, c2w),
    each relative to its own first frame (explore). ``gt_frames``: ground truth for a side-by-side video.
    """

    name: str
    image: np.ndarray
    K_px: np.ndarray
    c2w: np.ndarray
    image_end: np.ndarray | None = None
    segments: list[tuple[np.ndarray, np.ndarray]] | None = None
    gt_frames: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def load_image(path: str | os.PathLike, height: int, width: int, fov_deg: float = 60.0) -> InputImage:
    """Read an image, centre-crop/resize it to (height, width); pinhole K from the horizontal field of
    view of the *original* image (principal point at its centre), carried through the crop/resize."""
    import imageio.v3 as iio

    from vid3d.data.files import ImageTooLarge, UnsafePath, check_image_pixels, read_regular_bytes
    from vid3d.data.transforms import center_crop_resize
    from vid3d.geometry import intrinsics_matrix

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image {path} does not exist (image=)")
    try:  # the header's size is checked before anything decodes the pixels
        check_image_pixels(read_regular_bytes(path), f"image {path}")
    except (UnsafePath, ImageTooLarge) as e:
        raise InputError(str(e)) from None
    except ValueError:
        pass  # a format PIL does not know (a video, say): imageio below says what it is
    try:
        img = iio.imread(path)
    except Exception as e:  # imageio raises several error types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"image {path} cannot be read as an image ({first}); give a PNG or JPEG") from e
    if img.ndim == 4 or (img.ndim == 3 and img.shape[-1] not in (1, 3, 4)):
        raise InputError(
            f"image {path} holds {img.shape[0]} frames (a video or multi-page file); give one image (PNG or "
            "JPEG), e.g. the video's first frame"
        )
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or min(img.shape[:2]) < 2:
        raise InputError(f"image {path}: not a 2D image (array shape {img.shape})")
    img = np.asarray(img[..., :3])
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.dtype != np.uint8:
        raise InputError(f"image {path}: expected 8-bit RGB, got dtype {img.dtype}; save it as 8-bit PNG")
    h0, w0 = img.shape[:2]
    f = 0.5 * w0 / math.tan(math.radians(fov_deg) / 2)
    K0 = intrinsics_matrix(f, f, w0 / 2, h0 / 2)
    frames, K = center_crop_resize(img[None], K0[None], height, width)
    return InputImage(path.stem, np.asarray(frames[0]), np.asarray(K[0], dtype=np.float64))


def image_list(images: str | os.PathLike | Sequence[str] | None) -> list[list[Path]]:
    """Paths from ``images``: a list of paths, or a text file with one input per line.

    Each line (or list entry) holds one path, or two whitespace-separated paths ``first last`` (the
    interpolate mode's pair). Blank lines and ``#`` comments are skipped; relative paths in a text file
    are relative to the file's folder. Returns one list of 1 or 2 paths per input.
    """
    if images is None:
        return []
    if isinstance(images, (str, os.PathLike)):
        p = Path(images)
        if p.suffix.lower() not in (".txt", ".lst", ".list"):
            return [[p]]
        if not p.is_file():
            raise InputError(f"image list {p} does not exist (images=)")
        out = []
        try:  # a regular file only (a FIFO never blocks), at most 16 MiB
            text = read_regular_text(p, 16 << 20)
        except ValueError as e:
            raise InputError(f"{e} (images=)") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            parts = line.split("#", 1)[0].split()
            if not parts:
                continue
            if len(parts) > 2:
                raise InputError(f"{p}:{lineno}: expected 'image' or 'first last', got {len(parts)} paths")
            out.append([q if q.is_absolute() else p.parent / q for q in map(Path, parts)])
        if not out:
            raise InputError(f"image list {p} names no images")
        return out
    return [[Path(q) for q in str(item).split()] for item in images]


def write_cameras(path: Path, K_px: np.ndarray, c2w: np.ndarray, height: int, width: int, **extra) -> None:
    """``cameras.json``: the convention, frame size and per-frame K_px and c2w (written atomically)."""
    cameras = {
        "convention": CAMERA_CONVENTION,
        "height": int(height),
        "width": int(width),
        **extra,
        "frames": [
            {"index": i, "K_px": np.asarray(K_px[i]).tolist(), "c2w": np.asarray(c2w[i]).tolist()}
            for i in range(len(c2w))
        ],
    }
    atomic_write_json(path, cameras, indent=1)


def write_sample(out: Path, job: SampleJob, frames: np.ndarray, fps: int) -> Path:
    """Write ``video.mp4``, ``frames/*.png``, ``cameras.json``, ``trajectory.png`` (and, with ground
    truth, ``gt_vs_generated.mp4``) under ``out``. ``frames``: (N, H, W, 3) uint8, N = len(job.c2w)."""
    from vid3d.viz import plot_trajectory, side_by_side, write_frames, write_video

    if len(frames) != len(job.c2w):
        raise ValueError(f"sample {job.name}: {len(frames)} frames but {len(job.c2w)} cameras")
    out.mkdir(parents=True, exist_ok=True)
    write_video(out / "video.mp4", frames, fps=fps)
    write_frames(out / "frames", frames)
    h, w = frames.shape[1:3]
    write_cameras(out / "cameras.json", job.K_px, job.c2w, h, w, **job.info)
    plot_trajectory({"trajectory": job.c2w}, path=out / "trajectory.png", title=job.name)
    if job.gt_frames is not None and len(job.gt_frames) == len(frames):
        both = side_by_side(
            [job.gt_frames, frames], gap=4, labels=["ground truth", "generated"], frame_numbers=True
        )
        write_video(out / "gt_vs_generated.mp4", both, fps=fps)
    return out


def load_inputs(
    image: str | None,
    images: str | Sequence[str] | None,
    image_end: str | Sequence[str] | None,
    height: int,
    width: int,
    fov_deg: float = 60.0,
) -> list[list[InputImage]]:
    """The user's inputs as groups of 1 image (single/explore) or 2 (interpolate: first, last).

    ``image``: one path; ``images``: a list of paths or a .txt list (see :func:`image_list`);
    ``image_end``: the last frame of ``image``, or a list with one last frame per entry of ``images``.
    Returns [] when no image is given (the test clips are used then).
    """
    if image and images:
        raise InputError("give either image=... or images=[...], not both")
    groups = image_list(images) if images else ([[Path(image)]] if image else [])
    if image_end:
        ends = [[Path(image_end)]] if isinstance(image_end, (str, os.PathLike)) else image_list(image_end)
        if len(ends) != len(groups) or any(len(g) != 1 for g in groups):
            raise InputError(
                f"image_end names {len(ends)} image(s) for {len(groups)} input(s): give one last frame per "
                "first frame (or write 'first last' pairs in the image list)"
            )
        groups = [g + e for g, e in zip(groups, ends, strict=True)]
    return [[load_image(p, height, width, fov_deg) for p in g] for g in groups]
