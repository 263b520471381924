"""A Hydra multirun as one comparison: the job's sweep group and the overrides that name its variant.

Every job of a multirun logs (training and evaluation runs) to one W&B group, ``<job name>_<sweep dir
name>`` (the same for all jobs of a sweep, different between sweeps); the job's command-line overrides are
logged as config columns under ``sweep.overrides``. Outside a multirun (a single run, or the compose API
where there is no Hydra runtime) the group stays as configured (null). ``python -m vid3d.report <sweep
dir>`` merges the jobs into one table.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, open_dict

# overrides that say where a job writes or what it resumes, not which variant it is
NOT_A_VARIANT = ("hydra.", "paths.", "resume", "init_from", "ckpt")


def hydra_job() -> dict | None:
    """``{"name", "sweep_dir", "overrides", "override_dirname", "multirun"}`` of the running Hydra job,
    or None under the compose API (no Hydra runtime)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    return {
        "name": hc.job.name,
        "sweep_dir": str(hc.sweep.dir),
        "overrides": list(hc.overrides.task),
        "override_dirname": hc.job.get("override_dirname", ""),
        "multirun": hc.mode == RunMode.MULTIRUN,
    }


def sweep_group(job: dict | None) -> str | None:
    """The W&B group of a multirun job: ``<job name>_<sweep dir name>``; None outside a multirun."""
    if not job or not job["multirun"]:
        return None
    return f"{job['name']}_{Path(job['sweep_dir']).name}"


def override_columns(overrides: list[str]) -> dict[str, str]:
    """``["model=plucker", "+x.y=1", "~z"]`` -> ``{"model": "plucker", "x.y": "1"}``: the overrides that
    name a variant (paths, resume and Hydra settings left out), as W&B config columns."""
    out = {}
    for o in overrides:
        if "=" not in o or o.startswith("~"):
            continue
        key, value = o.split("=", 1)
        key = key.lstrip("+")
        if key.startswith(NOT_A_VARIANT):
            continue
        out[key] = value
    return out


def sweep_logging(cfg: DictConfig) -> None:
    """Add ``cfg.sweep`` (group, overrides, override dirname) and, in a multirun, set the W&B group of
    ``cfg.logger`` (if it has one and it is unset). Call before the logger is instantiated."""
    job = hydra_job()
    group = sweep_group(job)
    with open_dict(cfg):
        cfg.sweep = {
            "group": group,
            "overrides": override_columns(job["overrides"]) if job else {},
            "override_dirname": job["override_dirname"] if job else "",
        }
        if group and cfg.get("logger") and "group" in cfg.logger and not cfg.logger.group:
            cfg.logger.group = group
