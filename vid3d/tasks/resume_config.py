"""``train.py resume=<run>``: the run's own config, with the user's new overrides on top.

A resumed run must rebuild the model, data and schedule it was trained with. The config composed from
today's defaults plus ``resume=...`` is not that (``experiment=demo`` and every other override of the
first launch would be lost), so the resumed run starts from the config the run saved: its Hydra
``.hydra/config.yaml`` (unresolved, as composed) or, without it, the run's ``config.yaml`` (resolved). Each
override given now is then applied on top:

- ``key=value`` (also ``+key=``, ``++key=``): the value as Hydra composed it now;
- ``group=option`` (``trainer=gpu``, ``data/interval=linear``): the whole node the option composed now;
  a group that writes at the top level (``experiment``, ``debug``, ``hparams_search``: ``@package
  _global_``) cannot be layered on a finished run's config: it is skipped when the run was launched with
  the same option (its ``.hydra/hydra.yaml`` records the choices; a relaunch repeating the first launch's
  command changes nothing), refused when it was not, and skipped with a warning when the run's choices
  are unknown;
- ``~key``: removed.

``config_diff`` lists what differs from the run's own config; the task prints it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from vid3d.config import CONFIG_DIR
from vid3d.errors import InputError

log = logging.getLogger("vid3d")

__all__ = ["config_diff", "run_choices", "run_config_file", "with_run_config"]


def run_config_file(run: Path) -> Path | None:
    """The config a run saved: ``<run>/.hydra/config.yaml``, else ``<run>/config.yaml``, else None."""
    for p in (run / ".hydra" / "config.yaml", run / "config.yaml"):
        if p.is_file():
            return p
    return None


def run_choices(run: Path) -> dict[str, str | None]:
    """The group options a run was composed with (``hydra.runtime.choices`` of its ``.hydra/hydra.yaml``);
    {} when it has none."""
    f = run / ".hydra" / "hydra.yaml"
    if not f.is_file():
        return {}
    choices = OmegaConf.select(OmegaConf.load(f), "hydra.runtime.choices")
    return {str(k): v for k, v in OmegaConf.to_container(choices).items()} if choices is not None else {}


def _raw(cfg: DictConfig, key: str):
    """The node at dotted ``key`` as plain data, interpolations kept (``${...}`` strings)."""
    parent_key, _, last = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    node = parent._get_node(last) if isinstance(parent, DictConfig) else None
    if node is None:
        return None
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=False)
    return node._value()


def _is_global_group(group: str, option: str, config_dir: Path) -> bool:
    f = config_dir / group / f"{option}.yaml"
    return f.is_file() and "@package _global_" in f.read_text().split("\n", 1)[0]


def with_run_config(
    cfg: DictConfig,
    run_config: DictConfig,
    overrides: list[str],
    choices: dict[str, str | None] | None = None,
    config_dir: Path = CONFIG_DIR,
) -> DictConfig:
    """``run_config`` with each of the command line's ``overrides`` applied as ``cfg`` (the config Hydra
    composed from them) has it; ``choices``: the run's own group options (``run_choices``; None: unknown).
    Returns a new struct-flagged config; raises InputError for a sweep or a top-level group override the
    run did not have."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = OmegaConf.create(OmegaConf.to_container(run_config, resolve=False))
    for o in OverridesParser.create().parse_overrides(overrides):
        key = o.key_or_group
        if key.startswith("hydra.") or key == "hydra":
            continue
        if o.is_sweep_override():
            raise InputError(f"{o.input_line}: a sweep cannot be applied to a resumed run (one run resumes)")
        if o.package:
            raise InputError(f"{o.input_line}: a package override (@) cannot be applied to a resumed run")
        if (config_dir / key).is_dir():  # a config group
            option = o.value()
            if isinstance(option, str) and _is_global_group(key, option, config_dir):
                if choices is not None and choices.get(key) == option:
                    continue  # the run was composed with it: its config already holds what it sets
                if choices is None:
                    log.warning("resume: %s not applied (the run's own config is used; its group choices "
                                "are not recorded, so whether it had this option is unknown)", o.input_line)
                    continue
                raise InputError(
                    f"{o.input_line}: resume takes the run's own config; a group that sets keys across the "
                    "whole config cannot be layered on it (override single keys instead)"
                )
            key = key.replace("/", ".")
        if o.is_delete():
            parent_key, _, last = key.rpartition(".")
            parent = OmegaConf.select(out, parent_key) if parent_key else out
            if isinstance(parent, DictConfig) and last in parent:
                del parent[last]
            continue
        OmegaConf.update(out, key, _raw(cfg, key), merge=False, force_add=True)
    OmegaConf.set_struct(out, True)
    return out


def _flat(cfg, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    items = cfg.items() if isinstance(cfg, dict) else enumerate(cfg) if isinstance(cfg, list) else None
    if items is None:
        return {prefix.rstrip("."): cfg}
    for k, v in items:
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, (dict, list)) and v else {f"{prefix}{k}": v})
    return out


def _values(cfg: DictConfig | ListConfig, prefix: str = "") -> dict[str, object]:
    """Leaves by dotted key, each interpolation resolved where it resolves (a resolved config.yaml and an
    unresolved node then compare by value), else kept as its ``${...}`` text."""
    out: dict[str, object] = {}
    keys = range(len(cfg)) if isinstance(cfg, ListConfig) else list(cfg.keys())
    for k in keys:
        full, node = f"{prefix}{k}", cfg._get_node(k)
        try:
            value = cfg[k]  # resolved
        except Exception:  # noqa: BLE001 - e.g. an interpolation to a removed key: keep its text
            value = node._value() if node is not None else None
        container = isinstance(value, (DictConfig, ListConfig))
        if container and len(value):
            out.update(_values(value, f"{full}."))
        else:
            out[full] = OmegaConf.to_container(value) if container else value
    return out


def config_diff(before: DictConfig, after: DictConfig) -> list[str]:
    """``"key: old -> new"`` for every leaf whose value differs (``(unset)`` where a side lacks it),
    sorted; interpolations are compared by their resolved values."""
    a, b = _values(before), _values(after)
    unset = "(unset)"
    return [f"{k}: {a.get(k, unset)} -> {b.get(k, unset)}" for k in sorted(set(a) | set(b)) if a.get(k, unset)
            != b.get(k, unset)]
