"""The hyperparameter-search objective (``hparams_search=optuna``): ``train.py`` returns ``sweep_objective``,
the model row's mean RotErr per frame (degrees) from the post-train evaluation (``post_eval``,
``vid3d.tasks.post_eval``), which the sweeper minimises.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from omegaconf import DictConfig

from vid3d.atomic import atomic_write_bytes
from vid3d.evaluation.records import to_jsonable
from vid3d.tasks.common import log

# rows that the camera benchmark adds beside the model's (vid3d.tasks.camera_benchmark)
REFERENCE_ROWS = ("gt_video", "static_first_frame")


def model_row(results: dict) -> str | None:
    """The model's row of a camera ``results.json``'s ``results`` (the one that is not a reference row, also
    when labelled, e.g. ``gt_video [random-init poses]``); None when the evaluation had no model."""
    rows = [r for r in results if r.split(" [")[0] not in REFERENCE_ROWS]
    if len(rows) > 1:
        raise ValueError(f"results hold several model rows {rows}: the objective needs exactly one")
    return rows[0] if rows else None


def objective_from_results(results: dict, metric: str = "rot_err_deg", failed_value: float = 180.0) -> dict:
    """The sweep objective from a camera ``results.json``'s ``results``: the model row's
    ``metrics[metric].per_frame_mean`` (mean over scored videos of sum over frames / frames; degrees for
    ``rot_err_deg``). Failed pose estimations were already handled by the evaluation's failure policy
    (``exclude``: left out of the mean; ``worst``: scored as the worst successful sample; ``raise``: the
    evaluation raised). When no value remains (every estimation failed, or no model row) the objective is
    ``failed_value`` instead of NaN: the trial ranks last and the search goes on.
    Returns ``{"value", "metric", "row", "n", "failures", "failed"}``."""
    row = model_row(results)
    entry = results.get(row) or {}
    value = ((entry.get("metrics") or {}).get(metric) or {}).get("per_frame_mean")
    failed = value is None or not math.isfinite(float(value))
    return {
        "value": float(failed_value) if failed else float(value),
        "metric": f"{metric}.per_frame_mean",
        "row": row,
        "n": entry.get("n", 0),
        "failures": entry.get("failures"),
        "failed": failed,
    }


def sweep_objective(cfg: DictConfig, train_out: dict) -> float | None:
    """What ``train.py`` returns to Hydra: with ``post_eval``, the objective of the post-train evaluation
    (``objective_from_results`` on the results ``evaluate_after_training`` returned, settings
    ``post_eval.objective``), also
    written to ``<run>/eval/objective.json``; None without ``post_eval``."""
    if not cfg.get("post_eval") or not train_out.get("eval_dir"):
        return None
    eval_dir = Path(train_out["eval_dir"])
    results = train_out["eval_results"]
    settings = cfg.post_eval.get("objective") or {}
    metric, failed_value = settings.get("metric", "rot_err_deg"), settings.get("failed_value", 180.0)
    out = objective_from_results(results, metric=metric, failed_value=failed_value)
    atomic_write_bytes(eval_dir / "objective.json", (json.dumps(to_jsonable(out), indent=2) + "\n").encode())
    if out["failed"]:
        log.warning("objective: no %s on row %s: %s (failed_value)", out["metric"], out["row"], out["value"])
    else:
        log.info("objective %s of %s: %.4f", out["metric"], out["row"], out["value"])
    return out["value"]
