"""Procedural scenes (indoor room, outdoor ground with objects, object on a turntable) and the camera
trajectory of each synthetic clip.

World frame: y-down (world up = -y), floor/ground at y = 0, metres. Every clip is a deterministic
function of (seed, index): ``make_clip(index, seed, num_frames, texture_scale)`` draws the scene kind, the
trajectory, the cameras (OpenCV c2w) and then places objects away from every camera centre, so the
camera never passes through or right next to geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import trajectories as traj
from .primitives import Box, Cylinder, Plane, Primitive, Sphere
from .render import Scene
from .textures import feature_scale, random_material

__all__ = ["KINDS", "TRAJECTORIES", "ClipSpec", "make_clip", "outdoor_scene", "room_scene", "turntable_scene"]

KINDS = ("room", "outdoor", "turntable")
TRAJECTORIES = {
    "room": ("walk", "re10k", "pan", "orbit", "dolly", "re10k"),
    "outdoor": ("walk", "orbit", "re10k", "pan", "dolly"),
    "turntable": ("orbit", "spiral"),
}


@dataclass
class ClipSpec:
    """One synthetic clip: scene, cameras c2w (N, 4, 4) OpenCV camera-to-world, horizontal FOV."""

    clip_id: str
    kind: str
    trajectory: str
    scene: Scene
    c2w: np.ndarray
    hfov_deg: float


def _box_planes(rng: np.random.Generator, half_x: float, height: float, half_z: float) -> list[Primitive]:
    """Floor (y=0), ceiling (y=-height) and four walls of a room, each with its own material."""
    floor = Plane(
        random_material(rng, style="tiles" if rng.random() < 0.6 else None),
        n=np.array([0, 1.0, 0]),
        offset=0.0,
    )
    prims: list[Primitive] = [floor, Plane(random_material(rng), n=np.array([0, 1.0, 0]), offset=-height)]
    for axis, half in ((0, half_x), (2, half_z)):
        for sign in (-1.0, 1.0):
            n = np.zeros(3)
            n[axis] = 1.0
            prims.append(Plane(random_material(rng), n=n, offset=sign * half))
    return prims


def _clear(
    xz: np.ndarray, radius: float, cam_xz: np.ndarray, taken: list[tuple[np.ndarray, float]], margin: float
) -> bool:
    """True if a footprint circle (centre xz, radius) keeps ``margin`` from every camera centre and
    does not overlap the circles already taken."""
    if np.min(np.linalg.norm(cam_xz - xz, axis=1)) < radius + margin:
        return False
    return all(np.linalg.norm(xz - c) >= radius + r + 0.05 for c, r in taken)


def _random_object(
    rng: np.random.Generator, xz: np.ndarray, kind: str, size: float, max_height: float
) -> tuple[list[Primitive], float]:
    """One object standing on the floor at ``xz``; returns (primitives, footprint radius)."""
    x, z = float(xz[0]), float(xz[1])
    if kind == "box":
        half = np.array([rng.uniform(0.2, 0.7), 0.0, rng.uniform(0.2, 0.7)]) * size
        half[1] = min(rng.uniform(0.2, 0.6) * size, max_height / 2)
        box = Box(
            random_material(rng), centre=np.array([x, -half[1], z]), half=half, yaw=rng.uniform(0, np.pi)
        )
        prims: list[Primitive] = [box]
        r_xz = float(np.hypot(half[0], half[2]))
        if rng.random() < 0.5:  # something on top
            r = float(rng.uniform(0.3, 0.8) * min(half[0], half[2]))
            if 2 * half[1] + 2 * r < max_height:
                prims.append(
                    Sphere(random_material(rng), centre=np.array([x, -2 * half[1] - r, z]), radius=r)
                )
        return prims, r_xz
    if kind == "sphere":
        r = min(rng.uniform(0.15, 0.45) * size, max_height / 2)
        return [Sphere(random_material(rng), centre=np.array([x, -r, z]), radius=r)], r
    r = rng.uniform(0.1, 0.25) * size
    h = min(rng.uniform(1.0, 3.0) * size, max_height)
    return [Cylinder(random_material(rng), cx=x, cz=z, radius=r, y0=-h, y1=0.0)], r


def _populate(
    rng,
    c2w,
    sample_xz,
    count: int,
    size: float,
    max_height: float,
    margin: float,
    taken=None,
    tries: int = 60,
) -> list[Primitive]:
    cam_xz = c2w[:, :3, 3][:, [0, 2]]
    taken = list(taken or [])
    prims: list[Primitive] = []
    kinds = ("box", "box", "sphere", "pillar")
    for _ in range(count):
        kind = kinds[rng.integers(len(kinds))]
        for _ in range(tries):
            xz = sample_xz()
            objs, r = _random_object(rng, xz, kind, size, max_height)
            if _clear(xz, r, cam_xz, taken, margin):
                prims += objs
                taken.append((xz, r))
                break
    return prims


def _light(rng: np.random.Generator) -> np.ndarray:
    """A light direction from above (-y) at a random azimuth, 35-60 degrees elevation."""
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(np.deg2rad(35), np.deg2rad(60))
    return np.array([np.cos(az) * np.cos(el), -np.sin(el), np.sin(az) * np.cos(el)])


def _centrepiece(rng: np.random.Generator, target: np.ndarray, r: float) -> tuple[list[Primitive], tuple]:
    """A box standing on the floor with a sphere of radius ``r`` on top centred at ``target`` (an orbit
    target gets something to look at); returns (primitives, taken footprint circle)."""
    top = max(-target[1] - r, 0.2)
    half = r * 1.4
    prims = [
        Box(
            random_material(rng),
            centre=np.array([target[0], -top / 2, target[2]]),
            half=np.array([half, top / 2, half]),
            yaw=rng.uniform(0, np.pi),
        ),
        Sphere(random_material(rng), centre=np.array([target[0], -top - r, target[2]]), radius=r),
    ]
    return prims, (np.asarray(target)[[0, 2]], half * 1.5)


def _view_sampler(rng: np.random.Generator, c2w: np.ndarray, near: float, far: float):
    """Sample floor positions (x, z) inside the cameras' horizontal fields of view."""
    fwd = c2w[:, :3, 2]

    def sample():
        i = rng.integers(len(c2w))
        yaw = np.arctan2(fwd[i, 0], fwd[i, 2]) + rng.uniform(-0.6, 0.6)
        dist = near + (far - near) * rng.random() ** 1.5
        return c2w[i, [0, 2], 3] + dist * np.array([np.sin(yaw), np.cos(yaw)])

    return sample


