"""Validation hold-out by clip id (vid3d.data.holdout) and the datasets that use it."""

import hashlib

import pytest

from vid3d.data.clips import Re10kClipDataset
from vid3d.data.holdout import check_holdout, holdout_score, is_held_out, select
from vid3d.data.synthetic import build_synthetic_dataset


def test_score_is_the_stated_hash():
    digest = hashlib.sha256(b"7:room_0003").digest()
    assert holdout_score("room_0003", 7) == int.from_bytes(digest[:8], "big") / 2**64
    assert 0.0 <= holdout_score("x", 0) < 1.0


def test_fraction_and_stability():
    ids = [f"clip_{i:05d}" for i in range(20000)]
    held = {i for i in ids if is_held_out(i, 0.25, 0)}
    assert abs(len(held) / len(ids) - 0.25) < 0.01  # binomial sd 0.003
    # growing the split never moves an existing clip; a larger fraction only adds clips
    more = {i for i in ids + [f"new_{k}" for k in range(100)] if is_held_out(i, 0.25, 0)}
    assert held <= more and {i for i in ids if is_held_out(i, 0.4, 0)} >= held
    # another seed gives another split
    assert held != {i for i in ids if is_held_out(i, 0.25, 1)}


def test_select_sides_partition_and_errors():
    ids = [f"c{i}" for i in range(50)]
    rest = select(ids, str, {"fraction": 0.3, "seed": 2}, "split")
    held = select(ids, str, {"fraction": 0.3, "seed": 2, "keep": "held_out"}, "split")
    assert sorted(rest + held) == sorted(ids) and not set(rest) & set(held)
    assert select(ids, str, None, "split") == ids
    with pytest.raises(ValueError, match="leaves no held-out clip"):
        select(["only"], str, {"fraction": 0.01, "seed": 0, "keep": "held_out"}, "data/train")
    for bad in ({"fraction": 0}, {"fraction": 1.5}, {"fraction": 0.2, "keep": "val"}, {"seed": 1},
                {"fraction": 0.2, "extra": 1}):
        with pytest.raises(ValueError, match="holdout"):
            check_holdout(bad)


def test_re10k_dataset_sides_are_disjoint(tmp_path):
    root = build_synthetic_dataset(tmp_path / "s", num_train=12, num_test=1, num_frames=4, height=16,
                                   width=16)
    kw = {"num_frames": 2, "height": 16, "width": 16}
    h = {"fraction": 0.25, "seed": 0}
    full = Re10kClipDataset(root, "train", **kw)
    train = Re10kClipDataset(root, "train", holdout={**h, "keep": "rest"}, **kw)
    val = Re10kClipDataset(root, "train", holdout={**h, "keep": "held_out"}, **kw)
    ids = lambda ds: {c.clip_id for c in ds.clips}  # noqa: E731
    assert ids(train) | ids(val) == ids(full) and not ids(train) & ids(val)
    assert ids(val) == {i for i in ids(full) if is_held_out(i, 0.25, 0)} and len(val) >= 1
    assert val[0]["frames"].shape[0] == 2


def test_mixtures_refuse_a_holdout_by_name():
    from vid3d.data.mixture import MixtureDataset, PhasedMixtureDataset

    with pytest.raises(ValueError, match="single-dataset data option"):
        MixtureDataset({"a": [0]}, holdout={"fraction": 0.25})
    with pytest.raises(ValueError, match="single-dataset data option"):
        PhasedMixtureDataset({"a": [0]}, [{"start_step": 0, "weights": {"a": 1}}], holdout={"fraction": 0.25})
