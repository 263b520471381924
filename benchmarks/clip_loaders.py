"""The clip loaders the data-loading benchmarks compare (``loader_throughput``, ``shuffle_loads``).

Each produces a ready training sample from RealEstate10K-layout clips (a folder of JPEG frames named by
timestamp + a camera .txt per clip): frames, pixel intrinsics, camera-to-world poses relative to the first
frame and Plücker maps at the latent resolution (1/8). CameraCtrl's algorithm is in ``cameractrl_loader``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vid3d.data.clips import Re10kClipDataset, choose_stride_window
from vid3d.data.formats import re10k
from vid3d.data.interval import FixedInterval
from vid3d.data.transforms import center_crop_box
from vid3d.geometry import K_norm_to_px, crop_resize_K, plucker_embedding, relative_to_first, w2c_to_c2w

from ._loader_common import LoaderSettings

LATENT_FACTOR = 8  # 320x512 frames -> 40x64 latents


def add_plucker(sample: dict, height: int, width: int) -> dict:
    """Add ``plucker`` (F, 6, height / 8, width / 8) float32 from the sample's K_px (pixel intrinsics at
    (height, width)) and c2w (OpenCV camera-to-world): the rays through the latent pixels' centres."""
    h, w = height // LATENT_FACTOR, width // LATENT_FACTOR
    K_lat = crop_resize_K(sample["K_px"], 0, 0, width, height, w, h)
    sample["plucker"] = plucker_embedding(K_lat, sample["c2w"], h, w).float()
    return sample


def frame_files(clip: re10k.Re10kClip, timestamps: np.ndarray) -> list[Path]:
    """The frame file of each camera line of an image-folder clip: ``{timestamp}.ext``, else
    ``{line:05d}.ext`` (the RealEstate10K layout); FileNotFoundError naming the folder and the line if one
    is missing."""
    by_stem = {}
    for name in os.listdir(clip.frames_dir):
        stem, ext = os.path.splitext(name)
        if ext.lower() in re10k.IMAGE_EXTS:
            by_stem.setdefault(stem, name)
    out = []
    for i, ts in enumerate(timestamps.tolist()):
        name = by_stem.get(str(ts)) or by_stem.get(f"{i:05d}")
        if name is None:
            raise FileNotFoundError(
                f"{clip.frames_dir}: no frame file for camera line {i + 2} (timestamp {ts})"
            )
        out.append(clip.frames_dir / name)
    return out


class VidLoader(Dataset):
    """vid3d's clip dataset (uint8 frames, or float32 in [-1, 1] on the CPU) + Plücker maps at 1/8."""

    def __init__(self, s: LoaderSettings, frames_dtype: str = "uint8"):
        self.ds = Re10kClipDataset(
            s.root, s.split, s.frames, s.height, s.width, interval=FixedInterval(s.interval),
            frames_dtype=frames_dtype,
        )
        self.ds.clips = self.ds.clips[: s.clips]
        self.height, self.width = s.height, s.width

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        return add_plucker(self.ds[i], self.height, self.width)


def image_clips(root: Path, split: str, clips: int | None) -> list[re10k.Re10kClip]:
    """The first ``clips`` clips of the split stored as image folders (sorted by clip id)."""
    found = [c for c in re10k.list_clips(root, split, missing="skip") if c.frames_dir is not None]
    return found[:clips]


class ImageClipLoader(Dataset):
    """The first ``s.clips`` image-folder clips of a split (``image_clips``) and the sample to make of each:
    ``frames`` frames at ``height`` x ``width``, ``interval`` apart; subclasses make it (``__getitem__``)."""

    def __init__(self, s: LoaderSettings):
        self.clips = image_clips(s.root, s.split, s.clips)
        self.frames, self.height, self.width, self.interval = s.frames, s.height, s.width, s.interval

    def __len__(self) -> int:
        return len(self.clips)


class PilBaseline(ImageClipLoader):
    """Plain per-frame PIL decode + crop + bilinear resize, float on the CPU; vid3d's cameras and Plücker
    maps (image folders only)."""

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        clip = self.clips[i]
        cams = re10k.read_camera_file(clip.camera_path)
        rng = np.random.default_rng(i)
        idx = choose_stride_window(len(cams), self.frames, self.interval, rng)
        files = frame_files(clip, cams.timestamps)
        imgs, K = [], None
        for k in idx:
            with Image.open(files[int(k)]) as im:
                im = im.convert("RGB")
                W0, H0 = im.size
                x0, y0, cw, ch = center_crop_box(H0, W0, self.height, self.width)
                im = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((self.width, self.height), Image.BILINEAR)
                imgs.append(torch.from_numpy(np.array(im)).permute(2, 0, 1))
            if K is None:
                K = crop_resize_K(
                    K_norm_to_px(cams.K_norm[idx], H0, W0), x0, y0, cw, ch, self.width, self.height
                )
        frames = torch.stack(imgs).float() / 127.5 - 1.0
        sample = {
            "frames": frames,
            "K_px": torch.from_numpy(K).float(),
            "c2w": torch.from_numpy(relative_to_first(w2c_to_c2w(cams.w2c[idx]))).float(),
            "clip_id": clip.clip_id,
            "frame_indices": torch.from_numpy(idx),
        }
        return add_plucker(sample, self.height, self.width)


def synthetic_root(tmp: Path, clips: int, frames: int, height: int, width: int) -> Path:
    """``clips`` synthetic RealEstate10K-layout clips of ``frames`` JPEG frames at height x width."""
    from vid3d.data.synthetic import build_synthetic_dataset

    kw = dict(num_train=clips, num_test=0, num_frames=frames, height=height, width=width)
    return build_synthetic_dataset(tmp / "synthetic", image_ext="jpg", workers=1, **kw)


def check_batch(name: str, batch: dict, frames: int, height: int, width: int) -> None:
    """The sample every pipeline must produce; AssertionError naming the pipeline and the field."""
    f, p = batch["frames"], batch["plucker"]
    h, w = height // LATENT_FACTOR, width // LATENT_FACTOR
    assert f.shape[1:] == (frames, 3, height, width), f"{name}: frames {tuple(f.shape)}"
    assert p.shape[1:] == (frames, 6, h, w) and p.dtype == torch.float32, f"{name}: plucker {tuple(p.shape)}"
    if name == "vid3d":
        assert f.dtype == torch.uint8, f"{name}: frames are {f.dtype}, expected uint8"
    else:
        assert f.dtype == torch.float32 and -1.0 - 1e-6 <= f.min() and f.max() <= 1.0 + 1e-6, (
            f"{name}: frames {f.dtype} in [{f.min():.3f}, {f.max():.3f}], expected float32 in [-1, 1]"
        )
    assert batch["K_px"].shape[1:] == (frames, 3, 3) and batch["c2w"].shape[1:] == (frames, 4, 4), name
