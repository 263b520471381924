"""The metrics a benchmark scores with, as one object chosen by ``_target_`` (``conf/metrics/``).

``Metrics`` builds, when a benchmark asks, the image metrics of the sparse-view and reconstruction benchmarks
(``ImageMetrics``: PSNR, SSIM, LPIPS) and the video metric of the camera benchmark (``FVDMetric``, or None
when no I3D file is given: FVD is then not computed and the results say so). Another suite (a different
LPIPS, a different video feature network) is a class with the same two methods named by
``metrics._target_``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .fvd import FVDMetric
from .image_metrics import ImageMetrics

__all__ = ["Metrics"]


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Metrics:
    """Args (``conf/metrics/default.yaml``):
        lpips: ``net`` ("alex" | "vgg" | None: LPIPS disabled) and ``backbone_weights`` (a local torchvision
            backbone file; nothing is downloaded).
        fvd: ``i3d`` (a local TorchScript I3D file; None: FVD not computed) and ``batch_size``.
        device: "auto" (CUDA when available), "cpu", "cuda", ...
    """

    def __init__(self, lpips: Mapping[str, Any] | None = None, fvd: Mapping[str, Any] | None = None,
                 device: str = "auto") -> None:
        self.lpips = {"net": "alex", "backbone_weights": None, **dict(lpips or {})}
        self.fvd = {"i3d": None, "batch_size": 8, **dict(fvd or {})}
        self.device = str(device)

    def image(self) -> ImageMetrics:
        """PSNR / SSIM / LPIPS of the pair benchmarks (LPIPS reported unavailable without its weights)."""
        return ImageMetrics(self.lpips["net"], self.lpips["backbone_weights"], self.device)

    def video(self) -> FVDMetric | None:
        """FVD of the camera benchmark, or None when ``fvd.i3d`` is unset. A missing or unloadable file
        raises ``FVDWeightsError`` naming it (called before any clip is loaded or video generated)."""
        path = self.fvd["i3d"]
        if path in (None, ""):
            return None
        return FVDMetric(path, device=_device(self.device), batch_size=int(self.fvd["batch_size"]))
