"""Chunk-grouped training order (vid3d.data.order, ResumableSampler(shuffle="grouped")): a permutation drawn
as a pure function of (seed, epoch), chunk by chunk, sharded into equal contiguous runs per rank and laid out
so that each DataLoader worker reads each chunk once; exact resume mid-epoch; ChunkClipDataset.groups()."""

import itertools
import logging

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from torch.utils.data import DataLoader, Dataset, get_worker_info

from vid3d.config import CONFIG_DIR
from vid3d.data.datamodule import (
    ResumableDataLoader,
    ResumableSampler,
    StepIndexedDataset,
    VideoDataModule,
)
from vid3d.data.formats import pixelsplat as ps
from vid3d.data.interval import FixedInterval
from vid3d.data.order import grouped_permutation, interleave_for_workers, shuffle_mode


def uneven_groups(n_chunks=13, seed=0):
    """Chunk sizes 1..9, chunk ids not sorted by position (as after a holdout or an evaluation index)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_chunks) * 7 + 3, rng.integers(1, 10, n_chunks))
    return rng.permutation(groups).tolist()


def switches(chunks):
    """Number of chunk loads of a one-chunk cache reading ``chunks`` in order (first load included)."""
    return sum(1 for k, c in enumerate(chunks) if k == 0 or c != chunks[k - 1])


def worker_streams(items, batch_size, workers):
    """What each DataLoader worker reads: batch k goes to worker k % workers."""
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    return [sum(batches[w::workers], []) for w in range(workers)]


def test_grouped_permutation_is_chunk_by_chunk_and_seeded():
    groups = uneven_groups()
    perm = grouped_permutation(groups, torch.Generator().manual_seed(4))
    assert sorted(perm) == list(range(len(groups)))
    chunks = [groups[i] for i in perm]
    assert switches(chunks) == len(set(groups))  # each chunk's items are consecutive
    assert perm == grouped_permutation(groups, torch.Generator().manual_seed(4))
    other = grouped_permutation(groups, torch.Generator().manual_seed(5))
    assert other != perm and [groups[i] for i in other] != chunks  # chunk order and item order both vary


def test_interleave_gives_each_worker_a_contiguous_run():
    items = list(range(23))
    for batch_size, workers in itertools.product((1, 2, 4), (1, 2, 3, 8)):
        out = interleave_for_workers(items, batch_size, workers)
        assert sorted(out) == items
        streams = worker_streams(out, batch_size, workers)
        assert sum(streams, []) == items  # worker 0 reads the first run, worker 1 the next, ...
    assert shuffle_mode(True) == "full" and shuffle_mode(False) == "none"
    with pytest.raises(ValueError, match="data.datamodule.shuffle='random'"):
        shuffle_mode("random")


@pytest.mark.parametrize(
    "replicas,batch_size,workers,drop_last",
    [(1, 1, 1, True), (1, 2, 3, False), (3, 2, 1, True), (3, 1, 4, True), (2, 3, 2, False)],
)
def test_grouped_sampler_shards_and_chunk_loads(replicas, batch_size, workers, drop_last):
    groups = uneven_groups()
    n = len(groups)
    per_rank = n // replicas
    samplers = [
        ResumableSampler(
            n,
            batch_size,
            seed=7,
            shuffle="grouped",
            groups=groups,
            drop_last=drop_last,
            num_replicas=replicas,
            rank=r,
            num_workers=workers,
        )
        for r in range(replicas)
    ]
    orders = [s.order(2) for s in samplers]
    # ranks: equal shares, disjoint, together the first per_rank * R items of one grouped permutation
    assert all(len(o) == per_rank for o in orders)
    union = sum(orders, [])
    assert len(set(union)) == len(union) == per_rank * replicas
    perm = grouped_permutation(groups, torch.Generator().manual_seed(7 * 1_000_003 + 2))
    assert sorted(union) == sorted(perm[: per_rank * replicas])
    if replicas == 1 and not drop_last:
        assert sorted(s[0] for s in samplers[0]) == list(range(n))  # the epoch is a permutation of all items
    distinct_per_rank = []
    for s in samplers:
        s.set_epoch(2)
        items = [i for i, _, _ in s]
        assert len(items) == len(s)
        rank_chunks = {groups[i] for i in items}
        distinct_per_rank.append(len(rank_chunks))
        loads = 0
        for stream in worker_streams(items, batch_size, workers):
            chunks = [groups[i] for i in stream]
            assert switches(chunks) == len(set(chunks))  # each worker loads each of its chunks once
            loads += switches(chunks)
        # a run split over W workers splits at most W - 1 chunks between two workers
        assert len(rank_chunks) <= loads <= len(rank_chunks) + workers - 1
        if workers == 1:
            assert switches([groups[i] for i in items]) == len(rank_chunks)
    # contiguous runs per rank: at most R - 1 chunks are split between two ranks
    assert sum(distinct_per_rank) <= len(set(groups)) + replicas - 1


def test_grouped_order_is_a_function_of_seed_and_epoch():
    groups = uneven_groups()

    def make(seed):
        return ResumableSampler(len(groups), 2, seed=seed, shuffle="grouped", groups=groups, num_workers=2)

    a, b = make(1), make(1)
    assert a.order(3) == b.order(3)
    assert a.order(3) != a.order(4)
    assert [groups[i] for i in a.order(3)][:5] != [groups[i] for i in a.order(4)][:5]
    assert make(2).order(3) != a.order(3)
    with pytest.raises(ValueError, match="group id per item"):
        ResumableSampler(len(groups), 2, shuffle="grouped")


@pytest.mark.parametrize("workers,accumulate", [(1, 1), (3, 2)])
def test_grouped_resume_mid_epoch_continues_exactly(workers, accumulate):
    groups = uneven_groups()
    kw = dict(
        seed=3, shuffle="grouped", groups=groups, num_workers=workers, accumulate_grad_batches=accumulate
    )
    ref = ResumableSampler(len(groups), 4, **kw)
    stream = []
    for e in range(2):
        ref.set_epoch(e)
        stream += list(ref)
    per_epoch = len(ref)
    for step in range(2 * ref.steps_per_epoch):
        s = ResumableSampler(len(groups), 4, **kw)
        s.position = lambda step=step: step
        epoch, done = divmod(step, ref.steps_per_epoch)
        start = epoch * per_epoch + min(done * accumulate * 4, per_epoch)
        assert list(s) == stream[start : (epoch + 1) * per_epoch], step


class _WhichWorker(Dataset):
    def __len__(self):
        return 40

    def __getitem__(self, i):
        info = get_worker_info()
        return torch.tensor([i, -1 if info is None else info.id])


def test_dataloader_hands_batch_k_to_worker_k_mod_w():
    """The assumption behind interleave_for_workers, on this torch version, also after a resume skip."""
    groups = [i // 5 for i in range(40)]
    for position in (None, 1):
        s = ResumableSampler(40, 2, seed=0, shuffle="grouped", groups=groups, num_workers=2)
        if position is not None:
            s.position = lambda position=position: position
        dl = DataLoader(StepIndexedDataset(_WhichWorker()), batch_size=2, sampler=s, num_workers=2)
        rows = torch.cat(list(dl)).tolist()
        workers = [w for _, w in rows]
        assert workers[::2] == [k % 2 for k in range(len(rows) // 2)]  # the first yielded batch -> worker 0
        for w in (0, 1):
            chunks = [groups[i] for i, ww in rows if ww == w]
            assert switches(chunks) == len(set(chunks))


def _example(key):
    K = np.tile(np.array([[0.8, 0, 0.5], [0, 1.1, 0.45], [0, 0, 1.0]]), (4, 1, 1))
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    return ps.make_example(key, "u", np.arange(4), K, np.tile(np.eye(4), (4, 1, 1)), frames)


class _ChunkOf(Dataset):
    """Sample = (item, chunk loads so far in this process, worker id)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def groups(self):
        return self.ds.groups()

    def __getitem__(self, i):
        s = self.ds[i]
        info = get_worker_info()
        return {
            "i": i,
            "loads": self.ds.chunk_loads,
            "worker": -1 if info is None else info.id,
            "skipped": s["skipped"],
        }


