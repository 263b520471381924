"""Frame tensors between the loader and the model: uint8 as decoded, or float32 in [-1, 1].

A clip dataset (``vid3d.data.clips``) with ``frames_dtype="uint8"`` hands out frames as decoded, cropped
and resized: uint8 (F, 3, H, W), 0..255 RGB. They are turned into the model's float32 range [-1, 1]
once, where they are used: on the device, in the training step (``CameraDiffusionModule``) or by any
consumer through :func:`as_unit_range`, which accepts either kind. The conversion is x / 127.5 - 1
in float32: 0 -> -1 and 255 -> 1 exactly (255 / 127.5 = 2 is exact in binary floating point).

Only numpy and torch are imported here, so models and metrics can use it without the image stack.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["as_unit_range", "frames_to_unit_range", "hwc_to_chw_uint8"]


def as_unit_range(frames: torch.Tensor) -> torch.Tensor:
    """Frames (..., 3, H, W) as float in [-1, 1], on their own device.

    uint8 (0..255) -> a new contiguous float32 tensor x / 127.5 - 1 (bitwise ``x.float() / 127.5 - 1``);
    a floating-point tensor is taken to be in [-1, 1] already and returned as it is (the same object).
    Any other dtype is a TypeError naming it.
    """
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a torch tensor, got {type(frames).__name__}")
    if frames.is_floating_point():
        return frames
    if frames.dtype != torch.uint8:
        raise TypeError(f"frames must be uint8 (0..255) or float in [-1, 1], got dtype {frames.dtype}")
    out = frames.to(torch.float32, memory_format=torch.contiguous_format)
    return out.div_(127.5).sub_(1.0)


def hwc_to_chw_uint8(frames_uint8: np.ndarray) -> torch.Tensor:
    """uint8 numpy (F, H, W, 3) -> uint8 torch (F, 3, H, W) sharing its memory (no copy).

    The result is a channels-last view (``is_contiguous(memory_format=torch.channels_last)``);
    ``torch.stack`` in the collate function makes the one copy a batch needs.
    """
    a = np.asarray(frames_uint8)
    if a.dtype != np.uint8 or a.ndim != 4:
        raise ValueError(f"frames must be uint8 (F, H, W, C), got {a.dtype} {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)


def frames_to_unit_range(frames_uint8: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float32 (F, 3, H, W) in [-1, 1] (x / 127.5 - 1): one float tensor, converted
    and scaled in place (the same operations as ``t.float() / 127.5 - 1``, so bitwise the same values)."""
    src = torch.from_numpy(np.ascontiguousarray(frames_uint8)).permute(0, 3, 1, 2)
    out = torch.empty(src.shape, dtype=torch.float32)
    return out.copy_(src).div_(127.5).sub_(1.0)
