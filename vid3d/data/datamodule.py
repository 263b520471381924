"""Lightning data module around already-instantiated datasets, a collate, and bad-clip logging.

Hydra builds the datasets (``_target_`` / ``_partial_``) and passes them in; nothing here reads config.
Batches follow the dataset sample dict with a leading B: tensors are stacked, strings become lists of
str, and ``skipped`` (per-sample bad-clip counts, see vid3d.data.clips) is stacked to (B, R).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from .clips import SKIP_REASONS
from .frames import as_unit_range
from .interval import SharedProgress, find_shared_progress
from .order import epoch_generator, grouped_permutation, interleave_for_workers, shuffle_mode

log = logging.getLogger(__name__)

__all__ = [
    "ResumableDataLoader",
    "ResumableSampler",
    "SkippedClipsLogger",
    "StepIndexedDataset",
    "VideoDataModule",
    "collate_samples",
    "skipped_counts",
]


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
        self.final: dict[str, float] = {}

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if isinstance(batch, Mapping):
            for reason, c in skipped_counts(batch).items():
                self.totals[reason] += c
        if trainer.global_step % self.log_every_n_steps == 0:
            values = {f"data/skipped/{r}": float(c) for r, c in self.totals.items()}
            values["data/skipped/total"] = float(sum(self.totals.values()))
            pl_module.log_dict(values, on_step=True, on_epoch=False, reduce_fx="sum", sync_dist=True)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """The final totals (the last step's skips included), summed over ranks, to every logger."""
        t = torch.tensor([float(self.totals[r]) for r in SKIP_REASONS], device=pl_module.device)
        t = trainer.strategy.reduce(t, reduce_op="sum")
        values = {f"data/skipped/{r}": float(c) for r, c in zip(SKIP_REASONS, t.tolist(), strict=True)}
        values["data/skipped/total"] = float(t.sum())
        self.final = values
        if trainer.is_global_zero:
            for lg in trainer.loggers:
                lg.log_metrics(values, step=int(trainer.global_step))
                lg.save()

    def state_dict(self) -> dict[str, Any]:
        return {"totals": dict(self.totals)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.totals.update({k: int(v) for k, v in state_dict.get("totals", {}).items()})


class DataSourceLogger(pl.Callback):
    """For mixtures (``data=paper_mix``, ``re10k_acid_dl3dv``): cumulative training samples drawn from each
    dataset, ``data/samples/<name>``, and the phase of a phased mixture, ``data/phase`` (the highest in the
    batch), summed / maxed over DDP ranks. Samples carry ``dataset`` / ``phase`` (vid3d.data.mixture);
    batches without them log nothing. ``totals`` holds this rank's counts (saved in checkpoints)."""

    def __init__(self, log_every_n_steps: int = 50) -> None:
        super().__init__()
        self.log_every_n_steps = max(1, int(log_every_n_steps))
        self.totals: dict[str, int] = {}

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if not isinstance(batch, Mapping) or "dataset" not in batch:
            return
        names = batch["dataset"]
        for name in [names] if isinstance(names, str) else names:
            self.totals[str(name)] = self.totals.get(str(name), 0) + 1
        if trainer.global_step % self.log_every_n_steps == 0:
            values = {f"data/samples/{k}": float(v) for k, v in sorted(self.totals.items())}
            pl_module.log_dict(values, on_step=True, on_epoch=False, reduce_fx="sum", sync_dist=True)
            phase = batch.get("phase")
            if isinstance(phase, torch.Tensor) and phase.numel():
                pl_module.log(
                    "data/phase",
                    float(phase.max()),
                    on_step=True,
                    on_epoch=False,
                    reduce_fx="max",
                    sync_dist=True,
                )

    def state_dict(self) -> dict[str, Any]:
        return {"totals": dict(self.totals)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.totals = {k: int(v) for k, v in state_dict.get("totals", {}).items()}


class ResumableSampler(Sampler):
    """Training order that is a pure function of ``(seed, epoch)``, resumable from the trainer's step.

    ``shuffle="full"``: epoch ``e`` visits ``torch.randperm(n, generator=seeded(seed, e))`` (``"none"``:
    ``0..n-1``), truncated to a multiple of ``num_replicas``; rank ``r`` takes every ``num_replicas``-th item
    from ``r``. ``shuffle="grouped"`` (needs ``groups``): chunk by chunk, each rank a contiguous run, laid
    out for ``num_workers`` loader workers (see vid3d.data.order). Each
    yielded item is ``(index, step, epoch)``: the dataset index, the optimiser step that will train on it
    and the epoch, which :class:`StepIndexedDataset` hands to the dataset (interval curricula, per-item
    randomness) -- so a sample never depends on timing (prefetch) or on how many steps ran in this process.

    Exact resume: when an iterator starts, ``position()`` (set by :class:`VideoDataModule` to read the
    trainer's restored ``global_step``) says how many optimiser steps were already taken; the sampler
    derives the epoch (``step // steps_per_epoch``; ``set_epoch`` is only used without ``position``) and
    skips the batches of that epoch those steps consumed, so a resumed run continues the batch sequence of
    an uninterrupted one (``limit_train_batches`` < 1 would break the step <-> epoch relation).
    Checkpoints are written after an optimiser step (``every_n_train_steps``), which
    is what this assumes. ``state_dict`` is informative (epoch, steps); the trainer's step is the truth.

    Args:
        length: dataset length.  batch_size: per-rank batch size.  seed.
        shuffle: "full" | "grouped" | "none" (or True / False = "full" / "none").
        drop_last: drop the last incomplete batch (must match the DataLoader's).
        num_replicas, rank: data-parallel sharding (1, 0 without DDP).
        accumulate_grad_batches: batches per optimiser step (Lightning also steps at an epoch's end).
        groups: item i's chunk id (``dataset.groups()``), for ``shuffle="grouped"``.
        num_workers: the DataLoader's workers (``grouped`` lays batches out so each reads one run).
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        seed: int = 0,
        shuffle: bool | str = "full",
        drop_last: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        accumulate_grad_batches: int = 1,
        groups: Sequence[int] | None = None,
        num_workers: int = 0,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.length, self.batch_size, self.seed = int(length), int(batch_size), int(seed)
        self.shuffle, self.drop_last = shuffle_mode(shuffle), bool(drop_last)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.accumulate = max(1, int(accumulate_grad_batches))
        self.groups = list(groups) if groups is not None else None
        self.num_workers = max(1, int(num_workers))
        if self.shuffle == "grouped" and (self.groups is None or len(self.groups) != self.length):
            got = "none" if self.groups is None else f"{len(self.groups)}"
            raise ValueError(f"shuffle='grouped' needs one group id per item: {self.length} items, {got} ids")
        self.epoch = 0
        self.position: Any = None  # callable () -> global_step, or None (start of the epoch)
        self._last_start_step = 0

    @property
    def per_rank(self) -> int:
        return self.length // self.num_replicas

    @property
    def batches_per_epoch(self) -> int:
        n, b = self.per_rank, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.batches_per_epoch // self.accumulate)

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size if self.drop_last else self.per_rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int) -> list[int]:
        """This rank's ``per_rank`` dataset indices for ``epoch``, in yield order (the first ``len(self)``
        are yielded); a pure function of seed, epoch and rank (grouped: also of groups, batch size and
        worker count)."""
        g = epoch_generator(self.seed, epoch)
        if self.shuffle == "grouped":
            start = self.rank * self.per_rank  # contiguous runs: each rank reads whole chunks, in order
            run = grouped_permutation(self.groups, g)[start : start + self.per_rank]  # type: ignore[arg-type]
            n = len(self)
            return interleave_for_workers(run[:n], self.batch_size, self.num_workers) + run[n:]
        if self.shuffle == "full":
            perm = torch.randperm(self.length, generator=g).tolist()
        else:
            perm = list(range(self.length))
        perm = perm[: self.per_rank * self.num_replicas]
        return perm[self.rank :: self.num_replicas]

    def step_of_batch(self, epoch: int, batch: int) -> int:
        return epoch * self.steps_per_epoch + batch // self.accumulate

    def __iter__(self):
        epoch, skip = self.epoch, 0
        if self.position is not None and self.steps_per_epoch > 0:
            # Lightning creates the first iterator (also when resuming) before it calls set_epoch, so the
            # epoch too comes from the step: epoch = step // steps_per_epoch, then skip what it consumed.
            epoch, done_steps = divmod(int(self.position()), self.steps_per_epoch)
            self.epoch = epoch
            skip = min(done_steps * self.accumulate, self.batches_per_epoch)
        self._last_start_step = epoch * self.steps_per_epoch + skip // self.accumulate
        order = self.order(epoch)[: len(self)]
        for k in range(skip * self.batch_size, len(order)):
            yield (order[k], self.step_of_batch(epoch, k // self.batch_size), epoch)

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "start_step": self._last_start_step,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "num_workers": self.num_workers,
        }


class ResumableDataLoader(DataLoader):
    """DataLoader whose ``state_dict`` Lightning stores in checkpoints (the sampler's epoch and start step).

    Restoring needs nothing from it: :class:`ResumableSampler` derives where to continue from the trainer's
    restored ``global_step``; ``load_state_dict`` only checks what else the order depends on (the seed, the
    shuffle mode and, grouped, the number of loader workers) and warns when it changed.
    """

    def state_dict(self) -> dict[str, Any]:
        sampler = self.sampler
        return sampler.state_dict() if isinstance(sampler, ResumableSampler) else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sampler = self.sampler
        if not isinstance(sampler, ResumableSampler):
            return
        now = sampler.state_dict()
        keys = ["seed", "shuffle"] + (["num_workers"] if sampler.shuffle == "grouped" else [])
        for key in keys:
            if key in state_dict and state_dict[key] != now[key]:
                log.warning(
                    "resuming with data %s %s but the checkpoint was trained with %s: the data order differs",
                    key,
                    now[key],
                    state_dict[key],
                )


class StepIndexedDataset(Dataset):
    """Dataset wrapper taking ``(index, step, epoch)`` items (from :class:`ResumableSampler`).

    Before loading an item it writes ``step`` and ``epoch`` into the dataset's :class:`SharedProgress`
    objects, so frame-interval curricula and per-item randomness see the step that trains on the item,
    not the (prefetch-lagged) step when a worker happened to load it. In a DataLoader worker those progress
    objects are first replaced by process-local copies (workers must not overwrite each other's step); in
    the main process (``num_workers=0``) the shared ones are set, as ``IntervalStepCallback`` does.
    Plain ``int`` indices pass through unchanged.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._progress: list[SharedProgress] | None = None
        self._local = False

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _progresses(self) -> list[SharedProgress]:
        if self._progress is None:
            self._progress = find_shared_progress(self.dataset)
        if not self._local and get_worker_info() is not None:
            for p in self._progress:
                p._t = p._t.clone()  # process-local: stop sharing with the main process and other workers
            self._local = True
        return self._progress

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, tuple):
            index, step, epoch = item
            for p in self._progresses():
                p.set(step=int(step), epoch=int(epoch))
            item = index
        return self.dataset[item]


class VideoDataModule(pl.LightningDataModule):
    """DataLoaders over instantiated datasets. A batch's uint8 ``frames`` become float32 in [-1, 1] after
    it reaches the device (``on_after_batch_transfer``): the loader never makes the float copy.

    Args:
        train_dataset: map-style dataset of sample dicts.  val_dataset: optional, same kind.
        batch_size / val_batch_size (default batch_size).  num_workers: loader workers.
        pin_memory.  persistent_workers: default True when num_workers > 0 (keeps workers, and their
        bad-clip caches, alive across epochs; the shared-memory step still reaches them).
        shuffle: the training order: "full" (uniform permutation), "grouped" (chunk by chunk, for datasets
            with ``groups()`` such as ``ChunkClipDataset``; others, mixtures included, fall back to "full"
            with a warning) or "none"; True / False mean "full" / "none". See vid3d.data.order.
        seed: the training order's seed (``ResumableSampler``).
        drop_last: drop the last incomplete training batch.  prefetch_factor: per-worker prefetch.
        resumable: train through :class:`ResumableSampler` + :class:`StepIndexedDataset` (exact resume;
            the sampler shards by rank itself, so the trainer runs with ``use_distributed_sampler=False``);
            False gives a plain DataLoader (shuffled unless shuffle="none"; "grouped" needs the sampler).
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
        shuffle: bool | str = "full",
        drop_last: bool = True,
        prefetch_factor: int | None = None,
        seed: int = 0,
        resumable: bool = True,
    ) -> None:
        super().__init__()
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        self.batch_size = int(batch_size)
        self.val_batch_size = int(val_batch_size) if val_batch_size is not None else self.batch_size
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        self.persistent_workers = (
            (self.num_workers > 0) if persistent_workers is None else bool(persistent_workers)
        )
        self.shuffle, self.drop_last, self.prefetch_factor = shuffle_mode(shuffle), drop_last, prefetch_factor
        self.seed, self.resumable = int(seed), bool(resumable)
        self.train_sampler: ResumableSampler | None = None

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """uint8 ``frames`` (datasets with ``frames_dtype="uint8"``, as the training configs set) -> float32
        in [-1, 1], once, on the device the batch was moved to (``vid3d.data.frames.as_unit_range``);
        float frames pass through unchanged."""
        if isinstance(batch, dict) and isinstance(batch.get("frames"), torch.Tensor):
            batch["frames"] = as_unit_range(batch["frames"])
        return batch

    def _make_train_sampler(self) -> ResumableSampler:
        trainer = getattr(self, "trainer", None)
        world, rank, accumulate = 1, 0, 1
        if trainer is not None:
            world, rank = int(trainer.world_size), int(trainer.global_rank)
            accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
        shuffle, groups = self.shuffle, None
        if shuffle == "grouped":
            groups_fn = getattr(self.train_dataset, "groups", None)
            if callable(groups_fn):
                groups = groups_fn()
            else:
                log.warning(
                    "data.datamodule.shuffle=grouped: %s has no groups() (only chunked datasets such as "
                    "ChunkClipDataset have; mixtures do not): using shuffle=full",
                    type(self.train_dataset).__name__,
                )
                shuffle = "full"
        sampler = ResumableSampler(
            len(self.train_dataset),  # type: ignore[arg-type]
            self.batch_size,
            seed=self.seed,
            shuffle=shuffle,
            drop_last=self.drop_last,
            num_replicas=world,
            rank=rank,
            accumulate_grad_batches=accumulate,
            groups=groups,
            num_workers=self.num_workers,
        )
        if trainer is not None:
            sampler.position = lambda: trainer.global_step
        return sampler

    def _loader(
        self,
        dataset: Dataset,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        sampler: Sampler | None = None,
    ) -> DataLoader:
        kwargs: dict[str, Any] = {}
        if self.num_workers > 0:
            kwargs["persistent_workers"] = self.persistent_workers
            if self.prefetch_factor is not None:
                kwargs["prefetch_factor"] = self.prefetch_factor
        cls = ResumableDataLoader if isinstance(sampler, ResumableSampler) else DataLoader
        return cls(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle if sampler is None else None,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=drop_last,
            collate_fn=collate_samples,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        if not self.resumable:  # a plain DataLoader: "grouped" needs the resumable sampler, so it is "full"
            shuffle = self.shuffle != "none"
            return self._loader(self.train_dataset, self.batch_size, shuffle, self.drop_last)
        self.train_sampler = self._make_train_sampler()
        return self._loader(
            StepIndexedDataset(self.train_dataset),
            self.batch_size,
            False,
            self.drop_last,
            sampler=self.train_sampler,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dataset is None:
            return []
        return self._loader(self.val_dataset, self.val_batch_size, False, False)
