"""Hydra/OmegaConf set-up shared by the entry points, the tasks and the tests."""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
# when the entry point started (they import this module first): vid3d.errors.remove_unused_run_dir only
# removes a run folder written after it
STARTED_AT = time.time()


def _run_dir(default: str) -> str:
    """Hydra's output dir for this job inside a Hydra app; ``default`` under the compose API."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return HydraConfig.get().runtime.output_dir
    return default


def _repo_dir() -> str:
    """The vid3d checkout (the folder holding conf/ and assets/), whatever the working directory."""
    return str(CONFIG_DIR.parent)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("vid3d.run_dir"):
        OmegaConf.register_new_resolver("vid3d.run_dir", _run_dir)
    if not OmegaConf.has_resolver("vid3d.repo_dir"):
        OmegaConf.register_new_resolver("vid3d.repo_dir", _repo_dir)


def register_schemas() -> None:
    """The typed schemas of vid3d/config_schema.py in Hydra's ConfigStore (``schema/<name>``)."""
    from vid3d.config_schema import register_schemas as register

    register()


register_resolvers()
register_schemas()
