"""On-disk dataset formats: ``re10k`` (RealEstate10K / ACID camera files and clip folder layout, re-exported
here), ``pixelsplat`` (pixelSplat / MVSplat .torch chunks), ``dl3dv`` (nerfstudio transforms.json scenes)
and ``convert`` (RealEstate10K layout -> DL3DV / chunks; ``python -m vid3d.data.formats.convert``)."""

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
