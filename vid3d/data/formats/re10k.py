"""RealEstate10K camera files and the clip folder layout used by vid3d.

Camera file (``{root}/{split}/{clip_id}.txt``): line 1 is the source video URL, then one line per frame::

    timestamp_us fx fy cx cy 0 0 r11 r12 r13 t1 r21 r22 r23 t2 r31 r32 r33 t3

``fx, cx`` are divided by the image width and ``fy, cy`` by the height (``K_norm``); ``[R | t]`` is the
row-major 3x4 world-to-camera matrix (``w2c``) in OpenCV axes (x right, y down, z forward).

Frames of a clip live in ``{clip_id}/`` named ``{timestamp}.png|jpg`` (or ``{index:05d}.png|jpg``), or in
``{clip_id}.mp4`` (video frame i <-> camera line i). ``{clip_id}.depth.npz`` (optional) holds key
``"depth"``: (N, H, W) float32 z-depth in the camera's units, 0 where no surface was hit.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vid3d.atomic import atomic_dir, atomic_write_bytes
from vid3d.errors import InputError
from vid3d.geometry import K_norm_to_px, c2w_to_w2c, w2c_to_c2w

__all__ = [
    "CameraFileError",
    "IMAGE_EXTS",
    "Re10kCameras",
    "Re10kClip",
    "atomic_write_bytes",
    "list_clips",
    "read_camera_file",
    "read_depth",
    "read_frames",
    "write_camera_file",
    "write_clip",
]

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
ROTATION_TOL = 1e-3
_NUM_FIELDS = 19
log = logging.getLogger("vid3d")
_CLIP_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class CameraFileError(InputError):
    """A malformed camera file; ``str(e) == "<path>:<line>: <what is wrong>"``."""

    def __init__(self, path: str | os.PathLike, line: int, what: str) -> None:
        self.path, self.line, self.what = str(path), int(line), what
        super().__init__(f"{self.path}:{self.line}: {what}")


@dataclass
class Re10kCameras:
    """One clip's cameras (N frames).

    Attributes:
        url: source video URL (line 1 of the file; any single line of text).
        timestamps: (N,) int64 microseconds.
        K_norm: (N, 3, 3) float64 normalised intrinsics (fx, cx / width; fy, cy / height).
        w2c: (N, 4, 4) float64 OpenCV world-to-camera matrices.
    """

    url: str
    timestamps: np.ndarray
    K_norm: np.ndarray
    w2c: np.ndarray

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype=np.int64).reshape(-1)
        self.K_norm = np.asarray(self.K_norm, dtype=np.float64)
        self.w2c = np.asarray(self.w2c, dtype=np.float64)
        n = len(self.timestamps)
        if self.K_norm.shape != (n, 3, 3):
            raise ValueError(f"K_norm must have shape ({n}, 3, 3), got {self.K_norm.shape}")
        if self.w2c.shape == (n, 3, 4):
            bottom = np.broadcast_to(np.array([0.0, 0.0, 0.0, 1.0]), (n, 1, 4))
            self.w2c = np.concatenate([self.w2c, bottom], axis=1)
        if self.w2c.shape != (n, 4, 4):
            raise ValueError(f"w2c must have shape ({n}, 4, 4) or ({n}, 3, 4), got {self.w2c.shape}")

    def __len__(self) -> int:
        return len(self.timestamps)

    def c2w(self) -> np.ndarray:
        """(N, 4, 4) float64 OpenCV camera-to-world matrices."""
        return np.asarray(w2c_to_c2w(self.w2c), dtype=np.float64)

    def K_px(self, height: int, width: int) -> np.ndarray:
        """(N, 3, 3) float64 pixel intrinsics for images of (height, width)."""
        return np.asarray(K_norm_to_px(self.K_norm, height, width), dtype=np.float64)

    @classmethod
    def from_c2w(
        cls, c2w: np.ndarray, K_norm: np.ndarray, timestamps: np.ndarray, url: str = ""
    ) -> Re10kCameras:
        """Build from (N, 4, 4) camera-to-world poses and (N, 3, 3) or (3, 3) ``K_norm``."""
        c2w = np.asarray(c2w, dtype=np.float64)
        K = np.broadcast_to(np.asarray(K_norm, dtype=np.float64), (len(c2w), 3, 3)).copy()
        return cls(url=url, timestamps=timestamps, K_norm=K, w2c=np.asarray(c2w_to_w2c(c2w)))

    def subset(self, indices: Sequence[int] | np.ndarray) -> Re10kCameras:
        """The cameras at ``indices`` (same url)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Re10kCameras(self.url, self.timestamps[idx], self.K_norm[idx], self.w2c[idx])


