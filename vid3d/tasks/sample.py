"""sample(cfg): generate videos with a trained checkpoint (``mode=single|interpolate|explore``).

Inputs: ``image=<png/jpg>`` or ``images=[a.png,b.png]`` (or a .txt list, one input per line), with
``image_end=`` for interpolation and a ``trajectory`` preset or file; or (default) the data option's
test clips along their ground-truth trajectories. The mode (vid3d.sampling.modes, chosen by
``conf/mode``) turns them into samples and generates each one.
Outputs per sample under ``<run dir>/samples/<name>/``: ``video.mp4``, ``frames/*.png``,
``cameras.json`` (pixel intrinsics + OpenCV camera-to-world per frame, first frame = identity) and
``trajectory.png``; with a ground-truth clip also ``gt_vs_generated.mp4``. With ``reconstruct=true``
also 3D Gaussians fitted to the sample's frames at its cameras: ``gaussians.ply`` (the layout 3DGS viewers
read) and ``turntable.mp4`` (the Gaussians rendered along a swing around the first view). Each sample
folder is written atomically (a temporary sibling renamed into place): complete or absent, never half.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vid3d.atomic import atomic_dir
from vid3d.models.checkpoint import load_model
from vid3d.progress import Progress, format_duration
from vid3d.sampling.io import load_inputs, write_sample
from vid3d.sampling.model_defaults import apply_model_sampler_defaults
from vid3d.tasks.common import log, prepare_data, pretrained_choice, print_config_tree, run_dir, task_wrapper


def _list(value):
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


@task_wrapper
def sample(cfg: DictConfig) -> dict:
    # the user's files first (images, trajectory file, checkpoint): a wrong one fails in one line, before
    # the config print, and nothing is written
    images = load_inputs(
        cfg.get("image"),
        _list(cfg.get("images")),
        _list(cfg.get("image_end")),
        cfg.data.height,
        cfg.data.width,
        cfg.fov_deg,
    )
    trajectory = instantiate(cfg.trajectory) if cfg.get("trajectory") is not None else None
    model = load_model(cfg.ckpt, pretrained=pretrained_choice(cfg))
    out = run_dir(cfg)
    apply_model_sampler_defaults(cfg)  # the checkpoint's manifest's sampler settings, unless given
    print_config_tree(cfg, save_to=out / "config.yaml")
    sampler = instantiate(cfg.sampler)
    mode = instantiate(cfg.mode) if cfg.get("mode") is not None else None
    if mode is None:
        from vid3d.sampling.modes import SingleMode

        mode = SingleMode()
    if trajectory is not None and trajectory.K_norm is not None:
        fx = float(trajectory.K_norm[0, 0, 0]) * cfg.data.width
        log.info(
            "trajectory %s: using the file's own intrinsics rescaled to %dx%d (fx %.1f px, horizontal FOV "
            "%.1f deg) instead of fov_deg=%s; trajectory.use_intrinsics=false uses the image's",
            trajectory.name, cfg.data.height, cfg.data.width, fx,
            2 * math.degrees(math.atan(cfg.data.width / (2 * fx))), cfg.fov_deg,
        )
    dataset = None
    if not images:
        prepare_data(cfg)
        dataset = instantiate(cfg.data.test_dataset)
    jobs = mode.jobs(images, dataset, trajectory, cfg.num_samples)
    written = []
    steps = [mode.num_steps(j, sampler) for j in jobs]
    with Progress(f"sampling ({mode.name})", sum(steps), unit="step", default_every_n=5) as bar:
        for k, job in enumerate(jobs):
            gen = torch.Generator().manual_seed(sample_seed(cfg.seed, k))  # per sample: regenerate alone
            t0 = time.monotonic()
            frames = mode.run(model, sampler, job, generator=gen, progress=_step_counter(bar, k, jobs, steps))
            final = out / "samples" / job.name
            with atomic_dir(final) as folder:  # the sample folder appears complete, or not at all
                write_sample(folder, job, frames, cfg.fps)
                if cfg.get("reconstruct"):
                    reconstruct_sample(folder, job, frames, cfg.reconstruction, cfg.fps)
            written.append(str(final))
            bar.write(f"sample {k + 1}/{len(jobs)} {job.name} written in "
                      f"{format_duration(time.monotonic() - t0)} -> {final}")
    log.info("wrote %d samples under %s", len(written), out / "samples")
    return {"samples": written, "run_dir": str(out)}


def sample_seed(seed: int, k: int) -> int:
    """The generator seed of sample k of a run with ``seed`` (the studio uses it to match sample.py)."""
    return int(seed) * 100_003 + int(k)


def _step_counter(bar: Progress, k: int, jobs: list, steps: list[int]):
    """The sampler's ``progress(i, n)`` hook for sample k: one more denoising step on ``bar``, noted as
    ``sample k+1/N <name> step s/S`` (counted per call: explore mode restarts i for each segment)."""
    done = 0

    def step(i: int, n: int) -> None:
        nonlocal done
        done += 1
        note = f"sample {k + 1}/{len(jobs)} {jobs[k].name} step {done}/{steps[k]}"
        bar.update(note=note, force=done == 1)

    return step


def reconstruct_sample(out, job, frames, opts: DictConfig, fps: int) -> None:
    """``gaussians.ply`` + ``turntable.mp4`` of one sample, frames (N, H, W, 3) uint8 at job.K_px, job.c2w."""
    from vid3d.reconstruction.fit import FitConfig, fit_frames, render_frames
    from vid3d.reconstruction.orbit import turntable_cameras
    from vid3d.reconstruction.ply import write_ply
    from vid3d.viz import write_video

    fit = FitConfig(steps=int(opts.steps), lr_scale=float(opts.lr_scale),
                    ssim_weight=float(opts.ssim_weight), renderer=str(opts.renderer), seed=int(opts.seed))
    near, far = float(opts.near), float(opts.far)
    g = fit_frames(frames, job.K_px, job.c2w, near, far, int(opts.num_gaussians), fit, opts.get("threads"))
    write_ply(out / "gaussians.ply", g)
    cams = turntable_cameras(job.c2w[0], pivot_depth=(near * far) ** 0.5, num=int(opts.turntable_frames),
                             max_yaw_deg=float(opts.turntable_yaw_deg))
    h, w = frames.shape[1:3]
    views = render_frames(g, np.repeat(job.K_px[:1], len(cams), 0), cams, h, w, str(opts.renderer))
    write_video(out / "turntable.mp4", views, fps=fps)
    log.info("%s: %d Gaussians -> gaussians.ply, turntable.mp4", job.name, len(g))