def room_scene(
    rng: np.random.Generator,
    c2w: np.ndarray,
    half_x: float,
    height: float,
    half_z: float,
    centrepiece: np.ndarray | None = None,
) -> Scene:
    """Box room [-half_x, half_x] x [-height, 0] x [-half_z, half_z] with furniture (boxes, spheres,
    pillars; mostly in the cameras' view) placed >= 0.45 m from every camera centre; an optional
    centrepiece whose sphere is centred at ``centrepiece`` (3,)."""
    prims = _box_planes(rng, half_x, height, half_z)
    taken = []
    if centrepiece is not None:
        extra, circle = _centrepiece(rng, centrepiece, 0.18)
        prims += extra
        taken.append(circle)
    in_view = _view_sampler(rng, c2w, 1.0, 2.0 * max(half_x, half_z))
    lo, hi = np.array([-half_x + 0.3, -half_z + 0.3]), np.array([half_x - 0.3, half_z - 0.3])

    def sample():
        xz = in_view() if rng.random() < 0.7 else rng.uniform(lo, hi)
        return np.clip(xz, lo, hi)

    prims += _populate(rng, c2w, sample, int(rng.integers(8, 13)), 1.0, height - 0.3, 0.45, taken)
    return Scene(prims, light_dir=_light(rng), ambient=0.6, name="room")


