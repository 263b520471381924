"""CamI2V's epipolar mask rule (``model/attention=epipolar_cami2v``), for reproducing CamI2V's attention.

vid3d's own band (``epipolar.py``) and CamI2V's agree on the geometry (with the same band and token centres
the two masks are identical) but differ in four choices. This module implements CamI2V's, as its released
training code applies them (its 256x256 and 512x320 configs):

- **Token centres.** A grid with ``d`` image pixels per token (d = 8 * 2^level on an SVD latent) places token
  (u, v) at image pixel coordinates (u d + d/2 - 1/2, v d + d/2 - 1/2) -- integer pixel centres -- and uses
  the image's pixel intrinsics. vid3d places it at ((u + 1/2) d, (v + 1/2) d) (pixel centres at +1/2).
- **Band.** Key token r is in query p's band when the distance from r's centre to p's epipolar line, in
  image pixels, is *strictly* below d * sqrt(2) / 2: a full band of sqrt(2) tokens (vid3d: 2, inclusive).
- **Zero translation.** For the pair (i, j) the relative pose is c2w_j^-1 c2w_i = [R | t]. Where every
  |t_k| < ``ZERO_T_EPS`` (the frame itself, or two frames with no baseline) t is replaced by
  ``ZERO_T_EPS * n`` with n ~ N(0, I) drawn per forward. For the frame itself (R = I) the line of pixel x
  is then F x with x^T F x = 0: a line *through the query pixel* in a random direction, along which it
  attends to its own frame. (vid3d: a query attends to itself only; a zero-baseline frame not at all.)
- **Fundamental matrix** F_ij = K_j^-T [t]x R K_j^-1, the key frame's intrinsics on both sides (CamI2V
  broadcasts them so; the same as the two-camera form whenever the frames share intrinsics).
- **Register tokens**: 4 learned key/value tokens that every query attends to (no row of the mask is empty);
  they live in ``CrossFrameAttention(registers=4)``, not in the mask.

Lines are normalised by the norm of their first two coefficients; a line that vanishes (0 / 0) attends to
nothing in that frame, as in CamI2V. Arithmetic is float64 (CamI2V: float32; the difference only moves
entries within ~1e-5 px of the band's edge).
"""

from __future__ import annotations

import math

import torch

from vid3d.geometry.epipolar import relative_pose_1_to_2, skew

ZERO_T_EPS = 1e-6
NUM_REGISTER_TOKENS = 4


def token_centres_cami2v(h: int, w: int, downsample: float, device=None) -> torch.Tensor:
    """(h * w, 3) homogeneous image-pixel centres (u d + d/2 - 1/2, v d + d/2 - 1/2, 1), flat v * w + u."""
    v, u = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    xy = torch.stack([u, v], -1).reshape(-1, 2).to(torch.float64) * downsample + (downsample / 2 - 0.5)
    return torch.cat([xy, torch.ones_like(xy[:, :1])], dim=1)


def fundamental_cami2v(K_img: torch.Tensor, c2w: torch.Tensor, noise: torch.Tensor,
                       eps: float = ZERO_T_EPS) -> torch.Tensor:
    """CamI2V's fundamental matrices of all frame pairs.

    Args:
        K_img: (B, F, 3, 3) pixel intrinsics at the image resolution; c2w: (B, F, 4, 4) OpenCV
            camera-to-world; noise: (B, F, F, 3) standard normal draws for the zero-translation rule.
    Returns:
        (B, F, F, 3, 3) float64; ``[b, i, j]`` maps a pixel of frame i to its line in frame j:
        x_j^T F x_i = 0.
    """
    K, P = K_img.to(torch.float64), c2w.to(torch.float64)
    n = P.shape[1]
    R, t = relative_pose_1_to_2(P[:, :, None].expand(-1, -1, n, -1, -1), P[:, None].expand(-1, n, -1, -1, -1))
    small = (t.abs() < eps).all(dim=-1, keepdim=True)
    t = torch.where(small, eps * noise.to(t), t)
    K_inv = torch.linalg.inv(K)[:, None]  # (B, 1, F, 3, 3): the key frame j's, on both sides
    return K_inv.transpose(-1, -2) @ (skew(t) @ R) @ K_inv


def band_mask_cami2v(K_img: torch.Tensor, c2w: torch.Tensor, h: int, w: int, downsample: float,
                     noise: torch.Tensor, eps: float = ZERO_T_EPS) -> torch.Tensor:
    """CamI2V's epipolar mask at an (h, w) token grid.

    Args:
        K_img, c2w, noise, eps: see ``fundamental_cami2v``.
        h, w: token grid; downsample: image pixels per token (the image is h * d by w * d).
    Returns:
        (B, F h w, F h w) bool, True = attend; tokens frame-major (t = f * h * w + v * w + u), as vid3d's
        masks, so it drops into ``SharedMask`` / ``shared_mask_attention``.
    """
    Fm = fundamental_cami2v(K_img, c2w, noise, eps)
    B, n = Fm.shape[:2]
    N = h * w
    g = token_centres_cami2v(h, w, downsample, Fm.device)  # (N, 3)
    half = downsample * math.sqrt(2) / 2
    mask = torch.empty(B, n, N, n, N, dtype=torch.bool, device=Fm.device)
    for i in range(n):  # one query frame at a time: (B, F, N, N) distances, not (B, F, F, N, N)
        lines = torch.einsum("bjkl,pl->bjpk", Fm[:, i], g)  # (B, F_j, N_p, 3)
        lines = lines / lines[..., :2].norm(dim=-1, keepdim=True)  # 0/0 = NaN: attends to nothing
        dist = torch.einsum("bjpk,rk->bjpr", lines, g).abs()  # (B, F_j, N_p, N_r)
        mask[:, i] = (dist < half).transpose(1, 2)  # NaN < half is False
    return mask.view(B, n * N, n * N)


def zero_translation_noise(batch: int, frames: int, device=None,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, frames, frames, 3) float64 standard normals for the zero-translation rule (one draw per
    forward, from the global RNG unless a generator is given)."""
    return torch.randn(batch, frames, frames, 3, generator=generator, device=device, dtype=torch.float64)
