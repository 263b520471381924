"""CameraCtrl's RealEstate10K dataset algorithm, written with our own code, as the baseline of
``benchmarks.loader_throughput``.

``RealEstate10KPose`` in github.com/hehao13/CameraCtrl, ``cameractrl/data/dataset.py`` (main and svd
branches). As there: every line of the camera file is parsed with ``float()`` and each 4x4 world-to-
camera matrix is inverted with ``np.linalg.inv``; the frame indices are ``np.linspace`` over a window of
``frames * stride`` lines at a random start (the stride shrinks to fit short clips); the frames are decoded
whole (CameraCtrl: decord on an .mp4, here PIL on the JPEG files: decord is not installed and the clips
are image folders), stacked, made a float tensor divided by 255, resized with torchvision on the float
tensor (bilinear, antialiased) and normalised with ``Normalize(0.5, 0.5)`` to [-1, 1]; the poses are made
relative to the first frame (``zero_t_first_frame``: c2w[0] = I); the Plücker embedding [o x d, d] is
computed at the full output resolution (320x512) through pixel centres (u + 0.5, v + 0.5) and returned
as (F, 6, H, W), which CameraCtrl's pose encoder then brings to the latent grid (PixelUnshuffle(8)).
Where it differs, so that the output equals vid3d's: CameraCtrl resizes straight to the sample size
(stretching the aspect, ``rescale_fxy`` correcting fx); here the resize keeps the aspect (shorter side
to 320, torchvision's ``Resize(320)`` size rule) and ``CenterCrop((320, 512))`` follows, with the
intrinsics scaled by the resize and shifted by the crop. The full-resolution Plücker map is averaged over
8x8 blocks (the model-side reduction to 40x64; the block mean of unit directions differs from the ray
through the block centre by < 1e-4 here). Not included (it would only slow the baseline): the svd
branch's separate decode of a conditioning frame, caption handling, random flips.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ._loader_common import LoaderSettings
from .clip_loaders import LATENT_FACTOR, ImageClipLoader, frame_files


def cameractrl_read_cameras(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CameraCtrl-style parse of a RealEstate10K camera file: every line after the URL is split and read
    with ``float()``, and each world-to-camera matrix is inverted on its own (``np.linalg.inv``).

    Returns (timestamps (N,) int64, intrinsics (N, 4) = normalised fx, fy, cx, cy, w2c (N, 4, 4),
    c2w (N, 4, 4)), OpenCV convention, float64. ValueError naming the file and line if a line is short."""
    lines = path.read_text().splitlines()[1:]
    ts, intr, w2cs, c2ws = [], [], [], []
    for n, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        v = [float(x) for x in line.split()]
        if len(v) != 19:
            raise ValueError(f"{path}:{n}: {len(v)} fields, expected 19")
        w2c = np.eye(4)
        w2c[:3, :] = np.array(v[7:19]).reshape(3, 4)
        ts.append(int(v[0]))
        intr.append(v[1:5])
        w2cs.append(w2c)
        c2ws.append(np.linalg.inv(w2c))
    return np.array(ts, dtype=np.int64), np.array(intr), np.stack(w2cs), np.stack(c2ws)


