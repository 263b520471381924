"""Clip datasets: sample F frames with a stride from a camera-annotated video, crop/resize, relative poses.

Sample dict (docs/design.md)::

    frames        float32 (F, 3, H, W) in [-1, 1]; with ``frames_dtype="uint8"``: uint8 (F, 3, H, W), 0..255
                  (a channels-last view of the resized frames; ``vid3d.data.frames.as_unit_range`` maps
                  it to [-1, 1], which the training step does on the device)
    K_px          float32 (F, 3, 3)   pixel intrinsics at (H, W) after centre crop + resize
    c2w           float32 (F, 4, 4)   OpenCV camera-to-world relative to the first frame (c2w[0] = I)
    clip_id       str
    frame_indices int64 (F,)          indices into the clip's camera list
    skipped       int64 (R,)          bad clips skipped while producing THIS sample, per SKIP_REASONS

Short-clip rule: a clip with N frames and desired stride s needs (F - 1) * s + 1 <= N frames. If it does not
fit, s shrinks to the largest stride that fits, (N - 1) // (F - 1) (only when ``max_interval_shrink``; else
the clip is skipped as ``too_short``). If even s = 1 does not fit (N < F) the clip is skipped and counted as
``too_short``. The start frame is uniform over all positions where the strided window fits.

Bad clips (unparsable camera file, NaN/inf, non-rotation, bad intrinsics, missing/unreadable frames, empty
folder, frame/camera count mismatch, inconsistent image sizes, too short) are skipped when ``skip_bad``:
another clip is drawn, a warning naming the file is logged once per process, the reason is counted in
``self.skipped`` (per process) and in the sample's ``skipped`` vector. Summing ``skipped`` over all batches
therefore gives exact totals across workers and DDP ranks (see datamodule.SkippedClipsLogger). Known-bad
clips are cached per process so they are not re-read, but every skip occurrence is still counted.

Determinism: everything random for dataset index i comes from numpy Generators seeded with
(seed, epoch, i, attempt); the epoch (and the interval's global step) come from shared-memory
:class:`~vid3d.data.interval.SharedProgress` set by ``IntervalStepCallback`` (or ``set_epoch``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vid3d.geometry import K_norm_to_px, relative_to_first, w2c_to_c2w

from .files import UnsafePath, confined
from .frames import frames_to_unit_range, hwc_to_chw_uint8
from .holdout import check_holdout, select
from .interval import FixedInterval, IntervalSchedule, SharedProgress
from .transforms import center_crop_resize

log = logging.getLogger(__name__)

SKIP_REASONS: tuple[str, ...] = (
    "camera_file",  # truncated / non-numeric / malformed camera file
    "non_finite",  # NaN or inf in intrinsics or poses
    "not_rotation",  # rotation block not orthonormal with det +1
    "bad_intrinsics",  # non-positive focal length
    "missing_frames",  # missing frame files, missing/empty folder or video
    "unreadable_frames",  # a frame file or video that cannot be decoded
    "count_mismatch",  # number of frames differs from number of cameras
    "image_size",  # frames of a clip do not share one size (or are empty)
    "too_short",  # fewer frames than the requested clip length
    "other",  # any other error while loading
    "outside_root",  # a path from an index / transforms file that leaves the dataset root
)
_REASON_INDEX = {r: k for k, r in enumerate(SKIP_REASONS)}


class BadClip(Exception):
    """A clip that cannot be used. ``reason`` is one of SKIP_REASONS; str(e) names the file."""

    def __init__(self, reason: str, message: str, cacheable: bool = True) -> None:
        if reason not in _REASON_INDEX:
            raise ValueError(f"unknown skip reason {reason!r}")
        super().__init__(message)
        self.reason, self.cacheable = reason, cacheable


@dataclass
class OpenedClip:
    """One clip's cameras plus a frame reader, as produced by a dataset's ``open_clip``."""

    clip_id: str
    K_norm: np.ndarray  # (N, 3, 3) float64, normalised intrinsics
    w2c: np.ndarray  # (N, 4, 4) float64, OpenCV world-to-camera
    read: Callable[[np.ndarray], np.ndarray]  # indices (n,) -> uint8 (n, H, W, 3) RGB
    source: str  # file name used in messages

    @property
    def num_frames(self) -> int:
        return int(self.w2c.shape[0])


def validate_cameras(K_norm: np.ndarray, w2c: np.ndarray, source: str, rot_tol: float = 1e-3) -> None:
    """Raise BadClip unless intrinsics/poses are finite, fx, fy > 0 and every R is a rotation."""
    K_norm, w2c = np.asarray(K_norm), np.asarray(w2c)
    if (
        K_norm.ndim != 3
        or K_norm.shape[1:] != (3, 3)
        or w2c.ndim != 3
        or w2c.shape[1:] not in ((3, 4), (4, 4))
    ):
        raise BadClip("camera_file", f"{source}: camera arrays have shapes {K_norm.shape}, {w2c.shape}")
    if len(K_norm) != len(w2c):
        raise BadClip("camera_file", f"{source}: {len(K_norm)} intrinsics but {len(w2c)} poses")
    bad = ~(np.isfinite(K_norm).all(axis=(1, 2)) & np.isfinite(w2c).all(axis=(1, 2)))
    if bad.any():
        raise BadClip("non_finite", f"{source}: camera {int(np.argmax(bad))} has NaN/inf values")
    if (K_norm[:, 0, 0] <= 0).any() or (K_norm[:, 1, 1] <= 0).any():
        raise BadClip("bad_intrinsics", f"{source}: non-positive focal length")
    R = w2c[:, :3, :3]
    err = np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(R)
    bad = (err > rot_tol) | (det <= 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise BadClip(
            "not_rotation",
            f"{source}: camera {k} rotation is not orthonormal (|RR^T-I|={err[k]:.3g}, det={det[k]:.3g})",
        )


def choose_stride_window(
    num_frames: int,
    clip_len: int,
    stride: int,
    rng: np.random.Generator,
    shrink: bool = True,
    source: str = "",
    start: str = "random",
) -> np.ndarray:
    """Frame indices start + s * arange(clip_len) following the short-clip rule of this module.

    ``start``: "random" (uniform over the positions where the window fits) or "first" (frame 0)."""
    if start not in ("random", "first"):
        raise ValueError(f"start must be 'random' or 'first', got {start!r}")
    if num_frames < clip_len:
        raise BadClip("too_short", f"{source}: {num_frames} frames < clip length {clip_len}")
    if clip_len > 1 and (clip_len - 1) * stride + 1 > num_frames:
        if not shrink:
            raise BadClip(
                "too_short", f"{source}: {num_frames} frames too few for stride {stride}", cacheable=False
            )
        stride = (num_frames - 1) // (clip_len - 1)
    span = (clip_len - 1) * stride + 1
    first = 0 if start == "first" else int(rng.integers(0, num_frames - span + 1))
    return first + stride * np.arange(clip_len, dtype=np.int64)


class ClipSamplingDataset(Dataset):
    """Base class: subclasses implement ``__len__``-backing ``num_clips`` and ``open_clip(i)``.

    Args:
        num_frames: clip length F.  height, width: output size (centre crop to aspect, then resize).
        interval: stride schedule (default FixedInterval(1)).  max_interval_shrink: see short-clip rule.
        seed: base seed.  skip_bad: skip and count bad clips (else raise).  max_tries: attempts per item.
        window_start: "random" (training) or "first" (evaluation: every clip starts at its frame 0).
        holdout: ``{fraction, seed, keep}``: keep only the clips of one side of a validation hold-out of
            this split (vid3d.data.holdout; ``keep="rest"`` for training, ``"held_out"`` for validation).
        clip_list: a clip-id list file or preset name (vid3d.data.test_lists; ``data.test_list``): keep only
            the listed clips of this split (listed clips the split lacks are counted in one warning).
        check_frames: "all" (default): the first time a process uses a clip, every frame of it is read
            and checked (readable, decodable, one size, at least ``min_frame_size``), so whether a clip is
            used never depends on which frames were drawn, nor on the process, the loader workers or a
            resume: training is a function of (seed, step). Costs one full read of each clip per process.
            "sampled": only the drawn frames are checked (cheaper; a partly broken clip is then used or
            skipped depending on the draw).
        min_frame_size: frames smaller than this on either side are refused (``image_size``), not upscaled.
        frames_dtype: "float32" (default): ``frames`` in [-1, 1]; "uint8": ``frames`` as decoded, 0..255,
            with no float copy made on the CPU (the training configs set it; ``CameraDiffusionModule``
            converts on the device, ``vid3d.data.frames.as_unit_range`` anywhere else).
    """

    def __init__(
        self,
        num_frames: int = 8,
        height: int = 256,
        width: int = 256,
        interval: IntervalSchedule | None = None,
        max_interval_shrink: bool = True,
        seed: int = 0,
        skip_bad: bool = True,
        max_tries: int = 50,
        window_start: str = "random",
        holdout: Mapping[str, Any] | None = None,
        check_frames: str = "all",
        min_frame_size: int = 8,
        frames_dtype: str = "float32",
        clip_list: str | None = None,
    ) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames, self.height, self.width = int(num_frames), int(height), int(width)
        self.interval = interval if interval is not None else FixedInterval(1)
        self.max_interval_shrink, self.seed = bool(max_interval_shrink), int(seed)
        self.skip_bad, self.max_tries = bool(skip_bad), int(max_tries)
        if window_start not in ("random", "first"):
            raise ValueError(f"window_start must be 'random' or 'first', got {window_start!r}")
        self.window_start = window_start
        if check_frames not in ("all", "sampled"):
            raise ValueError(f"check_frames must be 'all' or 'sampled', got {check_frames!r}")
        self.check_frames, self.min_frame_size = check_frames, int(min_frame_size)
        if frames_dtype not in ("float32", "uint8"):
            raise ValueError(f"frames_dtype must be 'float32' or 'uint8', got {frames_dtype!r}")
        self.frames_dtype = frames_dtype
        self._checked: set[int] = set()  # clips whose every frame passed (this process)
        self.holdout = check_holdout(holdout)
        self.clip_list = None
        if clip_list is not None and str(clip_list) != "":
            from .test_lists import resolve_clip_list

            self.clip_list = resolve_clip_list(clip_list)
        self.progress = SharedProgress()
        self.skipped: Counter[str] = Counter()
        self._bad: dict[int, BadClip] = {}

    # -- subclass interface -------------------------------------------------------------------
    def num_clips(self) -> int:
        raise NotImplementedError

    def open_clip(self, i: int) -> OpenedClip:
        """Load clip i's cameras (validated by the base) and return a frame reader; raise BadClip."""
        raise NotImplementedError

    def describe_clip(self, i: int) -> str:
        """File name of clip i for messages (subclasses override)."""
        return f"{type(self).__name__} clip {i}"

    def clip_name(self, i: int) -> str:
        """Clip i's id without opening it (what a sample's ``clip_id`` would be; subclasses override)."""
        return self.describe_clip(i)

    def choose_indices(self, i: int, clip: OpenedClip, rng: np.random.Generator) -> np.ndarray:
        stride = self.interval.sample(rng)
        return choose_stride_window(
            clip.num_frames,
            self.num_frames,
            stride,
            rng,
            self.max_interval_shrink,
            clip.source,
            self.window_start,
        )

    # -- Dataset --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.num_clips()

    def set_epoch(self, epoch: int) -> None:
        self.progress.set(epoch=epoch)

    @property
    def epoch(self) -> int:
        return self.progress.epoch

    def known_bad(self) -> dict[int, str]:
        """{clip index: skip reason} of the bad clips this process has met (and cached) so far."""
        return {i: e.reason for i, e in self._bad.items()}

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = self.num_clips()
        if n == 0:
            raise IndexError(f"{type(self).__name__} has no clips")
        counts = torch.zeros(len(SKIP_REASONS), dtype=torch.int64)
        i = int(index) % n
        last: BadClip | None = None
        for attempt in range(self.max_tries):
            rng = np.random.default_rng([self.seed, self.epoch, int(index), attempt])
            try:
                err = self._bad.get(i)
                if err is not None:
                    raise err
                sample = self._make_sample(i, rng)
                sample["skipped"] = counts
                return sample
            except BadClip as e:
                if not self.skip_bad:
                    raise
                last = e
                self._record(i, e, counts)
            i = int(np.random.default_rng([self.seed, self.epoch, int(index), attempt, 1]).integers(n))
        raise RuntimeError(
            f"{type(self).__name__}: {self.max_tries} bad clips in a row for index {index}; last: {last}"
        )

    def exact_item(self, index: int) -> dict[str, Any]:
        """The sample of clip ``index`` itself, never another clip: what ``self[index]`` returns when that
        clip is good (same draw), else BadClip (counted in ``self.skipped``, whatever ``skip_bad``).
        Evaluation uses it: a broken test clip is reported, not replaced by a clip evaluated twice."""
        n = self.num_clips()
        if not 0 <= int(index) < n:
            raise IndexError(f"{type(self).__name__}: clip {index} of {n}")
        i = int(index)
        try:
            err = self._bad.get(i)
            if err is not None:
                raise err
            sample = self._make_sample(i, np.random.default_rng([self.seed, self.epoch, i, 0]))
        except BadClip as e:
            self._record(i, e, torch.zeros(len(SKIP_REASONS), dtype=torch.int64))
            raise
        sample["skipped"] = torch.zeros(len(SKIP_REASONS), dtype=torch.int64)
        return sample

    def _record(self, i: int, e: BadClip, counts: torch.Tensor) -> None:
        self.skipped[e.reason] += 1
        counts[_REASON_INDEX[e.reason]] += 1
        if i not in self._bad:
            log.warning("skipping bad clip (%s): %s", e.reason, e)
            if e.cacheable:
                self._bad[i] = e

    def _check_all_frames(self, clip: OpenedClip) -> None:
        """BadClip unless every frame of ``clip`` reads, decodes, shares one size >= min_frame_size."""
        shape, src = None, clip.source
        for a in range(0, clip.num_frames, CHECK_CHUNK):
            frames = np.asarray(clip.read(np.arange(a, min(a + CHECK_CHUNK, clip.num_frames))))
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise BadClip("image_size", f"{src}: frames have shape {frames.shape}")
            if shape is not None and frames.shape[1:] != shape:
                raise BadClip("image_size", f"{src}: frames {a}.. are {frames.shape[1:]}, earlier {shape}")
            shape = frames.shape[1:]
            if min(shape[:2]) < self.min_frame_size:
                raise BadClip(
                    "image_size", f"{src}: frames of {shape[0]}x{shape[1]} px, below {self.min_frame_size} px"
                )

    def _make_sample(self, i: int, rng: np.random.Generator) -> dict[str, Any]:
        try:
            clip = self.open_clip(i)
            validate_cameras(clip.K_norm, clip.w2c, clip.source)
            if self.check_frames == "all" and i not in self._checked:
                self._check_all_frames(clip)
                self._checked.add(i)
            idx = self.choose_indices(i, clip, rng)
            frames = clip.read(idx)
        except BadClip:
            raise
        except Exception as e:  # noqa: BLE001 - anything unexpected in one clip must not end the epoch
            raise BadClip("other", f"{self.describe_clip(i)}: {type(e).__name__}: {e}") from e
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] != len(idx):
            raise BadClip(
                "image_size",
                f"{clip.source}: frames have shape {frames.shape}, expected ({len(idx)}, H, W, 3)",
            )
        if frames.shape[1] < self.min_frame_size or frames.shape[2] < self.min_frame_size:
            raise BadClip(
                "image_size",
                f"{clip.source}: frames of {frames.shape[1]}x{frames.shape[2]} px, below the minimum "
                f"{self.min_frame_size} px (min_frame_size)",
            )
        H0, W0 = frames.shape[1:3]
        K_px = K_norm_to_px(clip.K_norm[idx], H0, W0)
        frames, K_px = center_crop_resize(frames.astype(np.uint8, copy=False), K_px, self.height, self.width)
        c2w = relative_to_first(w2c_to_c2w(clip.w2c[idx]))
        uint8 = self.frames_dtype == "uint8"
        return {
            "frames": hwc_to_chw_uint8(frames) if uint8 else frames_to_unit_range(frames),
            "K_px": torch.from_numpy(np.asarray(K_px, dtype=np.float32)),
            "c2w": torch.from_numpy(np.asarray(c2w, dtype=np.float32)),
            "clip_id": clip.clip_id,
            "frame_indices": torch.from_numpy(idx.astype(np.int64)),
        }


