"""The safetensors checkpoint format: exact round trips, no pickle, atomic writes."""

import pickle

import pytest
import torch

from vid3d.models.checkpoint import load_checkpoint_file, save_checkpoint_file


def nested():
    return {
        "epoch": 3,
        "global_step": 120,
        "state_dict": {"model.w": torch.randn(3, 4), "model.b": torch.arange(5)},
        "optimizer_states": [
            {
                "state": {0: {"step": torch.tensor(7.0), "exp_avg": torch.randn(3, 4)}},
                "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0], "amsgrad": False}],
            }
        ],
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4}}}},
        "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_score": None, "dirpath": "/x"}},
        "inf": float("inf"),
        "name": "vid3d",
    }


def assert_same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def test_round_trip_is_exact_with_types(tmp_path):
    ckpt = nested()
    path = tmp_path / "a.ckpt"
    save_checkpoint_file(ckpt, path)
    back = load_checkpoint_file(path)
    assert_same(ckpt, back)
    # int keys (optimizer state) and tuples (betas) keep their types
    assert 0 in back["optimizer_states"][0]["state"]
    assert isinstance(back["optimizer_states"][0]["param_groups"][0]["betas"], tuple)


def test_shared_storage_tensors_are_saved(tmp_path):
    w = torch.randn(4, 4)
    save_checkpoint_file({"a": w, "b": w[0], "c": w.T}, tmp_path / "s.ckpt")
    back = load_checkpoint_file(tmp_path / "s.ckpt")
    assert torch.equal(back["b"], w[0]) and torch.equal(back["c"], w.T)


def test_refuses_arbitrary_objects_and_keeps_previous_file(tmp_path):
    path = tmp_path / "c.ckpt"
    save_checkpoint_file(nested(), path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="/extra/obj"):
        save_checkpoint_file({**nested(), "extra": {"obj": object()}}, path)
    assert path.read_bytes() == before  # a failed save never touches the existing checkpoint
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]  # no temp file left behind


def test_pickle_file_is_refused_not_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(ValueError, match="evil.ckpt"):
        load_checkpoint_file(path)
    assert not marker.exists()


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_checkpoint_file(tmp_path / "nope.ckpt")
