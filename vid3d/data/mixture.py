"""Weighted mixture of clip datasets (e.g. RE10K + DL3DV + ACID, each with its own interval schedule).

Item i of epoch e draws, from a numpy Generator seeded with (seed, e, i), a dataset name with probability
weight / sum(weights) and then a uniform index into that dataset. Each sub-dataset keeps its own
interval schedule and SharedProgress, which ``IntervalStepCallback`` finds through this object, so per-
dataset curricula work unchanged. The sample gets an extra ``dataset`` field (the name, str).

:class:`PhasedMixtureDataset` switches the weights at configured trainer global steps (a data schedule
such as "RealEstate10K + ACID first, then DL3DV added"). It reads the step from its own SharedProgress,
which ``IntervalStepCallback`` sets from ``trainer.global_step`` in the main process and DataLoader workers
see through shared memory, so the switch is correct across workers, after resume and under DDP (every rank
publishes the same step). Through ``VideoDataModule``'s resumable sampler (``StepIndexedDataset``) each
item carries the step that trains on it and the switch is exact; with a plain DataLoader a prefetched
sample may have been drawn a few steps early (within ``prefetch_factor * num_workers`` batches). Its
samples also carry ``phase`` (int, index of the phase used).

Mixtures have no ``groups()`` (an item is a fresh draw, not a fixed clip of a chunk), so the training order
over them is ``data.datamodule.shuffle=full`` (``grouped`` falls back to it with a warning).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .interval import SharedProgress, set_progress

__all__ = ["MixtureDataset", "PhasedMixtureDataset"]


def _refuse_holdout(holdout: Any) -> None:
    """A validation hold-out (vid3d.data.holdout) is defined on one dataset's split, not on a mixture."""
    if holdout is not None:
        raise ValueError(
            "holdout on a mixture dataset is not supported: the validation hold-out (hparams_search=optuna, "
            "post_eval.split=validation) needs a single-dataset data option (re10k, acid, dl3dv, "
            f"re10k_chunks, synthetic); got holdout={holdout}"
        )


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
        holdout: Any = None,
    ) -> None:
        _refuse_holdout(holdout)
        if not datasets:
            raise ValueError("MixtureDataset needs at least one dataset")
        weights = dict(weights) if weights is not None else {name: 1.0 for name in datasets}
        self.names = sorted(datasets)
        self.datasets = dict(datasets)
        self.probs = self._probabilities(weights)
        self.length, self.seed = int(length), int(seed)
        self.progress = SharedProgress()

    def _probabilities(self, weights: dict[str, float], where: str = "weights") -> np.ndarray:
        """Validated weights -> probabilities over ``self.names``."""
        unknown = set(weights) - set(self.datasets)
        if unknown:
            raise ValueError(f"{where}: unknown datasets {sorted(unknown)}; known: {sorted(self.datasets)}")
        w = np.array([float(weights.get(n, 0.0)) for n in self.names])
        if (w < 0).any() or not np.isfinite(w).all():
            raise ValueError(f"{where} must be finite and >= 0, got {weights}")
        empty = [n for n, wn in zip(self.names, w) if wn > 0 and len(self.datasets[n]) == 0]  # type: ignore[arg-type]
        if empty:
            raise ValueError(f"{where}: datasets with positive weight are empty: {empty}")
        if w.sum() <= 0:
            raise ValueError(f"{where}: at least one weight must be > 0")
        return w / w.sum()

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch here and in every sub-dataset (all reachable SharedProgress)."""
        set_progress(self, epoch=epoch)

    def current_probs(self) -> np.ndarray:
        """Probabilities over ``self.names`` in use now."""
        return self.probs

    def choose(self, index: int) -> tuple[str, int]:
        """(dataset name, index into it) for mixture item ``index`` at the current epoch."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for MixtureDataset of length {self.length}")
        rng = np.random.default_rng([self.seed, self.progress.epoch, int(index)])
        name = self.names[int(rng.choice(len(self.names), p=self.current_probs()))]
        return name, int(rng.integers(len(self.datasets[name])))  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        name, j = self.choose(index)
        sample = dict(self.datasets[name][j])
        sample["dataset"] = name
        return sample


class PhasedMixtureDataset(MixtureDataset):
    """A mixture whose weights change with the trainer's global step.

    Args:
        datasets: name -> map-style dataset.
        phases: list of ``{"start_step": int, "weights": {name: weight}}``; the first must start at 0,
            start steps never decrease; phase k is used for start_step_k <= step < start_step_{k+1} (a
            phase followed by one with the same start step is never used: ``phase2_start_step: 0`` runs
            phase 2 from the first step).
            A dataset may be empty while it has weight 0 in every phase (it is never drawn).
        length, seed: as in MixtureDataset.
    """

    def __init__(
        self,
        datasets: dict[str, Dataset],
        phases: list[dict[str, Any]],
        length: int = 10_000,
        seed: int = 0,
        holdout: Any = None,
    ) -> None:
        _refuse_holdout(holdout)
        if not phases:
            raise ValueError("PhasedMixtureDataset needs at least one phase")
        starts, weights = [], []
        for k, ph in enumerate(phases):
            if not isinstance(ph, dict) or set(ph) != {"start_step", "weights"}:
                raise ValueError(
                    f"phases[{k}]: expected {{start_step: int, weights: {{name: w}}}}, got {ph!r}"
                )
            starts.append(int(ph["start_step"]))
            weights.append(dict(ph["weights"]))
        if starts[0] != 0:
            raise ValueError(f"phases[0].start_step must be 0, got {starts[0]}")
        bad = [k for k in range(1, len(starts)) if starts[k] < starts[k - 1]]
        if bad:
            raise ValueError(f"phases[{bad[0]}].start_step {starts[bad[0]]} precedes the previous phase's")
        if not datasets:
            raise ValueError("PhasedMixtureDataset needs at least one dataset")
        self.names, self.datasets = sorted(datasets), dict(datasets)
        self.phase_probs = [self._probabilities(w, f"phases[{k}].weights") for k, w in enumerate(weights)]
        super().__init__(datasets, weights[0], length, seed)
        self.start_steps = starts

    def phase_at(self, step: int) -> int:
        """Index of the phase in use at trainer global step ``step``."""
        return int(np.searchsorted(np.asarray(self.start_steps), int(step), side="right") - 1)

    @property
    def phase(self) -> int:
        return self.phase_at(self.progress.step)

    def current_probs(self) -> np.ndarray:
        return self.phase_probs[self.phase]

    def __getitem__(self, index: int) -> dict[str, Any]:
        phase = self.phase  # read once: the choice and the recorded phase agree
        rng = np.random.default_rng([self.seed, self.progress.epoch, int(index)])
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for PhasedMixtureDataset of length {self.length}")
        name = self.names[int(rng.choice(len(self.names), p=self.phase_probs[phase]))]
        j = int(rng.integers(len(self.datasets[name])))  # type: ignore[arg-type]
        sample = dict(self.datasets[name][j])
        sample["dataset"] = name
        sample["phase"] = phase
        return sample
