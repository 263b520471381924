"""Sampling: EDM/DDIM samplers, classifier-free guidance and camera trajectory presets."""

from .guidance import cfg_denoiser, frame_guidance, merge_conditions
from .modes import ExploreMode, InterpolateMode, SingleMode
from .pipeline import CameraVideoPipeline
from .samplers import (
    Denoiser,
    initial_noise,
    karras_sigmas,
    sample_ddim,
    sample_edm_euler,
    sample_edm_heun,
)
from .trajectories import (
    PRESETS,
    Trajectory,
    compose_segments,
    load_trajectory_file,
    make_trajectory,
    resample_c2w,
)
from .video_sampler import VideoSampler, replacement_denoiser

__all__ = [
    "PRESETS",
    "CameraVideoPipeline",
    "ExploreMode",
    "InterpolateMode",
    "SingleMode",
    "VideoSampler",
    "replacement_denoiser",
    "Denoiser",
    "Trajectory",
    "cfg_denoiser",
    "compose_segments",
    "frame_guidance",
    "initial_noise",
    "karras_sigmas",
    "load_trajectory_file",
    "make_trajectory",
    "merge_conditions",
    "resample_c2w",
    "sample_ddim",
    "sample_edm_euler",
    "sample_edm_heun",
]