def outdoor_scene(rng: np.random.Generator, c2w: np.ndarray, centrepiece: np.ndarray | None = None) -> Scene:
    """Textured ground plane under a sky, with boxes, spheres and pillars placed in the cameras'
    fields of view (2-14 m away) and >= 1 m from every camera centre; distance fog; an optional
    centrepiece whose sphere is centred at ``centrepiece`` (3,)."""
    prims: list[Primitive] = [Plane(random_material(rng, scale=2.0), n=np.array([0, 1.0, 0]), offset=0.0)]
    taken = []
    if centrepiece is not None:
        extra, circle = _centrepiece(rng, centrepiece, 0.5)
        prims += extra
        taken.append(circle)
    prims += _populate(
        rng, c2w, _view_sampler(rng, c2w, 2.0, 14.0), int(rng.integers(18, 26)), 2.0, 8.0, 1.0, taken
    )
    return Scene(
        prims,
        light_dir=_light(rng),
        ambient=0.45,
        sky=True,
        sky_offset=rng.uniform(-100, 100, 3),
        fog_distance=90.0,
        name="outdoor",
    )


def turntable_scene(rng: np.random.Generator, plinth_height: float) -> tuple[Scene, np.ndarray]:
    """Objects on a round plinth at the origin inside a textured studio; returns (scene, target)."""
    prims = _box_planes(rng, 5.0, 4.5, 5.0)
    plinth_r = rng.uniform(0.6, 0.9)
    prims.append(
        Cylinder(
            random_material(rng, style="tiles"), cx=0.0, cz=0.0, radius=plinth_r, y0=-plinth_height, y1=0.0
        )
    )
    half = rng.uniform(0.18, 0.3, 3)
    top = plinth_height + 2 * half[1]
    prims.append(
        Box(
            random_material(rng),
            centre=np.array([0.0, -plinth_height - half[1], 0.0]),
            half=half,
            yaw=rng.uniform(0, np.pi),
        )
    )
    r = rng.uniform(0.12, 0.2)
    prims.append(Sphere(random_material(rng), centre=np.array([0.0, -top - r, 0.0]), radius=r))
    for k in range(3):  # small objects around the main one
        ang = 2 * np.pi * k / 3 + rng.uniform(-0.4, 0.4)
        rad = rng.uniform(0.4, plinth_r - 0.12)
        x, z = rad * np.cos(ang), rad * np.sin(ang)
        s = rng.uniform(0.07, 0.12)
        if rng.random() < 0.5:
            prims.append(Sphere(random_material(rng), centre=np.array([x, -plinth_height - s, z]), radius=s))
        else:
            prims.append(
                Cylinder(
                    random_material(rng), cx=x, cz=z, radius=s, y0=-plinth_height - 3 * s, y1=-plinth_height
                )
            )
    target = np.array([0.0, -plinth_height - half[1] - 0.1, 0.0])
    return Scene(prims, light_dir=_light(rng), ambient=0.6, name="turntable"), target


def _studio_props(rng: np.random.Generator, c2w: np.ndarray) -> list[Primitive]:
    """5-8 boxes, spheres and pillars standing in the turntable studio (mostly behind the plinth as
    the orbit sees it), clear of the plinth and >= 0.5 m from every camera centre. They give the
    views depth between the object and the walls: measured without them, orbits around the plinth had
    up to 3.5 deg/frame COLMAP rotation error on the ground-truth video (a rotation/relief ambiguity)."""
    in_view = _view_sampler(rng, c2w, 2.5, 6.5)
    lim = 5.0 - 0.9

    def sample():
        xz = in_view() if rng.random() < 0.7 else rng.uniform(-lim, lim, 2)
        return np.clip(xz, -lim, lim)

    return _populate(rng, c2w, sample, int(rng.integers(5, 9)), 0.8, 3.0, 0.5, [(np.zeros(2), 1.0)])


def _free_distance(c2w: np.ndarray, half_x: float, height: float, half_z: float) -> float:
    """Smallest distance, over all cameras, from the camera centre along its optical axis to the
    walls/floor/ceiling of the room [-half_x, half_x] x [-height, 0] x [-half_z, half_z]."""
    c, f = c2w[:, :3, 3], c2w[:, :3, 2]
    lo, hi = np.array([-half_x, -height, -half_z]), np.array([half_x, 0.0, half_z])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(f > 0, (hi - c) / f, np.where(f < 0, (lo - c) / f, np.inf))
    return float(t.min(axis=1).min())


