"""Camera trajectories for the synthetic scenes: forward walks, pans, orbits, dollies and the ten real
RealEstate10K trajectories shipped in ``vid3d/data/assets/re10k_trajectories``.

All functions return ``c2w`` (N, 4, 4) float64 OpenCV camera-to-world poses in a y-down world
(world up = -y, so a level camera has c2w[:3, :3] = yaw rotation about y). Local generators start at
the origin looking along +z; ``fit_in_box`` then rotates (about the vertical), shrinks and
translates a trajectory so every camera centre lies inside an axis-aligned box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vid3d.geometry import axis_angle_to_matrix, look_at_c2w, normalize_scale, relative_to_first

__all__ = [
    "RE10K_ASSETS",
    "dolly",
    "fit_in_box",
    "level_c2w",
    "orbit",
    "pan",
    "re10k",
    "re10k_files",
    "walk",
]

RE10K_ASSETS = Path(__file__).resolve().parents[1] / "assets" / "re10k_trajectories"
UP = np.array([0.0, -1.0, 0.0])


def _ease(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) progress from 0 to 1: a random blend of constant speed and smooth start/stop."""
    tau = np.linspace(0.0, 1.0, n)
    a = rng.uniform(0.0, 1.0)
    return (1 - a) * tau + a * tau * tau * (3 - 2 * tau)


def level_c2w(centres: np.ndarray, yaw: np.ndarray, pitch: np.ndarray | float = 0.0) -> np.ndarray:
    """(N, 4, 4) cameras at ``centres`` (N, 3) with heading ``yaw`` (rad, 0 = +z, positive turns
    towards +x) and ``pitch`` (rad, positive looks down)."""
    yaw = np.array(np.broadcast_to(np.asarray(yaw, float), (len(centres),)))
    pitch = np.array(np.broadcast_to(np.asarray(pitch, float), (len(centres),)))
    R_yaw = axis_angle_to_matrix(np.tile([0.0, 1.0, 0.0], (len(centres), 1)), yaw)
    R_pitch = axis_angle_to_matrix(np.tile([1.0, 0.0, 0.0], (len(centres), 1)), -pitch)
    c2w = np.tile(np.eye(4), (len(centres), 1, 1))
    c2w[:, :3, :3] = R_yaw @ R_pitch
    c2w[:, :3, 3] = centres
    return c2w


def walk(n: int, rng: np.random.Generator, speed: float | None = None, fps: float = 30.0) -> np.ndarray:
    """Forward walk: ``speed`` m/s (random 0.5-1.3) along a gently curving path, slight bob, the gaze
    turned 12-30 degrees to one side of the walking direction (a walker looks around; a camera moving
    exactly along its optical axis is the ill-conditioned case for structure-from-motion, which
    measured 3-20 deg/frame rotation errors on the ground-truth videos)."""
    speed = rng.uniform(0.5, 1.3) if speed is None else speed
    s = _ease(n, rng) * speed * n / fps
    turn = rng.uniform(-0.35, 0.35)  # total heading change (rad)
    yaw = turn * s / max(s[-1], 1e-9)
    step = np.diff(s, prepend=0.0)
    centres = np.zeros((n, 3))
    centres[:, 0] = np.cumsum(step * np.sin(yaw))
    centres[:, 2] = np.cumsum(step * np.cos(yaw))
    centres[:, 1] = 0.015 * np.sin(2 * np.pi * s / 0.7)
    gaze = np.deg2rad(rng.uniform(12, 30)) * rng.choice([-1, 1])
    return level_c2w(centres, yaw + gaze, rng.uniform(-0.08, 0.12))


def pan(n: int, rng: np.random.Generator, side: float | None = None) -> np.ndarray:
    """Pan: turn about the vertical by a random 20-70 degrees with a small tilt change, pivoting
    0.2-0.5 m behind the camera like a hand-held head turn, while stepping ``side`` metres sideways
    (random 0.4-0.9 m, either way). Without the step a pan is a near-pure rotation: too little
    parallax for structure-from-motion to triangulate (measured: no ground-truth pan registered)."""
    total = np.deg2rad(rng.uniform(20, 70)) * rng.choice([-1, 1])
    prog = _ease(n, rng)
    pitch = rng.uniform(-0.1, 0.1) + rng.uniform(-0.08, 0.08) * prog
    yaw = total * prog
    pivot_back = rng.uniform(0.2, 0.5)
    side = rng.uniform(0.4, 0.9) * rng.choice([-1, 1]) if side is None else side
    centres = np.stack([pivot_back * np.sin(yaw), np.zeros(n), pivot_back * (np.cos(yaw) - 1.0)], axis=1)
    centres[:, 0] += side * prog
    return level_c2w(centres, yaw, pitch)


