"""Fixtures shared by every test folder."""

import pytest


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B in offline mode, silent, with its staged media and cache inside the test's tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    return tmp_path


def _random_eval_clips(n: int = 3, size: int = 8) -> list:
    """``n`` camera-benchmark clips (ids c0, c1, ...): 4 random uint8 frames of size x size, identity
    intrinsics, c2w translated along a seeded random walk. The same clips on every call."""
    import numpy as np

    from vid3d.evaluation.camera_runner import EvalClip

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        c2w = np.tile(np.eye(4), (4, 1, 1))
        c2w[:, :3, 3] = np.cumsum(rng.normal(size=(4, 3)), axis=0)
        frames = rng.integers(0, 255, (4, size, size, 3), dtype=np.uint8)
        out.append(EvalClip(f"c{i}", frames, np.eye(3), c2w, np.arange(4)))
    return out


@pytest.fixture
def eval_clips():
    """The factory ``_random_eval_clips(n=3, size=8)`` (camera-benchmark runs on known random clips)."""
    return _random_eval_clips


@pytest.fixture(autouse=True)
def default_progress_settings():
    """Every test starts from vid3d.progress's defaults and leaves the process's settings as it found them."""
    from vid3d.progress import configure, settings

    before = settings()
    configure()
    yield
    configure(before)
