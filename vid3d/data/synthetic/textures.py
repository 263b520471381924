"""Procedural solid textures evaluated at 3D surface points (numpy, float32, all pixels at once).

Every texture is a deterministic function of the world point, the material's parameters (drawn
from a seeded ``numpy.random.Generator``) and the pixel footprint. Detail finer than about half a
pixel is faded to its mean (band-limiting by the footprint), so far and grazing surfaces do not alias.
Layers: multi-octave value noise mapped through a per-material palette (soft or posterised
"camouflage" edges), optional tiles with grout and per-tile colours, three scales of random coloured
discs with dark rings, and Lambertian shading from a fixed light direction.

Shapes: P surface points as three (P,) float32 arrays ``x, y, z`` (world metres), ``mat`` (P,) int
material index into a ``MaterialBank``, unit normals (P, 3) facing the camera, ``footprint`` (P,)
metres one pixel covers on the surface. Colours are (P, 3) float32 RGB in [0, 1].
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Material",
    "MaterialBank",
    "feature_scale",
    "flat_material",
    "random_material",
    "shade",
    "sky_colour",
    "value_noise",
]

_N = 32  # lattice period of the noise table (cells); materials are rotated so repeats do not line up
_M = _N + 1  # the table is padded by one wrapped cell so lattice neighbours need no wrapping
_TABLE = np.pad(
    np.random.default_rng(20240611).random((_N, _N, _N), dtype=np.float32), ((0, 1),) * 3, mode="wrap"
).ravel()
_CORNERS = np.array([0, 1, _M, _M + 1, _M * _M, _M * _M + 1, _M * _M + _M, _M * _M + _M + 1])
_CELL_TABLE = np.random.default_rng(20240612).random((_N**3, 8), dtype=np.float32)
_OCTAVES, _LACUNARITY, _GAIN = 5, 2.07, 0.6


def _cell_randoms(i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(P, 8) pseudo-random values in [0, 1) per integer lattice cell (i, j, k): a multiplicative
    hash picks a row of a random table (no visible repetition: SIFT must not see repeated cells)."""
    h = (i * 73856093) ^ (j * 19349663) ^ (k * 83492791)
    h ^= h >> 13
    return _CELL_TABLE[h & (_N**3 - 1)]


