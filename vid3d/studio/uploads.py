"""Uploaded files: checked with the readers ``sample.py`` uses, then copied into the request's folder.

A bad upload is one ``InputError`` line naming the file and what is wrong (shown in the page); nothing is
copied then. Images go through ``vid3d.sampling.io.load_image`` (header checked for its pixel count before
decoding, one frame, 8-bit), pose files through ``vid3d.sampling.load_trajectory_file`` (RealEstate10K /
CamI2V ``.txt``, ``.json``, ``.npy``; finite, orthonormal, size-limited).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vid3d.errors import InputError
from vid3d.sampling.io import InputImage, load_image
from vid3d.sampling.trajectories import Trajectory, load_trajectory_file

__all__ = ["MAX_IMAGE_BYTES", "MAX_POSE_BYTES", "check_size", "keep_upload", "read_image", "read_poses"]

MAX_IMAGE_BYTES = 25 << 20
MAX_POSE_BYTES = 8 << 20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
POSE_SUFFIXES = (".txt", ".json", ".npy")


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def check_size(path: str | os.PathLike, what: str, limit: int) -> Path:
    """``path`` if it is a regular file of at most ``limit`` bytes; InputError naming it otherwise."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {p.name}: not a file")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{what} {p.name}: the file is empty")
    if size > limit:
        raise InputError(f"{what} {p.name}: {_mib(size)}, more than the {_mib(limit)} limit")
    return p


def read_image(path: str | os.PathLike, height: int, width: int, fov_deg: float) -> InputImage:
    """The uploaded image at the model size (``load_image``), or one InputError line naming it."""
    p = check_size(path, "image", MAX_IMAGE_BYTES)
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(
            f"image {p.name}: expected {', '.join(IMAGE_SUFFIXES)}, got {p.suffix or 'no suffix'!r}"
        )
    try:
        return load_image(p, height, width, fov_deg)
    except InputError as e:  # name the upload, not gradio's temporary folder
        raise InputError(str(e).replace(str(p), p.name)) from None


def read_poses(path: str | os.PathLike, num_frames: int) -> Trajectory:
    """The uploaded pose file as a Trajectory of ``num_frames`` (``load_trajectory_file``), or one line."""
    p = check_size(path, "pose file", MAX_POSE_BYTES)
    if p.suffix.lower() not in POSE_SUFFIXES:
        raise InputError(
            f"pose file {p.name}: expected {', '.join(POSE_SUFFIXES)} (RealEstate10K/CamI2V .txt, "
            f"JSON, .npy), got {p.suffix or 'no suffix'!r}"
        )
    try:
        return load_trajectory_file(p, num_frames)
    except InputError as e:
        raise InputError(str(e).replace(str(p), p.name)) from None
    except (ValueError, OSError) as e:  # the RealEstate10K reader's own refusals
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"pose file {p.name}: {first.replace(str(p), p.name)}") from None


def keep_upload(path: str | os.PathLike, folder: Path, stem: str) -> Path:
    """Copy a checked upload into ``folder`` as ``<stem><suffix>`` (the path the command line names)."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / f"{stem}{Path(path).suffix.lower()}"
    shutil.copyfile(path, dst)
    return dst
