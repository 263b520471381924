"""ResumableSampler / StepIndexedDataset: the training order is a pure function of (seed, epoch), a
resumed iterator continues where the trainer's step says, ranks get disjoint shards, and each item carries
the optimiser step that trains on it."""

import torch
from torch.utils.data import DataLoader

from vid3d.data.datamodule import ResumableSampler, StepIndexedDataset
from vid3d.data.interval import LinearInterval


def batches(sampler, bs):
    items = list(sampler)
    return [items[i : i + bs] for i in range(0, len(items), bs)]


def test_order_is_a_function_of_seed_and_epoch():
    a = ResumableSampler(10, batch_size=3, seed=5)
    b = ResumableSampler(10, batch_size=3, seed=5)
    assert a.order(2) == b.order(2)
    assert a.order(2) != a.order(3)
    assert sorted(a.order(0)[:9] + a.order(0)[9:]) == list(range(10))
    # independent formula: torch.randperm with the documented seed
    g = torch.Generator().manual_seed(5 * 1_000_003 + 2)
    assert a.order(2) == torch.randperm(10, generator=g).tolist()


def test_resume_position_skips_consumed_batches_and_sets_epoch():
    # 10 items, batch 3, drop_last: 3 batches (9 items) per epoch
    ref = ResumableSampler(10, batch_size=3, seed=1)
    stream = []
    for e in range(3):
        ref.set_epoch(e)
        stream += list(ref)
    assert len(stream) == 27
    assert [s[1] for s in stream[:9]] == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # step of each item
    for step in range(9):
        s = ResumableSampler(10, batch_size=3, seed=1)
        s.position = lambda step=step: step  # the trainer's restored global_step
        epoch = step // 3
        got = list(s)
        assert s.epoch == epoch
        assert got == stream[step * 3 : (epoch + 1) * 9]


def test_accumulation_steps_and_ranks():
    s = ResumableSampler(20, batch_size=2, seed=0, accumulate_grad_batches=3)
    items = list(s)  # 10 batches -> steps 0,0,0,1,1,1,2,2,2,3 (Lightning steps at the epoch's end)
    assert [items[i][1] for i in range(0, 20, 2)] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert s.steps_per_epoch == 4
    s.position = lambda: 2  # 2 steps = 6 batches done
    assert list(s) == items[12:]
    shards = [ResumableSampler(11, batch_size=1, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    idx = [[i for i, _, _ in sh] for sh in shards]
    assert len(idx[0]) == len(idx[1]) == 5 and not set(idx[0]) & set(idx[1])


class ProgressDataset(torch.utils.data.Dataset):
    def __init__(self):
        self.interval = LinearInterval(start=2, end=10, steps=8)

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return torch.tensor(
            [i, self.interval.global_step, self.interval.progress.epoch, self.interval.sample()]
        )


def test_items_see_their_training_step_in_workers():
    ds = ProgressDataset()
    sampler = ResumableSampler(6, batch_size=2, seed=0, shuffle=False)
    sampler.position = lambda: 4  # epoch 1 (3 steps per epoch), one batch consumed
    for workers in (0, 2):
        dl = DataLoader(StepIndexedDataset(ds), batch_size=2, sampler=sampler, num_workers=workers)
        rows = torch.cat(list(dl)).tolist()
        assert [r[0] for r in rows] == [2, 3, 4, 5]
        assert [r[1] for r in rows] == [4, 4, 5, 5]
        assert all(r[2] == 1 for r in rows)
        # LinearInterval 2 -> 10 over 8 steps: floor(2 + 8 * step / 8 + 0.5)
        assert [r[3] for r in rows] == [6, 6, 7, 7]
    # plain int indices pass through
    assert StepIndexedDataset(ds)[1][0] == 1
