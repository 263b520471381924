"""sample(cfg): generate videos along camera trajectories with a trained checkpoint.

Inputs: ``image=<png/jpg>`` with a ``trajectory`` preset or file, or (default) the first frames of the
data option's test clips, each along its own ground-truth trajectory (or the chosen preset).
Outputs per sample under ``<run dir>/samples/<name>/``: ``video.mp4``, ``frames/*.png``,
``cameras.json`` (pixel intrinsics + OpenCV camera-to-world per frame, first frame = identity) and
``trajectory.png``; with a ground-truth clip also ``gt_vs_generated.mp4``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.progress import Progress

from vid3d.geometry import intrinsics_matrix, relative_to_first
from vid3d.sampling.pipeline import from_uint8, to_uint8
from vid3d.tasks.common import log, prepare_data, print_config_tree, run_dir, task_wrapper
from vid3d.tasks.loading import load_model
from vid3d.viz import plot_trajectory, side_by_side, write_frames, write_video


@dataclass
class SampleInput:
    name: str
    image: np.ndarray  # (H, W, 3) uint8
    K_px: np.ndarray  # (F, 3, 3)
    c2w: np.ndarray  # (F, 4, 4) OpenCV camera-to-world, c2w[0] = I
    gt_frames: np.ndarray | None = None  # (F, H, W, 3) uint8


def image_input(cfg: DictConfig) -> list[SampleInput]:
    """One user image, centre-cropped/resized to the model size, pinhole intrinsics from ``fov_deg``."""
    import imageio.v3 as iio

    from vid3d.data.transforms import center_crop_resize

    if cfg.get("trajectory") is None:
        raise ValueError("image=... needs a camera path: add trajectory=<preset> or trajectory=file")
    path = Path(cfg.image)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    img = iio.imread(path)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3]
    h0, w0 = img.shape[:2]
    f = 0.5 * w0 / math.tan(math.radians(cfg.fov_deg) / 2)
    K0 = intrinsics_matrix(f, f, w0 / 2, h0 / 2)
    frames, K = center_crop_resize(img[None], K0[None], cfg.data.height, cfg.data.width)
    traj = instantiate(cfg.trajectory)
    K_all = np.repeat(K, len(traj), axis=0)
    if traj.K_scale is not None:
        K_all[:, :2, :2] *= traj.K_scale[:, None, None]
    return [SampleInput(f"{path.stem}_{traj.name}", frames[0], K_all, traj.c2w)]


def dataset_inputs(cfg: DictConfig) -> list[SampleInput]:
    """The first frames of the test clips with their ground-truth (or a preset) trajectory."""
    prepare_data(cfg)
    dataset = instantiate(cfg.data.test_dataset)
    traj = instantiate(cfg.trajectory) if cfg.get("trajectory") is not None else None
    out = []
    for i in range(min(cfg.num_samples, len(dataset))):
        s = dataset[i]
        frames = to_uint8(s["frames"])
        K, c2w = s["K_px"].double().numpy(), relative_to_first(s["c2w"].double()).numpy()
        name = f"{s['clip_id']}_{'gt' if traj is None else traj.name}"
        if traj is not None:
            K = np.repeat(K[:1], len(traj), axis=0)
            c2w = traj.c2w
        out.append(SampleInput(name, frames[0], K, c2w, frames if traj is None else None))
    return out


def write_sample(out: Path, inp: SampleInput, frames: np.ndarray, fps: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_video(out / "video.mp4", frames, fps=fps)
    write_frames(out / "frames", frames)
    h, w = frames.shape[1:3]
    cameras = {
        "convention": "OpenCV camera axes (x right, y down, z forward); camera-to-world 4x4; "
        "intrinsics in pixels at the frame size; pixel (u, v) centre at (u + 0.5, v + 0.5); "
        "poses relative to the first frame",
        "height": h,
        "width": w,
        "frames": [
            {"index": i, "K_px": inp.K_px[i].tolist(), "c2w": inp.c2w[i].tolist()} for i in range(len(frames))
        ],
    }
    tmp = out / ".cameras.json.tmp"
    tmp.write_text(json.dumps(cameras, indent=1))
    tmp.replace(out / "cameras.json")
    plot_trajectory({"trajectory": inp.c2w}, path=out / "trajectory.png", title=inp.name)
    if inp.gt_frames is not None:
        write_video(out / "gt_vs_generated.mp4", side_by_side([inp.gt_frames, frames], gap=4), fps=fps)


@task_wrapper
def sample(cfg: DictConfig) -> dict:
    out = run_dir(cfg)
    print_config_tree(cfg, save_to=out / "config.yaml")
    model = load_model(cfg.ckpt)
    sampler = instantiate(cfg.sampler)
    inputs = image_input(cfg) if cfg.get("image") else dataset_inputs(cfg)
    written = []
    with Progress() as bar:
        task = bar.add_task("sampling", total=len(inputs) * sampler.num_steps)
        for k, inp in enumerate(inputs):
            gen = torch.Generator().manual_seed(cfg.seed * 100_003 + k)  # per-sample seed: regenerate alone
            video = sampler(
                model,
                from_uint8(inp.image)[None],
                torch.from_numpy(inp.K_px).float()[None],
                torch.from_numpy(inp.c2w).float()[None],
                generator=gen,
                progress=lambda i, n: bar.advance(task),
            )
            frames = to_uint8(video[0])
            write_sample(out / "samples" / inp.name, inp, frames, cfg.fps)
            written.append(str(out / "samples" / inp.name))
    log.info("wrote %d samples under %s", len(written), out / "samples")
    return {"samples": written, "run_dir": str(out)}
