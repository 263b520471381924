"""The parameters of a set of 3D Gaussians and their activations (the 3DGS parameterisation).

A Gaussian has a mean (world), a rotation (quaternion w, x, y, z; normalised when used), a scale per axis
(stored as log), an opacity (stored as a logit) and a colour as the SH degree-0 coefficient ``sh0``:
rgb = 0.5 + C0 * sh0, C0 = 1 / (2 sqrt(pi)) (clamped at 0 when rendered, as 3DGS does). Covariance
Sigma = R S S^T R^T with S = diag(scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

SH_C0 = 0.28209479177387814  # 1 / (2 sqrt(pi)): the degree-0 real spherical harmonic


@dataclass
class Gaussians:
    """N Gaussians. means (N, 3) world; quats (N, 4) wxyz, any norm; log_scales (N, 3);
    opacity_logits (N,); sh0 (N, 3)."""

    means: torch.Tensor
    quats: torch.Tensor
    log_scales: torch.Tensor
    opacity_logits: torch.Tensor
    sh0: torch.Tensor

    def __post_init__(self) -> None:
        n = len(self.means)
        shapes = {"means": (n, 3), "quats": (n, 4), "log_scales": (n, 3), "opacity_logits": (n,),
                  "sh0": (n, 3)}
        for name, shape in shapes.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"Gaussians.{name} must have shape {shape}, got {got}")

    def __len__(self) -> int:
        return len(self.means)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def detach(self) -> Gaussians:
        return Gaussians(**{k: v.detach().clone() for k, v in self.tensors().items()})

    def to(self, *args, **kwargs) -> Gaussians:
        return Gaussians(**{k: v.to(*args, **kwargs) for k, v in self.tensors().items()})

    @property
    def scales(self) -> torch.Tensor:
        return self.log_scales.exp()

    @property
    def opacities(self) -> torch.Tensor:
        return torch.sigmoid(self.opacity_logits)

    @property
    def colors(self) -> torch.Tensor:
        """rgb (N, 3) before the renderer's clamp at 0."""
        return 0.5 + SH_C0 * self.sh0


def rgb_to_sh0(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - 0.5) / SH_C0


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """(..., 4) wxyz quaternions (normalised here) -> (..., 3, 3) rotation matrices."""
    w, x, y, z = torch.unbind(quats / quats.norm(dim=-1, keepdim=True), dim=-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def covariances(g: Gaussians) -> torch.Tensor:
    """World covariances (N, 3, 3) = R S S^T R^T."""
    rs = quat_to_rotmat(g.quats) * g.scales[:, None, :]
    return rs @ rs.transpose(-1, -2)


def inverse_sigmoid(p: float) -> float:
    return math.log(p / (1.0 - p))


def init_in_frustums(
    K_px: torch.Tensor,
    c2w: torch.Tensor,
    height: int,
    width: int,
    num: int,
    near: float,
    far: float,
    seed: int = 0,
    opacity: float = 0.1,
    color: torch.Tensor | None = None,
) -> Gaussians:
    """``num`` Gaussians at random points of the cameras' view frustums (pixel uniform, inverse depth uniform
    in [1/far, 1/near], so near space gets as many as far space), each the size of about one pixel's
    footprint times 2 at its depth, identity rotation, ``opacity``, grey (or ``color`` (3,) in [0, 1]).

    K_px (V, 3, 3) pixel intrinsics and c2w (V, 4, 4) OpenCV camera-to-world of the V input views."""
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    gen = torch.Generator().manual_seed(int(seed))
    K_px, c2w = K_px.double(), c2w.double()
    view = torch.randint(len(c2w), (num,), generator=gen)
    u = torch.rand(num, generator=gen, dtype=torch.float64) * width
    v = torch.rand(num, generator=gen, dtype=torch.float64) * height
    inv = 1 / far + torch.rand(num, generator=gen, dtype=torch.float64) * (1 / near - 1 / far)
    z = 1 / inv
    K = K_px[view]
    x = (u - K[:, 0, 2]) / K[:, 0, 0] * z
    y = (v - K[:, 1, 2]) / K[:, 1, 1] * z
    cam = torch.stack([x, y, z], -1)
    means = (c2w[view, :3, :3] @ cam[..., None])[..., 0] + c2w[view, :3, 3]
    size = 2.0 * z / K[:, 0, 0]
    rgb = torch.full((num, 3), 0.5, dtype=torch.float64) if color is None else color.double().expand(num, 3)
    return Gaussians(
        means=means.float(),
        quats=torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(num, 1),
        log_scales=size.log().float()[:, None].repeat(1, 3),
        opacity_logits=torch.full((num,), inverse_sigmoid(opacity)),
        sh0=rgb_to_sh0(rgb).float(),
    )
