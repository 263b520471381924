"""Models: SVD backbone (tiny / pretrained), autoencoders, EDM preconditioning, SVD conditioning,
camera encoders, the camera-controlled video diffusion wrapper and the freeze policy."""

import importlib
from typing import TYPE_CHECKING

# Names are imported on first use (PEP 562), so reaching the math (``vid3d.models.edm``,
# ``vid3d.models.attention``) does not import diffusers and transformers.
_LAZY = {
    "Backbone": "backbone",
    "build_tiny_backbone": "backbone",
    "load_svd_backbone": "backbone",
    "save_backbone": "backbone",
    "CameraEncoder": "camera_encoder",
    "NoCameraEncoder": "camera_encoder",
    "PluckerEncoder": "camera_encoder",
    "RTEncoder": "camera_encoder",
    "build_camera_encoder": "camera_encoder",
    "SVDConditioningConfig": "conditioning",
    "build_conditioning": "conditioning",
    "unconditional": "conditioning",
    "edm_loss": "edm",
    "karras_sigmas": "edm",
    "loss_weight": "edm",
    "sample_train_sigma": "edm",
    "svd_precond": "edm",
    "apply_freeze_policy": "freeze",
    "PixelUnshuffleAutoencoder": "vae",
    "TemporalVAEAdapter": "vae",
    "CameraVideoDiffusion": "video_diffusion",
}


def __getattr__(name: str):
    if name == "FREEZE_GROUPS":
        return importlib.import_module(".freeze", __name__).GROUPS
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    from .backbone import Backbone, build_tiny_backbone, load_svd_backbone, save_backbone
    from .camera_encoder import (
        CameraEncoder,
        NoCameraEncoder,
        PluckerEncoder,
        RTEncoder,
        build_camera_encoder,
    )
    from .conditioning import SVDConditioningConfig, build_conditioning, unconditional
    from .edm import edm_loss, karras_sigmas, loss_weight, sample_train_sigma, svd_precond
    from .freeze import GROUPS as FREEZE_GROUPS
    from .freeze import apply_freeze_policy
    from .vae import PixelUnshuffleAutoencoder, TemporalVAEAdapter
    from .video_diffusion import CameraVideoDiffusion

__all__ = [
    "FREEZE_GROUPS",
    "Backbone",
    "CameraEncoder",
    "CameraVideoDiffusion",
    "NoCameraEncoder",
    "PixelUnshuffleAutoencoder",
    "PluckerEncoder",
    "RTEncoder",
    "SVDConditioningConfig",
    "TemporalVAEAdapter",
    "apply_freeze_policy",
    "build_camera_encoder",
    "build_conditioning",
    "build_tiny_backbone",
    "edm_loss",
    "karras_sigmas",
    "load_svd_backbone",
    "loss_weight",
    "sample_train_sigma",
    "save_backbone",
    "svd_precond",
    "unconditional",
]
