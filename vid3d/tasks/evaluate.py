"""evaluate(cfg): the camera-control benchmark on the data option's test clips.

Rows: the model of ``ckpt`` (if given) and two references — the ground-truth video (the pose
estimator's noise floor) and the first frame repeated (a model that ignores the camera). Writes
``samples.jsonl``-style records (``records.shard*.jsonl``), ``results.{json,csv,md}`` in the run dir and
logs the table to W&B (offline without an account).
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import vid3d
from vid3d.evaluation.camera_runner import (
    EvalClip,
    gt_video_method,
    run_camera_eval,
    static_first_frame_method,
)
from vid3d.sampling.pipeline import from_uint8, to_uint8
from vid3d.tasks.common import log, prepare_data, print_config_tree, run_dir, task_wrapper


def eval_clips(cfg: DictConfig) -> list[EvalClip]:
    """Test clips as the training transform sees them (centre crop + resize to the model size)."""
    prepare_data(cfg)
    dataset = instantiate(cfg.data.test_dataset)
    n = len(dataset) if cfg.eval.max_clips is None else min(len(dataset), cfg.eval.max_clips)
    clips = []
    for i in range(n):
        s = dataset[i]
        clips.append(
            EvalClip(
                clip_id=s["clip_id"],
                frames=to_uint8(s["frames"]),
                K_px=s["K_px"][0].double().numpy(),
                gt_c2w=s["c2w"].double().numpy(),
                frame_indices=s["frame_indices"].numpy(),
            )
        )
    return clips


def model_method(model, sampler, seed: int):
    """A runner method generating each clip's video from its first frame along its GT trajectory."""

    def generate(clip: EvalClip) -> np.ndarray:
        n = len(clip.frames)
        gen = torch.Generator().manual_seed(seed + int(torch.initial_seed() % 1_000_003))
        video = sampler(
            model,
            from_uint8(clip.frames[0])[None],
            torch.from_numpy(np.repeat(clip.K_px[None], n, axis=0)).float()[None],
            torch.from_numpy(clip.gt_c2w).float()[None],
            generator=gen,
        )
        return to_uint8(video[0])

    return generate


def reproducibility(cfg: DictConfig) -> dict:
    """What a reader needs to reproduce the numbers: versions, commit, the composed config."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(vid3d.__file__).parent
        ).stdout.strip()
    except OSError:
        commit = ""
    import diffusers
    import pycolmap

    return {
        "vid3d_version": vid3d.__version__,
        "git_commit": commit or None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "pycolmap": pycolmap.__version__,
        "seed": cfg.seed,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def log_to_wandb(cfg: DictConfig, out: Path, results: dict) -> None:
    """The results table (and one scalar per row/metric) as a W&B run; offline without credentials."""
    import wandb

    from vid3d.training.loggers import resolve_wandb_mode

    run = wandb.init(
        project=cfg.wandb.project,
        group=cfg.wandb.group,
        job_type="eval",
        dir=str(out),
        mode=resolve_wandb_mode(cfg.wandb.mode),
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    metrics = ["rot_err_deg", "trans_err", "cammc"]
    columns = ["method", "n", "failures", "success_rate"] + [f"{m}_mean" for m in metrics]
    table = wandb.Table(columns=columns)
    for method, row in results.items():
        values = [row["metrics"].get(m, {}).get("mean") for m in metrics]
        table.add_data(method, row["n"], row["failures"], row["success_rate"], *values)
        run.summary[f"eval/{method}/success_rate"] = row["success_rate"]
        for m, v in zip(metrics, values):
            if v is not None and v == v:  # NaN when every estimation failed
                run.summary[f"eval/{method}/{m}"] = v
    run.log({"eval/camera_results": table})
    run.finish()


@task_wrapper
def evaluate(cfg: DictConfig) -> dict:
    if cfg.task != "camera":
        raise ValueError(f"task={cfg.task!r} is not available; this build evaluates task=camera")
    out = run_dir(cfg)
    print_config_tree(cfg, save_to=out / "config.yaml")
    clips = eval_clips(cfg)
    methods = {}
    if cfg.ckpt:
        from vid3d.tasks.loading import load_model

        model = load_model(cfg.ckpt)
        methods[model.name] = model_method(model, instantiate(cfg.sampler), cfg.seed)
    if cfg.eval.reference_rows:
        methods["gt_video"] = gt_video_method
        methods["static_first_frame"] = static_first_frame_method
    if not methods:
        raise ValueError("nothing to evaluate: give ckpt=... or keep eval.reference_rows=true")
    estimator = instantiate(cfg.pose)
    summary = run_camera_eval(
        clips,
        methods,
        estimator,
        out,
        shard=cfg.eval.shard,
        num_shards=cfg.eval.num_shards,
        trials=cfg.eval.trials,
        failure_policy=cfg.eval.failure_policy,
        extra_protocol={"reproducibility": reproducibility(cfg)},
    )
    table = (out / "results.md").read_text()
    print(table)
    log_to_wandb(cfg, out, summary["results"])
    log.info("results written to %s", out)
    return {"results_md": table, "run_dir": str(out), "results": summary["results"]}
