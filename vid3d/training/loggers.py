"""Loggers that never fail a run for lack of network or account."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger


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


def make_wandb_logger(
    project: str = "vid3d",
    save_dir: str = ".",
    mode: str = "auto",
    name: str | None = None,
    group: str | None = None,
    entity: str | None = None,
    tags: list[str] | None = None,
    config: dict | None = None,
    id: str | None = None,  # noqa: A002  (wandb's name)
    resume: str | None = None,
) -> WandbLogger:
    """A WandbLogger writing under ``save_dir/wandb``; offline runs sync later with ``wandb sync``.

    ``id`` + ``resume="allow"`` continue an existing W&B run (``resume=<run dir>`` sets them from the
    run dir's ``WANDB_ID_FILE``)."""
    resolved = resolve_wandb_mode(mode)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    extra = {} if id is None else {"id": str(id), "resume": resume or "allow"}
    return WandbLogger(
        project=project,
        save_dir=save_dir,
        name=name,
        group=group,
        entity=entity,
        tags=list(tags or []),
        offline=resolved == "offline",
        mode="disabled" if resolved == "disabled" else None,
        config=config,
        **extra,
    )


WANDB_ID_FILE = "wandb_run_id"  # in the run dir: the W&B run a resumed training continues


def read_wandb_id(run_dir: str | os.PathLike) -> str | None:
    """The W&B run id recorded in ``run_dir`` (None without one)."""
    try:
        text = (Path(run_dir) / WANDB_ID_FILE).read_text().strip()
    except OSError:
        return None
    return text or None


def record_wandb_id(logger: object, run_dir: str | os.PathLike) -> str | None:
    """Write the W&B run id of ``logger`` (a WandbLogger whose run has started) to ``run_dir``."""
    from vid3d.atomic import atomic_write_text

    try:
        run_id = str(logger.experiment.id)  # type: ignore[attr-defined]
    except Exception:  # a disabled run has no id worth keeping
        return None
    atomic_write_text(Path(run_dir) / WANDB_ID_FILE, run_id + "\n")
    return run_id
