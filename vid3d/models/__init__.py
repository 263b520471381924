"""Models: SVD backbone (tiny / pretrained), autoencoders, EDM preconditioning, SVD conditioning,
camera encoders, the camera-controlled video diffusion wrapper and the freeze policy."""

from .backbone import Backbone, build_tiny_backbone, load_svd_backbone, save_backbone
from .camera_encoder import CameraEncoder, NoCameraEncoder, PluckerEncoder, RTEncoder, build_camera_encoder
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
