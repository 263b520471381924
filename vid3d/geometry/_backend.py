"""Tiny numpy/torch dispatch so the geometry functions accept either and return the same type."""

from __future__ import annotations

import numpy as np
import torch


def to_torch(x) -> tuple[torch.Tensor, bool]:
    """Return (tensor, was_numpy). numpy inputs become float64 tensors so round trips stay exact."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.asarray(x, dtype=np.float64)), True
    if isinstance(x, torch.Tensor):
        return x, False
    return torch.as_tensor(np.asarray(x, dtype=np.float64)), True


def back(x: torch.Tensor, was_numpy: bool):
    return x.detach().cpu().numpy() if was_numpy else x
