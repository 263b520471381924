"""What makes a number reproducible, as a JSON-ready block for ``results.json``.

``reproducibility_block(cfg, weight_paths)`` records the vid3d version and git commit (plus whether the
work tree had uncommitted changes), Python/platform and library versions, every ``seed`` in the config
(by dotted path), the composed config (interpolations resolved) and the SHA-256 of each weights file.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vid3d.atomic import file_sha256

__all__ = [
    "LIBRARIES", "file_sha256", "find_seeds", "git_commit", "library_versions", "reproducibility_block",
]

LIBRARIES = ("torch", "torchvision", "diffusers", "transformers", "lightning", "pycolmap", "numpy", "scipy",
             "hydra-core", "omegaconf")


def git_commit(repo_dir: str | Path | None = None) -> dict[str, Any]:
    """{"commit": sha or None, "dirty": bool or None} of the git work tree holding vid3d (read-only
    ``git rev-parse`` / ``git status``; None where there is no git or no repository, e.g. a wheel install)."""
    cwd = Path(repo_dir) if repo_dir is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"commit": commit.stdout.strip(), "dirty": dirty}


def library_versions(names: Iterable[str] = LIBRARIES) -> dict[str, str | None]:
    """Installed distribution versions (None when not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _to_container(cfg: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, (DictConfig, ListConfig)):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return cfg


def find_seeds(config: Any, prefix: str = "") -> dict[str, Any]:
    """Every key named ``seed`` or ending in ``_seed`` in a nested dict/list, by dotted path."""
    found: dict[str, Any] = {}
    if isinstance(config, Mapping):
        for key, value in config.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if (str(key) == "seed" or str(key).endswith("_seed")) and not isinstance(value, (Mapping, list)):
                found[path] = value
            else:
                found.update(find_seeds(value, path))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            found.update(find_seeds(value, f"{prefix}[{i}]"))
    return found


def reproducibility_block(
    cfg: Any, weight_paths: Iterable[str | Path | None] | Mapping[str, Any] = ()
) -> dict[str, Any]:
    """The block for ``results.json``.

    Args:
        cfg: the composed config (OmegaConf DictConfig, resolved here, or a plain dict).
        weight_paths: weights files to hash: paths (None entries skipped, e.g. a random-init model), or a
            mapping role -> path such as {"model": ckpt, "pose": dust3r, "i3d": i3d}.
    Returns:
        {"vid3d_version", "git": {"commit", "dirty"}, "python", "platform", "libraries": {name: version},
         "seeds": {dotted path: value}, "config": {...}, "weights": [{"role", "path", "sha256", "bytes"}]}.
    """
    import vid3d

    config = _to_container(cfg)
    items = weight_paths.items() if isinstance(weight_paths, Mapping) else ((None, p) for p in weight_paths)
    weights = []
    for role, path in items:
        if path in (None, ""):
            continue
        p = Path(path)
        weights.append({"role": role, "path": str(p), "sha256": file_sha256(p), "bytes": p.stat().st_size})
    return {
        "vid3d_version": getattr(vid3d, "__version__", "unknown"),
        "git": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
        "seeds": find_seeds(config),
        "config": config,
        "weights": weights,
    }
