"""PhasedMixtureDataset: weights switch at the configured global step, seen by DataLoader workers."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from vid3d.data.datamodule import collate_samples
from vid3d.data.interval import IntervalStepCallback, find_shared_progress, set_progress
from vid3d.data.mixture import MixtureDataset, PhasedMixtureDataset


class Named(Dataset):
    def __init__(self, n: int, tag: int) -> None:
        self.n, self.tag = n, tag

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"x": torch.tensor([self.tag, i])}


def _mix(start=5, length=64):
    return PhasedMixtureDataset(
        {"a": Named(3, 0), "b": Named(4, 1), "c": Named(2, 2)},
        phases=[
            {"start_step": 0, "weights": {"a": 1.0, "b": 1.0}},
            {"start_step": start, "weights": {"c": 1.0}},
        ],
        length=length,
        seed=3,
    )


def test_phase_at_boundaries():
    mix = _mix(start=5)
    assert [mix.phase_at(s) for s in (0, 4, 5, 6, 10**9)] == [0, 0, 1, 1, 1]
    three = PhasedMixtureDataset(
        {"a": Named(1, 0)},
        [
            {"start_step": 0, "weights": {"a": 1}},
            {"start_step": 3, "weights": {"a": 2}},
            {"start_step": 7, "weights": {"a": 1}},
        ],
    )
    assert [three.phase_at(s) for s in range(9)] == [0, 0, 0, 1, 1, 1, 1, 2, 2]
    # a later phase starting at the same step replaces the earlier one (phase2_start_step: 0)
    assert [_mix(start=0).phase_at(s) for s in (0, 1, 100)] == [1, 1, 1]


def test_switch_seen_by_workers_and_matches_weights():
    mix = _mix(start=5)
    assert len(find_shared_progress(mix)) == 1  # IntervalStepCallback reaches it
    loader = DataLoader(mix, batch_size=8, num_workers=1, persistent_workers=True, collate_fn=collate_samples)
    before = [b for _, b in zip(range(2), loader)]
    set_progress(mix, step=5)  # what IntervalStepCallback does at global step 5
    after = [b for _, b in zip(range(2), loader)]
    names_before = {n for b in before for n in b["dataset"]}
    assert names_before == {"a", "b"} and all((b["phase"] == 0).all() for b in before)
    assert {n for b in after for n in b["dataset"]} == {"c"} and all((b["phase"] == 1).all() for b in after)
    # the sample comes from the named dataset (tag) and a valid index in it
    for b in before + after:
        for name, x in zip(b["dataset"], b["x"]):
            assert int(x[0]) == "abc".index(name) and 0 <= int(x[1]) < {"a": 3, "b": 4, "c": 2}[name]


def test_frequencies_follow_phase_weights():
    mix = PhasedMixtureDataset(
        {"a": Named(3, 0), "b": Named(3, 1)},
        [{"start_step": 0, "weights": {"a": 3, "b": 1}}, {"start_step": 1, "weights": {"a": 1, "b": 3}}],
        length=4000,
    )
    first = np.mean([mix[i]["dataset"] == "a" for i in range(4000)])
    mix.progress.set(step=1)
    second = np.mean([mix[i]["dataset"] == "a" for i in range(4000)])
    # binomial std at n=4000 is < 0.007; 0.03 is > 4 sigma
    assert abs(first - 0.75) < 0.03 and abs(second - 0.25) < 0.03


def test_callback_publishes_to_phased_mixture():
    mix = _mix(start=2)

    class T:
        global_step, current_epoch = 7, 1

        class datamodule:
            train_dataset = mix

        train_dataloader = None

    IntervalStepCallback().on_train_batch_start(T, None, None, 0)
    assert mix.progress.step == 7 and mix.phase == 1 and mix[0]["dataset"] == "c"


@pytest.mark.parametrize(
    "phases, match",
    [
        ([], "at least one phase"),
        ([{"start_step": 1, "weights": {"a": 1}}], "must be 0"),
        (
            [
                {"start_step": 0, "weights": {"a": 1}},
                {"start_step": 5, "weights": {"a": 1}},
                {"start_step": 4, "weights": {"a": 1}},
            ],
            r"phases\[2\].*precedes",
        ),
        ([{"start_step": 0, "weights": {"zz": 1}}], r"phases\[0\].weights: unknown"),
        (
            [{"start_step": 0, "weights": {"a": 1}}, {"start_step": 4, "weights": {"e": 1}}],
            r"phases\[1\].*empty",
        ),
        ([{"start_step": 0, "weights": {"a": 0}}], "at least one weight"),
        ([{"start": 0, "weights": {"a": 1}}], r"phases\[0\]: expected"),
    ],
)
def test_bad_phases_are_rejected(phases, match):
    with pytest.raises(ValueError, match=match):
        PhasedMixtureDataset({"a": Named(2, 0), "e": Named(0, 1)}, phases)


def test_plain_mixture_unchanged_by_step():
    mix = MixtureDataset({"a": Named(3, 0), "b": Named(3, 1)}, {"a": 1, "b": 1}, length=50, seed=1)
    first = [mix.choose(i) for i in range(50)]
    mix.progress.set(step=10_000)
    assert [mix.choose(i) for i in range(50)] == first
