"""Vectorised ray casting of a ``Scene`` through an exact pinhole camera (numpy, all pixels at once).

Conventions: OpenCV camera axes (x right, y down, z forward), ``c2w`` (4, 4) camera-to-world,
``K_px`` (3, 3) pixel intrinsics at (height, width), the ray of pixel (u, v) passes through
(u + 0.5, v + 0.5) (``vid3d.geometry.pixel_rays``). Depth is z-depth along the camera's optical
axis of the surface seen through the pixel centre, 0 where the ray hits nothing (sky).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vid3d.geometry import pixel_rays

from .primitives import INF, Primitive
from .textures import MaterialBank, shade, sky_colour

__all__ = ["Scene", "cast", "render_view", "render_views"]

WORLD_UP = np.array([0.0, -1.0, 0.0])  # the world is y-down, like the OpenCV camera


@dataclass
class Scene:
    """Primitives plus lighting. ``light_dir`` (3,) points from surfaces towards the light."""

    primitives: list[Primitive]
    light_dir: np.ndarray = field(default_factory=lambda: np.array([0.3, -0.8, -0.5]))
    ambient: float = 0.45
    sky: bool = False
    sky_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    fog_distance: float | None = None
    name: str = "scene"

    def __post_init__(self) -> None:
        self.light_dir = np.asarray(self.light_dir, float) / np.linalg.norm(self.light_dir)
        self._bank: MaterialBank | None = None

    @property
    def bank(self) -> MaterialBank:
        """The primitives' materials stacked for batched shading (material i = primitive i)."""
        if self._bank is None or len(self._bank.flat) != len(self.primitives):
            self._bank = MaterialBank([p.material for p in self.primitives])
        return self._bank


_RAY_CACHE: dict[tuple, np.ndarray] = {}


def _rays(K_px: np.ndarray, c2w: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre (3,) float64 and unit world directions (H*W, 3) float32 (row-major pixels).

    Camera-frame rays (``pixel_rays`` with an identity pose) are cached per (K_px, H, W); each view
    only rotates them by its c2w rotation.
    """
    K_px = np.array(K_px, dtype=float)  # a writable copy (torch warns about read-only arrays)
    key = (K_px.tobytes(), height, width)
    cam = _RAY_CACHE.get(key)
    if cam is None:
        _, d = pixel_rays(K_px[None], np.eye(4)[None], height, width)
        cam = np.ascontiguousarray(d.reshape(-1, 3), dtype=np.float64)
        if len(_RAY_CACHE) > 8:
            _RAY_CACHE.clear()
        _RAY_CACHE[key] = cam
    c2w = np.asarray(c2w, float)
    return c2w[:3, 3].copy(), (cam @ c2w[:3, :3].T).astype(np.float32)


def cast(scene: Scene, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of rays from ``origin`` (3,) along unit ``dirs`` (P, 3).

    Returns (t (P,) float32 distance, +inf on a miss; ids (P,) int index into scene.primitives, -1).
    Bounded primitives are only intersected with the rays inside their bounding sphere's cone.
    """
    t_best = np.full(len(dirs), INF, np.float32)
    ids = np.full(len(dirs), -1, np.int32)
    for i, prim in enumerate(scene.primitives):
        centre, radius = prim.bounding_sphere()
        to_c = centre - origin
        dist = float(np.linalg.norm(to_c))
        if np.isfinite(radius) and dist > radius * 1.001:
            cos_cone = np.sqrt(1.0 - (radius / dist) ** 2) - 1e-3
            sel = np.flatnonzero(dirs @ (to_c / dist).astype(np.float32) >= cos_cone)
            if sel.size == 0:
                continue
            t = prim.intersect(origin, dirs[sel])
            closer = t < t_best[sel]
            t_best[sel[closer]] = t[closer]
            ids[sel[closer]] = i
        else:
            t = prim.intersect(origin, dirs)
            closer = t < t_best
            t_best[closer] = t[closer]
            ids[closer] = i
    return t_best, ids


def _colour(scene: Scene, origin, dirs, t, ids, focal_px: float) -> np.ndarray:
    """Shade every hit in one batched pass (normals per primitive); sky (or black) elsewhere."""
    col = np.zeros((len(dirs), 3), np.float32)
    hit = np.flatnonzero(ids >= 0)
    miss = np.flatnonzero(ids < 0)
    if scene.sky and miss.size:
        col[miss] = sky_colour(dirs[miss], WORLD_UP, scene.sky_offset)
    if not hit.size:
        return col
    mat, d, th = ids[hit], dirs[hit], t[hit]
    p = origin.astype(np.float32) + d * th[:, None]
    n = np.empty_like(p)
    order = np.argsort(mat, kind="stable")
    bounds = np.searchsorted(mat[order], np.arange(len(scene.primitives) + 1))
    for i, prim in enumerate(scene.primitives):
        sel = order[bounds[i] : bounds[i + 1]]
        if sel.size:
            n[sel] = prim.normal(p[sel], d[sel])
    cos = np.abs(np.einsum("pi,pi->p", n, d))
    footprint = th / (np.float32(focal_px) * np.maximum(cos, 0.15))
    c = shade(
        scene.bank,
        mat,
        p[:, 0].copy(),
        p[:, 1].copy(),
        p[:, 2].copy(),
        n,
        footprint,
        scene.light_dir,
        scene.ambient,
    )
    if scene.fog_distance:
        fog = np.exp(-th / np.float32(scene.fog_distance))[:, None]
        c = c * fog + sky_colour(d, WORLD_UP, scene.sky_offset) * (1 - fog)
    col[hit] = c
    return col


def render_view(
    scene: Scene, K_px: np.ndarray, c2w: np.ndarray, height: int, width: int, supersample: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Render one view.

    Args:
        K_px: (3, 3) pixel intrinsics at (height, width). c2w: (4, 4) OpenCV camera-to-world.
        supersample: s > 1 renders colour at (s*H, s*W) and box-filters it (anti-aliasing).
    Returns:
        rgb (H, W, 3) uint8 and depth (H, W) float32 z-depth at pixel centres (0 = no surface).
    """
    K_px = np.asarray(K_px, float)
    origin, dirs = _rays(K_px, c2w, height, width)
    t, ids = cast(scene, origin, dirs)
    forward = np.asarray(c2w, float)[:3, 2].astype(np.float32)
    depth = np.where(ids >= 0, t * (dirs @ forward), 0.0).astype(np.float32).reshape(height, width)
    s = int(supersample)
    if s > 1:
        K_s = K_px * np.array([s, s, 1.0])[:, None]
        _, dirs_s = _rays(K_s, c2w, height * s, width * s)
        t_s, ids_s = cast(scene, origin, dirs_s)
        col = _colour(scene, origin, dirs_s, t_s, ids_s, K_s[0, 0])
        col = col.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    else:
        col = _colour(scene, origin, dirs, t, ids, K_px[0, 0]).reshape(height, width, 3)
    rgb = np.clip(col * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return rgb, depth


def render_views(
    scene: Scene, K_px: np.ndarray, c2w: np.ndarray, height: int, width: int, supersample: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Render F views: K_px (F, 3, 3) or (3, 3), c2w (F, 4, 4) -> rgb (F, H, W, 3) uint8, depth (F, H, W)."""
    c2w = np.asarray(c2w, float)
    K = np.broadcast_to(np.asarray(K_px, float), (len(c2w), 3, 3))
    out = [render_view(scene, K[i], c2w[i], height, width, supersample) for i in range(len(c2w))]
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])