def cameractrl_plucker(K4: torch.Tensor, c2w: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Plücker embedding at the full image resolution, CameraCtrl's formulation.

    Args: K4 (F, 4) pixel fx, fy, cx, cy at (height, width); c2w (F, 4, 4) OpenCV camera-to-world.
    Returns (F, 6, height, width): [o x d, d] with d the unit world direction through (u + 0.5, v + 0.5)."""
    f = K4.shape[0]
    v, u = torch.meshgrid(
        torch.linspace(0, height - 1, height, dtype=c2w.dtype),
        torch.linspace(0, width - 1, width, dtype=c2w.dtype),
        indexing="ij",
    )
    u = u.reshape(1, -1) + 0.5
    v = v.reshape(1, -1) + 0.5
    fx, fy, cx, cy = (k[:, None] for k in K4.unbind(-1))
    dirs = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u).expand(f, -1)], dim=-1)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)  # (F, HW, 3), camera frame
    dirs = dirs @ c2w[:, :3, :3].transpose(-1, -2)  # world frame
    origins = c2w[:, None, :3, 3].expand_as(dirs)
    emb = torch.cat([torch.linalg.cross(origins, dirs, dim=-1), dirs], dim=-1)
    return emb.reshape(f, height, width, 6).permute(0, 3, 1, 2).contiguous()


class CameraCtrlStyle(ImageClipLoader):
    """CameraCtrl's RealEstate10K dataset algorithm on image-folder clips (see the module docstring);
    the same output as ``VidLoader``: frames float32 (F, 3, height, width) in [-1, 1], K_px (F, 3, 3), c2w
    (F, 4, 4) relative to the first frame, plucker (F, 6, height / 8, width / 8).

    ``plucker="full"``: CameraCtrl's full-resolution map, block-averaged to the latent grid; "latent": the
    same formulation evaluated directly at the latent grid (intrinsics / 8), a cheaper variant that is not
    CameraCtrl's."""

    def __init__(self, s: LoaderSettings, plucker: str = "full"):
        """``s``: the clips and the sample (``ImageClipLoader``)."""
        import torchvision.transforms as T

        super().__init__(s)
        if plucker not in ("full", "latent"):
            raise ValueError(f"plucker must be 'full' or 'latent', got {plucker!r}")
        self.plucker = plucker
        self.crop = T.CenterCrop((self.height, self.width))
        self.normalize = T.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], inplace=True)

    def indices(self, n: int, rng: random.Random) -> np.ndarray:
        """CameraCtrl's window: ``frames`` indices spread by ``np.linspace`` over frames * stride lines."""
        if n < self.frames:
            raise ValueError(f"{n} camera lines, fewer than {self.frames} frames")
        stride = self.interval
        if n < self.frames * stride:
            stride = rng.randint(1, n // self.frames)
        span = self.frames * stride
        start = rng.randint(0, max(0, n - span - 1))
        end = min(start + span, n)
        return np.linspace(start, end - 1, self.frames, dtype=int)

    def __getitem__(self, i: int) -> dict:
        import torchvision.transforms.functional as TF
        from PIL import Image

        clip = self.clips[i]
        ts, intr, w2c, c2w = cameractrl_read_cameras(clip.camera_path)
        idx = self.indices(len(ts), random.Random(i))
        files = frame_files(clip, ts)
        decoded = []
        for k in idx:
            with Image.open(files[k]) as im:
                decoded.append(np.asarray(im.convert("RGB")))
        video = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).contiguous() / 255.0
        H0, W0 = video.shape[-2:]
        # torchvision Resize(shorter side) size rule, shorter side to the output size that needs more
        s = max(self.height / H0, self.width / W0)
        rh, rw = max(self.height, int(H0 * s)), max(self.width, int(W0 * s))
        video = TF.resize(video, [rh, rw], antialias=True)
        video = self.normalize(self.crop(video))
        top, left = int(round((rh - self.height) / 2.0)), int(round((rw - self.width) / 2.0))
        sx, sy = rw / W0, rh / H0
        K4 = np.stack(
            [
                intr[idx, 0] * W0 * sx,
                intr[idx, 1] * H0 * sy,
                intr[idx, 2] * W0 * sx - left,
                intr[idx, 3] * H0 * sy - top,
            ],
            axis=-1,
        ).astype(np.float32)
        rel = np.array([w2c[idx[0]] @ c2w[k] for k in idx], dtype=np.float32)  # c2w[0] = I
        K4_t, rel_t = torch.from_numpy(K4), torch.from_numpy(rel)
        if self.plucker == "full":
            full = cameractrl_plucker(K4_t, rel_t, self.height, self.width)
            plucker = torch.nn.functional.avg_pool2d(full, LATENT_FACTOR)
        else:
            h, w = self.height // LATENT_FACTOR, self.width // LATENT_FACTOR
            plucker = cameractrl_plucker(K4_t / LATENT_FACTOR, rel_t, h, w)
        K_px = torch.zeros(len(idx), 3, 3)
        K_px[:, 0, 0], K_px[:, 1, 1], K_px[:, 0, 2], K_px[:, 1, 2], K_px[:, 2, 2] = (*K4_t.unbind(-1), 1.0)
        return {
            "frames": video,
            "K_px": K_px,
            "c2w": rel_t,
            "plucker": plucker,
            "clip_id": clip.clip_id,
            "frame_indices": torch.from_numpy(idx.astype(np.int64)),
        }