def make_clip(index: int, seed: int, num_frames: int, texture_scale: float = 1.0) -> ClipSpec:
    """The ``index``-th clip of the dataset drawn from ``seed`` (scene kind cycles room/outdoor/turntable).

    texture_scale: feature size of every texture (see ``textures.feature_scale``); > 1 gives smoother
    scenes with the same geometry and cameras (easier for a small model to learn)."""
    with feature_scale(texture_scale):
        return _make_clip(index, seed, num_frames)


def _make_clip(index: int, seed: int, num_frames: int) -> ClipSpec:
    rng = np.random.default_rng([int(seed), int(index)])
    kind = KINDS[index % len(KINDS)]
    options = TRAJECTORIES[kind]
    motion = options[(index // len(KINDS)) % len(options)]
    n = num_frames
    hfov = float(rng.uniform(60.0, 70.0))
    if kind == "turntable":
        plinth = rng.uniform(0.6, 0.9)
        scene, target = turntable_scene(rng, plinth)
        radius = rng.uniform(1.8, 2.6)
        end = radius * rng.uniform(0.75, 1.2) if motion == "spiral" else None
        arc = np.deg2rad(rng.uniform(45, 120)) * rng.choice([-1, 1])
        c2w = traj.orbit(n, rng, radius, target, rng.uniform(0.15, 0.55), arc, end)
        scene.primitives += _studio_props(rng, c2w)
        return ClipSpec(f"{kind}_{index:04d}", kind, motion, scene, c2w, hfov)

    outdoor = kind == "outdoor"
    extra = None
    if motion == "walk":
        local = traj.walk(n, rng, speed=rng.uniform(1.0, 3.0) if outdoor else None)
    elif motion == "pan":
        local = traj.pan(n, rng, side=rng.uniform(1.0, 2.5) * rng.choice([-1, 1]) if outdoor else None)
    elif motion == "dolly":
        local = traj.dolly(n, rng, distance=rng.uniform(1.5, 4.0) * rng.choice([-1, 1]) if outdoor else None)
    elif motion == "orbit":
        radius = rng.uniform(3.0, 8.0) if outdoor else rng.uniform(1.3, 2.0)
        arc = np.deg2rad(rng.uniform(20, 60) if outdoor else rng.uniform(40, 120)) * rng.choice([-1, 1])
        local = traj.orbit(n, rng, radius, elevation=rng.uniform(0.05, 0.3 if outdoor else 0.45), arc=arc)
        extra = np.array([[0.0, 0.0, radius]])
    else:
        files = traj.re10k_files()
        local = traj.re10k(
            n, files[index % len(files)], rng.uniform(2.0, 6.0) if outdoor else rng.uniform(0.8, 2.2)
        )

    if outdoor:
        lo, hi = np.array([-40.0, -2.2, -40.0]), np.array([40.0, -1.0, 40.0])
        c2w, moved = traj.fit_in_box(local, lo, hi, rng, extra, first_y=-rng.uniform(1.4, 1.8))
        scene = outdoor_scene(rng, c2w, centrepiece=moved[0] if moved is not None else None)
        return ClipSpec(f"{kind}_{index:04d}", kind, motion, scene, c2w, hfov)

    half_x, half_z, height = rng.uniform(2.5, 4.0), rng.uniform(2.5, 4.0), rng.uniform(2.6, 3.2)
    margin = 0.6
    lo = np.array([-half_x + margin, -height + 0.5, -half_z + margin])
    hi = np.array([half_x - margin, -0.6, half_z - margin])
    first_y = -rng.uniform(1.3, 1.7)
    best = None
    for _ in range(40):  # prefer placements that look into the room rather than at a nearby wall
        c2w, moved = traj.fit_in_box(local, lo, hi, rng, extra, first_y=first_y)
        free = _free_distance(c2w, half_x, height, half_z)
        if best is None or free > best[0]:
            best = (free, c2w, moved)
        if free >= 1.8:
            break
    _, c2w, moved = best
    centre = moved[0] if moved is not None else None
    scene = room_scene(rng, c2w, half_x, height, half_z, centrepiece=centre)
    return ClipSpec(f"{kind}_{index:04d}", kind, motion, scene, c2w, hfov)
