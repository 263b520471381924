"""Weighted mixture of clip datasets (e.g. RE10K + DL3DV + ACID, each with its own interval schedule).

Item i of epoch e draws, from a numpy Generator seeded with (seed, e, i), a dataset name with probability
weight / sum(weights) and then a uniform index into that dataset. Each sub-dataset keeps its own
interval schedule and SharedProgress, which ``IntervalStepCallback`` finds through this object, so per-
dataset curricula work unchanged. The sample gets an extra ``dataset`` field (the name, str).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .interval import SharedProgress, set_progress

__all__ = ["MixtureDataset"]


class MixtureDataset(Dataset):
    """Args:
    datasets: name -> map-style dataset (each item a sample dict).
    weights: name -> non-negative weight (missing names get weight 0; at least one > 0).
    length: number of items per epoch.
    seed: base seed for the per-item choice.
    """

    def __init__(
        self,
        datasets: dict[str, Dataset],
        weights: dict[str, float] | None = None,
        length: int = 10_000,
        seed: int = 0,
    ) -> None:
        if not datasets:
            raise ValueError("MixtureDataset needs at least one dataset")
        weights = dict(weights) if weights is not None else {name: 1.0 for name in datasets}
        unknown = set(weights) - set(datasets)
        if unknown:
            raise ValueError(
                f"weights given for unknown datasets {sorted(unknown)}; known: {sorted(datasets)}"
            )
        self.names = sorted(datasets)
        self.datasets = dict(datasets)
        w = np.array([float(weights.get(n, 0.0)) for n in self.names])
        if (w < 0).any() or not np.isfinite(w).all():
            raise ValueError(f"weights must be finite and >= 0, got {weights}")
        empty = [n for n, wn in zip(self.names, w) if wn > 0 and len(self.datasets[n]) == 0]  # type: ignore[arg-type]
        if empty:
            raise ValueError(f"datasets with positive weight are empty: {empty}")
        if w.sum() <= 0:
            raise ValueError("at least one weight must be > 0")
        self.probs = w / w.sum()
        self.length, self.seed = int(length), int(seed)
        self.progress = SharedProgress()

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch here and in every sub-dataset (all reachable SharedProgress)."""
        set_progress(self, epoch=epoch)

    def choose(self, index: int) -> tuple[str, int]:
        """(dataset name, index into it) for mixture item ``index`` at the current epoch."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for MixtureDataset of length {self.length}")
        rng = np.random.default_rng([self.seed, self.progress.epoch, int(index)])
        name = self.names[int(rng.choice(len(self.names), p=self.probs))]
        return name, int(rng.integers(len(self.datasets[name])))  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        name, j = self.choose(index)
        sample = dict(self.datasets[name][j])
        sample["dataset"] = name
        return sample
