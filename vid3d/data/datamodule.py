"""Lightning data module around already-instantiated datasets, a collate, and bad-clip logging.

Hydra builds the datasets (``_target_`` / ``_partial_``) and passes them in; nothing here reads config.
Batches follow the dataset sample dict with a leading B: tensors are stacked, strings become lists of
str, and ``skipped`` (per-sample bad-clip counts, see vid3d.data.clips) is stacked to (B, R).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .clips import SKIP_REASONS

__all__ = ["SkippedClipsLogger", "VideoDataModule", "collate_samples", "skipped_counts"]


def collate_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """List of sample dicts -> batch dict.

    tensors (same shape) -> stacked with leading B; numpy arrays -> tensors, stacked; int/float/bool ->
    1-D tensor; str and anything else -> list of length B. Keys must agree across samples.
    """
    if not samples:
        raise ValueError("cannot collate an empty batch")
    keys = list(samples[0].keys())
    for k, s in enumerate(samples[1:], start=1):
        if set(s.keys()) != set(keys):
            raise ValueError(f"sample {k} has keys {sorted(s)} but sample 0 has {sorted(keys)}")
    batch: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in samples]
        first = values[0]
        if isinstance(first, torch.Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) != 1:
                raise ValueError(
                    f"field '{key}': tensors of different shapes {sorted(shapes)} cannot be stacked"
                )
            batch[key] = torch.stack(values)
        elif isinstance(first, np.ndarray):
            batch[key] = torch.stack([torch.as_tensor(v) for v in values])
        elif isinstance(first, (bool, int, float)) and not isinstance(first, str):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = list(values)
    return batch


def skipped_counts(batch: Mapping[str, Any]) -> dict[str, int]:
    """{reason: number of bad clips skipped while producing this batch} (only non-zero reasons)."""
    t = batch.get("skipped")
    if not isinstance(t, torch.Tensor):
        return {}
    totals = t.reshape(-1, len(SKIP_REASONS)).sum(0).tolist()
    return {r: int(c) for r, c in zip(SKIP_REASONS, totals) if c}


class SkippedClipsLogger(pl.Callback):
    """Accumulate bad-clip skips from training batches and log cumulative totals as
    ``data/skipped/<reason>`` (and ``data/skipped/total``), summed over DDP ranks.

    Each skip is counted in exactly one sample (the one whose loading hit it), so the totals are exact
    whatever the number of workers. ``totals`` holds this rank's cumulative counts.
    """

    def __init__(self, log_every_n_steps: int = 50) -> None:
        super().__init__()
        self.log_every_n_steps = max(1, int(log_every_n_steps))
        self.totals: dict[str, int] = {r: 0 for r in SKIP_REASONS}

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if isinstance(batch, Mapping):
            for reason, c in skipped_counts(batch).items():
                self.totals[reason] += c
        if trainer.global_step % self.log_every_n_steps == 0:
            values = {f"data/skipped/{r}": float(c) for r, c in self.totals.items()}
            values["data/skipped/total"] = float(sum(self.totals.values()))
            pl_module.log_dict(values, on_step=True, on_epoch=False, reduce_fx="sum", sync_dist=True)

    def state_dict(self) -> dict[str, Any]:
        return {"totals": dict(self.totals)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.totals.update({k: int(v) for k, v in state_dict.get("totals", {}).items()})


class VideoDataModule(pl.LightningDataModule):
    """DataLoaders over instantiated datasets.

    Args:
        train_dataset: map-style dataset of sample dicts.  val_dataset: optional, same kind.
        batch_size / val_batch_size (default batch_size).  num_workers: loader workers.
        pin_memory.  persistent_workers: default True when num_workers > 0 (keeps workers, and their
        bad-clip caches, alive across epochs; the shared-memory step still reaches them).
        shuffle: shuffle the training order (Lightning swaps in a DistributedSampler under DDP).
        drop_last: drop the last incomplete training batch.  prefetch_factor: per-worker prefetch.
    """

    def __init__(
        self,
        train_dataset: Dataset,
        val_dataset: Dataset | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool | None = None,
        val_batch_size: int | None = None,
        shuffle: bool = True,
        drop_last: bool = True,
        prefetch_factor: int | None = None,
    ) -> None:
        super().__init__()
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        self.batch_size = int(batch_size)
        self.val_batch_size = int(val_batch_size) if val_batch_size is not None else self.batch_size
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        self.persistent_workers = (
            (self.num_workers > 0) if persistent_workers is None else bool(persistent_workers)
        )
        self.shuffle, self.drop_last, self.prefetch_factor = shuffle, drop_last, prefetch_factor

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        kwargs: dict[str, Any] = {}
        if self.num_workers > 0:
            kwargs["persistent_workers"] = self.persistent_workers
            if self.prefetch_factor is not None:
                kwargs["prefetch_factor"] = self.prefetch_factor
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=drop_last,
            collate_fn=collate_samples,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, self.batch_size, self.shuffle, self.drop_last)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dataset is None:
            return []
        return self._loader(self.val_dataset, self.val_batch_size, False, False)
