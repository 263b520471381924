"""Image metrics of the sparse-view benchmark: PSNR, SSIM (torchmetrics) and LPIPS (the ``lpips`` package).

Images are (N, H, W, 3) uint8 RGB, compared frame by frame at the same size; values are per frame.

- PSNR: torchmetrics ``peak_signal_noise_ratio`` on images scaled to [0, 1], data_range 1, one value per
  image (MSE over its pixels and channels), in dB. Identical images give +inf.
- SSIM: torchmetrics ``structural_similarity_index_measure`` on [0, 1] images, data_range 1, Gaussian
  window 11 x 11, sigma 1.5, K1 0.01, K2 0.03; torchmetrics reflect-pads the images by 5 pixels and
  averages the SSIM map over the whole image and the channels (skimage, used by pixelSplat, averages over
  the interior only: values differ in the third decimal).
- LPIPS (v0.1, linear heads shipped in the ``lpips`` wheel) with an AlexNet (``alex``) or VGG16 (``vgg``)
  ImageNet backbone, inputs in [-1, 1]. The backbone weights are read from a local file
  (``metrics.lpips.backbone_weights``) or torch hub's cache
  (``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``), where they are
  downloaded on first use (``vid3d.weights``: hash-checked; offline, one line says how to fetch them and the
  evaluation stops). LPIPS is never computed with random weights; ``metrics.lpips.net=null`` turns it off.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "BACKBONE_FILES",
    "ImageMetrics",
    "LpipsUnavailable",
    "build_lpips",
    "find_backbone_weights",
    "psnr",
    "ssim",
]

log = logging.getLogger("vid3d")

# torchvision's ImageNet weight files (what LPIPS' pretrained backbones load), as named in the hub cache.
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


class LpipsUnavailable(RuntimeError):
    """LPIPS cannot be computed (its backbone weights are not available locally)."""


def _to_unit(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float64 in [0, 1]."""
    x = torch.as_tensor(np.asarray(frames))
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) uint8 images, got {tuple(x.shape)} {x.dtype}")
    return x.permute(0, 3, 1, 2).double() / 255.0


def _pair(pred, gt) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = _to_unit(pred), _to_unit(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and ground truth {tuple(g.shape)} differ in shape")
    return p, g


def psnr(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-image PSNR (dB), (N,) float64; +inf for identical images."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, g = _pair(pred, gt)
    out = peak_signal_noise_ratio(p, g, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return out.reshape(-1).numpy().astype(np.float64)


def ssim(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-image SSIM, (N,) float64 (Gaussian window 11, sigma 1.5)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    p, g = _pair(pred, gt)
    out = structural_similarity_index_measure(
        p, g, data_range=1.0, gaussian_kernel=True, kernel_size=11, sigma=1.5, reduction="none"
    )
    return out.reshape(-1).numpy().astype(np.float64)


def find_backbone_weights(net: str, path: str | None = None) -> Path:
    """The local ImageNet backbone file for LPIPS ``net``: ``path`` if given, else torch hub's cache
    (downloaded there on first use).

    Raises LpipsUnavailable for a given path that does not exist; ``vid3d.weights.WeightsUnavailable`` (one
    line with the fetch command) when the cached file is missing and cannot be downloaded.
    """
    if net not in BACKBONE_FILES:
        raise ValueError(f"metrics.lpips.net must be one of {sorted(BACKBONE_FILES)}, got {net!r}")
    if path:
        p = Path(str(path)).expanduser()
        if not p.is_file():
            raise LpipsUnavailable(f"metrics.lpips.backbone_weights={p}: file does not exist")
        return p
    from vid3d.weights import fetch_url, get

    return fetch_url(get(f"lpips_{net}"), what=f"metrics.lpips.net={net}")


def build_lpips(net: str = "alex", backbone_weights: str | None = None) -> torch.nn.Module:
    """LPIPS v0.1 with its shipped linear heads and the ImageNet backbone loaded from a local file.

    The backbone is built empty (``pnet_rand=True``, so lpips never downloads) and every one of its
    weights is then loaded from the file; a file that does not fill all of them is refused.
    """
    path = find_backbone_weights(net, backbone_weights)
    import lpips

    model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise LpipsUnavailable(f"{path}: expected a state dict of torchvision's {net} model")
    own = model.net.state_dict()  # keys "sliceK.<features index>.weight|bias"
    loaded = {}
    for key in own:
        src = "features." + key.split(".", 1)[1]
        if src not in state:
            raise LpipsUnavailable(f"{path}: no {src!r}: not a torchvision {net} ImageNet state dict")
        if tuple(state[src].shape) != tuple(own[key].shape):
            raise LpipsUnavailable(
                f"{path}: {src!r} has shape {tuple(state[src].shape)}, expected {tuple(own[key].shape)}"
            )
        loaded[key] = state[src]
    model.net.load_state_dict(loaded, strict=True)
    return model.eval()


class ImageMetrics:
    """PSNR / SSIM / LPIPS of predicted vs ground-truth frames.

    Args:
        lpips_net: "alex" or "vgg"; None disables LPIPS.
        lpips_backbone_weights: local torchvision ImageNet weights file; None = torch hub cache.
        device: where LPIPS runs ("cpu", "cuda", "auto").
    """

    def __init__(
        self, lpips_net: str | None = "alex", lpips_backbone_weights: str | None = None, device: str = "auto"
    ) -> None:
        self.lpips_net = lpips_net
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.lpips_unavailable: str | None = None
        self._lpips = None
        if lpips_net is None:
            self.lpips_unavailable = "disabled (metrics.lpips.net=null)"
        else:
            try:
                self._lpips = build_lpips(lpips_net, lpips_backbone_weights).to(self.device)
            except LpipsUnavailable as e:
                self.lpips_unavailable = str(e)
                log.warning("LPIPS unavailable: %s", e)

    @property
    def lpips_available(self) -> bool:
        return self._lpips is not None

    @torch.no_grad()
    def lpips(self, pred: np.ndarray, gt: np.ndarray, batch: int = 8) -> np.ndarray:
        if self._lpips is None:
            raise LpipsUnavailable(self.lpips_unavailable or "LPIPS unavailable")
        p, g = _pair(pred, gt)
        out = []
        for k in range(0, len(p), batch):
            a = (p[k : k + batch].float() * 2 - 1).to(self.device)
            b = (g[k : k + batch].float() * 2 - 1).to(self.device)
            out.append(self._lpips(a, b).reshape(-1).double().cpu())
        return torch.cat(out).numpy() if out else np.zeros(0)

    def __call__(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
        """Per-frame values: {"psnr": [...], "ssim": [...], "lpips": [...] or None}."""
        return {
            "psnr": psnr(pred, gt).tolist(),
            "ssim": ssim(pred, gt).tolist(),
            "lpips": self.lpips(pred, gt).tolist() if self.lpips_available else None,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "psnr": "torchmetrics peak_signal_noise_ratio per image, [0, 1] images, data_range 1 (dB)",
            "ssim": (
                "torchmetrics structural_similarity_index_measure per image, Gaussian 11x11 sigma 1.5, "
                "data_range 1, reflect-padded borders included in the mean"
            ),
            "lpips": (
                {"package": "lpips 0.1 (linear heads v0.1)", "net": self.lpips_net, "input": "[-1, 1]"}
                if self.lpips_available
                else {"unavailable": self.lpips_unavailable}
            ),
            "per_sample": "mean over the sample's target frames; tables: mean over samples",
        }