def value_noise(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Smooth 3D value noise in [0, 1] (trilinear interpolation of lattice values, C1 fade)."""
    fx, fy, fz = np.floor(x), np.floor(y), np.floor(z)
    ux, uy, uz = x - fx, y - fy, z - fz
    ux, uy, uz = ux * ux * (3 - 2 * ux), uy * uy * (3 - 2 * uy), uz * uz * (3 - 2 * uz)
    base = (fx.astype(np.intp) & (_N - 1)) * (_M * _M)
    base += (fy.astype(np.intp) & (_N - 1)) * _M
    base += fz.astype(np.intp) & (_N - 1)
    c = [_TABLE[base + off] for off in _CORNERS.tolist()]
    a0, a1 = c[0] + (c[1] - c[0]) * uz, c[2] + (c[3] - c[2]) * uz
    b0, b1 = c[4] + (c[5] - c[4]) * uz, c[6] + (c[7] - c[6]) * uz
    a, b = a0 + (a1 - a0) * uy, b0 + (b1 - b0) * uy
    return a + (b - a) * ux


@dataclass
class Material:
    """Parameters of one procedural material (see ``random_material``).

    palette (4, 3) colours the noise is mapped through; blob_colours (6, 3); rotation (3, 3) and
    offset (3,) place the noise lattice; sharpness 1 = smooth palette blends, larger = posterised
    edges; tiles: tile pattern of ``tile_size`` metres; flat: unlit constant RGB (test markers).
    """

    palette: np.ndarray
    blob_colours: np.ndarray
    base_freq: float = 1.0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3, dtype=np.float32))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    contrast: float = 2.2
    sharpness: float = 1.0
    blob_freqs: tuple[float, float, float] = (1.0, 3.0, 8.0)
    blob_density: float = 0.6
    tiles: bool = False
    tile_size: float = 0.5
    flat: tuple[float, float, float] | None = None


def _hsv(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + np.asarray(h)[..., None] * 6.0) % 6.0
    v, s = np.asarray(v)[..., None], np.asarray(s)[..., None]
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


_FEATURE_SCALE: contextvars.ContextVar[float] = contextvars.ContextVar("feature_scale", default=1.0)


@contextlib.contextmanager
def feature_scale(scale: float) -> Iterator[None]:
    """Multiply the feature size of every material ``random_material`` draws inside the block by
    ``scale`` (> 1: larger blobs, tiles and noise cells, so fewer edges per pixel). The random draws
    are unchanged, so a scene built at another scale has the same geometry, colours and cameras."""
    if not scale > 0:
        raise ValueError(f"texture feature scale must be > 0, got {scale}")
    token = _FEATURE_SCALE.set(float(scale))
    try:
        yield
    finally:
        _FEATURE_SCALE.reset(token)


def random_material(rng: np.random.Generator, style: str | None = None, scale: float = 1.0) -> Material:
    """A colourful random material; ``style`` "tiles" | "noise" | None (random); ``scale`` multiplies
    feature sizes (> 1 for large surfaces such as an outdoor ground), on top of ``feature_scale``."""
    scale = scale * _FEATURE_SCALE.get()
    hue = rng.random()
    hues = (hue + rng.uniform(-0.2, 0.2, 4) + np.array([0, 0, 0.5, 0]) * rng.integers(0, 2)) % 1.0
    pal = _hsv(hues, rng.uniform(0.25, 0.85, 4), rng.uniform(0.35, 0.95, 4))
    pal[rng.integers(0, 4)] *= 0.3  # one dark colour for contrast
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    tiles = (rng.random() < 0.35) if style is None else style == "tiles"
    return Material(
        palette=pal.astype(np.float32),
        blob_colours=_hsv(rng.random(6), rng.uniform(0.5, 1.0, 6), rng.uniform(0.3, 1.0, 6)).astype(
            np.float32
        ),
        base_freq=float(rng.uniform(3.6, 7.2) / scale),
        rotation=(q * np.sign(np.diag(r))).astype(np.float32),
        offset=rng.uniform(-500, 500, 3).astype(np.float32),
        contrast=float(rng.uniform(1.8, 2.6)),
        sharpness=float(rng.choice([2.0, 5.0, 10.0])),
        blob_freqs=(
            float(rng.uniform(0.8, 1.5) / scale),
            float(rng.uniform(2.5, 4.5) / scale),
            float(rng.uniform(7.0, 10.0) / scale),
        ),
        blob_density=float(rng.uniform(0.5, 0.85)),
        tiles=bool(tiles),
        tile_size=float(rng.uniform(0.3, 0.8) * scale),
    )


def flat_material(rgb: tuple[float, float, float]) -> Material:
    """An unlit constant-colour material (RGB in [0, 1])."""
    z = np.zeros((4, 3), np.float32)
    return Material(palette=z, blob_colours=z[:1].repeat(6, 0), flat=tuple(float(c) for c in rgb))


class MaterialBank:
    """The parameters of M materials stacked into arrays so one pass shades every pixel."""

    def __init__(self, materials: list[Material]) -> None:
        def f32(values):
            return np.asarray(values, np.float32)

        self.palette = f32([m.palette for m in materials])  # (M, 4, 3)
        self.blob_colours = f32([m.blob_colours for m in materials])  # (M, 6, 3)
        self.base_freq = f32([m.base_freq for m in materials])
        self.rotation = f32([m.rotation for m in materials])  # (M, 3, 3)
        self.offset = f32([m.offset for m in materials])
        self.contrast = f32([m.contrast for m in materials])
        self.sharpness = f32([m.sharpness for m in materials])
        self.blob_freqs = f32([m.blob_freqs for m in materials])  # (M, 2)
        self.blob_density = f32([m.blob_density for m in materials])
        self.tiles = np.array([m.tiles for m in materials], bool)
        self.tile_size = f32([m.tile_size for m in materials])
        self.flat = np.array([m.flat is not None for m in materials], bool)
        self.flat_rgb = f32([m.flat or (0, 0, 0) for m in materials])


def _fbm(px, py, pz, freq, footprint) -> np.ndarray:
    """Sum of octaves of value noise at (P,) lattice coordinates; octaves above ~0.25 cycles per
    pixel fade to the mean 0.5 (``freq`` (P,) cycles per metre of the first octave)."""
    acc = np.zeros_like(px)
    amp, total, mult = 1.0, 0.0, 1.0
    for k in range(_OCTAVES):
        w = np.clip(2.0 - 4.0 * (freq * np.float32(mult)) * footprint, 0.0, 1.0)
        if w.any():
            m = np.float32(mult)
            n = value_noise(px * m + k * 17.31, py * m + k * 5.77, pz * m + k * 29.13)
            acc += np.float32(amp) * w * (n - 0.5)
        total += amp
        amp *= _GAIN
        mult *= _LACUNARITY
    return 0.5 + acc / np.float32(total)


def _palette(pal: np.ndarray, mat: np.ndarray, s: np.ndarray, sharp: np.ndarray) -> np.ndarray:
    pos = np.clip(s, 0.0, 1.0) * np.float32(pal.shape[1] - 1)
    i = np.minimum(pos.astype(np.intp), pal.shape[1] - 2)
    f = np.clip((pos - i - 0.5) * sharp + 0.5, 0.0, 1.0)[:, None]
    return pal[mat, i] * (1 - f) + pal[mat, i + 1] * f


def _blobs(bank, mat, col, x, y, z, footprint, layer: int, offset: np.ndarray) -> np.ndarray:
    """Paint random discs (slices of random balls, at most one per lattice cell) with dark rings.

    ``offset`` (P, 3) is the materials' lattice offset; layer 0, 1, 2 are the three disc scales."""
    freq = bank.blob_freqs[mat, layer]
    k = np.float32(0.3 * (layer + 1))
    px, py, pz = x * freq, y * freq, z * freq
    px += offset[:, 0] * k
    py += offset[:, 1] * k
    pz += offset[:, 2] * k
    cx, cy, cz = np.floor(px), np.floor(py), np.floor(pz)
    r = _cell_randoms(cx.astype(np.intp), cy.astype(np.intp), cz.astype(np.intp))
    px -= cx
    px -= 0.3 + 0.4 * r[:, 0]
    py -= cy
    py -= 0.3 + 0.4 * r[:, 1]
    pz -= cz
    pz -= 0.3 + 0.4 * r[:, 2]
    dist = np.sqrt(px * px + py * py + pz * pz)
    radius = 0.12 + 0.17 * r[:, 3]
    fp = footprint * freq  # pixel size in cell units
    np.maximum(fp, 1e-6, out=fp)
    size_px = radius / fp
    alpha = (radius - dist) / np.maximum(fp, 0.02) + 0.5
    np.clip(alpha, 0.0, 1.0, out=alpha)
    alpha *= (r[:, 4] < bank.blob_density[mat]) * np.clip(size_px / 1.5 - 1.0, 0.0, 1.0)
    ring = 1.0 - np.abs(dist - 0.55 * radius) / np.maximum(fp, 0.025)
    np.clip(ring, 0.0, 1.0, out=ring)
    ring *= alpha
    ring *= np.clip(size_px / 3.0 - 1.0, 0.0, 1.0)
    ci = (r[:, 5 + layer % 3] * 6).astype(np.intp) % 6
    out = bank.blob_colours[mat, ci]
    out -= col
    out *= alpha[:, None]
    out += col
    out *= (1 - 0.65 * ring)[:, None]
    return out


def _tiles(bank, mat, x, y, z, normals, footprint) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile palette colours (P, 3) and a grout mask (P,) (1 on grout lines)."""
    size = bank.tile_size[mat]
    s = 1.0 / size
    tx, ty, tz = np.floor(x * s), np.floor(y * s), np.floor(z * s)
    # the tile index ignores the axis along the normal: a floor at y = 0 must not flicker between cells
    in_plane = np.abs(normals) < 0.7
    r = _cell_randoms(*(np.where(in_plane[:, k], t, 0).astype(np.intp) for k, t in enumerate((tx, ty, tz))))
    tile_col = _palette(bank.palette, mat, r[:, 7], np.float32(50.0))
    fp = np.maximum(footprint, 1e-5)
    keep = np.clip(size / fp / 2.0 - 1.0, 0.0, 1.0)[:, None]  # tiles under ~4 px fade to the mean
    tile_col = tile_col * keep + bank.palette[mat].mean(axis=1) * (1 - keep)
    grout = np.zeros_like(x)
    half_w = 0.04 * size
    for c, t, nk in ((x, tx, normals[:, 0]), (y, ty, normals[:, 1]), (z, tz, normals[:, 2])):
        frac = c * s - t
        dist = np.minimum(frac, 1 - frac) * size
        line = np.clip((half_w - dist) / fp + 0.5, 0.0, 1.0)
        grout = np.maximum(grout, line * (np.abs(nk) < 0.7))
    return tile_col, grout * np.clip(size / fp / 6.0 - 1.0, 0.0, 1.0)


def shade(
    bank: MaterialBank,
    mat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    normals: np.ndarray,
    footprint: np.ndarray,
    light_dir: np.ndarray,
    ambient: float = 0.45,
) -> np.ndarray:
    """Colour (P, 3) at points (x, y, z) of materials ``mat`` (P,) with unit normals (P, 3).

    Lambertian with ambient: ``albedo * (ambient + (1 - ambient) * max(0, n . l))``; flat
    materials are unlit.
    """
    R, o = bank.rotation[mat], bank.offset[mat]
    freq = bank.base_freq[mat]
    xr = R[:, 0, 0] * x + R[:, 0, 1] * y + R[:, 0, 2] * z  # material-rotated coordinates (metres)
    yr = R[:, 1, 0] * x + R[:, 1, 1] * y + R[:, 1, 2] * z
    zr = R[:, 2, 0] * x + R[:, 2, 1] * y + R[:, 2, 2] * z
    n = _fbm(xr * freq + o[:, 0], yr * freq + o[:, 1], zr * freq + o[:, 2], freq, footprint)
    col = _palette(bank.palette, mat, (n - 0.5) * bank.contrast[mat] + 0.5, bank.sharpness[mat])
    tiled = np.flatnonzero(bank.tiles[mat])
    grout = None
    if tiled.size:
        tcol, grout = _tiles(bank, mat[tiled], x[tiled], y[tiled], z[tiled], normals[tiled], footprint[tiled])
        col[tiled] = tcol * (0.6 + 0.8 * n[tiled])[:, None]
    for layer in range(3):
        col = _blobs(bank, mat, col, xr, yr, zr, footprint, layer, o)
    if grout is not None:
        col[tiled] *= (1 - 0.75 * grout)[:, None]
    lambert = np.clip(normals @ np.asarray(light_dir, np.float32), 0.0, 1.0)
    col *= (np.float32(ambient) + np.float32(1 - ambient) * lambert)[:, None]
    flat = np.flatnonzero(bank.flat[mat])
    if flat.size:
        col[flat] = bank.flat_rgb[mat[flat]]
    return col


def sky_colour(dirs: np.ndarray, up: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Sky (P, 3) for unit view directions (P, 3): horizon-to-zenith gradient plus faint clouds.

    ``up`` is the world up unit vector, ``offset`` (3,) a per-scene shift of the cloud noise.
    """
    elev = np.clip(dirs @ np.asarray(up, np.float32), -1.0, 1.0)
    horizon, zenith = np.array([0.78, 0.85, 0.95], np.float32), np.array([0.25, 0.45, 0.85], np.float32)
    t = np.sqrt(np.clip(elev, 0.0, 1.0))[:, None]
    base = horizon * (1 - t) + zenith * t
    p = dirs * np.float32(2.5) + np.asarray(offset, np.float32)
    c = value_noise(p[:, 0], p[:, 1], p[:, 2])
    # faint, soft clouds: a sky is nearly textureless, and SIFT matches on points at infinity
    # (no parallax) were measured to derail COLMAP on forward/rotating outdoor clips
    cloud = (np.clip((c - 0.4) * 0.8, 0.0, 0.25) * np.clip(elev * 4.0, 0.0, 1.0))[:, None]
    return base * (1 - cloud) + np.float32(0.97) * cloud
