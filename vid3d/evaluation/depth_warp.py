"""Frame 0 warped into other cameras with a known depth (pure numpy): the camera benchmark's ``depth_warp``
reference row (``eval.oracle_rows``: a video that follows its cameras by construction) and the oracle of
experiments/cpu_camera_control/oracle_warp.py.

Conventions (vid3d's, ``vid3d.data.transforms``):
- ``c2w``: (4, 4) OpenCV camera-to-world (x right, y down, z forward), float;
- ``K``: (3, 3) pixel intrinsics; pixel (u, v) covers [u, u+1) x [v, v+1), its centre is (u + 0.5, v + 0.5);
- depth: (H, W) z-depth in the cameras' units; 0 (or not finite) = no surface (the synthetic set's sky),
  taken as a point at infinity along the pixel's ray (only the rotation moves it).
Images are (H, W, C) channels-last.
"""

from __future__ import annotations

import numpy as np

from vid3d.errors import check_names

__all__ = [
    "ORACLE_ROWS", "backward_warp", "check_oracle_rows", "crop_resize_depth", "fill_holes", "forward_warp",
    "warp_video",
]

# the camera benchmark's reference rows that follow the given cameras by construction (eval.oracle_rows)
ORACLE_ROWS = ("depth_warp",)


def check_oracle_rows(names, where: str = "eval.oracle_rows") -> list[str]:
    """``names`` as a list when each is one of ``ORACLE_ROWS`` and none repeats; else ``InputError`` (one
    line naming ``where``, the bad name and the choices)."""
    return check_names(names, ORACLE_ROWS, where, "reference row")


