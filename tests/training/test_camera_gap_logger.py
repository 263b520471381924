"""CameraGapLogger: ``at_start`` measures the weights a fresh run starts from (step 0) exactly as
``measure_camera_gap`` does, once; a resumed run (global step > 0) and ``at_start=False`` add nothing
at start."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vid3d.evaluation.camera_gap import measure_camera_gap
from vid3d.models.backbone import build_tiny_backbone
from vid3d.models.video_diffusion import CameraVideoDiffusion
from vid3d.sampling.trajectories import make_trajectory
from vid3d.training.camera_gap_logger import CameraGapLogger

F, H, W = 2, 16, 24  # small: three measurements in a fast test


def _samples() -> list[dict]:
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]]).expand(F, 3, 3).clone()
    return [
        {"frames": torch.rand(F, 3, H, W, generator=g) * 2 - 1, "K_px": K,
         "c2w": torch.as_tensor(np.asarray(make_trajectory(t, F).c2w), dtype=torch.float32)}
        for t in ("orbit_left", "zoom_in", "pan_right")
    ]


@pytest.fixture(scope="module")
def model() -> CameraVideoDiffusion:
    m = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder="plucker")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # the zero-initialised camera outputs moved, so the gap is not exactly 1
        for p in m.camera_encoder.parameters():
            p.add_(torch.randn(p.shape, generator=g))
    return m


def _trainer(tmp_path, step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, is_global_zero=True, loggers=[], default_root_dir=str(tmp_path))


def _lines(tmp_path) -> list[dict]:
    path = tmp_path / "camera_gap.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_at_start_logs_step_0_as_measure_camera_gap(tmp_path, model):
    samples = _samples()
    cb = CameraGapLogger(samples, every_n_steps=5, num_clips=3, sigmas=[5.0], seed=2, batch_size=3,
                         at_start=True)
    module = SimpleNamespace(model=model)
    cb.on_train_start(_trainer(tmp_path, 0), module)
    cb.on_train_batch_end(_trainer(tmp_path, 0), module, None, None, 0)  # the same step: not again
    (line,) = _lines(tmp_path)
    want = measure_camera_gap(model, samples, (5.0,), 2, 3)
    assert line["step"] == 0 and line["n_clips"] == 3
    for k in ("camera_gap@5", "camera_gap_static@5", "error_own@5"):
        assert line[k] == pytest.approx(want[k], rel=1e-12)
    assert abs(line["camera_gap@5"] - 1) > 1e-4  # a gap that depends on the camera weights
    cb.on_train_batch_end(_trainer(tmp_path, 5), module, None, None, 4)
    assert [x["step"] for x in _lines(tmp_path)] == [0, 5]


def test_no_start_measurement_when_resumed_or_off(tmp_path, model):
    module = SimpleNamespace(model=model)
    CameraGapLogger(_samples(), every_n_steps=5, num_clips=3, at_start=True).on_train_start(
        _trainer(tmp_path, 10), module)
    CameraGapLogger(_samples(), every_n_steps=5, num_clips=3).on_train_start(_trainer(tmp_path, 0), module)
    CameraGapLogger(_samples(), every_n_steps=0, num_clips=3, at_start=True).on_train_start(
        _trainer(tmp_path, 0), module)
    assert _lines(tmp_path) == []


def test_a_dataset_config_is_built_on_first_use_and_a_dataset_is_used_as_it_is():
    from omegaconf import OmegaConf

    spec = {"_target_": "builtins.range", "_args_": [10, 20]}
    for ds in (OmegaConf.create(spec), spec):  # Hydra's DictConfig or a plain dict: instantiated
        assert CameraGapLogger(ds, num_clips=3).samples() == [10, 11, 12]
    items = OmegaConf.create([{"a": 1}, {"a": 2}])  # a ListConfig is a dataset (a sequence), not a config
    assert CameraGapLogger(items, num_clips=5).samples() == [{"a": 1}, {"a": 2}]
