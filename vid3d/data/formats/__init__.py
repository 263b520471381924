"""On-disk dataset formats. ``re10k``: RealEstate10K camera files and clip folder layout."""

from .re10k import (
    CameraFileError,
    Re10kCameras,
    Re10kClip,
    list_clips,
    read_camera_file,
    read_depth,
    read_frames,
    write_camera_file,
    write_clip,
)

__all__ = [
    "CameraFileError",
    "Re10kCameras",
    "Re10kClip",
    "list_clips",
    "read_camera_file",
    "read_depth",
    "read_frames",
    "write_camera_file",
    "write_clip",
]