def dolly(n: int, rng: np.random.Generator, distance: float | None = None) -> np.ndarray:
    """Dolly in (forward) or out (backward) by 0.6-1.8 m along a line 15-30 degrees off the optical
    axis (sideways, a little up or down): a push-in exactly along the axis is the ill-conditioned
    pure forward motion for structure-from-motion (measured: most ground-truth dollies failed)."""
    distance = rng.uniform(0.6, 1.8) * rng.choice([-1, 1]) if distance is None else distance
    pitch = rng.uniform(-0.1, 0.15)
    c2w = level_c2w(np.zeros((n, 3)), 0.0, pitch)
    off = np.deg2rad(rng.uniform(15, 30))
    az = rng.uniform(-0.35, 0.35) + rng.choice([0.0, np.pi])  # mostly left or right of the axis
    R = c2w[0, :3, :3]
    direction = R @ np.array([np.sin(off) * np.cos(az), np.sin(off) * np.sin(az), np.cos(off)])
    c2w[:, :3, 3] = _ease(n, rng)[:, None] * distance * direction
    return c2w


def orbit(
    n: int,
    rng: np.random.Generator,
    radius: float,
    target: np.ndarray | None = None,
    elevation: float | None = None,
    arc: float | None = None,
    radius_end: float | None = None,
) -> np.ndarray:
    """Orbit around ``target`` (default: ``radius`` ahead of the origin, same height) looking at it.

    elevation: camera height angle above the target (rad, random 0-0.35); arc: swept angle
    (rad, random +-40-120 degrees); radius_end: final radius (a spiral), default = radius.
    """
    target = np.array([0.0, 0.0, radius]) if target is None else np.asarray(target, float)
    elevation = rng.uniform(0.0, 0.35) if elevation is None else elevation
    arc = np.deg2rad(rng.uniform(40, 120)) * rng.choice([-1, 1]) if arc is None else arc
    prog = _ease(n, rng)
    r = radius + ((radius if radius_end is None else radius_end) - radius) * prog
    phi = np.pi + arc * prog  # phi = pi puts the first camera on -z of the target
    centres = target + np.stack(
        [
            r * np.cos(elevation) * np.sin(phi),
            -r * np.sin(elevation) * np.ones(n),
            r * np.cos(elevation) * np.cos(phi),
        ],
        axis=1,
    )
    return np.stack([look_at_c2w(c, target, UP) for c in centres])


def re10k_files() -> list[Path]:
    """The ten shipped RealEstate10K camera files, sorted."""
    return sorted(RE10K_ASSETS.glob("*.txt"))


def re10k(n: int, path: str | Path, extent: float) -> np.ndarray:
    """A real RealEstate10K trajectory: relative to its first camera, scaled so the furthest camera
    centre is ``extent`` metres from the first, resampled to ``n`` frames (cubic spline through the
    centres, rotation spline through the orientations, uniform in the file's timestamps)."""
    from scipy.interpolate import CubicSpline
    from scipy.spatial.transform import Rotation, RotationSpline

    from vid3d.data.formats.re10k import read_camera_file

    cams = read_camera_file(path)
    c2w, scale = normalize_scale(relative_to_first(cams.c2w()))
    c2w = np.asarray(c2w)
    times = (cams.timestamps - cams.timestamps[0]) / max(cams.timestamps[-1] - cams.timestamps[0], 1)
    query = np.linspace(0.0, 1.0, n)
    rots = Rotation.from_matrix(c2w[:, :3, :3])
    out = np.tile(np.eye(4), (n, 1, 1))
    out[:, :3, :3] = RotationSpline(times, rots)(query).as_matrix()
    out[:, :3, 3] = CubicSpline(times, c2w[:, :3, 3] * (extent if scale > 0 else 0.0))(query)
    return out


def fit_in_box(
    c2w: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    rng: np.random.Generator,
    extra_points: np.ndarray | None = None,
    first_y: float | None = None,
    yaw: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rotate a trajectory about the vertical through its first camera by ``yaw`` (random by default),
    shrink its translations about the first camera if needed, and translate it so all camera centres
    (and ``extra_points`` (M, 3), e.g. an orbit target) lie in the box [lo, hi] (3,) each.

    first_y: desired height (y) of the first camera, clamped to what fits.
    Returns (c2w (N, 4, 4), moved extra_points (M, 3) or None).
    """
    yaw = rng.uniform(-np.pi, np.pi) if yaw is None else yaw
    R = np.asarray(axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]), np.array(yaw)))
    origin = c2w[0, :3, 3].copy()
    pts = c2w[:, :3, 3] - origin
    extra = None if extra_points is None else np.asarray(extra_points, float) - origin
    allp = pts if extra is None else np.concatenate([pts, extra])
    allp = allp @ R.T
    room = np.asarray(hi, float) - np.asarray(lo, float)
    span = allp.max(0) - allp.min(0)
    shrink = min(1.0, float(np.min(room / np.maximum(span, 1e-9))) * 0.999)
    allp = allp * shrink
    tmin, tmax = np.asarray(lo) - allp.min(0), np.asarray(hi) - allp.max(0)
    shift = rng.uniform(tmin, tmax)
    if first_y is not None:
        shift[1] = np.clip(first_y, tmin[1], tmax[1])
    out = c2w.copy()
    out[:, :3, :3] = R @ c2w[:, :3, :3]
    out[:, :3, 3] = allp[: len(pts)] + shift
    moved = None if extra is None else allp[len(pts) :] + shift
    return out, moved
