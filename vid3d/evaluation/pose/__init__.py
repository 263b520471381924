"""Pose estimators: frames -> OpenCV camera-to-world poses. ``gt`` (oracle noise floor), ``colmap``."""

from .base import PoseEstimator, PoseResult, check_frames
from .colmap import ColmapPoseEstimator
from .gt import GTPoseEstimator

__all__ = ["ColmapPoseEstimator", "GTPoseEstimator", "PoseEstimator", "PoseResult", "check_frames"]
