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
