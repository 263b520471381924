"""Overlap estimators (geometric, RoMa) and the cached overlap index of a dataset split."""

from .base import OverlapEstimator, OverlapResult, OverlapView
from .geometric import GeometricOverlap, covisible_mask

__all__ = ["GeometricOverlap", "OverlapEstimator", "OverlapResult", "OverlapView", "covisible_mask"]
