"""Frame-interval (stride) curricula and the training progress they read.

A clip of F frames is sampled with stride ``s`` (frames i, i+s, ..., i+(F-1)s). The classes here choose s;
Hydra picks one with ``_target_``::

    interval: {_target_: vid3d.data.interval.LinearInterval, start: 2, end: 10, steps: 100000}

Sharing the global step with dataloader workers (design)
-------------------------------------------------------
Samples are produced in DataLoader worker processes, but ``trainer.global_step`` lives in the main process.
Every schedule owns a :class:`SharedProgress`: a 2-element int64 torch tensor ``[global_step, epoch]``
moved to shared memory (``share_memory_()``). Workers receive the schedule by fork (inherited mapping) or
by spawn (torch registers a ForkingPickler reduction that passes the shared-memory handle, not a copy), so
a write in the main process is seen by every worker, persistent or not, without restarting them.

:class:`IntervalStepCallback` (a Lightning callback) writes ``trainer.global_step`` / ``current_epoch``
into every ``SharedProgress`` reachable from the train dataset(s) at ``on_train_start``,
``on_train_epoch_start`` and ``on_train_batch_start``. After a resume Lightning has already restored
``global_step`` before these hooks run, so the schedule continues where it stopped. Under DDP each rank
has its own dataset copy and workers; the callback runs on every rank and global_step is identical on all
ranks, so all ranks agree. Workers prefetch ``prefetch_factor * num_workers`` batches, so a sample may use
a step that is a few batches old; for curricula over thousands of steps this is immaterial.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

try:  # Lightning is only needed for the callback
    from lightning.pytorch.callbacks import Callback as _Callback
except ImportError:  # pragma: no cover
    _Callback = object  # type: ignore[assignment,misc]

__all__ = [
    "FixedInterval",
    "IntervalSchedule",
    "IntervalStepCallback",
    "LinearInterval",
    "SharedProgress",
    "UniformInterval",
    "find_shared_progress",
    "set_progress",
]


class SharedProgress:
    """``[global_step, epoch]`` in a shared-memory int64 tensor, visible to DataLoader workers."""

    def __init__(self, step: int = 0, epoch: int = 0) -> None:
        self._t = torch.tensor([int(step), int(epoch)], dtype=torch.int64).share_memory_()

    @property
    def step(self) -> int:
        return int(self._t[0])

    @property
    def epoch(self) -> int:
        return int(self._t[1])

    def set(self, step: int | None = None, epoch: int | None = None) -> None:
        if step is not None:
            self._t[0] = int(step)
        if epoch is not None:
            self._t[1] = int(epoch)

    def __repr__(self) -> str:
        return f"SharedProgress(step={self.step}, epoch={self.epoch})"


class IntervalSchedule:
    """Base class: ``sample(rng) -> int`` stride >= 1 at the current global step."""

    def __init__(self) -> None:
        self.progress = SharedProgress()

    @property
    def global_step(self) -> int:
        return self.progress.step

    def set_global_step(self, step: int) -> None:
        self.progress.set(step=step)

    def value_at(self, step: int, rng: np.random.Generator | None = None) -> int:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator | None = None) -> int:
        """Stride for one clip at the current (shared) global step."""
        return self.value_at(self.global_step, rng)

    @property
    def max_value(self) -> int:
        """Largest stride this schedule can return."""
        raise NotImplementedError


def _check_positive(name: str, v: int) -> int:
    if int(v) != v or v < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return int(v)


class FixedInterval(IntervalSchedule):
    """Always stride ``value``."""

    def __init__(self, value: int = 1) -> None:
        super().__init__()
        self.value = _check_positive("value", value)

    def value_at(self, step: int, rng: np.random.Generator | None = None) -> int:
        return self.value

    @property
    def max_value(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"FixedInterval({self.value})"


class LinearInterval(IntervalSchedule):
    """Stride grows linearly from ``start`` (step 0) to ``end`` (step >= ``steps``), rounded half up.

    s(step) = floor(start + (end - start) * min(step / steps, 1) + 0.5). Works as well for end < start.
    ``steps`` = 0 means the schedule is already at ``end`` from step 0.
    """

    def __init__(self, start: int = 2, end: int = 10, steps: int = 100_000) -> None:
        super().__init__()
        self.start = _check_positive("start", start)
        self.end = _check_positive("end", end)
        if steps < 0 or int(steps) != steps:
            raise ValueError(f"steps must be an integer >= 0, got {steps}")
        self.steps = int(steps)

    def value_at(self, step: int, rng: np.random.Generator | None = None) -> int:
        frac = min(max(step, 0) / self.steps, 1.0) if self.steps > 0 else 1.0
        return int(math.floor(self.start + (self.end - self.start) * frac + 0.5))

    @property
    def max_value(self) -> int:
        return max(self.start, self.end)

    def __repr__(self) -> str:
        return f"LinearInterval(start={self.start}, end={self.end}, steps={self.steps})"


class UniformInterval(IntervalSchedule):
    """Stride drawn uniformly from the integers [low, high] (inclusive) per clip, from the sample's RNG."""

    def __init__(self, low: int = 2, high: int = 10) -> None:
        super().__init__()
        self.low, self.high = _check_positive("low", low), _check_positive("high", high)
        if self.high < self.low:
            raise ValueError(f"high ({high}) must be >= low ({low})")

    def value_at(self, step: int, rng: np.random.Generator | None = None) -> int:
        if rng is None:
            raise ValueError("UniformInterval needs the sample's numpy Generator for determinism")
        return int(rng.integers(self.low, self.high + 1))

    @property
    def max_value(self) -> int:
        return self.high


