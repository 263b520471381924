"""Camera trajectories for sampling: presets, trajectory files, and chaining of segments.

Conventions: OpenCV camera axes (x right, y down, z forward); poses are camera-to-world (F, 4, 4)
float64, relative to the first frame (``c2w[0] = I``), in the first camera's coordinates.

Presets (``make_trajectory(name, ...)``; ``PRESETS`` lists them):

==============  =====================================================================================
static          identity poses
zoom_in/out     ``zoom_mode="dolly"`` (default): translate along +z / -z (same as move_forward/
                move_backward). ``zoom_mode="focal"``: poses stay identity and ``K_scale`` (F,)
                multiplies fx, fy geometrically from 1 to ``1 + a`` (zoom_in) or ``1 / (1 + a)``
                (zoom_out); the principal point is unchanged.
pan_left/right  yaw about the camera's y axis; pan_left turns the view left (the forward vector
                gains a negative x component), pan_right positive x.
tilt_up/down    pitch about the camera's x axis; tilt_up looks up (forward gains negative y).
move_*          translate along -x (left), +x (right), -y (up), +y (down), +z (forward), -z (backward).
orbit_left/     the camera centre moves on a horizontal circle (the x-z plane) around the point
orbit_right     (0, 0, orbit_radius) in front of the first camera, always looking at it; orbit_left
                moves the centre to -x (so the view turns right, towards the target), orbit_right
                to +x.
==============  =====================================================================================

Amplitude ``a``: "small" | "medium" | "large" or a float in the preset's unit:
translation presets: 0.25 | 0.5 | 1.0 scene units of total displacement; rotation presets (pan, tilt,
orbit): 15 | 30 | 60 degrees; focal zoom: 0.25 | 0.5 | 1.0 relative focal change.

Time warp: frame i has progress ``p_i = speed * ease(i / (F - 1))``; ``speed`` is the fraction of the
amplitude covered by the last frame (1.0 = all of it) and ``easing`` is "linear", "ease_in" (t^2),
"ease_out" (1 - (1 - t)^2), "ease_in_out" (3t^2 - 2t^3) or a callable on [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vid3d.errors import InputError
from vid3d.geometry import K_norm_to_px, axis_angle_to_matrix, look_at_c2w, relative_to_first, to_homogeneous

__all__ = [
    "AMPLITUDES",
    "PRESETS",
    "Trajectory",
    "compose_segments",
    "check_c2w",
    "load_trajectory_file",
    "make_trajectory",
    "resample_c2w",
]

AMPLITUDES: dict[str, dict[str, float]] = {
    "translation": {"small": 0.25, "medium": 0.5, "large": 1.0},  # scene units
    "rotation": {"small": 15.0, "medium": 30.0, "large": 60.0},  # degrees
    "focal": {"small": 0.25, "medium": 0.5, "large": 1.0},  # relative focal-length change
}

EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda t: t,
    "ease_in": lambda t: t**2,
    "ease_out": lambda t: 1.0 - (1.0 - t) ** 2,
    "ease_in_out": lambda t: t * t * (3.0 - 2.0 * t),
}


@dataclass
class Trajectory:
    """A camera path for sampling.

    Attributes:
        c2w: (F, 4, 4) float64 OpenCV camera-to-world poses, ``c2w[0] = I``.
        K_scale: (F,) float64 multiplier on fx and fy (focal zoom) or None for fixed intrinsics.
        name: preset name or file name.
        K_norm: (F, 3, 3) float64 normalised intrinsics (fx, cx over width; fy, cy over height) of the
            camera that recorded the path (a RealEstate10K file), or None: the input image's own
            intrinsics are used (``scaled_K``).
    """

    c2w: np.ndarray
    K_scale: np.ndarray | None = None
    name: str = ""
    K_norm: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.c2w = np.asarray(self.c2w, dtype=np.float64)
        if self.c2w.ndim != 3 or self.c2w.shape[1:] != (4, 4):
            raise ValueError(f"Trajectory {self.name!r}: c2w must be (F, 4, 4), got {self.c2w.shape}")
        if self.K_scale is not None:
            self.K_scale = np.asarray(self.K_scale, dtype=np.float64)
            if self.K_scale.shape != (len(self.c2w),):
                raise ValueError(
                    f"Trajectory {self.name!r}: K_scale must be ({len(self.c2w)},), got {self.K_scale.shape}"
                )
        if self.K_norm is not None:
            K_norm = np.asarray(self.K_norm, np.float64)
            self.K_norm = np.array(np.broadcast_to(K_norm, (len(self.c2w), 3, 3)))

    def __len__(self) -> int:
        return len(self.c2w)

    @property
    def num_frames(self) -> int:
        return len(self.c2w)

    def c2w_tensor(self, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        """c2w as a torch tensor (F, 4, 4)."""
        return torch.as_tensor(self.c2w, dtype=dtype, device=device)

    def scaled_K(self, K_px, height: int | None = None, width: int | None = None):
        """Per-frame intrinsics (F, 3, 3) with fx, fy times ``K_scale``, in pixels at the frame size.

        The base is the trajectory's own ``K_norm`` at (height, width) when it has one and the size is
        given, else ``K_px`` (3, 3) or (F, 3, 3), the input image's intrinsics (numpy in -> numpy out,
        torch in -> torch out; a copy of the broadcast K if K_scale is None)."""
        is_torch = isinstance(K_px, torch.Tensor)
        K_in = K_px.detach().cpu().numpy() if is_torch else np.asarray(K_px)
        if self.K_norm is not None and height is not None and width is not None:
            K = np.asarray(K_norm_to_px(self.K_norm, height, width), dtype=np.float64).copy()
        else:
            K = np.array(np.broadcast_to(K_in, (len(self), 3, 3)), dtype=np.float64)
        if self.K_scale is not None:
            K[:, 0, 0] *= self.K_scale
            K[:, 1, 1] *= self.K_scale
        if is_torch:
            return torch.as_tensor(K, dtype=K_px.dtype, device=K_px.device)
        return K.astype(K_in.dtype) if K_in.dtype.kind == "f" else K


# ----------------------------------------------------------------------------------------------------
# presets


def _amplitude(kind: str, amplitude: str | float) -> float:
    if isinstance(amplitude, str):
        table = AMPLITUDES[kind]
        if amplitude not in table:
            raise ValueError(f"amplitude must be one of {sorted(table)} or a float, got {amplitude!r}")
        return table[amplitude]
    return float(amplitude)


def _progress(num_frames: int, speed: float, easing: str | Callable) -> np.ndarray:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    t = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    if callable(easing):
        ease = easing
    elif easing in EASINGS:
        ease = EASINGS[easing]
    else:
        raise ValueError(f"easing must be one of {sorted(EASINGS)} or a callable, got {easing!r}")
    return float(speed) * np.asarray(ease(t), dtype=np.float64)


def _translate(direction: Sequence[float]):
    def build(p: np.ndarray, a: float, **_) -> tuple[np.ndarray, None]:
        c2w = np.tile(np.eye(4), (len(p), 1, 1))
        c2w[:, :3, 3] = np.asarray(direction, dtype=np.float64)[None] * (a * p)[:, None]
        return c2w, None

    return build


def _rotate(axis: Sequence[float], sign: float):
    def build(p: np.ndarray, a: float, **_) -> tuple[np.ndarray, None]:
        angles = sign * math.radians(a) * p
        axes = np.tile(np.asarray(axis, dtype=np.float64), (len(p), 1))
        c2w = np.tile(np.eye(4), (len(p), 1, 1))
        c2w[:, :3, :3] = axis_angle_to_matrix(axes, angles)
        return c2w, None

    return build


def _orbit(sign_x: float):
    def build(p: np.ndarray, a: float, orbit_radius: float = 2.0, **_) -> tuple[np.ndarray, None]:
        if orbit_radius <= 0:
            raise ValueError(f"orbit_radius must be > 0, got {orbit_radius}")
        phi = math.radians(a) * p
        r = float(orbit_radius)
        eye = np.stack([sign_x * r * np.sin(phi), np.zeros_like(phi), r - r * np.cos(phi)], axis=-1)
        target = np.tile(np.array([0.0, 0.0, r]), (len(p), 1))
        return look_at_c2w(eye, target, up=(0.0, -1.0, 0.0)), None

    return build


def _zoom(sign: float):
    dolly = _translate((0.0, 0.0, sign))

    def build(p: np.ndarray, a: float, zoom_mode: str = "dolly", **_) -> tuple[np.ndarray, np.ndarray | None]:
        if zoom_mode == "dolly":
            return dolly(p, a)
        if zoom_mode == "focal":
            return np.tile(np.eye(4), (len(p), 1, 1)), (1.0 + a) ** (sign * p)
        raise ValueError(f"zoom_mode must be 'dolly' or 'focal', got {zoom_mode!r}")

    return build


_Y, _X = (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)
# name -> (amplitude kind, builder(progress (F,), amplitude, **options) -> (c2w (F,4,4), K_scale | None))
_PRESETS: dict[str, tuple[str, Callable]] = {
    "static": ("translation", _translate((0.0, 0.0, 0.0))),
    "zoom_in": ("translation", _zoom(+1.0)),
    "zoom_out": ("translation", _zoom(-1.0)),
    "pan_left": ("rotation", _rotate(_Y, -1.0)),
    "pan_right": ("rotation", _rotate(_Y, +1.0)),
    "tilt_up": ("rotation", _rotate(_X, +1.0)),
    "tilt_down": ("rotation", _rotate(_X, -1.0)),
    "move_left": ("translation", _translate((-1.0, 0.0, 0.0))),
    "move_right": ("translation", _translate((1.0, 0.0, 0.0))),
    "move_up": ("translation", _translate((0.0, -1.0, 0.0))),
    "move_down": ("translation", _translate((0.0, 1.0, 0.0))),
    "move_forward": ("translation", _translate((0.0, 0.0, 1.0))),
    "move_backward": ("translation", _translate((0.0, 0.0, -1.0))),
    "orbit_left": ("rotation", _orbit(-1.0)),
    "orbit_right": ("rotation", _orbit(+1.0)),
}
PRESETS: tuple[str, ...] = tuple(_PRESETS)


def make_trajectory(
    name: str,
    num_frames: int,
    amplitude: str | float = "medium",
    speed: float = 1.0,
    easing: str | Callable[[np.ndarray], np.ndarray] = "linear",
    orbit_radius: float = 2.0,
    zoom_mode: str = "dolly",
) -> Trajectory:
    """Build a preset trajectory (see the module docstring for names, units and directions).

    Args:
        name: one of ``PRESETS``.
        num_frames: F >= 1.
        amplitude: "small" | "medium" | "large" or a float in the preset's unit.
        speed: fraction of the amplitude reached at the last frame.
        easing: time warp applied before ``speed``.
        orbit_radius: distance of the orbit centre in front of the first camera (orbit presets).
        zoom_mode: "dolly" or "focal" (zoom presets).
    Returns:
        ``Trajectory`` with c2w (F, 4, 4) float64, ``c2w[0] = I``, and K_scale (F,) for focal zoom.
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown trajectory preset {name!r}; choose from {', '.join(PRESETS)}")
    kind, build = _PRESETS[name]
    if name.startswith("zoom") and zoom_mode == "focal":
        kind = "focal"
    a = _amplitude(kind, amplitude)
    for field, value in (("amplitude", a), ("speed", speed), ("orbit_radius", orbit_radius)):
        if not math.isfinite(float(value)):  # NaN or inf would give NaN poses, i.e. black frames
            raise InputError(f"trajectory.{field}: must be a finite number, got {value}")
    p = _progress(num_frames, speed, easing)
    c2w, K_scale = build(p, a, orbit_radius=orbit_radius, zoom_mode=zoom_mode)
    return Trajectory(c2w=relative_to_first(np.asarray(c2w)), K_scale=K_scale, name=name)


