"""Analytic ray-cast primitives: planes, spheres, vertical-axis boxes and vertical cylinders.

World frame: y points DOWN (like OpenCV's camera y), so "up" is -y and the floor is a plane y = const
with higher objects at smaller y. Rays share one origin ``o`` (3,) (a pinhole camera centre) and have
unit directions ``d`` (P, 3) float32. ``intersect`` returns the nearest hit distance t (P,) float32
(+inf on a miss, only t > EPS counts); ``normal`` returns unit normals (P, 3) at hit points p (P, 3)
facing back towards the ray (n . d <= 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .textures import Material

__all__ = ["Box", "Cylinder", "Plane", "Primitive", "Sphere"]

EPS = 1e-4
INF = np.float32(np.inf)


def _face_camera(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    flip = np.einsum("pi,pi->p", n, d) > 0
    n[flip] *= -1
    return n


@dataclass
class Primitive:
    material: Material

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def normal(self, p: np.ndarray, d: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        """(centre (3,), radius) enclosing the primitive (inf radius for unbounded ones)."""
        raise NotImplementedError


@dataclass
class Plane(Primitive):
    """Infinite plane {x : n . x = offset}."""

    n: np.ndarray = None
    offset: float = 0.0

    def intersect(self, o, d):
        n = np.asarray(self.n, np.float32)
        den = d @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (np.float32(self.offset) - np.float32(n @ o)) / den
        return np.where(t > EPS, t, INF).astype(np.float32)

    def normal(self, p, d):
        return _face_camera(np.tile(np.asarray(self.n, np.float32), (len(p), 1)), d)

    def bounding_sphere(self):
        return np.zeros(3), float("inf")


@dataclass
class Sphere(Primitive):
    centre: np.ndarray = None
    radius: float = 1.0

    def intersect(self, o, d):
        oc = (np.asarray(o, np.float64) - self.centre).astype(np.float32)
        b = d @ oc
        c = np.float32(oc @ oc - self.radius**2)
        disc = b * b - c
        hit = disc >= 0
        sq = np.sqrt(np.where(hit, disc, 0))
        t0, t1 = -b - sq, -b + sq
        t = np.where(t0 > EPS, t0, t1)
        return np.where(hit & (t > EPS), t, INF).astype(np.float32)

    def normal(self, p, d):
        n = (p - np.asarray(self.centre, np.float32)) / np.float32(self.radius)
        return _face_camera(n, d)

    def bounding_sphere(self):
        return np.asarray(self.centre, float), float(self.radius)


def _yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about the world (vertical) y axis, (3, 3)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


@dataclass
class Box(Primitive):
    """Box with half extents ``half`` (3,), centred at ``centre``, rotated by ``yaw`` about y."""

    centre: np.ndarray = None
    half: np.ndarray = None
    yaw: float = 0.0

    def _local(self, o, d):
        R = _yaw_matrix(self.yaw)
        o_l = (R.T @ (np.asarray(o, np.float64) - self.centre)).astype(np.float32)
        return o_l, d @ R.astype(np.float32)  # rows: R^T d

    def intersect(self, o, d):
        o_l, d_l = self._local(o, d)
        h = np.asarray(self.half, np.float32)
        t_near = np.full(len(d), -INF, np.float32)
        t_far = np.full(len(d), INF, np.float32)
        for k in range(3):
            dk = d_l[:, k]
            dk = np.where(np.abs(dk) < 1e-12, np.float32(1e-12), dk)
            inv = np.float32(1.0) / dk
            ta, tb = (-h[k] - o_l[k]) * inv, (h[k] - o_l[k]) * inv
            np.maximum(t_near, np.minimum(ta, tb), out=t_near)
            np.minimum(t_far, np.maximum(ta, tb), out=t_far)
        t = np.where(t_near > EPS, t_near, t_far)
        return np.where((t_near <= t_far) & (t > EPS), t, INF).astype(np.float32)

    def normal(self, p, d):
        R = _yaw_matrix(self.yaw).astype(np.float32)
        q = (p - np.asarray(self.centre, np.float32)) @ R / np.asarray(self.half, np.float32)
        axis = np.abs(q).argmax(axis=1)
        n_l = np.zeros_like(q)
        n_l[np.arange(len(q)), axis] = np.sign(q[np.arange(len(q)), axis])
        return _face_camera(n_l @ R.T, d)

    def bounding_sphere(self):
        return np.asarray(self.centre, float), float(np.linalg.norm(self.half))


@dataclass
class Cylinder(Primitive):
    """Capped vertical cylinder: axis along y through (cx, cz), radius r, for y in [y0, y1]."""

    cx: float = 0.0
    cz: float = 0.0
    radius: float = 0.3
    y0: float = -1.0
    y1: float = 0.0

    def intersect(self, o, d):
        ox, oy, oz = np.float32(o[0] - self.cx), np.float32(o[1]), np.float32(o[2] - self.cz)
        dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
        a = dx * dx + dz * dz
        b = ox * dx + oz * dz
        c = np.float32(ox * ox + oz * oz - self.radius**2)
        disc = b * b - a * c
        with np.errstate(divide="ignore", invalid="ignore"):
            sq = np.sqrt(np.maximum(disc, 0))
            t_side = np.where(disc >= 0, (-b - sq) / a, INF)
            y = oy + t_side * dy
            t_side = np.where((t_side > EPS) & (y >= self.y0) & (y <= self.y1), t_side, INF)
            best = t_side
            for yc in (self.y0, self.y1):
                tc = (np.float32(yc) - oy) / dy
                px, pz = ox + tc * dx, oz + tc * dz
                ok = (tc > EPS) & (px * px + pz * pz <= np.float32(self.radius**2))
                best = np.minimum(best, np.where(ok, tc, INF))
        return best.astype(np.float32)

    def normal(self, p, d):
        rx, rz = p[:, 0] - np.float32(self.cx), p[:, 2] - np.float32(self.cz)
        side = np.abs(np.sqrt(rx * rx + rz * rz) - self.radius)
        cap = np.minimum(np.abs(p[:, 1] - self.y0), np.abs(p[:, 1] - self.y1))
        n = np.stack([rx, np.zeros_like(rx), rz], axis=1) / np.float32(self.radius)
        on_cap = cap < side
        n[on_cap] = np.array([0, 1, 0], np.float32)
        return _face_camera(n, d)

    def bounding_sphere(self):
        centre = np.array([self.cx, 0.5 * (self.y0 + self.y1), self.cz])
        return centre, float(np.hypot(self.radius, 0.5 * (self.y1 - self.y0)))
