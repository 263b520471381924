"""Visualisation: trajectory plots and video/frame writers."""

from .trajectory_plot import plot_trajectory
from .video import side_by_side, write_frames, write_video

__all__ = ["plot_trajectory", "side_by_side", "write_frames", "write_video"]
