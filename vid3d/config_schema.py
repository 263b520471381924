"""Typed schemas of the evaluation config's key bags (``eval``, ``metrics``, ``overlap``), registered in
Hydra's ConfigStore as ``schema/<name>`` and listed first in the defaults that fill them (conf/eval.yaml,
conf/overlap/_common.yaml). The YAML files keep the documented values; a schema fixes the keys and their
types, so a misspelt key in any config file, or a value of the wrong type on the command line, fails when the
config is composed instead of being silently ignored, and the defaults live here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class CameraGapOptions:
    """``eval.camera_gap``: the model's camera gap on up to max_clips evaluated clips (shard 0)."""

    enabled: bool = True
    max_clips: int = 8
    sigmas: list[float] = field(default_factory=lambda: [0.2, 1.0, 5.0])


@dataclass
class EvalOptions:
    """``eval``: sharding, trials, failure policy, reference rows, saved videos, the camera gap, videos per
    forward (``batch_size``)."""

    shard: int = 0
    num_shards: int = 1
    max_clips: int | None = None
    trials: int = 1
    failure_policy: str = "exclude"
    reference_rows: bool = True
    save_videos: bool = True
    video_fps: float = 8.0
    camera_gap: CameraGapOptions = field(default_factory=CameraGapOptions)
    batch_size: int = 1


@dataclass
class LpipsOptions:
    net: str | None = "alex"
    backbone_weights: str | None = None


@dataclass
class FvdOptions:
    i3d: str | None = None
    batch_size: int = 8


@dataclass
class MetricsOptions:
    """``metrics``: the suite's class (``_target_``: ``evaluation.metric_suite.Metrics`` or one with its
    ``image()`` / ``video()``), LPIPS network and local backbone weights, FVD's I3D file, the device."""

    _target_: str = "vid3d.evaluation.metric_suite.Metrics"
    lpips: LpipsOptions = field(default_factory=LpipsOptions)
    fvd: FvdOptions = field(default_factory=FvdOptions)
    device: str = "auto"


@dataclass
class GeometricOverlapOptions:
    _target_: str = "vid3d.evaluation.overlap.geometric.GeometricOverlap"
    rel_tol: float = 0.01
    abs_tol: float = 0.001


@dataclass
class RomaOverlapOptions:
    _target_: str = "vid3d.evaluation.overlap.roma.RomaOverlap"
    weights: str | None = None
    dinov2_weights: str | None = None
    certainty_threshold: float = 0.005
    coarse_res: int = 560
    upsample_res: int = 864
    device: str = "auto"


@dataclass
class OverlapOptions:
    """``overlap``: the pair benchmarks' pairs (index, gaps, targets, size) and bucket. ``estimator`` names
    the node (``geometric`` or ``roma``) whose ``_target_`` builds the overlap estimator; the name also keys
    the cached overlap index."""

    estimator: str = "geometric"
    split: str = "test"
    index: str | None = None
    cache_dir: str | None = None
    eval_index: str | None = None
    gaps: list[int] = field(default_factory=lambda: [6, 12, 18, 24, 30, 36, 42, 47])
    num_targets: int = 6
    height: int | None = None
    width: int | None = None
    max_pairs: int | None = None
    geometric: GeometricOverlapOptions = field(default_factory=GeometricOverlapOptions)
    roma: RomaOverlapOptions = field(default_factory=RomaOverlapOptions)
    thresholds: dict[str, list[float]] = field(
        default_factory=lambda: {"small": [0.05, 0.3], "medium": [0.3, 0.55], "large": [0.55, 0.8]}
    )
    wandb_images: int = 8
    bucket: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass
class ProgressOptions:
    """``progress``: bars on a terminal, lines in logs (vid3d/progress.py ``ProgressSettings``)."""

    mode: str = "auto"
    every_n: int | None = None
    every_s: float = 30.0
    stages: bool = True


SCHEMAS: dict[str, Any] = {
    "eval": EvalOptions, "metrics": MetricsOptions, "overlap": OverlapOptions, "progress": ProgressOptions,
}


def register_schemas() -> None:
    cs = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        cs.store(group="schema", name=name, node=node, package=name)