CHECK_CHUNK = 16  # frames read at a time by the whole-clip check (bounded memory)


def stack_same_size(frames: list[np.ndarray], source: str) -> np.ndarray:
    """Stack per-frame uint8 (H, W, 3) arrays; BadClip('image_size') if sizes differ."""
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise BadClip("image_size", f"{source}: frames have different sizes {sorted(shapes)}")
    return np.stack(frames)


class Re10kClipDataset(ClipSamplingDataset):
    """RealEstate10K layout ({root}/{split}/{clip_id}.txt + frames folder or .mp4); see module docstring.

    One dataset item per clip (len = number of clips found by ``re10k.list_clips``). Further arguments
    (num_frames, height, width, interval, ...): see ``ClipSamplingDataset``.
    """

    def __init__(self, root: str | Path, split: str = "train", *args, **sampling) -> None:
        super().__init__(*args, **sampling)
        from .formats import re10k

        self.root, self.split = Path(root), split
        clips = re10k.list_clips(self.root, split, missing="skip")
        # camera files without frames folder/video stay in the list so they are counted when drawn
        listed = {c.camera_path.name for c in clips}
        orphans = [
            re10k.Re10kClip(p.stem, p, None, None, None)
            for p in sorted((self.root / split).glob("*.txt"))
            if p.name not in listed
        ]
        self.clips = select(
            sorted(clips + orphans, key=lambda c: c.clip_id),
            lambda c: c.clip_id,
            self.holdout,
            str(self.root / split),
            self.clip_list,
        )

    def num_clips(self) -> int:
        return len(self.clips)

    def describe_clip(self, i: int) -> str:
        return str(self.clips[i].camera_path)

    def clip_name(self, i: int) -> str:
        return self.clips[i].clip_id

    def open_clip(self, i: int) -> OpenedClip:
        from .formats import re10k

        clip = self.clips[i]
        src = str(clip.camera_path)
        try:
            cams = re10k.read_camera_file(clip.camera_path, root=self.root)
        except re10k.CameraFileError as e:
            raise BadClip(_classify_camera_error(getattr(e, "what", str(e))), str(e)) from e
        except UnsafePath as e:  # a link out of the dataset, a FIFO, a device, an oversized file
            raise BadClip("outside_root" if e.reason == "outside_root" else "camera_file", str(e)) from e
        except (OSError, UnicodeDecodeError) as e:
            raise BadClip("camera_file", f"{src}: {e}") from e
        n = len(cams.timestamps)
        if n == 0:
            raise BadClip("camera_file", f"{src}: no camera lines")
        if clip.frames_dir is not None:
            frames_src = str(clip.frames_dir)
            if clip.frames_dir.is_symlink():  # listed only after it is known to stay in the dataset
                try:
                    confined(clip.frames_dir, self.root)
                except UnsafePath as e:
                    reason = "outside_root" if e.reason == "outside_root" else "missing_frames"
                    raise BadClip(reason, str(e)) from e
            if not clip.frames_dir.is_dir():
                raise BadClip("missing_frames", f"{frames_src}: frames folder missing")
            n_files = sum(1 for p in clip.frames_dir.iterdir() if p.suffix.lower() in re10k.IMAGE_EXTS)
            if n_files == 0:
                raise BadClip("missing_frames", f"{frames_src}: empty frames folder")
            if n_files != n:
                raise BadClip("count_mismatch", f"{frames_src}: {n_files} frames but {n} cameras in {src}")
        elif clip.video_path is not None:
            frames_src = str(clip.video_path)
        else:
            raise BadClip("missing_frames", f"{src}: no frames folder or video for clip {clip.clip_id}")

        def read(idx: np.ndarray) -> np.ndarray:
            try:
                frames = re10k.read_frames(clip, cams, [int(k) for k in idx], root=self.root)
            except UnsafePath as e:
                reason = "outside_root" if e.reason == "outside_root" else "unreadable_frames"
                raise BadClip(reason, f"{frames_src}: {e}") from e
            except FileNotFoundError as e:
                raise BadClip("missing_frames", f"{frames_src}: {e}") from e
            except (IndexError, EOFError) as e:
                raise BadClip("count_mismatch", f"{frames_src}: {e}") from e
            except Exception as e:  # noqa: BLE001
                what = str(e).rsplit(": ", 1)[-1].lower()  # messages are "<file>: <what>"; ignore the path
                if "differs" in what or "size" in what:
                    reason = "image_size"
                elif "ends after" in what:
                    reason = "count_mismatch"
                else:
                    reason = "unreadable_frames"
                raise BadClip(reason, f"{frames_src}: {type(e).__name__}: {e}") from e
            return frames

        return OpenedClip(clip.clip_id, np.asarray(cams.K_norm), np.asarray(cams.w2c), read, src)


def _classify_camera_error(what: str) -> str:
    """Map re10k.CameraFileError's ``what`` (message without the path) to a skip reason."""
    low = what.lower()
    if "not finite" in low:
        return "non_finite"
    if "rotation" in low:
        return "not_rotation"
    if "focal" in low or "principal point" in low:
        return "bad_intrinsics"
    return "camera_file"


class ACIDClipDataset(Re10kClipDataset):
    """ACID (Aerial Coastline Imagery Dataset): the RealEstate10K layout and camera format, own name."""
