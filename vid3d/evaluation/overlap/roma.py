"""RoMa dense-matching overlap (``overlap.estimator=roma``), the NoPoSplat recipe.

Dense matches from image 1 to 2 and from 2 to 1 with RoMa (the ``romatch`` package, outdoor model); a
pixel is valid where the match certainty exceeds ``certainty_threshold`` (0.005); each direction's ratio
= valid pixels / all pixels of the matcher's output grid; overlap = min of both. romatch's ``match()``
returns ``warp`` (B, H, 2W, 4) and ``certainty`` (B, H, 2W) for a symmetric model: the left half (columns
< W) holds the matches of image A into B, the right half those of B into A.

Weights: the RoMa checkpoint (``overlap.roma.weights``) and its DINOv2 backbone checkpoint
(``overlap.roma.dinov2_weights``) are local files (loaded with ``weights_only=True``); unset, the registered
files (``vid3d.weights``: ``roma_outdoor``, ``dinov2_vitl14``) are downloaded once into torch hub's cache, or
one line names the missing file and its fetch command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vid3d.errors import InputError

from .base import OverlapEstimator, OverlapResult, OverlapView

__all__ = ["RomaOverlap", "RomaWeightsMissing", "ratios_from_certainty"]


class RomaWeightsMissing(FileNotFoundError):
    """RoMa or DINOv2 weights were not given as local files."""


def ratios_from_certainty(certainty: torch.Tensor | np.ndarray, threshold: float) -> tuple[float, float]:
    """(ratio_12, ratio_21) from a symmetric certainty map (H, 2W) or (1, H, 2W): left half = 1 -> 2,
    right half = 2 -> 1; ratio = fraction of cells with certainty > threshold."""
    c = torch.as_tensor(certainty).detach().float().cpu()
    if c.ndim == 3:
        if c.shape[0] != 1:
            raise ValueError(f"expected one pair's certainty, got batch of {c.shape[0]}")
        c = c[0]
    if c.ndim != 2 or c.shape[1] % 2:
        raise ValueError(f"certainty must be (H, 2W) (A->B | B->A), got {tuple(c.shape)}")
    w = c.shape[1] // 2
    valid = c > threshold
    return float(valid[:, :w].float().mean()), float(valid[:, w:].float().mean())


def _load_state(path: str | Path, key: str) -> dict:
    """The state dict in the torch file ``path`` (``weights_only=True``; a ``{"model": ...}`` wrapper
    unpacked); RomaWeightsMissing if absent, InputError naming ``key`` and the file if it is not one."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise RomaWeightsMissing(f"{key}={p}: file does not exist (RoMa weights are never downloaded)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or pickled code outside the weights-only allow-list
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{key}={p}: not a readable PyTorch weights file ({why})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return state


class RomaOverlap(OverlapEstimator):
    """Overlap from RoMa's dense certainty.

    Args:
        weights: local path of the RoMa outdoor checkpoint (``roma_outdoor.pth``).
        dinov2_weights: local path of the DINOv2 ViT-L/14 checkpoint RoMa's encoder uses.
        certainty_threshold: a match is valid where certainty > this (0.005).
        coarse_res, upsample_res: RoMa's working resolutions (coarse must be a multiple of 14).
        device: "cpu", "cuda" or "auto".
        use_custom_corr: RoMa's CUDA local-correlation kernel; forced off on the CPU.
        matcher: an already-built matcher with romatch's ``match(im_A, im_B)`` interface (tests).
    """

    name = "roma"

    def __init__(
        self,
        weights: str | None = None,
        dinov2_weights: str | None = None,
        certainty_threshold: float = 0.005,
        coarse_res: int = 560,
        upsample_res: int = 864,
        device: str = "auto",
        use_custom_corr: bool = False,
        matcher: Any = None,
    ) -> None:
        self.weights, self.dinov2_weights = weights, dinov2_weights
        self.certainty_threshold = float(certainty_threshold)
        self.coarse_res, self.upsample_res = int(coarse_res), int(upsample_res)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = str(device)
        self.use_custom_corr = bool(use_custom_corr) and self.device != "cpu"
        self._matcher = matcher
        if matcher is None:
            from vid3d.weights import fetch_url, get

            # a path the user gave is checked before anything is fetched: a typo is reported at once,
            # not after a download of the other file
            for key, path in (
                ("overlap.roma.weights", weights),
                ("overlap.roma.dinov2_weights", dinov2_weights),
            ):
                if path and not Path(str(path)).expanduser().is_file():
                    raise RomaWeightsMissing(
                        f"{key}={path}: file does not exist (a given path is never downloaded to)"
                    )
            # unset: the registered files (RoMa's own download URLs), fetched into torch hub's cache once
            if not weights:
                weights = str(fetch_url(get("roma_outdoor"), what="overlap.roma.weights"))
            if not dinov2_weights:
                dinov2_weights = str(fetch_url(get("dinov2_vitl14"), what="overlap.roma.dinov2_weights"))
            self.weights, self.dinov2_weights = weights, dinov2_weights

    @property
    def matcher(self):
        if self._matcher is None:
            try:
                from romatch import roma_outdoor
            except ImportError:
                raise InputError(
                    "overlap estimator roma: the romatch package is not installed "
                    "(make install, or pip install --no-deps romatch)"
                ) from None

            self._matcher = roma_outdoor(
                device=self.device,
                weights=_load_state(self.weights, "overlap.roma.weights"),
                dinov2_weights=_load_state(self.dinov2_weights, "overlap.roma.dinov2_weights"),
                coarse_res=self.coarse_res,
                upsample_res=self.upsample_res,
                use_custom_corr=self.use_custom_corr,
            )
        return self._matcher

    @torch.no_grad()
    def estimate(self, view1: OverlapView, view2: OverlapView) -> OverlapResult:
        from PIL import Image

        if view1.image is None or view2.image is None:
            raise ValueError("roma overlap: both views need an image")
        im1 = Image.fromarray(np.ascontiguousarray(view1.image))
        im2 = Image.fromarray(np.ascontiguousarray(view2.image))
        _warp, certainty = self.matcher.match(im1, im2, device=self.device)
        r12, r21 = ratios_from_certainty(certainty, self.certainty_threshold)
        return OverlapResult(r12, r21)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": (
                "RoMa (romatch roma_outdoor) dense matches 1->2 and 2->1; valid where certainty > threshold; "
                "ratio = valid / all cells of the output grid per direction; overlap = min of both"
            ),
            "certainty_threshold": self.certainty_threshold,
            "coarse_res": self.coarse_res,
            "upsample_res": self.upsample_res,
            "weights": None if self.weights is None else Path(str(self.weights)).name,
            "dinov2_weights": None if self.dinov2_weights is None else Path(str(self.dinov2_weights)).name,
        }

    def needs(self) -> tuple[str, ...]:
        return ("image",)
