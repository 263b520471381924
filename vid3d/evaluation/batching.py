"""The batched evaluation path (``eval.batch_size``): several items' videos generated in one forward.

A method that can batch has a ``batch(items, seeds) -> [frames]`` attribute beside its one-item call
(``method(item)``): ``seeds[i]`` is the seed the engine would have set (``runner.trial_seed``) before calling
``method(items[i])`` alone, and the method draws item i's randomness from a generator seeded by it alone
(``VideoSampler`` with one generator per video), so each video is the one the one-by-one path gives, to
float rounding of the batched forward. Methods without it (the reference rows) run one by one.

``Lookahead`` serves the engine's per-item loop: asked for one (method, item, seed), it generates that video
and the next ``batch_size - 1`` pending ones of the same method and frame shape in the to-do order in one
call, keeps them, and hands each out when its item comes. Records are still written one at a time, so a kill
loses at most the videos of one batch, regenerated identically on resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["Lookahead", "supports_batch"]


def supports_batch(method: Any) -> bool:
    """Whether ``method`` has a ``batch(items, seeds)`` entry point."""
    return callable(getattr(method, "batch", None))


class Lookahead:
    """Batched generation ahead of the per-item loop.

    Args:
        entries: (item, method name, seed) of every video the loop will ask for, in its order (repeats
            of a key are ignored).
        methods: name -> method; only those with ``batch`` are batched.
        batch_size: videos per call (1: nothing is batched, ``get`` always answers None).
        item_id: an item's id.
    """

    def __init__(
        self,
        entries: Iterable[tuple[Any, str, int]],
        methods: Mapping[str, Any],
        batch_size: int,
        item_id: Callable[[Any], str],
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"eval.batch_size must be >= 1, got {batch_size}")
        self.methods, self.batch_size, self.item_id = methods, int(batch_size), item_id
        self.pending: dict[str, list[tuple[Any, int]]] = {}
        seen = set()
        for item, name, seed in entries:
            key = (name, item_id(item), int(seed))
            if key in seen or not self.batched(name):
                continue
            seen.add(key)
            self.pending.setdefault(name, []).append((item, int(seed)))
        self.ready: dict[tuple[str, str, int], tuple[np.ndarray, float]] = {}
        self.calls = 0

    def batched(self, name: str) -> bool:
        return self.batch_size > 1 and supports_batch(self.methods[name])

    def get(self, item: Any, name: str, seed: int) -> tuple[np.ndarray, float] | None:
        """(frames, seconds of generation per video in its batch) of (name, item, seed), or None when this
        method is not batched or the video was not announced in ``entries`` (the caller generates it)."""
        if not self.batched(name):
            return None
        key = (name, self.item_id(item), int(seed))
        if key not in self.ready and not self._generate_from(key):
            return None
        return self.ready.pop(key)

    def _generate_from(self, key: tuple[str, str, int]) -> bool:
        name = key[0]
        queue = self.pending.get(name, [])
        at = next((i for i, (it, s) in enumerate(queue) if (name, self.item_id(it), s) == key), None)
        if at is None:
            return False
        shape = _shape(queue[at][0])
        take = [at] + [i for i in range(at + 1, len(queue)) if _shape(queue[i][0]) == shape]
        take = take[: self.batch_size]
        group = [queue[i] for i in take]
        t0 = time.perf_counter()
        videos = list(self.methods[name].batch([it for it, _ in group], [s for _, s in group]))
        per_video = (time.perf_counter() - t0) / len(group)
        self.calls += 1
        if len(videos) != len(group):
            raise ValueError(f"method {name!r}: batch of {len(group)} items returned {len(videos)} videos")
        for (it, s), video in zip(group, videos):
            self.ready[(name, self.item_id(it), s)] = (video, per_video)
        for i in sorted(take, reverse=True):
            del queue[i]
        return True


def _shape(item: Any) -> tuple[int, ...]:
    """What must agree within a batch: the item's frames' shape (count, H, W, 3)."""
    return tuple(np.shape(item.frames))
