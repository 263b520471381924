"""A checkpoint's own sampler defaults, read from the manifest beside it (issue 37).

A committed model's manifest (``<checkpoint stem>.json`` beside the ``.safetensors`` file, written by
``experiments/cpu_camera_control/make_asset.py``: ``file``, ``sha256``, ...) may hold a ``sampler`` mapping:
keys of ``vid3d.config_schema.SamplerOptions`` with the values this model samples best with (e.g. the
``sigma_min`` its measurement chose). It applies only to the file it names with the hash it records, so the
weights file itself (and its sha256) never changes to carry them.

Precedence in ``sample.py`` / ``eval.py`` (and the studio, which shows sample.py's command line): a sampler
setting named on the command line (``sampler.sigma_min=``) or set by a sampler preset to a value other than
the global default wins; otherwise the model's default; otherwise ``SamplerOptions``' default. Out-of-bounds
values in the manifest are refused in one line naming the manifest and the field
(``vid3d.sampling.sampler_settings``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vid3d.atomic import file_sha256
from vid3d.config_schema import SamplerOptions

from .sampler_settings import check_sampler_settings

log = logging.getLogger("vid3d")
MANIFEST_KEY = "sampler"


def model_sampler_defaults(ckpt: str | Path) -> tuple[dict[str, Any], Path | None]:
    """(the checked ``sampler`` settings of ``ckpt``'s manifest, the manifest's path), or ({}, None) when the
    checkpoint has no manifest, the manifest has no ``sampler`` entry or names another file. A manifest whose
    ``sha256`` is not the file's (the weights were replaced) is ignored with a warning."""
    from vid3d.data.files import load_json
    from vid3d.models.checkpoint import resolve_checkpoint

    try:
        path = resolve_checkpoint(ckpt)
    except (FileNotFoundError, OSError):
        return {}, None
    manifest = path.with_suffix(".json")
    if path.suffix != ".safetensors" or not manifest.is_file():
        return {}, None
    data = load_json(manifest)
    if not isinstance(data, dict) or MANIFEST_KEY not in data or data.get("file") != path.name:
        return {}, None
    if data.get("sha256") != file_sha256(path):
        log.warning("%s: 'sha256' is not %s's; its sampler defaults are not applied", manifest, path.name)
        return {}, None
    return check_sampler_settings(data[MANIFEST_KEY], str(manifest)), manifest


def apply_sampler_defaults(
    sampler: Any, defaults: dict[str, Any], explicit: Iterable[str] = ()
) -> dict[str, Any]:
    """Set each of ``defaults`` on ``sampler`` (a mutable mapping or ``DictConfig`` with SamplerOptions' keys)
    where the key is not in ``explicit`` and ``sampler`` still holds ``SamplerOptions``' default; returns
    {key: value} of what was set."""
    base = dataclasses.asdict(SamplerOptions())
    explicit = set(explicit)
    applied = {}
    for key, value in defaults.items():
        if key in explicit or sampler[key] != base[key]:
            continue
        sampler[key] = value
        applied[key] = value
    return applied


def sampler_keys_in(overrides: Iterable[str]) -> set[str]:
    """The sampler keys a list of Hydra overrides names (``sampler.sigma_min=1`` -> sigma_min; also
    ``+sampler.rho=5``, ``++sampler.eta=0``)."""
    keys = set()
    for o in overrides:
        name = str(o).split("=", 1)[0].lstrip("+~")
        if name.startswith("sampler."):
            keys.add(name.removeprefix("sampler."))
    return keys


def command_line_sampler_keys() -> set[str]:
    """``sampler_keys_in`` the running Hydra app's overrides; empty outside a Hydra app (compose API)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return sampler_keys_in(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        return set()


def apply_model_sampler_defaults(cfg: Any, overrides: Iterable[str] | None = None) -> dict[str, Any]:
    """``apply_sampler_defaults`` of ``cfg.ckpt``'s manifest onto ``cfg.sampler`` (a task config), logged;
    returns what was set ({} without a checkpoint, a manifest or a ``sampler`` entry). ``overrides``: the
    Hydra overrides ``cfg`` was composed with (default: the running Hydra app's)."""
    if not cfg.get("ckpt") or cfg.get("sampler") is None:
        return {}
    defaults, manifest = model_sampler_defaults(cfg.ckpt)
    if not defaults:
        return {}
    explicit = command_line_sampler_keys() if overrides is None else sampler_keys_in(overrides)
    applied = apply_sampler_defaults(cfg.sampler, defaults, explicit)
    if applied:
        log.info("sampler: %s from %s (the model's defaults; sampler.<key>=... on the command line wins)",
                 ", ".join(f"{k}={v}" for k, v in applied.items()), manifest)
    return applied
