"""The studio's engine: one model in one process, requests run one at a time, through sample.py's pieces.

A request becomes ``sample.py`` overrides (``vid3d.studio.command``), composed with Hydra into the config
it runs; the sample is then made the way ``vid3d.tasks.sample`` makes it (``load_inputs``, the trajectory
and sampler from the config, ``SingleMode``, the per-sample seed ``sample_seed``, ``write_sample``,
``reconstruct_sample``), under ``<out>/<time>_<NNN>_<path kind>/samples/<sample>/`` (sample.py's layout).
Beside it the studio samples the same seed along a static camera (``compare.mp4``: [ground truth,]
generated, static, side by side), draws the path (``path.png``) and, when asked, scores the video with
the camera benchmark's errors (``vid3d.evaluation.camera_errors``) on the poses of a benchmark pose
estimator with its ``conf/pose/`` settings: by default (``pose="auto"``) COLMAP (the benchmark's default,
``conf/pose/colmap.yaml``), or the optical-flow estimator (``conf/pose/flow.yaml``, ``eval.py pose=flow``)
for frames whose shorter side is below ``COLMAP_MIN_SIDE`` pixels, which COLMAP cannot register.

Cancelling: ``Studio.cancel`` (a ``threading.Event``) is checked at every sampler step; the run stops
with ``Cancelled`` and writes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vid3d.atomic import atomic_dir, atomic_write_json
from vid3d.errors import InputError

from .command import Request, reproduce_command, sample_overrides
from .paths import keyframes_to_c2w
from .uploads import keep_upload, read_image, read_poses

__all__ = ["POSE_CHOICES", "Cancelled", "ModelInfo", "Result", "Studio", "choose_pose", "describe_model"]

log = logging.getLogger("vid3d")

Report = Callable[[int, int, str], None]  # (done, total, what)
KEEP_RESULTS = 8
DISPLAY_SCALE = 4  # the page's comparison video, times the model size
POSE_CHOICES = ("auto", "colmap", "flow")
POSE_LABELS = {"colmap": "COLMAP", "flow": "Optical flow"}
# Frames with a shorter side below this (pixels) are scored with pose=flow under pose="auto": on the 16
# held-out clips' ground truth COLMAP (conf/pose/colmap.yaml) registers every frame of 0/16 clips at 32x48,
# 3/16 at 64x96 and 7/16 at 72x128, flow 15/16, 15/16 and 16/16 (experiments/cpu_camera_control/README.md,
# "Which size the pose estimator needs").
COLMAP_MIN_SIDE = 128


def choose_pose(pose: str, height: int, width: int) -> str:
    """The ``conf/pose`` option the score panel runs on (height, width) frames: ``pose`` itself, or for
    ``"auto"`` "flow" when min(height, width) < ``COLMAP_MIN_SIDE``, else "colmap" (the benchmark's
    default)."""
    if pose not in POSE_CHOICES:
        raise InputError(f"pose {pose!r}: choose from {list(POSE_CHOICES)}")
    if pose != "auto":
        return pose
    return "flow" if min(int(height), int(width)) < COLMAP_MIN_SIDE else "colmap"


class Cancelled(Exception):
    """The user pressed cancel during sampling."""


@dataclass
class ModelInfo:
    """The model a studio serves: a vid3d checkpoint (``kind="checkpoint"``, what sample.py reads) or an
    exported pipeline folder (``kind="export"``), and the frame size / count it was trained at."""

    path: str
    kind: str
    height: int
    width: int
    num_frames: int


def describe_model(path: str | Path) -> ModelInfo:
    """Kind and training size of a checkpoint / run dir / export folder, without building the model."""
    p = Path(path)
    if (p / "model_index.json").is_file():
        from vid3d.sampling.pipeline_folder import read_json

        spec = read_json(p / "vid3d_model.json")
        size = spec.get("image_size") or [128, 192]
        return ModelInfo(str(p), "export", int(size[0]), int(size[1]), int(spec.get("num_frames") or 8))
    from vid3d.models.checkpoint import read_checkpoint_info, resolve_checkpoint

    try:
        info = read_checkpoint_info(resolve_checkpoint(p))
    except (FileNotFoundError, ValueError) as e:
        raise InputError(f"model {p}: {str(e).splitlines()[0]}") from None
    size = info.get("image_size") or [128, 192]  # conf/data/_common.yaml's size when not recorded
    return ModelInfo(str(p), "checkpoint", int(size[0]), int(size[1]), int(info.get("num_frames") or 8))


@dataclass
class Result:
    """One finished generation (kept in memory for reconstruct / score; files under ``folder``)."""

    id: str
    folder: Path
    sample_dir: Path
    request: Request
    cfg: Any
    job: Any  # vid3d.sampling.io.SampleJob
    frames: np.ndarray  # (F, H, W, 3) uint8
    seconds: float
    command: str
    files: dict[str, Path] = dataclasses.field(default_factory=dict)


class Studio:
    """Loads the model once, composes each request's config, samples, reconstructs and scores.

    Args:
        model: checkpoint, training run dir or exported pipeline folder.
        data: the ``conf/data`` option whose test clips the page offers as inputs.
        out: folder of the results (one numbered sub-folder per request).
        pose: the score's pose estimator: "auto" (``choose_pose``: optical flow below ``COLMAP_MIN_SIDE``
            pixels, else COLMAP), "colmap" or "flow".
    """

    def __init__(
        self,
        model: str | Path,
        data: str = "synthetic_heldout600",
        out: str | Path = "outputs/studio",
        pose: str = "auto",
    ):
        choose_pose(pose, 1, 1)  # an unknown choice fails here, not at the first score
        self.pose = pose
        self.info = describe_model(model)
        self.data = data
        self.out = Path(out)
        self.cancel = threading.Event()
        self._model = None
        self._load_lock = threading.Lock()
        self._results: OrderedDict[str, Result] = OrderedDict()
        self._count = 0

    # ------------------------------------------------------------------ config and model
    def compose(self, overrides: list[str]):
        """``conf/sample.yaml`` with ``overrides`` (what ``python sample.py <overrides>`` would run)."""
        from hydra import compose, initialize_config_dir

        from vid3d.config import CONFIG_DIR

        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            return compose("sample", overrides=overrides)

    def model(self, cfg=None):
        """The model, loaded on first use (safetensors / weights-only checkpoints, schema-checked)."""
        with self._load_lock:
            if self._model is None:
                if self.info.kind == "export":
                    from vid3d.sampling.pipeline import CameraVideoPipeline

                    self._model = CameraVideoPipeline.from_pretrained(self.info.path).model
                else:
                    from vid3d.models.checkpoint import load_model
                    from vid3d.tasks.common import pretrained_choice

                    cfg = cfg if cfg is not None else self.compose([f"ckpt={self.info.path}"])
                    self._model = load_model(self.info.path, pretrained=pretrained_choice(cfg))
            return self._model

    def guidance_defaults(self) -> dict[str, float]:
        """The page's guidance: the checkpoint's own sampler defaults (its manifest's ``sampler``,
        ``vid3d.sampling.model_defaults``) over the Request's, for ``guidance_min`` / ``guidance_max``."""
        own = {}
        if self.info.kind != "export":
            from vid3d.sampling.model_defaults import model_sampler_defaults

            own = model_sampler_defaults(self.info.path)[0]
        base = Request(ckpt="", height=1, width=1, num_frames=1)
        return {k: float(own.get(k, getattr(base, k))) for k in ("guidance_min", "guidance_max")}

    def base_request(self, **fields) -> Request:
        """A request for this model; guidance not given is the model's (``guidance_defaults``)."""
        return Request(
            ckpt=self.info.path,
            height=self.info.height,
            width=self.info.width,
            num_frames=self.info.num_frames,
            **{**self.guidance_defaults(), **fields},
        )

    # ------------------------------------------------------------------ dataset clips
    def clip_cfg(self, index: int):
        return self.compose(
            [
                f"ckpt={self.info.path}",
                f"data={self.data}",
                f"num_samples={int(index) + 1}",
                f"data.height={self.info.height}",
                f"data.width={self.info.width}",
                f"data.num_frames={self.info.num_frames}",
            ]
        )

    def _dataset(self, cfg):
        from hydra.utils import instantiate

        from vid3d.tasks.common import prepare_data

        prepare_data(cfg)  # the embedded set is rendered on first use, then read from data_cache/
        return instantiate(cfg.data.test_dataset)

    def num_clips(self) -> int:
        return len(self._dataset(self.clip_cfg(0)))

    def clip(self, index: int):
        """The ``SampleJob`` sample.py makes of test clip ``index`` (first frame, K_px, GT c2w, GT frames)."""
        from vid3d.sampling.modes import SingleMode

        cfg = self.clip_cfg(index)
        dataset = self._dataset(cfg)
        if not 0 <= int(index) < len(dataset):
            raise InputError(
                f"clip {index}: the test set of data={self.data} has clips 0..{len(dataset) - 1}"
            )
        return SingleMode().jobs(None, dataset, None, int(index) + 1)[-1]

    # ------------------------------------------------------------------ camera path preview
    def preview_path(
        self, req: Request, image_K: np.ndarray | None = None, keyframes=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(c2w (F, 4, 4), K_px (F, 3, 3)) the request would sample along, without sampling. ``image_K``:
        the input's (3, 3) intrinsics (default: a pinhole of ``fov_deg`` at the model size);
        ``keyframes``: the table of ``path="keyframes"``."""
        from vid3d.geometry import intrinsics_matrix
        from vid3d.sampling.trajectories import Trajectory, make_trajectory

        F, H, W = req.num_frames, req.height, req.width
        if image_K is None:
            f = 0.5 * W / np.tan(np.radians(req.fov_deg) / 2)
            image_K = np.asarray(intrinsics_matrix(f, f, W / 2, H / 2), np.float64)
        if req.path == "clip":
            if req.clip_index is None:
                raise InputError("camera path 'clip': pick a dataset clip as the input first")
            job = self.clip(req.clip_index)
            return job.c2w, job.K_px
        if req.path == "preset":
            traj = make_trajectory(req.preset, F, amplitude=req.amplitude, speed=req.speed)
        elif req.path == "file":
            if not req.trajectory_file:
                raise InputError("camera path 'pose file': upload a RealEstate10K/CamI2V .txt, .json or .npy")
            traj = read_poses(req.trajectory_file, F)
        elif req.path == "keyframes":
            traj = Trajectory(keyframes_to_c2w(keyframes, F), name="keyframes")
        else:
            raise InputError(f"camera path: unknown kind {req.path!r}")
        return traj.c2w, traj.scaled_K(image_K, H, W)

    # ------------------------------------------------------------------ generation
    def _folder(self, name: str) -> Path:
        self._count += 1
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.out / f"{stamp}_{self._count:03d}_{name}"
        (folder / "inputs").mkdir(parents=True, exist_ok=True)
        return folder

    def _check(self, req: Request, keyframes) -> np.ndarray | None:
        """Every check of a request before anything is written: the command line can express it, the
        uploads read, the keyframe table is valid. Returns the keyframe poses (path "keyframes")."""
        probe = dataclasses.replace(req, trajectory_file="keyframes.json") if req.path == "keyframes" else req
        sample_overrides(probe)
        if req.image is not None:
            read_image(req.image, req.height, req.width, req.fov_deg)
        if req.path == "file":
            read_poses(req.trajectory_file, req.num_frames)
        if req.path == "keyframes":
            return keyframes_to_c2w(keyframes, req.num_frames)
        return None

    def _inputs(self, req: Request, keyframes, c2w: np.ndarray | None, folder: Path) -> Request:
        """Copy the checked uploads (and the keyframe path ``c2w`` as a pose file) into ``folder/inputs``;
        the request with those paths (what the command line names)."""
        inputs = folder / "inputs"
        if req.image is not None:
            req = dataclasses.replace(req, image=str(keep_upload(req.image, inputs, "image").resolve()))
        if req.path == "file":
            kept = keep_upload(req.trajectory_file, inputs, "poses")
            req = dataclasses.replace(req, trajectory_file=str(kept.resolve()))
        elif req.path == "keyframes":
            path = inputs / "keyframes.json"
            atomic_write_json(path, {"convention": "opencv", "c2w": c2w.tolist()}, indent=1)
            rows = keyframes.values.tolist() if hasattr(keyframes, "values") else list(keyframes)
            atomic_write_json(inputs / "keyframe_table.json", {"rows": rows}, indent=1)
            req = dataclasses.replace(req, trajectory_file=str(path.resolve()))
        return req

    def generate(
        self, req: Request, keyframes=None, report: Report | None = None, static: bool = True
    ) -> Result:
        """Sample ``req`` (and, with ``static``, the same seed along a static camera); write the sample
        folder; return the Result. InputError for a bad request, Cancelled when cancelled."""
        from hydra.utils import instantiate

        from vid3d.sampling.io import load_inputs, write_sample
        from vid3d.sampling.model_defaults import apply_model_sampler_defaults
        from vid3d.sampling.modes import SingleMode
        from vid3d.sampling.trajectories import make_trajectory
        from vid3d.tasks.sample import sample_seed
        from vid3d.viz import plot_trajectory, side_by_side, write_video

        self.cancel.clear()
        t0 = time.monotonic()
        key_c2w = self._check(req, keyframes)  # a bad request fails before anything is written
        folder = self._folder(req.path)
        req = self._inputs(req, keyframes, key_c2w, folder)
        command = reproduce_command(req)
        overrides = sample_overrides(req)
        cfg = self.compose(overrides)
        apply_model_sampler_defaults(cfg, overrides)  # as sample.py does with this command line
        images = load_inputs(cfg.get("image"), None, None, cfg.data.height, cfg.data.width, cfg.fov_deg)
        trajectory = instantiate(cfg.trajectory) if cfg.get("trajectory") is not None else None
        dataset = None if images else self._dataset(cfg)
        jobs = SingleMode().jobs(images, dataset, trajectory, cfg.num_samples)
        k = len(jobs) - 1  # sample.py's last sample: the chosen clip, or the one image
        job = jobs[k]
        sampler = instantiate(cfg.sampler)
        model = self.model(cfg)
        runs = 2 if static else 1
        total = runs * sampler.num_steps
        done = 0

        def hook(what: str):
            def step(i: int, n: int) -> None:
                nonlocal done
                if self.cancel.is_set():
                    raise Cancelled(f"cancelled at step {done}/{total}")
                done += 1
                if report is not None:
                    report(done, total, what)

            return step

        def run(j, name):
            import torch

            gen = torch.Generator().manual_seed(sample_seed(cfg.seed, k))
            return SingleMode().run(model, sampler, j, generator=gen, progress=hook(name))

        frames = run(job, "camera path")
        still = None
        if static:
            c2w0 = make_trajectory("static", len(job.c2w)).c2w
            still = run(
                dataclasses.replace(job, c2w=c2w0, name=f"{job.name}_static", gt_frames=None), "static camera"
            )
        if self.cancel.is_set():
            raise Cancelled(f"cancelled at step {done}/{total}")
        final = folder / "samples" / job.name
        with atomic_dir(final) as d:  # as sample.py: the sample folder appears complete, or not at all
            write_sample(d, job, frames, cfg.fps)
        files = {"video": final / "video.mp4", "trajectory": final / "trajectory.png"}
        # the page's comparison, 4x larger with sharp pixels so the labels read: [ground truth,] generated,
        # [the same seed with a static camera]
        shown = [(frames, "generated")]
        if job.gt_frames is not None:
            shown.insert(0, (job.gt_frames, "ground truth"))
        if still is not None:
            shown.append((still, "static camera"))
        if len(shown) > 1:
            big = [v.repeat(DISPLAY_SCALE, axis=1).repeat(DISPLAY_SCALE, axis=2) for v, _ in shown]
            both = side_by_side(big, gap=6, labels=[t for _, t in shown], frame_numbers=True)
            files["compare"] = write_video(folder / "compare.mp4", both, fps=cfg.fps)
        plot_trajectory({"requested": job.c2w}, path=folder / "path.png", title=job.name)
        (folder / "command.txt").write_text(command + "\n")
        result = Result(
            folder.name, folder, final, req, cfg, job, frames, time.monotonic() - t0, command, files
        )
        self._keep(result)
        return result

    def _keep(self, result: Result) -> None:
        self._results[result.id] = result
        while len(self._results) > KEEP_RESULTS:
            self._results.popitem(last=False)

    def result(self, rid: str | None) -> Result:
        if not rid or rid not in self._results:
            raise InputError("generate a video first (reconstruct and score work on the last result)")
        return self._results[rid]

    # ------------------------------------------------------------------ reconstruction
    def reconstruct(self, rid: str, steps: int, num_gaussians: int) -> Result:
        """3D Gaussians fitted to the result's frames at its cameras (``reconstruct_sample``):
        ``gaussians.ply`` and ``turntable.mp4`` in its sample folder; the command line gains
        ``reconstruct=true`` and the settings."""
        from omegaconf import OmegaConf

        from vid3d.tasks.sample import reconstruct_sample

        res = self.result(rid)
        if not 1 <= int(steps) <= 5000 or not 16 <= int(num_gaussians) <= 200_000:
            raise InputError(
                f"reconstruction: steps must be in 1..5000 and Gaussians in 16..200000, got "
                f"{steps} and {num_gaussians}"
            )
        settings = {"steps": int(steps), "num_gaussians": int(num_gaussians)}
        opts = OmegaConf.merge(res.cfg.reconstruction, settings)
        reconstruct_sample(res.sample_dir, res.job, res.frames, opts, int(res.cfg.fps))
        res.request = dataclasses.replace(res.request, reconstruct=settings)
        res.command = reproduce_command(res.request)
        (res.folder / "command.txt").write_text(res.command + "\n")
        res.files["ply"] = res.sample_dir / "gaussians.ply"
        res.files["turntable"] = res.sample_dir / "turntable.mp4"
        return res

    # ------------------------------------------------------------------ scoring
    def score_pose(self, rid: str) -> str:
        """The ``conf/pose`` option ``score`` runs on the result's video (``choose_pose``)."""
        h, w = self.result(rid).frames.shape[1:3]
        return choose_pose(self.pose, h, w)

    def score(self, rid: str) -> tuple[str, Path | None]:
        """The camera benchmark's errors of the result's video against its requested path, with the pose
        estimator ``score_pose`` picks (its ``conf/pose/<name>.yaml``): (one Markdown line, plot of the
        estimated over the requested path or None). When the estimator registers too few frames the line
        says so and why (the flow estimator names each unregistered frame and its reason)."""
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        from vid3d.config import CONFIG_DIR
        from vid3d.evaluation.camera_errors import camera_errors, prepare_trajectory
        from vid3d.viz import plot_trajectory

        res = self.result(rid)
        h, w = res.frames.shape[1:3]
        name = self.score_pose(rid)
        label = POSE_LABELS[name]
        try:
            estimator = instantiate(OmegaConf.load(CONFIG_DIR / "pose" / f"{name}.yaml"))
        except ImportError as e:
            return f"No camera errors: the pose estimator {label} cannot run here ({e}).", None
        est = estimator.estimate(res.frames, np.asarray(res.job.K_px[0], np.float64))
        as_eval = "eval.py" if name == "colmap" else f"eval.py pose={name}"
        if not est.success:
            hint = ""
            if name == "colmap" and min(h, w) < COLMAP_MIN_SIDE:
                hint = (
                    f" COLMAP needs larger frames (about {COLMAP_MIN_SIDE}x192 or more) to find enough "
                    "features (the studio's --pose auto or flow scores small videos with optical flow);"
                )
            return (
                f"No camera errors: {label} registered {est.n_registered}/{len(res.frames)} frames of this "
                f"{h}x{w} video ({est.reason}).{hint} The benchmark ({as_eval}) counts such a video as a "
                "failure."
            ), None
        mask = est.registered_mask()
        errs = camera_errors(est.c2w[mask], res.job.c2w[mask])
        line = (
            f"{label} registered {int(mask.sum())}/{len(mask)} frames: RotErr {errs['rot_err_deg']:.2f} deg, "
            f"TransErr {errs['trans_err']:.3f}, CamMC {errs['cammc']:.3f} (sums over frames, each path "
            f"relative to its first frame and scale-normalised, as {as_eval})"
        )
        if est.reason:  # an accepted estimate with a note (flow: a zero-baseline clip, rotations only)
            line += f"; note: {est.reason}"
        plot = res.folder / "estimated_vs_requested.png"
        plot_trajectory(
            {
                "requested": prepare_trajectory(res.job.c2w[mask])[0],
                f"estimated ({label})": prepare_trajectory(est.c2w[mask])[0],
            },
            path=plot,
            title="scale-normalised",
        )
        record = {**json.loads(json.dumps(errs)), "pose": name, "registered": int(mask.sum())}
        atomic_write_json(res.folder / "camera_errors.json", record, indent=1)
        return line, plot
