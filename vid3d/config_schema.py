"""Typed schemas of the config's key bags (``eval``, ``metrics``, ``overlap``, ``progress``, ``sampler``),
registered in Hydra's ConfigStore as ``schema/<name>`` and listed first in the defaults that fill them
(conf/eval.yaml, conf/overlap/_common.yaml, conf/progress/default.yaml, conf/sampler/*.yaml). The YAML
files keep the documented values; a schema fixes the keys and their types, so a misspelt key in any config
file, or a value of the wrong type on the command line, fails when the config is composed instead of being
silently ignored, and the defaults live here once.
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
    forward (``batch_size``), the model's camera-control rows (``camera_controls``: names from
    ``vid3d.evaluation.camera_controls.CAMERA_CONTROLS``, checked before anything loads), reference rows
    that follow the cameras by construction (``oracle_rows``: ``vid3d.evaluation.depth_warp.ORACLE_ROWS``)."""

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
    camera_controls: list[str] = field(default_factory=list)
    oracle_rows: list[str] = field(default_factory=list)


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


# the solvers' names (``vid3d.sampling.samplers.SOLVERS`` maps them to functions; a test keeps the two equal)
SOLVER_NAMES = ("edm_euler", "edm_heun", "ddim", "dpmpp_2m")


@dataclass
class SamplerOptions:
    """``sampler``: the sampler's options and **the one place for their defaults**. The config group
    (conf/sampler/*.yaml name only what differs), ``VideoSampler``'s arguments and the exported pipeline's
    stored settings (``vid3d_model.json``; checked by ``vid3d.sampling.sampler_settings``) all take their
    keys and defaults from here.

    solver: one of ``SOLVER_NAMES`` (EDM Euler, EDM Heun, DDIM, DPM-Solver++(2M); vid3d/sampling/samplers.py).
    num_steps: steps on the Karras schedule from ``sigma_max`` to ``sigma_min``, then one to 0. The network
        evaluations per video are ``denoiser_calls(solver, num_steps)`` (x2 with guidance).
    sigma_min, sigma_max, rho: the Karras et al. (2022) schedule (SVD: 0.002, 700, 7).
    guidance_min, guidance_max: classifier-free guidance rising linearly from frame 0 to the last frame
        (SVD-style); both 1.0 turns guidance off and halves the network evaluations.
    eta: DDIM's stochasticity (0: the deterministic ODE step; 1: ancestral); only ``solver=ddim`` takes it.

    Defaults chosen from ``benchmarks/sampling_quality.py`` (benchmarks/README.md: the table and the rule):
    12 Euler steps with guidance (24 network evaluations) is the cheapest setting whose PSNR, SSIM and sampled
    camera gap all lie inside the 95% CIs of 25 Euler steps (50 evaluations) on the committed CPU camera
    model's 16 held-out clips; DPM-Solver++(2M) at 6-12 steps fell below them there.
    """

    solver: str = "edm_euler"
    num_steps: int = 12
    sigma_min: float = 0.002
    sigma_max: float = 700.0
    rho: float = 7.0
    guidance_min: float = 1.0
    guidance_max: float = 3.0
    eta: float = 0.0


@dataclass
class SamplerNode(SamplerOptions):
    """conf/sampler: the options above, built into a ``VideoSampler`` by ``hydra.utils.instantiate``, and
    how to run them (not stored with an exported model; the video changes only by float rounding):
    ``cache_conditions`` (step-invariant work once per video), ``autocast`` (null, "bf16" or "fp16") and
    ``compile_unet`` (null or a ``torch.compile`` backend); see ``VideoSampler``."""

    _target_: str = "vid3d.sampling.video_sampler.VideoSampler"
    cache_conditions: bool = True
    autocast: str | None = None
    compile_unet: str | None = None


SCHEMAS: dict[str, Any] = {
    "eval": EvalOptions, "metrics": MetricsOptions, "overlap": OverlapOptions, "progress": ProgressOptions,
    "sampler": SamplerNode,
}


def register_schemas() -> None:
    cs = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        cs.store(group="schema", name=name, node=node, package=name)
