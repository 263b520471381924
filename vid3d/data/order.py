"""Per-epoch training orders of :class:`~vid3d.data.datamodule.ResumableSampler` (data.datamodule.shuffle).

- ``full``: ``torch.randperm`` of all items; rank r takes every R-th item (items of one rank are spread
  over the whole dataset).
- ``grouped``: for datasets stored in chunks (one file holds many clips, e.g. pixelSplat ``.torch`` files,
  ``ChunkClipDataset.groups()``): the chunks in a random order, the items of each chunk in a random order
  after one another. Rank r takes the r-th contiguous run of ``per_rank`` items of that order (every rank
  gets the same number of items; a chunk at a boundary between two runs is split between two ranks), and
  that run is laid out over the DataLoader workers (:func:`interleave_for_workers`) so that each worker
  also reads a contiguous run: each chunk is then loaded about once per epoch, not once per sample.
- ``none``: ``0..n-1`` (evaluation-like order; ranks strided as in ``full``).

All three are pure functions of (seed, epoch) -- and, for ``grouped``, of the item -> chunk map, the
number of ranks, the per-rank batch size and the number of loader workers -- so a resumed run sees the
order of an uninterrupted one as long as those stay the same.

Trade-off of ``grouped`` against ``full``. Gain: a chunk file (~100 MB on real RealEstate10K) is read
about once per epoch per worker that needs it instead of once per sample (benchmarks/README.md). Cost: the
samples of one batch (B consecutive items of one worker) mostly come from one chunk, and since chunk
membership is fixed, clips of the same chunk keep meeting in batches in every epoch (in new combinations:
the order inside a chunk is redrawn every epoch); a step's R ranks read R different chunks. Each item is
still visited exactly once per epoch, and the order of the chunks changes every epoch. This is harmless
when a chunk is an arbitrary set of scenes (vid3d's converter fills chunks in clip-id order, and
RealEstate10K ids are random hex strings); if chunks grouped similar scenes, use ``full`` and pay a
chunk load per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "SHUFFLE_MODES",
    "epoch_generator",
    "grouped_permutation",
    "interleave_for_workers",
    "shuffle_mode",
]

SHUFFLE_MODES = ("full", "grouped", "none")


def shuffle_mode(value: bool | str) -> str:
    """``data.datamodule.shuffle`` -> one of SHUFFLE_MODES (``True`` is ``full``, ``False`` is ``none``)."""
    if isinstance(value, bool):
        return "full" if value else "none"
    if value not in SHUFFLE_MODES:
        raise ValueError(
            f"data.datamodule.shuffle={value!r}: expected one of {', '.join(SHUFFLE_MODES)} "
            "(grouped: chunk by chunk, for chunked datasets such as data=re10k_chunks)"
        )
    return str(value)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator every shuffled order of ``epoch`` is drawn from."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


def grouped_permutation(groups: Sequence[int], g: torch.Generator) -> list[int]:
    """A permutation of ``range(len(groups))``: groups in a random order, the items of each group in a
    random order, each group's items consecutive. ``groups[i]``: item i's group id (any ints)."""
    n = len(groups)
    if n == 0:
        return []
    _, group = torch.unique(torch.as_tensor(groups, dtype=torch.int64), return_inverse=True)
    group_rank = torch.randperm(int(group.max()) + 1, generator=g)
    item_rank = torch.randperm(n, generator=g)
    # distinct keys: sorting by (group's rank, item's rank) is the order above, with no ties to break
    return torch.argsort(group_rank[group] * n + item_rank).tolist()


def interleave_for_workers(items: Sequence[int], batch_size: int, num_workers: int) -> list[int]:
    """Lay ``items`` out in batches so that each DataLoader worker gets a contiguous run of them.

    A map-style DataLoader with W workers hands batch k of an iterator to worker ``k % W`` (round robin
    from worker 0 in every epoch, with the default ``in_order=True``; tested). Batch slots k = w, w + W,
    w + 2W, ... are filled one after another from the w-th contiguous run of ``items`` (runs sized to those
    slots; with a final partial batch the slot sizes differ by it). A resumed iterator that skips S batches
    starts at worker 0 with batch S: the worker of every batch shifts by the same S, so each worker still
    reads one run. ``num_workers`` <= 1: unchanged.
    """
    W, B, n = max(1, int(num_workers)), int(batch_size), len(items)
    if W == 1 or n == 0:
        return list(items)
    n_batches = -(-n // B)
    out: list[int] = [0] * n
    src = 0
    for w in range(W):
        for k in range(w, n_batches, W):
            size = min(B, n - k * B)
            out[k * B : k * B + size] = items[src : src + size]
            src += size
    return out
