"""W&B set-up, the one place for it: which mode, which group, which run id, and where W&B writes.

``prepare_logger(cfg, run_dir)`` turns a W&B settings node into the arguments of one W&B run; training
(``vid3d.training.loggers.make_wandb_logger``, the ``_target_`` of ``conf/logger/wandb.yaml``), the
benchmarks (``vid3d.evaluation.wandb_log``, the eval config's ``wandb`` block) and the sweep report
(``vid3d.report``) all start their runs from it. Its rules:

- mode ``auto``: ``online`` with credentials (``WANDB_API_KEY`` or a ``wandb login`` netrc entry) outside
  CI, else ``offline`` (sync later with ``wandb sync``); ``WANDB_MODE`` wins when set; a run never fails for
  lack of network or account;
- everything inside the run dir: the run under ``<run_dir>/wandb``, W&B's staging copies of logged tables
  under ``<run_dir>/wandb/data`` (``keep_wandb_data_in``);
- one W&B run per run dir: its id is written to ``<run_dir>/wandb_run_id`` before the run starts, and a
  later start in the same run dir (a resumed training, a rerun of an interrupted evaluation) continues that
  run (``resume="allow"``); an explicit ``id`` wins;
- in a Hydra multirun every job logs to one group, ``<job name>_<sweep dir name>``, unless the node names
  a group; the job's command-line overrides that name a variant are config columns (``sweep_columns``).

Layer 0: imports no other vid3d package (nor W&B or Lightning: the caller starts the run).
"""

from __future__ import annotations

import netrc
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vid3d.atomic import atomic_write_text

__all__ = [
    "WANDB_ID_FILE",
    "WandbRun",
    "hydra_job",
    "keep_wandb_data_in",
    "override_columns",
    "prepare_logger",
    "read_wandb_id",
    "resolve_wandb_mode",
    "sweep_columns",
    "sweep_group",
    "wandb_has_credentials",
]

WANDB_ID_FILE = "wandb_run_id"  # in the run dir: the W&B run every start in that dir continues
# overrides that say where a job writes or what it resumes, not which variant it is
NOT_A_VARIANT = ("hydra.", "paths.", "resume", "init_from", "ckpt")


def wandb_has_credentials() -> bool:
    """True when an API key is configured (env var or the netrc entry `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(mode: str = "auto") -> str:
    """``auto`` -> ``online`` with credentials outside CI, else ``offline``. WANDB_MODE wins if set."""
    env = os.environ.get("WANDB_MODE")
    if env:
        return env
    if mode != "auto":
        return mode
    if os.environ.get("CI") or not wandb_has_credentials():
        return "offline"
    return "online"


_DATA_DIR_SET: str | None = None


def keep_wandb_data_in(run_dir: str | os.PathLike) -> Path | None:
    """Point W&B's data folder (``WANDB_DATA_DIR``) inside ``run_dir``: W&B copies every table it logs to
    ``<data dir>/artifacts/staging`` before it is uploaded, by default under the user's home, so an offline
    run's tables would live outside its run dir. Returns the folder, or None when the user chose their own
    ``WANDB_DATA_DIR`` (kept). Call before ``wandb.init``; the next run of the same process moves it again."""
    global _DATA_DIR_SET
    current = os.environ.get("WANDB_DATA_DIR")
    if current and current != _DATA_DIR_SET:
        return None
    path = Path(run_dir).resolve() / "wandb" / "data"
    path.mkdir(parents=True, exist_ok=True)
    os.environ["WANDB_DATA_DIR"] = _DATA_DIR_SET = str(path)
    return path


def read_wandb_id(run_dir: str | os.PathLike) -> str | None:
    """The W&B run id recorded in ``run_dir`` (None without one)."""
    try:
        text = (Path(run_dir) / WANDB_ID_FILE).read_text().strip()
    except OSError:
        return None
    return text or None


def _global_rank_zero() -> bool:
    """False in the processes of a multi-process job other than its rank 0, by the environment variables
    Lightning reads for the rank (``RANK``, ``LOCAL_RANK``, ``SLURM_PROCID``, ``JSM_NAMESPACE_RANK``): only
    rank 0 starts the W&B run, so only rank 0 records its id."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(key) is not None:
            return int(os.environ[key]) == 0
    return True


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


def sweep_columns(job: dict | None) -> dict[str, Any]:
    """The ``sweep`` config block of a job: ``{"group", "overrides" (override_columns), "override_dirname"}``
    (group None, no overrides outside a Hydra app)."""
    return {
        "group": sweep_group(job),
        "overrides": override_columns(job["overrides"]) if job else {},
        "override_dirname": job["override_dirname"] if job else "",
    }


@dataclass(frozen=True)
class WandbRun:
    """The arguments of one W&B run (``wandb.init`` names), prepared by ``prepare_logger``."""

    project: str
    mode: str
    dir: Path
    id: str
    resume: str | None
    group: str | None = None
    entity: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)

    def init_kwargs(self, **extra: Any) -> dict[str, Any]:
        """``wandb.init`` keyword arguments (``extra``: job_type, config, ...; a None tags means none)."""
        kwargs = {
            "project": self.project, "mode": self.mode, "dir": str(self.dir), "id": self.id,
            "resume": self.resume, "group": self.group, "entity": self.entity, "name": self.name,
            "tags": list(self.tags) or None,
        }
        return {**kwargs, **extra}


def prepare_logger(cfg: Mapping[str, Any], run_dir: str | os.PathLike, job: dict | None = None) -> WandbRun:
    """The W&B run of ``run_dir`` from a W&B settings node ``cfg`` (training's ``logger`` node, evaluation's
    ``wandb`` block: ``project``, ``mode`` and optionally ``group``, ``entity``, ``name``, ``tags``, ``id``,
    ``resume``). Applies the module's rules: the mode resolved, W&B's data folder inside ``run_dir``, the
    group defaulting to the multirun's (``job``: ``hydra_job()`` when not given), and the run id: ``cfg.id``,
    else the one ``run_dir`` recorded (continued with ``resume="allow"``), else a new one; written to
    ``<run_dir>/wandb_run_id`` (by rank 0 of a multi-process job) before the run starts. Starts nothing."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keep_wandb_data_in(run_dir)
    os.environ.setdefault("WANDB_SILENT", "true")
    recorded = read_wandb_id(run_dir)
    run_id = cfg.get("id") or recorded
    resume = cfg.get("resume") or ("allow" if run_id else None)
    run_id = str(run_id or uuid.uuid4().hex[:8])
    if run_id != recorded and _global_rank_zero():
        atomic_write_text(run_dir / WANDB_ID_FILE, run_id + "\n")
    group = cfg.get("group") or sweep_group(hydra_job() if job is None else job)
    return WandbRun(
        project=str(cfg.get("project") or "vid3d"),
        mode=resolve_wandb_mode(str(cfg.get("mode") or "auto")),
        dir=run_dir,
        id=run_id,
        resume=resume,
        group=group,
        entity=cfg.get("entity"),
        name=cfg.get("name"),
        tags=[str(t) for t in cfg.get("tags") or []],
    )
