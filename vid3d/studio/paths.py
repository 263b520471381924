"""Camera-path editing for the studio: a keyframe table turned into poses, and the frustum plot.

Conventions (as ``vid3d.sampling.trajectories``): OpenCV camera axes (x right, y down, z forward); poses
are camera-to-world (F, 4, 4) float64, relative to the first frame (``c2w[0] = I``).

A keyframe row is ``frame, x, y, z, yaw_deg, pitch_deg, roll_deg``: the camera centre in the first camera's
coordinates (scene units: the presets move 0.25 / 0.5 / 1.0 for small / medium / large) and its rotation
``R = R_y(yaw) R_x(pitch) R_z(roll)`` about the camera's own axes, with the presets' signs: yaw > 0 turns
the view right (as ``pan_right``), pitch > 0 looks up (as ``tilt_up``), roll > 0 rotates about +z.
Between two keyframes the poses are interpolated by ``vid3d.sampling.resample_c2w`` (rotation slerped,
centre linear) at the frames between them; after the last keyframe the camera holds its pose.
"""

from __future__ import annotations

import math

import numpy as np

from vid3d.errors import InputError
from vid3d.geometry import axis_angle_to_matrix, relative_to_first
from vid3d.sampling.trajectories import Trajectory, resample_c2w

__all__ = ["KEYFRAME_COLUMNS", "default_keyframes", "frustum_figure", "keyframe_pose", "keyframes_to_c2w"]

KEYFRAME_COLUMNS = ("frame", "x", "y", "z", "yaw_deg", "pitch_deg", "roll_deg")
MAX_KEYFRAMES = 64


def default_keyframes(num_frames: int) -> list[list[float]]:
    """A starting table: still at frame 0, then forward 0.5 while turning 20 degrees right."""
    last = max(int(num_frames) - 1, 1)
    return [[0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [last, 0.0, 0.0, 0.5, 20.0, 0.0, 0.0]]


def keyframe_pose(
    x: float, y: float, z: float, yaw_deg: float, pitch_deg: float, roll_deg: float
) -> np.ndarray:
    """(4, 4) float64 camera-to-world pose of one keyframe row (module docstring for the conventions)."""
    axes = np.eye(3)[[1, 0, 2]]  # y, x, z
    angles = np.radians([yaw_deg, pitch_deg, roll_deg])
    Rs = np.asarray(axis_angle_to_matrix(axes, angles), dtype=np.float64)  # (3, 3, 3)
    c2w = np.eye(4)
    c2w[:3, :3] = Rs[0] @ Rs[1] @ Rs[2]
    c2w[:3, 3] = (x, y, z)
    return c2w


def _rows(table) -> list[list[float]]:
    """Rows of numbers from a list of lists or a pandas DataFrame; blank rows are skipped."""
    if hasattr(table, "values") and hasattr(table, "columns"):  # pandas (gr.Dataframe's value)
        table = table.values.tolist()
    rows = []
    for k, row in enumerate(table or []):
        cells = ["" if c is None else c for c in list(row)]
        if all(str(c).strip() == "" for c in cells):
            continue
        if len(cells) != len(KEYFRAME_COLUMNS):
            raise InputError(
                f"keyframes row {k + 1}: expected {len(KEYFRAME_COLUMNS)} columns "
                f"({', '.join(KEYFRAME_COLUMNS)}), got {len(cells)}"
            )
        try:
            values = [float(c) for c in cells]
        except (TypeError, ValueError):
            raise InputError(f"keyframes row {k + 1}: every cell must be a number, got {cells}") from None
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"keyframes row {k + 1}: every cell must be a finite number, got {cells}")
        rows.append(values)
    return rows


