"""Image-space transforms that keep pixel intrinsics exact.

Convention (see docs/design.md): pixel (u, v) covers [u, u+1) x [v, v+1), its centre is
(u + 0.5, v + 0.5), and ``K_px`` maps camera rays to these continuous coordinates.

Under this convention
- a crop with integer offset (x0, y0) is the translation u' = u - x0, v' = v - y0, so cx -= x0, cy -= y0;
- a resize from (crop_h, crop_w) to (out_h, out_w) is the pure scaling u' = u * out_w / crop_w,
  v' = v * out_h / crop_h of continuous coordinates (OpenCV's resize maps the destination pixel centre
  u'+0.5 to the source position (u'+0.5) * crop_w / out_w), so fx, cx scale by out_w / crop_w and
  fy, cy by out_h / crop_h. No half-pixel correction term appears.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vid3d.geometry import crop_resize_K

__all__ = ["center_crop_box", "center_crop_resize"]


def center_crop_box(height: int, width: int, out_h: int, out_w: int) -> tuple[int, int, int, int]:
    """Largest centred window of aspect out_w / out_h inside a (height, width) image.

    Returns (x0, y0, crop_w, crop_h) with integer offsets. The dimension that is too long is cut,
    the other is kept whole; the cut length is rounded to the nearest integer.
    """
    if min(height, width, out_h, out_w) <= 0:
        raise ValueError(f"sizes must be positive, got image {height}x{width}, output {out_h}x{out_w}")
    if width * out_h > height * out_w:  # too wide: keep the full height
        crop_h = height
        crop_w = min(width, max(1, int(round(height * out_w / out_h))))
    else:  # too tall (or exact): keep the full width
        crop_w = width
        crop_h = min(height, max(1, int(round(width * out_h / out_w))))
    return (width - crop_w) // 2, (height - crop_h) // 2, crop_w, crop_h


def _resize_stack(frames_hwc: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize (F, h, w, C) with OpenCV: INTER_AREA when shrinking, INTER_LINEAR when enlarging.

    ``frames_hwc`` may be a crop (a strided view of larger frames): each frame is read in place and
    resized straight into the one output array, (F, out_h, out_w, C) of the input's dtype.
    """
    n, h, w, c = frames_hwc.shape
    if (h, w) == (out_h, out_w):
        return frames_hwc.copy()
    interp = cv2.INTER_AREA if out_h * out_w < h * w else cv2.INTER_LINEAR
    out = np.empty((n, out_h, out_w, c), dtype=frames_hwc.dtype)
    for k in range(n):
        src = frames_hwc[k]
        if src.strides[-1] != src.itemsize or src.strides[-2] != c * src.itemsize:
            src = np.ascontiguousarray(src)  # OpenCV needs each row's pixels packed
        dst = out[k] if c > 1 else out[k, :, :, 0]
        res = cv2.resize(src if c > 1 else src[:, :, 0], (out_w, out_h), dst=dst, interpolation=interp)
        if not np.shares_memory(res, out[k]):  # OpenCV allocated its own output: copy it in
            out[k] = res.reshape(out_h, out_w, c)
    return out


def center_crop_resize(frames, K_px, out_h: int, out_w: int):
    """Centre-crop to the aspect out_w / out_h, then resize to (out_h, out_w), adjusting intrinsics.

    Args:
        frames: uint8 numpy (F, H, W, 3) RGB, or a float torch tensor (F, 3, H, W).
        K_px: pixel intrinsics at (H, W): (3, 3) or (F, 3, 3), numpy or torch.
        out_h, out_w: output size.
    Returns:
        (frames_out, K_px_out): frames of the same kind as the input ((F, out_h, out_w, 3) uint8 numpy
        or (F, 3, out_h, out_w) tensor with the input's dtype/device) and intrinsics of the same type and
        shape as ``K_px`` describing the output pixels (see module docstring for the exact formula).
    """
    is_torch = isinstance(frames, torch.Tensor)
    if is_torch:
        if frames.ndim != 4 or frames.shape[1] not in (1, 3, 4):
            raise ValueError(f"torch frames must be (F, C, H, W), got {tuple(frames.shape)}")
        H, W = frames.shape[-2:]
    else:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4):
            raise ValueError(f"numpy frames must be (F, H, W, C), got {frames.shape}")
        H, W = frames.shape[1:3]
    x0, y0, cw, ch = center_crop_box(H, W, out_h, out_w)
    K_out = crop_resize_K(K_px, x0, y0, cw, ch, out_w, out_h)
    if is_torch:
        arr = frames[:, :, y0 : y0 + ch, x0 : x0 + cw].permute(0, 2, 3, 1).detach().cpu().float().numpy()
        res = _resize_stack(arr, out_h, out_w)
        out = torch.from_numpy(res).permute(0, 3, 1, 2).to(dtype=frames.dtype, device=frames.device)
        return out.contiguous(), K_out
    return _resize_stack(frames[:, y0 : y0 + ch, x0 : x0 + cw], out_h, out_w), K_out