def find_shared_progress(obj: Any, max_depth: int = 6) -> list[SharedProgress]:
    """All distinct :class:`SharedProgress` reachable from ``obj`` through attributes, dicts, lists, tuples.

    Used to reach the schedules inside (nested, mixed, wrapped) datasets without configuration. Lists
    longer than 256 items are not entered (they hold records such as clip lists, not datasets).
    """
    found: dict[int, SharedProgress] = {}
    seen: set[int] = set()

    def walk(o: Any, depth: int) -> None:
        if (
            depth > max_depth
            or id(o) in seen
            or isinstance(o, (str, bytes, int, float, torch.Tensor, np.ndarray))
        ):
            return
        seen.add(id(o))
        if isinstance(o, SharedProgress):
            found[id(o)] = o
            return
        children: Iterator[Any]
        if isinstance(o, dict):
            children = iter(o.values())
        elif isinstance(o, (list, tuple)):
            if len(o) > 256:  # long lists are records (clip lists, file names), not dataset containers
                return
            children = iter(o)
        elif hasattr(o, "__dict__") and not isinstance(o, type):
            children = iter(vars(o).values())
        else:
            return
        for child in children:
            walk(child, depth + 1)

    walk(obj, 0)
    return list(found.values())


def set_progress(obj: Any, step: int | None = None, epoch: int | None = None) -> int:
    """Write step/epoch into every SharedProgress reachable from ``obj``; returns how many were set."""
    progresses = find_shared_progress(obj)
    for p in progresses:
        p.set(step=step, epoch=epoch)
    return len(progresses)


class IntervalStepCallback(_Callback):
    """Lightning callback: publish ``trainer.global_step`` and ``current_epoch`` to the train datasets.

    Args:
        targets: objects to search for :class:`SharedProgress` (datasets, schedules). When None the
            callback searches ``trainer.datamodule.train_dataset`` and ``trainer.train_dataloader``.
    """

    def __init__(self, targets: list[Any] | None = None) -> None:
        super().__init__()
        self.targets = targets
        self._cache: list[SharedProgress] | None = None

    def _progresses(self, trainer: Any) -> list[SharedProgress]:
        if self._cache is not None:
            return self._cache
        roots: list[Any] = list(self.targets or [])
        if not roots:
            dm = getattr(trainer, "datamodule", None)
            if dm is not None and getattr(dm, "train_dataset", None) is not None:
                roots.append(dm.train_dataset)
            dl = getattr(trainer, "train_dataloader", None)
            if dl is not None:
                roots.append(getattr(dl, "dataset", dl))
        found = find_shared_progress(roots)
        if roots:
            self._cache = found
        return found

    def _publish(self, trainer: Any) -> None:
        for p in self._progresses(trainer):
            p.set(step=int(trainer.global_step), epoch=int(trainer.current_epoch))

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._publish(trainer)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._publish(trainer)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._publish(trainer)