# ----------------------------------------------------------------------------------------- reading
def _parse_float(tok: str, path, lineno: int, field: str) -> float:
    try:
        value = float(tok)
    except ValueError:
        raise CameraFileError(path, lineno, f"{field}: {tok!r} is not a number") from None
    if not math.isfinite(value):
        raise CameraFileError(path, lineno, f"{field}: {tok!r} is not finite")
    return value


def _check_rotation(R: np.ndarray, path, lineno: int, allow_reflection: bool = False) -> None:
    err = float(np.abs(R @ R.T - np.eye(3)).max())
    if err > ROTATION_TOL:
        raise CameraFileError(path, lineno, f"rotation is not orthonormal (max |R R^T - I| = {err:.3g})")
    det = float(np.linalg.det(R))
    if det < 0 and not allow_reflection:
        raise CameraFileError(path, lineno, f"rotation has det {det:.3g} < 0 (a reflection)")


_FIELD_NAMES = ("fx", "fy", "cx", "cy", "field 6", "field 7") + tuple(
    f"r{i}{j}" if j < 4 else f"t{i}" for i in range(1, 4) for j in range(1, 5)
)


def _parse_frame_line(text: str, path, lineno: int, allow_reflection: bool = False) -> tuple[int, np.ndarray]:
    tokens = text.split()
    if len(tokens) != _NUM_FIELDS:
        raise CameraFileError(path, lineno, f"expected {_NUM_FIELDS} numbers, found {len(tokens)}")
    try:
        ts = int(tokens[0])
    except ValueError:
        raise CameraFileError(path, lineno, f"timestamp: {tokens[0]!r} is not an integer") from None
    if not -(2**63) <= ts < 2**63:
        raise CameraFileError(path, lineno, f"timestamp {ts} does not fit in int64")
    values = np.array([_parse_float(t, path, lineno, name) for t, name in zip(tokens[1:], _FIELD_NAMES)])
    if values[0] <= 0 or values[1] <= 0:
        raise CameraFileError(
            path, lineno, f"focal lengths must be positive, got fx={values[0]}, fy={values[1]}"
        )
    if not (0.0 <= values[2] <= 1.0 and 0.0 <= values[3] <= 1.0):
        raise CameraFileError(
            path, lineno, f"principal point cx={values[2]}, cy={values[3]} must lie in [0, 1] (fractions of "
            "the image width and height; pixel values need dividing by the image size)"
        )
    _check_rotation(values[6:].reshape(3, 4)[:, :3], path, lineno, allow_reflection)
    return ts, values


MAX_CAMERA_FILE_BYTES = 8 << 20  # ~40k camera lines; RealEstate10K's longest clips have a few hundred
MAX_CAMERA_LINES = 50_000