def keyframes_to_c2w(table, num_frames: int) -> np.ndarray:
    """Poses (num_frames, 4, 4) float64, ``c2w[0] = I``, from a keyframe table.

    ``table``: rows ``frame, x, y, z, yaw_deg, pitch_deg, roll_deg`` (list of lists or a DataFrame). The
    frames must be whole numbers, strictly increasing, the first 0 and none past ``num_frames - 1``.
    A mistake is one InputError line naming the row."""
    rows = _rows(table)
    if not rows:
        raise InputError("keyframes: the table is empty; give at least the row for frame 0")
    if len(rows) > MAX_KEYFRAMES:
        raise InputError(f"keyframes: {len(rows)} rows, more than the limit of {MAX_KEYFRAMES}")
    frames = []
    for k, row in enumerate(rows):
        f = row[0]
        if f != int(f):
            raise InputError(f"keyframes row {k + 1}: frame must be a whole number, got {f:g}")
        if not 0 <= f <= num_frames - 1:
            raise InputError(f"keyframes row {k + 1}: frame {int(f)} is outside 0..{num_frames - 1}")
        if frames and f <= frames[-1]:
            raise InputError(f"keyframes row {k + 1}: frame {int(f)} must come after frame {frames[-1]}")
        frames.append(int(f))
    if frames[0] != 0:
        raise InputError(f"keyframes row 1: the first keyframe must be frame 0, got {frames[0]}")
    keys = np.stack([keyframe_pose(*row[1:]) for row in rows])
    out = np.tile(np.eye(4), (num_frames, 1, 1))
    out[0] = keys[0]
    for k in range(len(keys) - 1):  # frames[k]..frames[k+1], both ends included
        a, b = frames[k], frames[k + 1]
        out[a : b + 1] = resample_c2w(keys[k : k + 2], b - a + 1)
    out[frames[-1] :] = keys[-1]
    return np.asarray(relative_to_first(out), dtype=np.float64)


def _frustum_lines(c2w: np.ndarray, K_px: np.ndarray, hw: tuple[int, int], depth: float) -> list[np.ndarray]:
    """Per camera, the (8, 2, 3) segments of its image-plane pyramid at ``depth`` in world coordinates."""
    h, w = hw
    corners = np.array([[0.0, 0.0, 1.0], [w, 0.0, 1.0], [w, h, 1.0], [0.0, h, 1.0]])
    out = []
    for i in range(len(c2w)):
        K = K_px[i] if np.ndim(K_px) == 3 else K_px
        rays = corners @ np.linalg.inv(K).T * depth  # (4, 3) in the camera
        pts = rays @ c2w[i, :3, :3].T + c2w[i, :3, 3]
        o = c2w[i, :3, 3]
        segs = [(o, p) for p in pts] + [(pts[j], pts[(j + 1) % 4]) for j in range(4)]
        out.append(np.array(segs))
    return out


def frustum_figure(
    paths: dict[str, np.ndarray | Trajectory],
    K_px: np.ndarray,
    hw: tuple[int, int],
    title: str | None = None,
    size_px: int = 420,
):
    """A matplotlib Figure: ``vid3d.viz.trajectory_figure`` (centres, viewing arrows) with each camera's
    frustum drawn over it. ``K_px``: (3, 3) or (F, 3, 3) pixel intrinsics at ``hw`` = (H, W) of the first
    path; frustum depth 12% of the paths' extent (0.15 when the camera does not move)."""
    from vid3d.viz.trajectory_plot import trajectory_figure

    fig = trajectory_figure(paths, title=title, size_px=size_px)
    ax = fig.axes[0]
    perm = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # the plot's (x, z, -y), as trajectory_figure
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    arrays = {k: np.asarray(v.c2w if isinstance(v, Trajectory) else v, np.float64) for k, v in paths.items()}
    centres = np.concatenate([a[:, :3, 3] for a in arrays.values()])
    extent = float((centres.max(0) - centres.min(0)).max())
    depth = 0.12 * extent if extent > 1e-9 else 0.15
    for i, (_, c2w) in enumerate(arrays.items()):
        K = K_px if len(np.shape(K_px)) == 2 or len(K_px) == len(c2w) else K_px[0]
        for segs in _frustum_lines(c2w, np.asarray(K, np.float64), hw, depth):
            for a, b in segs @ perm.T:
                ax.plot(*zip(a, b, strict=True), color=colors[i % len(colors)], linewidth=0.6, alpha=0.7)
    return fig


def parse_amplitude(value: str | float) -> str | float:
    """The presets' amplitude: "small" | "medium" | "large" or a number in the preset's unit."""
    text = str(value).strip()
    if text in ("small", "medium", "large"):
        return text
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"amplitude: give small, medium, large or a number, got {text!r}") from None
    if not math.isfinite(number):
        raise InputError(f"amplitude: must be a finite number, got {text!r}")
    return number