def backward_warp(frame0: np.ndarray, depth_k: np.ndarray, K: np.ndarray, k_to_0: np.ndarray) -> np.ndarray:
    """Frame 0 (H, W, C) resampled (bilinear, borders replicated) at the projections of frame k's pixel
    centres into camera 0: frame k predicted from frame 0 with frame k's depth ``depth_k`` (H, W) (no
    surface: 1e3 units away). ``k_to_0`` (4, 4) maps camera-k coordinates to camera-0 coordinates
    (``inv(c2w_0) @ c2w_k``); ``K`` (3, 3) is both cameras' intrinsics. Returns (H, W, C), frame0's dtype.
    """
    import cv2

    h, w = depth_k.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    d = np.where(depth_k > 0, depth_k, 1e3)
    pts = np.stack([(u - K[0, 2]) / K[0, 0] * d, (v - K[1, 2]) / K[1, 1] * d, d, np.ones_like(d)], -1)
    p0 = pts @ np.asarray(k_to_0, dtype=np.float64).T
    z = np.maximum(p0[..., 2], 1e-3)
    x = (K[0, 0] * p0[..., 0] / z + K[0, 2] - 0.5).astype(np.float32)
    y = (K[1, 1] * p0[..., 1] / z + K[1, 2] - 0.5).astype(np.float32)
    return cv2.remap(frame0, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def forward_warp(
    frame0: np.ndarray,
    depth0: np.ndarray,
    K0: np.ndarray,
    K1: np.ndarray,
    c2w0: np.ndarray,
    c2w1: np.ndarray,
    supersample: int = 4,
    rel_tol: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame 0 (H, W, C) splatted into camera 1 with its own depth ``depth0`` (H, W): what camera 1 sees of
    frame 0's surfaces (no knowledge of frame 1 is used).

    Each source pixel is split into ``supersample`` x ``supersample`` sub-pixels (its colour, its depth) at
    (u + (a + 0.5) / s, v + (b + 0.5) / s); each is unprojected with ``K0`` (a surface at ``depth0``, or a
    point at infinity where depth0 <= 0), moved by ``inv(c2w1) @ c2w0`` and projected with ``K1``; it lands
    in the target pixel that contains its projection. A target pixel takes the mean colour of the sub-pixels
    within ``rel_tol`` (relative) of its nearest depth (a z-buffer; surfaces hide points at infinity).
    Points behind camera 1 or outside its image are dropped.

    Returns (image (H, W, C) float64, defined (H, W) bool): pixels no sub-pixel reached (disocclusions,
    the border the camera moved away from) are 0 and not defined. Identity cameras give frame 0 on every
    pixel; a fronto-parallel plane at depth d under a translation t along x shifts the image by -fx*t/d
    pixels (exact when that is a multiple of 1/s).
    """
    frame0 = np.asarray(frame0)
    if frame0.ndim != 3:
        raise ValueError(f"frame0 must be (H, W, C), got shape {frame0.shape}")
    h, w, c = frame0.shape
    depth0 = np.asarray(depth0, dtype=np.float64)
    if depth0.shape != (h, w):
        raise ValueError(f"depth0 has shape {depth0.shape}, frame0 is {h}x{w}")
    s = int(supersample)
    if s < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    offs = (np.arange(s) + 0.5) / s
    v = (np.arange(h)[:, None] + offs[None, :]).reshape(-1)  # (h*s,) sub-pixel rows
    u = (np.arange(w)[:, None] + offs[None, :]).reshape(-1)  # (w*s,)
    vv, uu = np.meshgrid(v, u, indexing="ij")
    src = (np.arange(h).repeat(s)[:, None] * w + np.arange(w).repeat(s)[None, :]).reshape(-1)
    rays = np.stack([uu.reshape(-1), vv.reshape(-1), np.ones(uu.size)], -1) @ np.linalg.inv(K0).T
    d = depth0.reshape(-1)[src]
    surface = np.isfinite(d) & (d > 0)
    pts = np.concatenate([rays * np.where(surface, d, 1.0)[:, None], surface[:, None].astype(np.float64)], -1)
    moved = pts @ (np.linalg.inv(np.asarray(c2w1, dtype=np.float64)) @ np.asarray(c2w0, dtype=np.float64)).T
    z = moved[:, 2]
    front = z > 1e-9
    proj = moved[front, :3] @ np.asarray(K1, dtype=np.float64).T
    tu = np.floor(proj[:, 0] / proj[:, 2])
    tv = np.floor(proj[:, 1] / proj[:, 2])
    inside = (tu >= 0) & (tu < w) & (tv >= 0) & (tv < h)
    tgt = (tv[inside] * w + tu[inside]).astype(np.int64)
    key = np.where(surface[front], z[front], np.inf)[inside]
    colour = frame0.reshape(h * w, c).astype(np.float64)[src[front][inside]]
    nearest = np.full(h * w, np.inf)
    np.minimum.at(nearest, tgt, key)
    keep = key <= nearest[tgt] * (1.0 + rel_tol)  # inf <= inf: points at infinity where no surface lands
    count = np.bincount(tgt[keep], minlength=h * w)
    defined = count > 0
    image = np.zeros((h * w, c))
    for ch in range(c):
        image[:, ch] = np.bincount(tgt[keep], weights=colour[keep, ch], minlength=h * w)
    image[defined] /= count[defined, None]
    return image.reshape(h, w, c), defined.reshape(h, w)


def fill_holes(image: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """(H, W, C) image with every pixel where ``defined`` (H, W) is False set to the nearest defined pixel
    (Euclidean, ties as ``scipy.ndimage.distance_transform_edt`` breaks them); unchanged when none or all
    are defined."""
    defined = np.asarray(defined, dtype=bool)
    if defined.all() or not defined.any():
        return np.array(image, copy=True)
    from scipy.ndimage import distance_transform_edt

    _, (iy, ix) = distance_transform_edt(~defined, return_indices=True)
    return np.asarray(image)[iy, ix]


def warp_video(
    frame0: np.ndarray, depth0: np.ndarray, K: np.ndarray, c2w: np.ndarray, supersample: int = 4
) -> np.ndarray:
    """(F, H, W, 3) uint8 video: frame 0 (H, W, 3) uint8 forward-warped (``forward_warp``, intrinsics ``K``
    for every frame) from camera ``c2w[0]`` into each camera ``c2w[f]`` of the (F, 4, 4) trajectory, holes
    filled from the nearest warped pixel (``fill_holes``). Frame 0 of the result is ``frame0``."""
    c2w = np.asarray(c2w, dtype=np.float64)
    out = []
    for f in range(len(c2w)):
        image, defined = forward_warp(frame0, depth0, K, K, c2w[0], c2w[f], supersample=supersample)
        out.append(np.clip(np.rint(fill_holes(image, defined)), 0, 255).astype(np.uint8))
    return np.stack(out)


def crop_resize_depth(depth: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """(H, W) depth centre-cropped to the aspect out_w / out_h (``center_crop_box``, as the frames are) and
    resampled to (out_h, out_w) by nearest neighbour at the output pixel centres (depth is never blended
    across an edge): output (i, j) = crop[floor((i + 0.5) * ch / out_h), floor((j + 0.5) * cw / out_w)]."""
    from vid3d.data.transforms import center_crop_box

    depth = np.asarray(depth)
    x0, y0, cw, ch = center_crop_box(depth.shape[0], depth.shape[1], out_h, out_w)
    rows = y0 + np.minimum(((np.arange(out_h) + 0.5) * ch / out_h).astype(np.int64), ch - 1)
    cols = x0 + np.minimum(((np.arange(out_w) + 0.5) * cw / out_w).astype(np.int64), cw - 1)
    return depth[rows[:, None], cols[None, :]]
