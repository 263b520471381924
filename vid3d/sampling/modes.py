"""Sampling modes (``mode=single|interpolate|explore``): what is generated from which inputs.

A mode turns inputs into :class:`~vid3d.sampling.io.SampleJob` s (``jobs``) and generates the frames
of one job (``run``). Inputs are either user images (groups of 1 or 2 :class:`InputImage`, at the model
size with pinhole intrinsics) with a ``Trajectory``, or a test dataset (items as in the data contract:
frames (F, 3, H, W) in [-1, 1], K_px (F, 3, 3), c2w (F, 4, 4), clip_id).

- :class:`SingleMode`: one image -> a video along a trajectory (a preset/file, or a clip's GT path).
- :class:`InterpolateMode`: first and last frames with their poses -> the frames between. The model
  conditions on the first frame as usual; the last frame is pinned by replacement during sampling
  (training-free, see :func:`vid3d.sampling.video_sampler.replacement_denoiser`).
- :class:`ExploreMode`: several trajectory segments chained; each segment is conditioned on the last
  generated frame of the previous one; poses composed into one world frame (the first camera's) with
  :func:`~vid3d.sampling.trajectories.compose_segments`.

Poses are OpenCV camera-to-world, first frame = identity; intrinsics in pixels at the frame size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from vid3d.data.clips import BadClip
from vid3d.errors import InputError
from vid3d.geometry import relative_to_first

from .io import InputImage, SampleJob
from .trajectories import Trajectory, compose_segments, make_trajectory, resample_c2w
from .video_sampler import VideoSampler, from_uint8, to_uint8

__all__ = ["ExploreMode", "InterpolateMode", "SamplingMode", "SingleMode", "chain_intrinsics"]

Progress = Callable[[int, int], None] | None


def _clip_items(dataset, num_samples: int) -> list[dict]:
    if dataset is None:
        raise ValueError("no inputs: pass image=..., images=[...] (or a .txt list), or use a data option")
    n = min(int(num_samples), len(dataset))
    if n == 0:
        raise ValueError("the test dataset is empty: nothing to sample")
    exact = getattr(dataset, "exact_item", None)
    if exact is None:
        return [dataset[i] for i in range(n)]
    # the first n good clips, each its own: a broken clip is skipped (warned and counted by the dataset),
    # never replaced by another clip sampled twice under two names
    items = []
    for i in range(len(dataset)):
        if len(items) == n:
            break
        try:
            items.append(exact(i))
        except BadClip:
            continue
    if not items:
        raise ValueError(f"every test clip is broken ({dict(dataset.skipped)}): nothing to sample")
    return items


def _clip_cameras(item: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frames = to_uint8(item["frames"])
    K = item["K_px"].double().numpy()
    c2w = relative_to_first(item["c2w"].double()).numpy()
    return frames, K, c2w


def _single_images(images: Sequence[Sequence[InputImage]], mode: str) -> None:
    for g in images:
        if len(g) != 1:
            raise ValueError(f"mode={mode} takes one image per input; a last frame is for mode=interpolate")


def _need_trajectory(trajectory: Trajectory | None, mode: str) -> Trajectory:
    if trajectory is None:
        raise InputError(
            f"mode={mode} with user images needs a camera path: add trajectory=<preset> or trajectory=file"
        )
    return trajectory


class SamplingMode:
    """Base class: ``jobs(...)`` builds the samples, ``run(...)`` generates one."""

    name = "mode"

    def jobs(
        self,
        images: Sequence[Sequence[InputImage]] | None,
        dataset=None,
        trajectory: Trajectory | None = None,
        num_samples: int = 4,
    ) -> list[SampleJob]:
        raise NotImplementedError

    def num_steps(self, job: SampleJob, sampler: VideoSampler) -> int:
        """Sampler steps of one job (for the progress bar)."""
        return sampler.num_steps

    def run(
        self,
        model: nn.Module,
        sampler: VideoSampler,
        job: SampleJob,
        generator: torch.Generator | None = None,
        progress: Progress = None,
    ) -> np.ndarray:
        """Frames (N, H, W, 3) uint8, one per camera of ``job``."""
        video = sampler(
            model,
            from_uint8(job.image)[None],
            torch.from_numpy(np.asarray(job.K_px)).float()[None],
            torch.from_numpy(np.asarray(job.c2w)).float()[None],
            generator=generator,
            progress=progress,
            known_frames=self._known(job),
        )
        return to_uint8(video[0])

    def run_batch(
        self,
        model: nn.Module,
        sampler: VideoSampler,
        jobs: Sequence[SampleJob],
        generators: Sequence[torch.Generator],
    ) -> list[np.ndarray]:
        """``run`` of several jobs in one sampler call (the same frame count and image size; generator i
        draws job i's randomness alone, so each video is the one ``run(job_i, generator_i)`` gives, to
        float rounding of the batched forward). Frames (N, H, W, 3) uint8 per job."""
        known = [self._known(job) for job in jobs]
        if any(k is not None for k in known) and any(
            k is None or sorted(k) != sorted(known[0]) for k in known
        ):
            raise ValueError("run_batch: the jobs pin different frames")
        video = sampler(
            model,
            torch.cat([from_uint8(job.image)[None] for job in jobs]),
            torch.stack([torch.from_numpy(np.asarray(job.K_px)).float() for job in jobs]),
            torch.stack([torch.from_numpy(np.asarray(job.c2w)).float() for job in jobs]),
            generator=list(generators),
            known_frames=(
                None if known[0] is None else {i: torch.cat([k[i] for k in known]) for i in known[0]}
            ),
        )
        return [to_uint8(v) for v in video]

    def _known(self, job: SampleJob) -> dict[int, torch.Tensor] | None:
        return None


class SingleMode(SamplingMode):
    """One image -> a video along a trajectory.

    User images need ``trajectory``; test clips use their ground-truth path (``gt_frames`` kept for a
    side-by-side video) unless a trajectory is given.
    """

    name = "single"

    def jobs(self, images, dataset=None, trajectory=None, num_samples=4):
        if images:
            _single_images(images, self.name)
            traj = _need_trajectory(trajectory, self.name)
            jobs = []
            for g in images:
                K_t = traj.scaled_K(g[0].K_px, *g[0].image.shape[:2])
                jobs.append(SampleJob(f"{g[0].name}_{traj.name}", g[0].image, K_t, traj.c2w))
            return jobs
        out = []
        for item in _clip_items(dataset, num_samples):
            frames, K, c2w = _clip_cameras(item)
            if trajectory is None:
                out.append(SampleJob(f"{item['clip_id']}_gt", frames[0], K, c2w, gt_frames=frames))
            else:
                K_t = trajectory.scaled_K(K[0], *frames.shape[1:3])
                out.append(SampleJob(f"{item['clip_id']}_{trajectory.name}", frames[0], K_t, trajectory.c2w))
        return out


class InterpolateMode(SamplingMode):
    """First and last frames with their poses -> the frames between.

    Inputs: pairs of user images (``image=a.png image_end=b.png``, or ``first last`` lines in an image
    list) with a trajectory whose first and last poses are the two images' cameras; or test clips (their
    first and last frames and poses). Frame 0 is generated from the first image by the model's usual
    first-frame conditioning; the last frame is imposed by *replacement*: at each sampler step its latent
    is replaced by the known last-frame latent noised to the current sigma (training-free; the model was
    never trained with a last-frame condition), so the output's last frame reproduces the given image up
    to the autoencoder's round trip.

    Args:
        poses: "path": the in-between cameras follow the trajectory (a clip's GT path); "linear": only the
            two end poses are used, the in-between ones are interpolated (slerp rotation, linear centre).
    """

    name = "interpolate"

    def __init__(self, poses: str = "path") -> None:
        if poses not in ("path", "linear"):
            raise ValueError(f"InterpolateMode: poses must be 'path' or 'linear', got {poses!r}")
        self.poses = poses

    def _path(self, c2w: np.ndarray) -> np.ndarray:
        if self.poses == "linear":
            return np.asarray(relative_to_first(resample_c2w(c2w[[0, -1]], len(c2w))))
        return c2w

    def jobs(self, images, dataset=None, trajectory=None, num_samples=4):
        info = {"mode": self.name, "known_frames": "first (conditioning) and last (replacement)"}
        if images:
            traj = _need_trajectory(trajectory, self.name)
            if len(traj) < 3:
                raise ValueError(f"mode=interpolate needs a trajectory of >= 3 frames, got {len(traj)}")
            out = []
            for g in images:
                if len(g) != 2:
                    raise InputError(
                        "mode=interpolate needs a first and a last image per input (image=... image_end=..., "
                        f"or 'first last' lines); {g[0].name} has {len(g)} image(s)"
                    )
                name = f"{g[0].name}_to_{g[1].name}_{traj.name}"
                c2w = self._path(traj.c2w)
                K_t = traj.scaled_K(g[0].K_px, *g[0].image.shape[:2])
                out.append(SampleJob(name, g[0].image, K_t, c2w, g[1].image, info=info))
            return out
        out = []
        for item in _clip_items(dataset, num_samples):
            frames, K, c2w = _clip_cameras(item)
            if len(frames) < 3:
                raise ValueError(
                    f"clip {item['clip_id']}: interpolation needs >= 3 frames, got {len(frames)}"
                )
            out.append(
                SampleJob(
                    f"{item['clip_id']}_interp",
                    frames[0],
                    K,
                    self._path(c2w),
                    frames[-1],
                    gt_frames=frames,
                    info=info,
                )
            )
        return out

    def _known(self, job):
        if job.image_end is None:
            raise ValueError(f"sample {job.name}: mode=interpolate needs a last frame")
        return {len(job.c2w) - 1: from_uint8(job.image_end)[None]}


def chain_intrinsics(K_px: np.ndarray, segments: Sequence[Trajectory]) -> list[np.ndarray]:
    """Per-segment intrinsics (F_i, 3, 3): segment 0 starts from ``K_px`` (3, 3); each later segment
    starts from the previous segment's last K (its conditioning frame's camera) and applies its own
    focal scale (``Trajectory.K_scale``)."""
    out, K0 = [], np.asarray(K_px, dtype=np.float64)
    for seg in segments:
        K = seg.scaled_K(K0)
        out.append(K)
        K0 = K[-1]
    return out


class ExploreMode(SamplingMode):
    """Single-view exploration: trajectory segments chained into one video.

    Segment 0 starts from the input image; segment k > 0 is conditioned on the last generated frame of
    segment k - 1, along its own trajectory (relative to that frame). Poses are composed into the first
    camera's world frame (``compose_segments``): the join frames coincide, so the video holds
    ``sum(F_i) - (n - 1)`` frames (the regenerated first frame of each later segment is dropped).

    Args:
        segments: preset names (``[pan_left, move_forward]``) or mappings of ``make_trajectory``
            arguments (``{name: orbit_left, amplitude: large}``).
        num_frames: frames per segment (default for every segment).
        amplitude, speed: defaults for the segments.
    """

    name = "explore"

    def __init__(
        self,
        segments: Sequence[str | Mapping[str, Any]] = ("pan_left", "move_forward"),
        num_frames: int = 14,
        amplitude: str | float = "medium",
        speed: float = 1.0,
    ) -> None:
        if isinstance(segments, str) or not segments:
            raise ValueError(f"mode=explore needs a list of trajectory segments, got {segments!r}")
        self.trajectories = []
        for k, seg in enumerate(segments):
            kw: dict[str, Any] = {"num_frames": int(num_frames), "amplitude": amplitude, "speed": speed}
            if isinstance(seg, str):
                kw["name"] = seg
            elif isinstance(seg, Mapping):
                kw.update({str(a): b for a, b in seg.items()})
            else:
                raise ValueError(f"explore segment {k}: expected a preset name or a mapping, got {seg!r}")
            if int(kw["num_frames"]) < 2:
                raise ValueError(f"explore segment {k}: needs >= 2 frames, got {kw['num_frames']}")
            self.trajectories.append(make_trajectory(**kw))

    def _job(self, name: str, image: np.ndarray, K_px: np.ndarray) -> SampleJob:
        Ks = chain_intrinsics(K_px, self.trajectories)
        c2w = compose_segments(self.trajectories)
        K_all = np.concatenate([K if k == 0 else K[1:] for k, K in enumerate(Ks)])
        bounds, start = [], 0
        for t in self.trajectories:
            bounds.append({"name": t.name, "first_frame": start, "last_frame": start + len(t) - 1})
            start += len(t) - 1
        info = {"mode": self.name, "segments": bounds}
        segs = [(K, t.c2w) for K, t in zip(Ks, self.trajectories, strict=True)]
        return SampleJob(f"{name}_explore", image, K_all, c2w, segments=segs, info=info)

    def jobs(self, images, dataset=None, trajectory=None, num_samples=4):
        if images:
            _single_images(images, self.name)
            return [self._job(g[0].name, g[0].image, g[0].K_px) for g in images]
        out = []
        for item in _clip_items(dataset, num_samples):
            frames, K, _ = _clip_cameras(item)
            out.append(self._job(str(item["clip_id"]), frames[0], K[0]))
        return out

    def num_steps(self, job, sampler):
        return len(job.segments or ()) * sampler.num_steps

    def run(self, model, sampler, job, generator=None, progress=None):
        if not job.segments:
            raise ValueError(f"sample {job.name}: mode=explore needs trajectory segments")
        cond = from_uint8(job.image)[None]
        parts = []
        for k, (K, c2w) in enumerate(job.segments):
            video = sampler(
                model,
                cond,
                torch.from_numpy(np.asarray(K)).float()[None],
                torch.from_numpy(np.asarray(c2w)).float()[None],
                generator=generator,
                progress=progress,
            )
            parts.append(video[0] if k == 0 else video[0, 1:])
            cond = video[:, -1]
        return to_uint8(torch.cat(parts, dim=0))
