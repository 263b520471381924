"""Camera conventions and conversions.

The one convention used everywhere in vid3d:
- OpenCV camera axes: x right, y down, z forward.
- Poses are camera-to-world (``c2w``) 4x4 matrices: ``X_world = c2w @ X_cam``.
- Intrinsics ``K_px`` are 3x3 in pixels at the resolution of the tensor they describe; the pixel
  (u, v) covers [u, u+1) x [v, v+1), so its centre is (u + 0.5, v + 0.5).
- ``K_norm`` is the RealEstate10K normalisation: fx, cx divided by width, fy, cy by height.

Every function accepts numpy arrays or torch tensors (any leading batch dims) and returns the same type.
"""

from __future__ import annotations

import torch

from ._backend import back, to_torch

OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


def _as4x4(m: torch.Tensor) -> torch.Tensor:
    if m.shape[-2:] == (4, 4):
        return m
    if m.shape[-2:] != (3, 4):
        raise ValueError(f"expected (..., 3, 4) or (..., 4, 4) pose matrices, got {tuple(m.shape)}")
    bottom = torch.zeros(*m.shape[:-2], 1, 4, dtype=m.dtype, device=m.device)
    bottom[..., 0, 3] = 1
    return torch.cat([m, bottom], dim=-2)


def to_homogeneous(pose):
    """(..., 3, 4) or (..., 4, 4) -> (..., 4, 4) with bottom row [0, 0, 0, 1]."""
    t, np_in = to_torch(pose)
    return back(_as4x4(t), np_in)


def invert_rigid(pose):
    """Inverse of rigid 4x4 transforms (..., 4, 4) using R^T, exact for rotations."""
    t, np_in = to_torch(pose)
    t = _as4x4(t)
    R, trans = t[..., :3, :3], t[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    out = torch.zeros_like(t)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ trans
    out[..., 3, 3] = 1
    return back(out, np_in)


def w2c_to_c2w(w2c):
    """World-to-camera (..., 3|4, 4) (RealEstate10K files) -> camera-to-world (..., 4, 4)."""
    return invert_rigid(w2c)


def c2w_to_w2c(c2w):
    """Camera-to-world (..., 4, 4) -> world-to-camera (..., 4, 4)."""
    return invert_rigid(c2w)


def opengl_to_opencv_c2w(c2w_gl):
    """OpenGL/nerfstudio camera-to-world (x right, y up, z backward) -> OpenCV camera-to-world."""
    t, np_in = to_torch(c2w_gl)
    t = _as4x4(t)
    return back(t @ OPENGL_TO_OPENCV.to(t), np_in)


def opencv_to_opengl_c2w(c2w):
    """OpenCV camera-to-world -> OpenGL/nerfstudio camera-to-world (the flip is its own inverse)."""
    return opengl_to_opencv_c2w(c2w)


def relative_to_first(c2w):
    """Re-express camera-to-world poses (F, 4, 4) in the first camera's frame: result[0] = identity.

    result[i] = inv(c2w[0]) @ c2w[i]. Invariant to any rigid transform applied to the whole scene.
    """
    t, np_in = to_torch(c2w)
    t = _as4x4(t)
    first_inv = to_torch(invert_rigid(t[..., :1, :, :]))[0]
    return back(first_inv @ t, np_in)


def camera_centers(c2w):
    """Camera centres in world coordinates (..., 3) from camera-to-world poses (..., 4, 4)."""
    t, np_in = to_torch(c2w)
    return back(t[..., :3, 3], np_in)


def normalize_scale(c2w, eps: float = 1e-8):
    """Scale translations so the furthest camera centre from the first is at distance 1.

    Args:
        c2w: (F, 4, 4) camera-to-world poses, usually already relative to the first frame.
    Returns:
        (c2w_scaled, scale) where ``scale`` is the furthest distance that was divided out. If every
        camera sits at the first camera's centre (a static trajectory, scale < eps) the poses are
        returned unchanged and scale is 0.0: there is no scale to normalise.
    """
    t, np_in = to_torch(c2w)
    t = _as4x4(t).clone()
    centres = t[..., :3, 3]
    dist = (centres - centres[..., :1, :]).norm(dim=-1)
    scale = float(dist.max()) if dist.numel() else 0.0
    if scale < eps:
        return back(t, np_in), 0.0
    t[..., :3, 3] = centres / scale
    return back(t, np_in), scale


def intrinsics_matrix(fx, fy, cx, cy):
    """Build (..., 3, 3) intrinsics from broadcastable fx, fy, cx, cy (same units as given)."""
    fx, np_in = to_torch(fx)
    fy, cx, cy = (to_torch(v)[0].to(fx) for v in (fy, cx, cy))
    fx, fy, cx, cy = torch.broadcast_tensors(fx, fy, cx, cy)
    K = torch.zeros(*fx.shape, 3, 3, dtype=fx.dtype, device=fx.device)
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = fx, fy, cx, cy, 1
    return back(K, np_in)


def K_norm_to_px(K_norm, height: int, width: int):
    """Normalised intrinsics (fx, cx over width; fy, cy over height) -> pixel intrinsics."""
    t, np_in = to_torch(K_norm)
    scale = torch.tensor([width, height, 1.0], dtype=t.dtype, device=t.device)
    return back(t * scale[:, None], np_in)


def K_px_to_norm(K_px, height: int, width: int):
    """Pixel intrinsics -> normalised intrinsics (fx, cx over width; fy, cy over height)."""
    t, np_in = to_torch(K_px)
    scale = torch.tensor([width, height, 1.0], dtype=t.dtype, device=t.device)
    return back(t / scale[:, None], np_in)


def crop_resize_K(K_px, x0: float, y0: float, crop_w: int, crop_h: int, out_w: int, out_h: int):
    """Pixel intrinsics (..., 3, 3) after a crop at integer offset (x0, y0) and a resize of the
    (crop_h, crop_w) window to (out_h, out_w).

    K' = S @ T @ K with T the translation by (-x0, -y0) and S = diag(out_w / crop_w, out_h / crop_h, 1):
    continuous coordinates scale, so pixel centres map to pixel centres (no half-pixel term).
    """
    t, np_in = to_torch(K_px)
    sx, sy = out_w / crop_w, out_h / crop_h
    M = torch.tensor([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy], [0.0, 0.0, 1.0]], dtype=torch.float64)
    M = M.to(dtype=t.dtype, device=t.device)
    return back(M @ t, np_in)


def rescale_K(K_px, src_hw: tuple[int, int], dst_hw: tuple[int, int]):
    """Pixel intrinsics (..., 3, 3) at resolution src_hw = (H, W) -> at dst_hw = (h, w) (a resize of the
    whole image: ``crop_resize_K`` with no crop)."""
    return crop_resize_K(K_px, 0, 0, src_hw[1], src_hw[0], dst_hw[1], dst_hw[0])


def project_points(K_px, c2w, points_world):
    """Project world points (..., N, 3) into a camera: returns (pixels (..., N, 2), depth (..., N)).

    Pixels are continuous coordinates where the centre of pixel (u, v) is (u + 0.5, v + 0.5).
    """
    K, np_in = to_torch(K_px)
    pose = _as4x4(to_torch(c2w)[0].to(K))
    X = to_torch(points_world)[0].to(K)
    w2c = to_torch(invert_rigid(pose))[0]
    Xc = X @ w2c[..., :3, :3].transpose(-1, -2) + w2c[..., None, :3, 3]
    uvw = Xc @ K.transpose(-1, -2)
    z = Xc[..., 2]
    return back(uvw[..., :2] / uvw[..., 2:3], np_in), back(z, np_in)
