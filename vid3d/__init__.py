"""vid3d: camera-controlled video diffusion experiments (train, sample, benchmark)."""

__version__ = "0.1.0"
