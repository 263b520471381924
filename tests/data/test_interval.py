import io
import pickle
from multiprocessing.reduction import ForkingPickler
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.multiprocessing  # noqa: F401  (registers the shared-memory tensor reductions)
from torch.utils.data import DataLoader, Dataset

from vid3d.data.interval import (
    FixedInterval,
    IntervalStepCallback,
    LinearInterval,
    UniformInterval,
    find_shared_progress,
)


class _StepProbe(Dataset):
    """Returns (worker id, global step seen, epoch seen, stride) per item."""

    def __init__(self, interval):
        self.interval = interval

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = torch.utils.data.get_worker_info()
        return torch.tensor(
            [
                info.id if info else -1,
                self.interval.global_step,
                self.interval.progress.epoch,
                self.interval.sample(),
            ]
        )


def test_linear_values():
    s = LinearInterval(start=2, end=10, steps=100)
    # s = floor(2 + 8 * step / 100 + 0.5)
    expected = {0: 2, 6: 2, 7: 3, 50: 6, 56: 6, 57: 7, 100: 10, 10_000: 10}
    assert {k: s.value_at(k) for k in expected} == expected
    assert LinearInterval(10, 2, 10).value_at(5) == 6
    assert s.max_value == 10
    # steps=0: already at the end (a curriculum over an empty phase)
    assert [LinearInterval(2, 10, 0).value_at(k) for k in (0, 5)] == [10, 10]
    with pytest.raises(ValueError, match="steps"):
        LinearInterval(2, 10, -1)


def test_fixed_and_uniform():
    assert FixedInterval(3).sample() == 3
    u = UniformInterval(2, 5)
    draws = [u.sample(np.random.default_rng(k)) for k in range(400)]
    assert set(draws) == {2, 3, 4, 5}
    # same per-sample RNG -> same stride
    assert u.sample(np.random.default_rng([1, 2, 3])) == u.sample(np.random.default_rng([1, 2, 3]))
    with pytest.raises(ValueError):
        UniformInterval(5, 2)
    with pytest.raises(ValueError):
        FixedInterval(0)


def test_workers_see_updated_step():
    interval = LinearInterval(start=2, end=10, steps=100)
    loader = DataLoader(_StepProbe(interval), batch_size=2, num_workers=2, persistent_workers=True)
    first = torch.cat(list(loader))
    assert set(first[:, 0].tolist()) == {0, 1}
    assert (first[:, 1] == 0).all() and (first[:, 3] == 2).all()
    interval.progress.set(step=50, epoch=3)  # main process, workers stay alive
    second = torch.cat(list(loader))
    assert set(second[:, 0].tolist()) == {0, 1}
    assert (second[:, 1] == 50).all() and (second[:, 2] == 3).all() and (second[:, 3] == 6).all()


def test_spawn_style_pickling_shares_memory():
    """Spawned workers get the schedule through ForkingPickler: the step tensor must stay shared."""
    interval = LinearInterval(2, 10, 100)
    buf = io.BytesIO()
    ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(interval)
    clone = pickle.loads(buf.getvalue())
    interval.set_global_step(77)
    assert clone.global_step == 77


def test_callback_publishes_global_step_from_trainer():
    interval = UniformInterval(2, 4)
    ds = _StepProbe(interval)
    cb = IntervalStepCallback()
    trainer = SimpleNamespace(
        global_step=1234,
        current_epoch=5,
        datamodule=SimpleNamespace(train_dataset={"a": [ds]}),
        train_dataloader=None,
    )
    cb.on_train_start(trainer, None)  # e.g. right after resume: global_step already restored
    assert interval.global_step == 1234 and interval.progress.epoch == 5
    trainer.global_step = 1300
    cb.on_train_batch_start(trainer, None, None, 0)
    assert interval.global_step == 1300
    assert len(find_shared_progress({"x": ds, "y": [ds, interval]})) == 1