# ----------------------------------------------------------------------------------------------------
# files, resampling, chaining


def resample_c2w(c2w: np.ndarray, num_frames: int) -> np.ndarray:
    """Resample poses (N, 4, 4) to ``num_frames`` poses spread uniformly over the same time span.

    Output frame j sits at input time ``j * (N - 1) / (num_frames - 1)``; rotations are slerped and
    translations linearly interpolated between the two neighbouring input poses. Returns float64.
    """
    from scipy.spatial.transform import Rotation, Slerp

    c2w = np.asarray(to_homogeneous(np.asarray(c2w, dtype=np.float64)))
    n = len(c2w)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if n == 1:
        return np.repeat(c2w, num_frames, axis=0)
    t_out = np.linspace(0.0, n - 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    rots = Slerp(np.arange(n, dtype=np.float64), Rotation.from_matrix(c2w[:, :3, :3]))(t_out)
    out = np.tile(np.eye(4), (num_frames, 1, 1))
    out[:, :3, :3] = rots.as_matrix()
    for k in range(3):
        out[:, k, 3] = np.interp(t_out, np.arange(n), c2w[:, k, 3])
    return out


MAX_POSES = 10_000  # poses in a trajectory file (a 25-frame video needs 25; 10k parse in well under 1 s)
MAX_TRAJECTORY_BYTES = 8 << 20
ROTATION_TOL = 1e-3  # the tolerance of RealEstate10K camera files (vid3d.data.formats.re10k)


def check_c2w(c2w: np.ndarray, path: Path) -> np.ndarray:
    """The checks of a RealEstate10K camera file applied to poses from any trajectory file.

    ``c2w``: (F, 4, 4) or (F, 3, 4) real numbers, 1 <= F <= ``MAX_POSES``, every entry finite, every
    rotation block orthonormal (max |R R^T - I| <= 1e-3) with det +1 (not a reflection), the bottom row of
    a 4x4 matrix (0, 0, 0, 1). Returns (F, 4, 4) float64; InputError naming the file and pose otherwise."""
    arr = np.asarray(c2w)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{path}: poses must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[1:] not in ((4, 4), (3, 4)) or len(arr) == 0:
        raise InputError(f"{path}: expected a non-empty list of 4x4 or 3x4 matrices, got shape {arr.shape}")
    if len(arr) > MAX_POSES:
        raise InputError(f"{path}: {len(arr)} poses, more than the limit of {MAX_POSES}")
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr).all(axis=(1, 2))
    if not finite.all():
        raise InputError(f"{path}: pose {int(np.argmin(finite))} has a NaN or infinite entry")
    if arr.shape[1] == 4:
        bottom = np.abs(arr[:, 3] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1)
        if (bottom > ROTATION_TOL).any():
            k = int(np.argmax(bottom > ROTATION_TOL))
            raise InputError(f"{path}: pose {k}: the bottom row must be 0 0 0 1, got {arr[k, 3].tolist()}")
    R = arr[:, :3, :3]
    err = np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2))
    if (err > ROTATION_TOL).any():
        k = int(np.argmax(err > ROTATION_TOL))
        raise InputError(f"{path}: pose {k}: rotation is not orthonormal (max |R R^T - I| = {err[k]:.3g})")
    det = np.linalg.det(R)
    if (det < 0).any():
        k = int(np.argmax(det < 0))
        raise InputError(f"{path}: pose {k}: rotation has det {det[k]:.3g} < 0 (a reflection)")
    return np.asarray(to_homogeneous(arr))


