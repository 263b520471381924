"""Lightning's W&B logger, set up by ``vid3d.wandb_setup.prepare_logger`` (mode, group, run id, folders)."""

from __future__ import annotations

from lightning.pytorch.loggers import WandbLogger

from vid3d.wandb_setup import prepare_logger


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
    """A WandbLogger writing under ``save_dir/wandb`` (the run dir); offline runs sync later with
    ``wandb sync``. A start in a run dir that already has a W&B run (a resumed training) continues it;
    ``id`` (+ ``resume``) choose another run explicitly (``prepare_logger``)."""
    settings = {"project": project, "mode": mode, "name": name, "group": group, "entity": entity,
                "tags": tags, "id": id, "resume": resume}
    run = prepare_logger(settings, save_dir)
    return WandbLogger(
        project=run.project,
        save_dir=str(run.dir),
        name=run.name,
        group=run.group,
        entity=run.entity,
        tags=list(run.tags),
        offline=run.mode == "offline",
        # the resolved mode given to wandb.init itself: Lightning's `offline` only sets WANDB_MODE, which W&B
        # ignores once its settings singleton exists in the process (an earlier run's mode would win)
        mode=run.mode,
        config=config,
        id=run.id,
        **({"resume": run.resume} if run.resume else {}),  # else Lightning's "allow"
    )
