"""Overlap estimators: how much of a pair of views shows the same scene content.

Every estimator computes, for a pair of views (1, 2), the fraction of pixels of view 1 that are also seen
by view 2 (``ratio_12``) and the converse (``ratio_21``); the pair's overlap is ``min(ratio_12,
ratio_21)`` (the NoPoSplat definition: valid pixels / all pixels per direction, minimum of both).

Conventions: images (H, W, 3) uint8 RGB; ``K_px`` (3, 3) pixel intrinsics at (H, W); ``c2w`` (4, 4)
OpenCV camera-to-world; ``depth`` (H, W) z-depth (0 or non-finite = no surface, e.g. sky).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["OverlapEstimator", "OverlapResult", "OverlapView"]


@dataclass
class OverlapView:
    """One view of a pair; estimators use the fields they need (geometric: K_px, c2w, depth; roma: image)."""

    image: np.ndarray | None = None
    K_px: np.ndarray | None = None
    c2w: np.ndarray | None = None
    depth: np.ndarray | None = None

    def hw(self) -> tuple[int, int]:
        for a in (self.depth, self.image):
            if a is not None:
                return int(a.shape[0]), int(a.shape[1])
        raise ValueError("OverlapView has neither an image nor a depth map")


@dataclass(frozen=True)
class OverlapResult:
    """Per-direction ratios and the pair's overlap = min(ratio_12, ratio_21)."""

    ratio_12: float
    ratio_21: float

    @property
    def overlap(self) -> float:
        return min(self.ratio_12, self.ratio_21)

    def as_dict(self) -> dict[str, float]:
        return {"overlap": self.overlap, "ratio_12": self.ratio_12, "ratio_21": self.ratio_21}


class OverlapEstimator(ABC):
    """Base class. ``name`` identifies the estimator in index files; ``describe()`` gives its settings."""

    name = "overlap"

    @abstractmethod
    def estimate(self, view1: OverlapView, view2: OverlapView) -> OverlapResult:
        """Overlap of a pair of views."""

    def describe(self) -> dict[str, Any]:
        """Name and settings (written into every overlap index and results file)."""
        return {"name": self.name}

    def needs(self) -> tuple[str, ...]:
        """OverlapView fields this estimator reads (the index builder loads only those)."""
        return ("image",)