def _read(path: Path) -> bytes:
    from vid3d.data.files import read_regular_bytes

    try:
        return read_regular_bytes(path, MAX_TRAJECTORY_BYTES)
    except ValueError as e:  # a FIFO, a device, an oversized file
        raise InputError(f"{e} (trajectory.path)") from None


def _load_json(path: Path) -> np.ndarray:
    from vid3d.data.files import load_json

    try:  # a regular file only (a FIFO never blocks), size- and depth-limited (never a RecursionError)
        data = load_json(path, MAX_TRAJECTORY_BYTES)
    except ValueError as e:
        raise InputError(str(e)) from None
    convention = "opencv"
    if isinstance(data, dict):
        convention = data.get("convention", "opencv")
        if "c2w" not in data:
            raise InputError(f"{path}: JSON object needs a 'c2w' key (list of 4x4 matrices)")
        data = data["c2w"]
    if convention not in ("opencv", "opengl"):
        raise InputError(f"{path}: 'convention' must be 'opencv' or 'opengl', got {convention!r}")
    if not isinstance(data, list) or any(isinstance(x, (str, bool)) for x in _leaves(data)):
        raise InputError(f"{path}: 'c2w' must be a list of 4x4 (or 3x4) numeric matrices")
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as e:
        raise InputError(f"{path}: 'c2w' must be a list of 4x4 (or 3x4) numeric matrices: {e}") from None
    arr = check_c2w(arr, path)
    if convention == "opengl":
        from vid3d.geometry import opengl_to_opencv_c2w

        arr = np.asarray(opengl_to_opencv_c2w(arr))
    return arr