def test_chunk_dataset_groups_and_loads_through_the_datamodule(tmp_path, caplog):
    ps.write_split(tmp_path, "train", [_example(f"k{i:02d}") for i in range(30)], chunk_size=4)  # 8 chunks
    ds = ps.ChunkClipDataset(tmp_path, "train", num_frames=2, height=8, width=8, interval=FixedInterval(1))
    index = ps.read_index(tmp_path / "train")
    assert ds.groups() == [int(index[k][:6]) for k in ds.keys] == [i // 4 for i in range(30)]
    loads = {}
    for shuffle, workers in (("grouped", 0), ("full", 0), ("grouped", 2)):
        ds = ps.ChunkClipDataset(tmp_path, "train", num_frames=2, height=8, width=8)
        dm = VideoDataModule(
            _ChunkOf(ds), batch_size=1, num_workers=workers, shuffle=shuffle, drop_last=False, seed=1
        )
        rows = list(dm.train_dataloader())
        assert dm.train_sampler.shuffle == shuffle and len(rows) == 30
        assert sorted(r["i"].item() for r in rows) == list(range(30))
        # each process's cumulative count at its last sample
        loads[(shuffle, workers)] = {r["worker"].item(): r["loads"].item() for r in rows}
    assert loads[("grouped", 0)] == {-1: 8}  # each chunk once
    assert loads[("full", 0)][-1] > 16  # ~ one load per sample (7/8 of them on average)
    assert set(loads[("grouped", 2)]) == {0, 1} and sum(loads[("grouped", 2)].values()) <= 8 + 1
    # a dataset without groups() (a mixture, a folder of clips) falls back to full, with a warning
    dm = VideoDataModule(ds.keys, batch_size=1, shuffle="grouped")
    with caplog.at_level(logging.WARNING):
        assert dm._make_train_sampler().shuffle == "full"
    assert "has no groups()" in caplog.text


def test_changed_shuffle_mode_warns_on_resume(caplog):
    s = ResumableSampler(8, 2, shuffle="grouped", groups=[0] * 8, num_workers=2)
    dl = ResumableDataLoader(list(range(8)), batch_size=2, sampler=s)
    with caplog.at_level(logging.WARNING):
        dl.load_state_dict({**s.state_dict(), "num_workers": 4})
        dl.load_state_dict({"seed": 0, "shuffle": "full"})
        dl.load_state_dict({"seed": 0})  # older checkpoints: nothing to compare
    assert caplog.text.count("the data order differs") == 2


def test_config_defaults_grouped_for_chunks_only():
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for option, mode in (("re10k_chunks", "grouped"), ("re10k", "full"), ("paper_mix", "full")):
            assert compose("train", overrides=[f"data={option}"]).data.datamodule.shuffle == mode