def read_camera_file(
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    max_lines: int = MAX_CAMERA_LINES,
    *,
    path_only: bool = False,
) -> Re10kCameras:
    """Parse a RealEstate10K camera file. Blank lines are skipped; CRLF line ends are accepted.

    ``root``: when given, a camera file that is a symlink must resolve inside it. Only a regular file of
    at most ``MAX_CAMERA_FILE_BYTES`` and ``max_lines`` lines is read (a FIFO or ``/dev/zero`` never blocks).

    ``path_only``: the file is a camera path to follow (a trajectory), not a clip whose frames are looked up
    by timestamp. Two liberties of hand-made pose files (CamI2V's ``demo/camera_pose_files``) are then
    accepted, with one warning line: every line carrying the same placeholder timestamp (``114514``; frames
    are taken in file order), and every rotation having det -1 (a mirrored, left-handed world frame: the
    world x axis is flipped, ``w2c <- w2c @ diag(-1, 1, 1, 1)``, which leaves the poses relative to each
    other, all a trajectory uses, unchanged).

    Raises:
        FileNotFoundError: the file does not exist.
        vid3d.data.files.UnsafePath: a symlink leaving ``root`` ("outside_root"), not a regular file
            ("not_regular") or above the size limit ("too_large").
        CameraFileError: ``"<path>:<line>: <what>"`` for an empty file, a file with no frames or more
            than ``max_lines`` lines, a line without 19 fields, a non-numeric / non-finite token, a
            non-positive focal length, a principal point outside [0, 1], a matrix that is not a rotation
            (|R R^T - I| > 1e-3 or det < 0; with ``path_only``, det < 0 on some lines only), or a repeated
            timestamp (with ``path_only``: unless all are the same).
    """
    from vid3d.data.files import confined, read_regular_bytes

    path = Path(path)
    if root is not None and path.is_symlink():
        confined(path, root)
    data = read_regular_bytes(path, MAX_CAMERA_FILE_BYTES)
    if data.count(b"\n") > max_lines:
        raise CameraFileError(path, max_lines + 1, f"more than {max_lines} lines (a camera file's limit)")
    lines = data.split(b"\n")
    if not data.strip():
        raise CameraFileError(path, 1, "empty file (expected a URL line, then one line per frame)")
    decoded: list[str] = []
    for i, raw in enumerate(lines):
        try:
            decoded.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            raise CameraFileError(path, i + 1, "not valid UTF-8 text") from None
    url = decoded[0].strip()
    if len(url.split()) == _NUM_FIELDS:
        raise CameraFileError(path, 1, "line 1 must be the video URL but holds camera numbers")
    timestamps, rows, linenos = [], [], []
    for i, text in enumerate(decoded[1:], start=2):
        if not text.strip():
            continue
        ts, values = _parse_frame_line(text, path, i, allow_reflection=path_only)
        timestamps.append(ts)
        rows.append(values)
        linenos.append(i)
    notes = []
    placeholder = path_only and len(timestamps) > 1 and len(set(timestamps)) == 1
    if placeholder:
        notes.append(
            f"all {len(timestamps)} lines carry the same timestamp {timestamps[0]} (a placeholder, as in "
            "CamI2V's pose files): poses are taken in file order"
        )
    else:
        seen: dict[int, int] = {}
        for ts, i in zip(timestamps, linenos):
            if ts in seen:
                raise CameraFileError(path, i, f"timestamp {ts} repeats line {seen[ts]}")
            seen[ts] = i
    if path_only and rows:
        dets = [np.linalg.det(v[6:].reshape(3, 4)[:, :3]) for v in rows]
        mirrored = dets[0] < 0
        for d, i in zip(dets, linenos):
            if (d < 0) != mirrored:
                raise CameraFileError(
                    path, i, f"rotation has det {d:.3g} while line {linenos[0]}'s has {dets[0]:.3g} "
                    "(a reflection on some lines only)"
                )
        if mirrored:
            for v in rows:
                v[6:].reshape(3, 4)[:, 0] *= -1.0  # w2c @ diag(-1, 1, 1, 1): the world's x axis flipped
            notes.append(
                "every rotation has det -1 (a left-handed world frame): read with the world's x axis "
                "flipped, which leaves the camera motion relative to the first pose unchanged"
            )
    if notes:
        log.warning("%s: %s", path, "; ".join(notes))
    if not rows:
        raise CameraFileError(path, len(decoded), "no camera lines after the URL line")
    arr = np.stack(rows)
    n = len(rows)
    K = np.zeros((n, 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = (
        arr[:, 0],
        arr[:, 1],
        arr[:, 2],
        arr[:, 3],
        1.0,
    )
    w2c = np.zeros((n, 4, 4))
    w2c[:, :3, :] = arr[:, 6:].reshape(n, 3, 4)
    w2c[:, 3, 3] = 1.0
    return Re10kCameras(url=url, timestamps=np.array(timestamps, dtype=np.int64), K_norm=K, w2c=w2c)


# ----------------------------------------------------------------------------------------- writing
def _fmt(x: float) -> str:
    return repr(float(x))  # shortest string that parses back to the same float64


def write_camera_file(path: str | os.PathLike, cams: Re10kCameras) -> None:
    """Write ``cams`` atomically; ``read_camera_file(path)`` returns exactly the same numbers.

    Stores fx, fy, cx, cy of ``K_norm`` and the top 3x4 of ``w2c`` (skew and the bottom row are not
    part of the format). Raises ValueError for a multi-line URL or non-finite values.
    """
    url = cams.url.strip()
    if "\n" in url or "\r" in url or len(url.split()) == _NUM_FIELDS:
        raise ValueError(f"{path}: the URL must be a single line of text, got {cams.url!r}")
    if not (np.isfinite(cams.K_norm).all() and np.isfinite(cams.w2c).all()):
        raise ValueError(f"{path}: cameras contain non-finite values")
    if len(set(cams.timestamps.tolist())) != len(cams):
        raise ValueError(f"{path}: timestamps must be unique")
    out = [url]
    for ts, K, M in zip(cams.timestamps, cams.K_norm, cams.w2c):
        nums = [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]
        out.append(" ".join([str(int(ts)), *map(_fmt, nums), "0", "0", *map(_fmt, M[:3].reshape(-1))]))
    atomic_write_bytes(path, ("\n".join(out) + "\n").encode("utf-8"))


# ------------------------------------------------------------------------------------ clip layout
@dataclass
class Re10kClip:
    """Where one clip's files are. Exactly one of ``frames_dir`` / ``video_path`` is used for frames
    (the folder when both exist)."""

    clip_id: str
    camera_path: Path
    frames_dir: Path | None
    video_path: Path | None
    depth_path: Path | None


def list_clips(root: str | os.PathLike, split: str, *, missing: str = "error") -> list[Re10kClip]:
    """Clips of ``{root}/{split}``: every ``*.txt`` camera file with a frames folder or ``.mp4``.

    Args:
        missing: what to do with a camera file that has neither frames folder nor video:
            ``"error"`` (FileNotFoundError naming it) or ``"skip"``.
    Returns:
        Clips sorted by clip_id.
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: split folder does not exist")
    clips = []
    for cam_path in sorted(split_dir.glob("*.txt")):
        clip_id = cam_path.stem
        frames_dir = split_dir / clip_id
        video = split_dir / f"{clip_id}.mp4"
        depth = split_dir / f"{clip_id}.depth.npz"
        fd = frames_dir if frames_dir.is_dir() else None
        vp = video if video.is_file() else None
        if fd is None and vp is None:
            if missing == "skip":
                continue
            raise FileNotFoundError(
                f"{cam_path}: no frames for this camera file (expected folder {frames_dir} or video {video})"
            )
        clips.append(Re10kClip(clip_id, cam_path, fd, vp, depth if depth.is_file() else None))
    return sorted(clips, key=lambda c: c.clip_id)


class FrameIndexError(InputError, IndexError):
    """A requested frame index the clip's file does not have (an InputError: one line naming the file)."""


def _check_indices(indices, n: int, where, what: str = "cameras") -> np.ndarray:
    """``indices`` (negative from the end) as non-negative int64; the error names ``where`` and ``what``."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    bad = idx[(idx < -n) | (idx >= n)]
    if len(bad):
        raise FrameIndexError(f"{where}: frame index {int(bad[0])} out of range for {n} {what}")
    return np.where(idx < 0, idx + n, idx)


def _frame_file(frames_dir: Path, names: set[str], ts: int, i: int) -> Path:
    for stem in (str(ts), f"{i:05d}"):
        for ext in IMAGE_EXTS:
            if stem + ext in names:
                return frames_dir / (stem + ext)
    raise FileNotFoundError(
        f"{frames_dir}: no frame for camera {i} (file line {i + 2}, timestamp {ts}): "
        f"expected {ts}.png|jpg or {i:05d}.png|jpg"
    )


def _read_image(path: Path) -> np.ndarray:
    from vid3d.data.files import decode_image

    return decode_image(path)  # regular files only: a FIFO never blocks


def _read_video_frames(path: Path, wanted: np.ndarray) -> dict[int, np.ndarray]:
    import av

    from vid3d.data.files import check_video_pixels

    need, last = set(wanted.tolist()), int(wanted.max())
    got: dict[int, np.ndarray] = {}
    n_read = 0
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise InputError(f"{path}: cannot open video ({e})") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path}: no video stream")
        stream = container.streams.video[0]
        check_video_pixels(stream, path)  # from the stream header, before any frame is decoded
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            n_read = i + 1
            if i in need:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    if len(got) < len(need):
        raise InputError(f"{path}: video ends after {n_read} decoded frames, camera index {last} requested")
    return got


def read_frames(
    clip: Re10kClip,
    cams: Re10kCameras,
    indices: Sequence[int] | np.ndarray,
    root: str | os.PathLike | None = None,
) -> np.ndarray:
    """Frames for camera lines ``indices``: (n, H, W, 3) uint8 RGB.

    ``root``: when given, the frames folder, every frame file (symlinks followed) and the video must lie
    inside it (vid3d.data.files.UnsafePath "outside_root" otherwise).
    Raises FileNotFoundError / InputError (a ValueError) naming the missing or unreadable file, and
    InputError if the frames do not all have the same size.
    """
    from vid3d.data.files import confined

    idx = _check_indices(indices, len(cams), clip.camera_path)
    if clip.frames_dir is not None:
        if root is not None and clip.frames_dir.is_symlink():  # the folder itself may point out
            confined(clip.frames_dir, root)
        names = set(os.listdir(clip.frames_dir))
        files = [_frame_file(clip.frames_dir, names, int(cams.timestamps[i]), int(i)) for i in idx]
        if root is not None:
            for f in files:
                if f.is_symlink() or not f.exists():  # a plain file in the clip folder cannot leave it
                    confined(f, root)
        images = [_read_image(f) for f in files]
    elif clip.video_path is not None:
        if root is not None:
            confined(clip.video_path, root)
        if len(idx) == 0:
            return np.zeros((0, 0, 0, 3), np.uint8)
        got = _read_video_frames(clip.video_path, idx)
        files = [clip.video_path] * len(idx)
        images = [got[int(i)] for i in idx]
    else:
        raise FileNotFoundError(f"{clip.camera_path}: clip {clip.clip_id} has no frames folder or video")
    if not images:
        return np.zeros((0, 0, 0, 3), np.uint8)
    for f, im in zip(files, images):
        if im.shape != images[0].shape:
            raise InputError(
                f"{f}: frame size {im.shape[:2]} differs from {images[0].shape[:2]} of {files[0]}"
            )
    return np.stack(images)


MAX_DEPTH_FILE_BYTES = 1 << 30  # a compressed npz of float32 depth maps


def read_depth(
    clip: Re10kClip, indices: Sequence[int] | np.ndarray, root: str | os.PathLike | None = None
) -> np.ndarray | None:
    """(n, H, W) float32 z-depth for ``indices`` from ``{clip_id}.depth.npz``, or None without one.

    ``root``: when given, the depth file (symlinks followed) must lie inside it (vid3d.data.files.UnsafePath
    "outside_root" otherwise, naming the file). Only a regular file is read (a FIFO never blocks); an
    unreadable npz is an InputError (a ValueError) naming the file."""
    from vid3d.data.files import confined, read_regular_bytes

    if clip.depth_path is None:
        return None
    if root is not None:
        confined(clip.depth_path, root)
    raw = read_regular_bytes(clip.depth_path, MAX_DEPTH_FILE_BYTES)
    try:
        data = np.load(io.BytesIO(raw), allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a bare array, not an .npz archive")
        with data:
            if "depth" not in data.files:
                raise ValueError(f"no 'depth' array (has {data.files})")
            depth = data["depth"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise InputError(f"{clip.depth_path}: cannot read depth ({e or type(e).__name__})") from None
    if depth.ndim != 3:
        raise InputError(f"{clip.depth_path}: 'depth' must be (N, H, W), got shape {depth.shape}")
    idx = _check_indices(indices, len(depth), clip.depth_path, "depth maps")
    return depth[idx].astype(np.float32, copy=False)


def write_clip(
    root: str | os.PathLike,
    split: str,
    clip_id: str,
    cams: Re10kCameras,
    frames_uint8: np.ndarray,
    depth: np.ndarray | None = None,
    image_ext: str = "png",
) -> Re10kClip:
    """Write one clip: frames ``{clip_id}/{timestamp}.{ext}``, optional depth, then the camera file.

    Args:
        frames_uint8: (N, H, W, 3) uint8 RGB, N == len(cams).
        depth: optional (N, H, W) z-depth, stored as float32 in a compressed npz.
        image_ext: "png" (lossless) or "jpg" (quality 95).
    The frames folder is written under a temporary name and renamed; the depth and camera files are
    written atomically, the camera file last (a clip is listed only once it is complete).
    """
    import cv2

    if not _CLIP_ID_RE.match(clip_id) or clip_id.endswith((".txt", ".mp4", ".npz")):
        raise ValueError(f"invalid clip_id {clip_id!r} (letters, digits, '_', '-', '.')")
    ext = {"png": "png", "jpg": "jpg", "jpeg": "jpg"}.get(image_ext.lower().lstrip("."))
    if ext is None:
        raise ValueError(f"image_ext must be 'png' or 'jpg', got {image_ext!r}")
    frames = np.asarray(frames_uint8)
    n = len(cams)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) != n:
        raise ValueError(f"frames must be ({n}, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if depth is not None:
        depth = np.asarray(depth, dtype=np.float32)
        if depth.shape != frames.shape[:3]:
            raise ValueError(f"depth must have shape {frames.shape[:3]}, got {depth.shape}")
    split_dir = Path(root) / split
    split_dir.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    with atomic_dir(split_dir / clip_id) as tmp_dir:
        for ts, img in zip(cams.timestamps, frames):
            ok, buf = cv2.imencode(f".{ext}", np.ascontiguousarray(img[..., ::-1]), params)
            if not ok:
                raise ValueError(f"{tmp_dir}: cannot encode frame {ts} as {ext}")
            (tmp_dir / f"{int(ts)}.{ext}").write_bytes(buf.tobytes())
    depth_path = split_dir / f"{clip_id}.depth.npz"
    if depth is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, depth=depth)
        atomic_write_bytes(depth_path, buf.getvalue())
    elif depth_path.exists():
        depth_path.unlink()
    camera_path = split_dir / f"{clip_id}.txt"
    write_camera_file(camera_path, cams)
    video = split_dir / f"{clip_id}.mp4"
    return Re10kClip(
        clip_id,
        camera_path,
        split_dir / clip_id,
        video if video.is_file() else None,
        depth_path if depth is not None else None,
    )
