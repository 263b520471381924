"""Camera-accuracy evaluation: trajectory errors, pose estimators, resumable records, aggregation."""

from .aggregate import aggregate, bootstrap_ci, merge_shards, write_results
from .camera_errors import camera_errors, prepare_trajectory
from .camera_runner import (
    EvalClip,
    eval_clips_from_re10k,
    gt_video_method,
    run_camera_eval,
    shard_clips,
    static_first_frame_method,
)
from .pose import ColmapPoseEstimator, GTPoseEstimator, PoseEstimator, PoseResult
from .records import RecordWriter, read_records

__all__ = [
    "ColmapPoseEstimator",
    "EvalClip",
    "GTPoseEstimator",
    "PoseEstimator",
    "PoseResult",
    "RecordWriter",
    "aggregate",
    "bootstrap_ci",
    "camera_errors",
    "eval_clips_from_re10k",
    "gt_video_method",
    "merge_shards",
    "prepare_trajectory",
    "read_records",
    "run_camera_eval",
    "shard_clips",
    "static_first_frame_method",
    "write_results",
]
