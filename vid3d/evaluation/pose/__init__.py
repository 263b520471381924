"""Pose estimators: frames -> OpenCV camera-to-world poses. ``gt`` (oracle noise floor), ``colmap``,
``flow`` (dense-flow tracks, for small short clips), ``dust3r`` (needs the ``mini-dust3r`` extra: imported
lazily, on first use of ``Dust3rPoseEstimator``)."""

from .base import PoseEstimator, PoseResult, check_frames
from .colmap import ColmapPoseEstimator
from .flow import FlowPoseEstimator
from .gt import GTPoseEstimator

__all__ = [
    "ColmapPoseEstimator",
    "Dust3rPoseEstimator",
    "FlowPoseEstimator",
    "GTPoseEstimator",
    "PoseEstimator",
    "PoseResult",
    "check_frames",
]


def __getattr__(name: str):
    if name == "Dust3rPoseEstimator":
        from .dust3r import Dust3rPoseEstimator

        return Dust3rPoseEstimator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