def _leaves(data: list) -> list:
    """The non-list items of nested lists (iterative; the depth is bounded by ``load_json``)."""
    out, stack = [], [data]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        else:
            out.append(x)
    return out


def _load_npy(path: Path) -> np.ndarray:
    import io

    try:
        arr = np.load(io.BytesIO(_read(path)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # pickled objects, a bad header, a truncated file
        raise InputError(f"{path}: not a readable .npy array ({str(e).splitlines()[0]})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{path}: not a .npy array")
    return check_c2w(arr, path)


def load_trajectory_file(
    path: str | Path, num_frames: int | None = None, resample: bool = False, use_intrinsics: bool = True
) -> Trajectory:
    """Load a camera path, make it relative to its first frame and fit it to ``num_frames``.

    Formats (by suffix):
      - ``.txt``: RealEstate10K camera file (``vid3d.data.formats.re10k.read_camera_file``); CamI2V's pose
        files (one placeholder timestamp on every line, a mirrored world frame) are read too, with a
        warning.
      - ``.json``: either a list of F camera-to-world matrices, each 4x4 (or 3x4) as row-major nested
        lists in OpenCV axes, or an object ``{"c2w": [...], "convention": "opencv" | "opengl"}``
        (OpenGL/nerfstudio axes are converted to OpenCV).
      - ``.npy``: array (F, 4, 4) or (F, 3, 4) of OpenCV camera-to-world matrices.
    Every format gets the checks of ``check_c2w`` (finite, rotations with det +1, at most ``MAX_POSES``
    poses); only a regular file of at most ``MAX_TRAJECTORY_BYTES`` is read. A refusal is one InputError
    line naming the file and the pose.
    Args:
        num_frames: if given, the path is sampled at this many frames spread uniformly over the file's
            full time span (slerp rotation, linear translation between neighbouring poses).
        resample: allow ``num_frames`` above the number of poses in the file (interpolated poses);
            without it such a file is an error naming it (a 1-pose file would be a static video).
        use_intrinsics: keep a RealEstate10K file's intrinsics (``Trajectory.K_norm``, resampled with
            the poses: nearest pose) so the video is generated with the recording camera's field of view,
            rescaled to the output size; False uses the input image's.
    Returns:
        ``Trajectory`` (c2w relative to the first pose, K_scale None, name = file stem).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"trajectory file not found: {path} (trajectory.path)")
    suffix = path.suffix.lower()
    K_norm = None
    if suffix == ".txt":
        from vid3d.data.formats.re10k import read_camera_file

        _read(path)  # a regular file within the size limit, refused with this message otherwise
        # the URL line, then one line per pose; CamI2V's pose files accepted (a warning says how)
        cams = read_camera_file(path, max_lines=MAX_POSES + 1, path_only=True)
        c2w = check_c2w(cams.c2w(), path)
        K_norm = np.asarray(cams.K_norm, dtype=np.float64) if use_intrinsics else None
    elif suffix == ".json":
        c2w = _load_json(path)
    elif suffix == ".npy":
        c2w = _load_npy(path)
    else:
        raise InputError(f"{path}: unsupported trajectory file type {suffix!r} (use .txt, .json or .npy)")
    c2w = np.asarray(relative_to_first(c2w))
    if num_frames is not None:
        if len(c2w) < num_frames and not resample:
            raise InputError(
                f"{path}: {len(c2w)} camera pose(s) for {num_frames} frames; give a file with at least "
                f"{num_frames} poses, or set trajectory.resample=true to interpolate between them"
            )
        if K_norm is not None:  # the recording camera of the nearest input pose
            K_norm = K_norm[np.rint(np.linspace(0.0, len(c2w) - 1.0, num_frames)).astype(int)]
        c2w = np.asarray(relative_to_first(resample_c2w(c2w, num_frames)))
    return Trajectory(c2w=c2w, K_scale=None, name=path.stem, K_norm=K_norm)


def compose_segments(segments: Sequence[np.ndarray | Trajectory]) -> np.ndarray:
    """Chain relative trajectories into one path (single-view exploration).

    Each segment (F_i, 4, 4) is first made relative to its own first pose, then placed so that it starts
    at the previous segment's last pose: ``global = last_prev @ seg[j]``. The first pose of every later
    segment equals the previous segment's last pose and is dropped, so the result has
    ``N = F_1 + sum_{i>1} (F_i - 1)`` poses, float64, continuous at the joins, with ``out[0] = I``.
    """
    if len(segments) == 0:
        raise ValueError("compose_segments needs at least one segment")
    parts: list[np.ndarray] = []
    last = np.eye(4)
    for k, seg in enumerate(segments):
        arr = seg.c2w if isinstance(seg, Trajectory) else np.asarray(seg, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[1:] != (4, 4) or len(arr) == 0:
            raise ValueError(f"segment {k}: expected (F, 4, 4) poses, got shape {arr.shape}")
        placed = last[None] @ np.asarray(relative_to_first(arr))
        parts.append(placed if k == 0 else placed[1:])
        last = placed[-1]
    return np.concatenate(parts, axis=0)
