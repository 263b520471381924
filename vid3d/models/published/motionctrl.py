"""MotionCtrl's camera-motion module on Stable Video Diffusion (Wang et al. 2024, the ``svd`` branch of
TencentARC/MotionCtrl, "CMCM"), as released.

The camera of each frame is its pose relative to frame 0 as a world-to-camera [R | t] (row-major 3 x 4 = 12
numbers; MotionCtrl's ``to_relative_RT2`` on RealEstate10K's world-to-camera poses: R_i R_0^T, t_i - R_i
R_0^T t_0, which is the inverse of vid3d's c2w relative to frame 0). In **every** temporal transformer block
of the UNet, right after the temporal self-attention (x = x + attn1(norm1(x))), the 12 numbers of each frame
are concatenated to the hidden states of that frame at every pixel and projected back by a Linear
``cc_projection`` (C + 12 -> C, initialised to [I | 0], bias 0: the model starts as SVD); then the block
goes on (attn2, feed-forward). Trained in the release: ``cc_projection``, ``attn2`` and ``norm2`` of those
blocks (the two UNet parts stay in the UNet; this module owns the projections).

The injection uses two hooks per block: ``norm1``'s input is the block's hidden state h (its input to the
residual sum), and ``attn1``'s output a is replaced by cc([h + a, RT]) - h, so the block's own sum h + that
gives cc([h + a, RT]) (float rounding of one subtraction aside; equal to MotionCtrl's code to 1e-6,
benchmarks/README.md).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..camera_encoder import CameraEncoder
from .unet_blocks import temporal_blocks


class MotionCtrlEncoder(CameraEncoder):
    """MotionCtrl-SVD's camera-motion module (module docstring).

    Args:
        temporal_dims: the width of each temporal transformer block (``unet_blocks.temporal_blocks`` order).
        pose_dim: numbers per frame (12: a flattened 3 x 4 [R | t]).
    """

    needs_camera = True

    def __init__(self, temporal_dims: tuple[int, ...], pose_dim: int = 12) -> None:
        super().__init__()
        self.pose_dim = int(pose_dim)
        self.projections = nn.ModuleList()
        for c in temporal_dims:
            proj = nn.Linear(int(c) + self.pose_dim, int(c))
            with torch.no_grad():
                proj.weight.zero_()
                proj.weight[:, : int(c)].copy_(torch.eye(int(c)))
                proj.bias.zero_()
            self.projections.append(proj)
        self._block_paths: list[str] = []
        self._h: list[torch.Tensor | None] = []

    @classmethod
    def from_unet(cls, unet: nn.Module, **kw) -> MotionCtrlEncoder:
        dims = tuple(int(m.norm1.normalized_shape[0]) for _, m in temporal_blocks(unet))
        if not dims:
            raise ValueError("MotionCtrlEncoder: the UNet has no temporal transformer block")
        return cls(dims, **kw)

    @property
    def block_paths(self) -> list[str]:
        """The UNet paths of the temporal blocks projection k belongs to (after ``attach``)."""
        return list(self._block_paths)

    def prepare(self, K_px: torch.Tensor, c2w: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """c2w (B, F, 4, 4) relative to frame 0 -> (B, F, 12) row-major world-to-camera [R | t]."""
        w2c = torch.linalg.inv(c2w.double()).float()
        return w2c[..., :3, :4].reshape(*c2w.shape[:-2], 12)

    def compute(self, camera_input: torch.Tensor) -> torch.Tensor:
        if camera_input.ndim != 3 or camera_input.shape[-1] != self.pose_dim:
            raise ValueError(f"expected (B, F, {self.pose_dim}) poses, got {tuple(camera_input.shape)}")
        return camera_input

    def attach(self, unet: nn.Module) -> None:
        self.detach()
        found = temporal_blocks(unet)
        if len(found) != len(self.projections):
            raise ValueError(
                f"UNet has {len(found)} temporal blocks, MotionCtrlEncoder "
                f"{len(self.projections)} projections"
            )
        self._block_paths = [p for p, _ in found]
        self._h = [None] * len(found)
        for k, (_, block) in enumerate(found):
            self._handles.append(block.norm1.register_forward_pre_hook(self._make_capture(k)))
            self._handles.append(block.attn1.register_forward_hook(self._make_project(k)))

    def _make_capture(self, k: int):
        def hook(module, args):
            if self._stash is not None:
                self._h[k] = args[0]

        return hook

    def _make_project(self, k: int):
        def hook(module, args, out):
            if self._stash is None:
                return None
            h, self._h[k] = self._h[k], None
            rt = self._stash
            n, f, _ = out.shape
            b = rt.shape[0]
            if n % b or rt.shape[1] != f:
                raise ValueError(
                    f"MotionCtrl poses {tuple(rt.shape)} do not fit temporal tokens {tuple(out.shape)}"
                )
            rt_tokens = rt.to(out.dtype).repeat_interleave(
                n // b, dim=0
            )  # (B S, F, 12): batch-major like the tokens
            y = self.projections[k](torch.cat([h + out, rt_tokens], dim=-1))
            return y - h

        return hook
