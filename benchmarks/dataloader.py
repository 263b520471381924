"""Data loading throughput: clips/s to a ready training sample, vid3d's loader vs a CameraCtrl-style loader.

A ready sample is what a training step consumes: 25 frames centre-cropped and resized to 320x512, pixel
intrinsics at that size, camera-to-world poses relative to the first frame, and Plücker maps at the latent
resolution 40x64. Every pipeline below produces it from the same RealEstate10K-layout clips (a folder of
JPEG frames named by timestamp + a camera .txt per clip):

- ``vid3d``: ``Re10kClipDataset(frames_dtype="uint8")``, what training uses: OpenCV decode straight to RGB,
  one crop + INTER_AREA resize per frame on uint8 written into one output array (no float copy, no stack
  of resized frames), validation and bad-clip handling, then ``vid3d.geometry.plucker_embedding`` at 40x64.
  Frames leave the loader as uint8 (F, 3, 320, 512); ``[-1, 1]`` is made once on the device by the
  training step's batch preparation (``VideoDataModule.on_after_batch_transfer``,
  ``vid3d.data.frames.as_unit_range``).
- ``vid3d_float``: the same loader with ``frames_dtype="float32"`` (the evaluation default): frames
  converted to [-1, 1] on the CPU, in the loader, for comparison.
- ``cameractrl``: CameraCtrl's RealEstate10K dataset algorithm (``RealEstate10KPose`` in
  github.com/hehao13/CameraCtrl, ``cameractrl/data/dataset.py``, main and svd branches), written here with
  our own code. As there: every line of the camera file is parsed with ``float()`` and each 4x4 world-to-
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
- ``cameractrl_latent_plucker``: the same, but the Plücker map is evaluated at the 40x64 latent grid
  directly (not CameraCtrl's algorithm: a stronger baseline, to show how much of the ratio is the
  full-resolution map).
- ``pil_baseline``: per frame ``PIL.Image.open(...).convert("RGB")``, vid3d's crop box, Pillow's
  ``resize(BILINEAR)`` (its triangle filter widens with the downscale), to float on the CPU; vid3d's camera
  parsing and Plücker maps.

Protocol (one command): --clips clips (default 16) of --frames frames (so every pipeline samples the same
frames: the whole clip) at --source-height x --source-width (default 360x640, RealEstate10K's 360p) are
rendered as JPEG (the vid3d synthetic scenes) into a temporary folder (or --cache, reused when the same)
unless --root names a RealEstate10K-layout split. Each pipeline reads every clip once
(untimed: the first pass, which for vid3d includes its one-time whole-clip check per clip and process), then
--rounds rounds each time every pipeline over all clips, the pipelines taking turns within a round (the order
rotates every round), so load from other work on the machine hits all of them alike. Each pass is a torch
DataLoader (batch size 1, --workers workers, default 0 = the main process) with ``collate_samples``. torch and
OpenCV run one thread each. Reported: clips/s over all timed passes, the median pass's ms/clip, and the
ratio to ``cameractrl`` (median over rounds of the per-round time ratio, with min and max). Prints a table
and writes JSON (atomically, default results/dataloader.json).

    .venv/bin/python benchmarks/dataloader.py
    .venv/bin/python benchmarks/dataloader.py --quick
    .venv/bin/python benchmarks/dataloader.py --root /path/to/re10k --split train --clips 64 --workers 8

``--mode shuffle`` compares training orders over pixelSplat chunks (``ChunkClipDataset``): ``full`` and
``grouped`` shuffling (``data.datamodule.shuffle``; ``grouped_rr``: grouped without the per-worker layout,
batches dealt round robin) through ``ResumableSampler`` + DataLoader, counting chunk loads (per process,
summed over workers) and ms per sample over one epoch. Without --root the split is a synthetic set
converted with ``python -m vid3d.data.formats.convert --from re10k --to chunks``. It also counts the loads
of an epoch at RealEstate10K scale (--sim-*: item -> chunk map and sampler only, no I/O). Writes
``results/dataloader_shuffle.json``.

    .venv/bin/python benchmarks/dataloader.py --mode shuffle --quick --workers 2
    .venv/bin/python benchmarks/dataloader.py --mode shuffle --root /data/re10k_chunks --clips 400 --workers 8
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vid3d.atomic import atomic_write_json  # noqa: E402
from vid3d.data.clips import Re10kClipDataset, choose_stride_window  # noqa: E402
from vid3d.data.datamodule import ResumableSampler, StepIndexedDataset, collate_samples  # noqa: E402
from vid3d.data.formats import convert, pixelsplat, re10k  # noqa: E402
from vid3d.data.interval import FixedInterval  # noqa: E402
from vid3d.data.transforms import center_crop_box  # noqa: E402
from vid3d.geometry import (  # noqa: E402
    K_norm_to_px,
    crop_resize_K,
    plucker_embedding,
    relative_to_first,
    w2c_to_c2w,
)

LATENT_FACTOR = 8  # 320x512 frames -> 40x64 latents
BASELINE = "cameractrl"
PIPELINES = ("vid3d", "vid3d_float", BASELINE, "cameractrl_latent_plucker", "pil_baseline")


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

    def __init__(
        self,
        root: Path,
        split: str,
        frames: int,
        height: int,
        width: int,
        interval: int,
        frames_dtype: str = "uint8",
        clips: int | None = None,
    ):
        self.ds = Re10kClipDataset(
            root, split, frames, height, width, interval=FixedInterval(interval), frames_dtype=frames_dtype
        )
        self.ds.clips = self.ds.clips[:clips]
        self.height, self.width = height, width

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        return add_plucker(self.ds[i], self.height, self.width)


def image_clips(root: Path, split: str, clips: int | None) -> list[re10k.Re10kClip]:
    """The first ``clips`` clips of the split stored as image folders (sorted by clip id)."""
    found = [c for c in re10k.list_clips(root, split, missing="skip") if c.frames_dir is not None]
    return found[:clips]


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


class CameraCtrlStyle(Dataset):
    """CameraCtrl's RealEstate10K dataset algorithm on image-folder clips (see the module docstring);
    the same output as ``VidLoader``: frames float32 (F, 3, height, width) in [-1, 1], K_px (F, 3, 3), c2w
    (F, 4, 4) relative to the first frame, plucker (F, 6, height / 8, width / 8).

    ``plucker="full"``: CameraCtrl's full-resolution map, block-averaged to the latent grid; "latent": the
    same formulation evaluated directly at the latent grid (intrinsics / 8), a cheaper variant that is not
    CameraCtrl's."""

    def __init__(
        self,
        root: Path,
        split: str,
        frames: int,
        height: int,
        width: int,
        interval: int,
        clips: int | None = None,
        plucker: str = "full",
    ):
        import torchvision.transforms as T

        self.clips = image_clips(root, split, clips)
        self.frames, self.height, self.width, self.stride = frames, height, width, interval
        if plucker not in ("full", "latent"):
            raise ValueError(f"plucker must be 'full' or 'latent', got {plucker!r}")
        self.plucker = plucker
        self.crop = T.CenterCrop((height, width))
        self.normalize = T.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], inplace=True)

    def __len__(self) -> int:
        return len(self.clips)

    def indices(self, n: int, rng: random.Random) -> np.ndarray:
        """CameraCtrl's window: ``frames`` indices spread by ``np.linspace`` over frames * stride lines."""
        if n < self.frames:
            raise ValueError(f"{n} camera lines, fewer than {self.frames} frames")
        stride = self.stride
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


class PilBaseline(Dataset):
    """Plain per-frame PIL decode + crop + bilinear resize, float on the CPU; vid3d's cameras and Plücker
    maps (image folders only)."""

    def __init__(
        self,
        root: Path,
        split: str,
        frames: int,
        height: int,
        width: int,
        interval: int,
        clips: int | None = None,
    ):
        self.clips = image_clips(root, split, clips)
        self.frames, self.height, self.width, self.interval = frames, height, width, interval

    def __len__(self) -> int:
        return len(self.clips)

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


def make_pipelines(
    root: Path,
    split: str,
    frames: int,
    height: int,
    width: int,
    interval: int,
    clips: int | None,
    names=PIPELINES,
) -> dict:
    """{name: dataset} of the compared pipelines over the same clips (see the module docstring)."""
    args = (root, split, frames, height, width, interval)
    make = {
        "vid3d": lambda: VidLoader(*args, frames_dtype="uint8", clips=clips),
        "vid3d_float": lambda: VidLoader(*args, frames_dtype="float32", clips=clips),
        BASELINE: lambda: CameraCtrlStyle(*args, clips=clips),
        "cameractrl_latent_plucker": lambda: CameraCtrlStyle(*args, clips=clips, plucker="latent"),
        "pil_baseline": lambda: PilBaseline(*args, clips=clips),
    }
    return {n: make[n]() for n in names}


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


def time_pass(loader: DataLoader) -> tuple[float, int, dict]:
    """(seconds, clips, last batch) of one pass over ``loader``."""
    start, n, batch = time.perf_counter(), 0, None
    for batch in loader:
        n += len(batch["clip_id"])
    return time.perf_counter() - start, n, batch


def measure_pipelines(
    pipelines: dict, rounds: int, workers: int, frames: int, height: int, width: int
) -> dict:
    """One untimed first pass per pipeline, then ``rounds`` rounds in which the pipelines take turns (the
    order rotating each round). Returns {"first_pass_s": {name: s}, "rounds": [{name: s}], "clips": n}."""
    kw = {"persistent_workers": True, "prefetch_factor": 2} if workers else {}
    loaders = {
        n: DataLoader(ds, batch_size=1, shuffle=False, num_workers=workers, collate_fn=collate_samples, **kw)
        for n, ds in pipelines.items()
    }
    names = list(pipelines)
    first, per_round, clips = {}, [], None
    for n in names:
        first[n], clips, batch = time_pass(loaders[n])
        check_batch(n, batch, frames, height, width)
    for r in range(rounds):
        times = {}
        for n in names[r % len(names) :] + names[: r % len(names)]:
            times[n], got, batch = time_pass(loaders[n])
            assert got == clips, f"{n}: {got} clips in a pass, expected {clips}"
            check_batch(n, batch, frames, height, width)
        per_round.append(times)
        line = ", ".join(f"{n} {1000 * t / clips:.0f}" for n, t in times.items())
        print(f"  round {r + 1}: {line} ms/clip", flush=True)
    return {"first_pass_s": first, "rounds": per_round, "clips": clips}


def summarize(m: dict) -> list[dict]:
    """Rows: clips/s over all timed passes, median ms/clip, ratio to the baseline per round (median,
    min, max)."""
    clips, rounds = m["clips"], m["rounds"]
    rows = []
    for n in m["first_pass_s"]:
        times = [r[n] for r in rounds]
        row = {
            "pipeline": n,
            "clips_per_s": round(clips * len(times) / sum(times), 3),
            "ms_per_clip_median": round(1000 * statistics.median(times) / clips, 1),
            "first_pass_ms_per_clip": round(1000 * m["first_pass_s"][n] / clips, 1),
        }
        if BASELINE in m["first_pass_s"]:
            ratios = [r[BASELINE] / r[n] for r in rounds]
            row["speedup_vs_cameractrl"] = {
                "median": round(statistics.median(ratios), 2),
                "min": round(min(ratios), 2),
                "max": round(max(ratios), 2),
            }
        rows.append(row)
    return rows


def synthetic_root(tmp: Path, clips: int, frames: int, height: int, width: int) -> Path:
    """``clips`` synthetic RealEstate10K-layout clips of ``frames`` JPEG frames at height x width."""
    from vid3d.data.synthetic import build_synthetic_dataset

    kw = dict(num_train=clips, num_test=0, num_frames=frames, height=height, width=width)
    return build_synthetic_dataset(tmp / "synthetic", image_ext="jpg", workers=1, **kw)


class CountingChunks(Dataset):
    """``ChunkClipDataset`` + Plücker maps; each sample also carries this process' chunk loads so far and
    its loader worker id (-1 in the main process)."""

    def __init__(self, root: Path, split: str, frames: int, height: int, width: int, interval: int):
        self.ds = pixelsplat.ChunkClipDataset(root, split, frames, height, width, FixedInterval(interval))
        self.height, self.width = height, width

    def __len__(self) -> int:
        return len(self.ds)

    def groups(self) -> list[int]:
        return self.ds.groups()

    def __getitem__(self, i: int) -> dict:
        sample = add_plucker(self.ds[i], self.height, self.width)
        info = get_worker_info()
        sample["chunk_loads"], sample["worker"] = self.ds.chunk_loads, -1 if info is None else info.id
        return sample


def measure_shuffle(make, order: str, workers: int, batch: int, clips: int) -> dict:
    """One epoch (its first ``clips`` samples) through ResumableSampler(order) and a DataLoader.

    ms/sample is timed from the first batch on (worker start-up and the first batch excluded); chunk
    loads are every process' own count at its last sample, summed."""
    ds = make()  # fresh: no chunk cached, counts at 0
    mode = "grouped" if order.startswith("grouped") else order
    sampler = ResumableSampler(
        len(ds),
        batch,
        seed=0,
        shuffle=mode,
        drop_last=False,
        groups=ds.groups() if mode == "grouped" else None,
        num_workers=workers if order == "grouped" else 1,  # grouped_rr: layout for 1 worker, dealt to W
    )
    kw = {"prefetch_factor": 2} if workers else {}
    loader = DataLoader(
        StepIndexedDataset(ds),
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_samples,
        **kw,
    )
    loads: dict[int, int] = {}
    n_timed, start = 0, 0.0
    for k, b in enumerate(itertools.islice(loader, -(-min(clips, len(sampler)) // batch))):
        loads.update(zip(b["worker"].tolist(), b["chunk_loads"].tolist()))  # cumulative: keep the last
        if k == 0:
            start = time.perf_counter()
        else:
            n_timed += len(b["worker"])
    seconds = time.perf_counter() - start
    samples = min(clips, len(sampler))
    return {
        "order": order,
        "workers": workers,
        "batch_size": batch,
        "samples": samples,
        "chunk_loads": sum(loads.values()),
        "loads_per_sample": round(sum(loads.values()) / samples, 3),
        "ms_per_sample": round(1000 * seconds / max(1, n_timed), 1),
    }


def simulate_loads(n: int, chunk_size: int, ranks: int, workers: int, batch: int, order: str) -> int:
    """Chunk loads of one epoch over all ranks and workers (one-chunk cache per process), from the
    sampler's order alone: batch k of a rank goes to its worker k % workers."""
    groups = [i // chunk_size for i in range(n)]
    mode = "grouped" if order.startswith("grouped") else order
    total = 0
    for rank in range(ranks):
        s = ResumableSampler(
            n,
            batch,
            shuffle=mode,
            drop_last=False,
            num_replicas=ranks,
            rank=rank,
            groups=groups if mode == "grouped" else None,
            num_workers=workers if order == "grouped" else 1,
        )
        items = s.order(0)[: len(s)]
        batches = [items[i : i + batch] for i in range(0, len(items), batch)]
        for w in range(workers):
            chunks = [groups[i] for bt in batches[w::workers] for i in bt]
            total += sum(1 for k, c in enumerate(chunks) if k == 0 or c != chunks[k - 1])
    return total


def chunk_split(a, tmp: Path) -> tuple[Path, float]:
    """--root, or a synthetic set converted to chunks by the converter's CLI; (root, seconds to build)."""
    if a.root is not None:
        return a.root, 0.0
    from vid3d.data.synthetic import build_synthetic_dataset

    t0 = time.perf_counter()
    kw = dict(num_train=16 if a.quick else 48, num_test=0, num_frames=40, height=180, width=320)
    src = build_synthetic_dataset(tmp / "synthetic", image_ext="jpg", workers=1, **kw)
    cli = f"--from re10k --to chunks --splits {a.split} --chunk-size {a.chunk_size or (4 if a.quick else 8)}"
    code = convert.main([*cli.split(), str(src), str(tmp / "chunks")])
    if code:
        raise SystemExit(code)
    return tmp / "chunks", time.perf_counter() - t0


def main_shuffle(a, argv: list[str] | None) -> int:
    out = a.out or ROOT / "benchmarks" / "results" / "dataloader_shuffle.json"
    with tempfile.TemporaryDirectory(prefix="vid3d_bench_") as tmp:
        root, build_s = chunk_split(a, Path(tmp))
        split_dir = root / a.split
        files = sorted(set(pixelsplat.read_index(split_dir).values()))
        t0 = time.perf_counter()
        for name in files[:8]:
            pixelsplat.load_chunk(split_dir / name)
        load_ms = 1000 * (time.perf_counter() - t0) / min(8, len(files))
        chunk_mb = sum((split_dir / f).stat().st_size for f in files) / len(files) / 1e6

        def make() -> CountingChunks:
            return CountingChunks(root, a.split, a.frames, a.height, a.width, a.interval)

        n = len(make())
        clips = a.clips if a.clips is not None else n
        rows = []
        for workers in sorted({1, max(1, a.workers)}):
            for order in ("full", "grouped") + (("grouped_rr",) if workers > 1 else ()):
                r = measure_shuffle(make, order, workers, a.batch_size, clips)
                rows.append(r)
                loads, ms = r["chunk_loads"], r["ms_per_sample"]
                print(f"  {order:10s} workers={workers}: {loads} loads, {ms} ms/sample", flush=True)
    n_chunks = -(-a.sim_clips // a.sim_chunk_size)
    sims = []
    for batch, order in itertools.product((1, 4), ("full", "grouped_rr", "grouped")):
        loads = simulate_loads(a.sim_clips, a.sim_chunk_size, a.sim_ranks, a.sim_workers, batch, order)
        sims.append({"order": order, "batch_size": batch, "chunk_loads": loads})
        sims[-1]["loads_per_chunk"] = round(loads / n_chunks, 2)
    print(
        f"\nsource: {a.root or f'synthetic, converted to chunks (built in {build_s:.0f}s)'}: {n} clips in "
        f"{len(files)} chunks of {chunk_mb:.1f} MB (load {load_ms:.0f} ms each); "
        f"sample {a.frames}x3x{a.height}x{a.width} + Plücker; batch {a.batch_size}"
    )
    print("| order | workers | samples | chunk loads | loads/sample | ms/sample |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['order']} | {r['workers']} | {r['samples']} | {r['chunk_loads']} "
            f"| {r['loads_per_sample']:.2f} | {r['ms_per_sample']:.0f} |"
        )
    print(
        f"\nsimulated epoch: {a.sim_clips} clips, {a.sim_chunk_size} per chunk, {a.sim_ranks} ranks x "
        f"{a.sim_workers} workers (loads counted from the sampler's order, no I/O)"
    )
    print("| order | batch/rank | chunk loads | loads/chunk |")
    print("|---|---|---|---|")
    for r in sims:
        print(f"| {r['order']} | {r['batch_size']} | {r['chunk_loads']} | {r['loads_per_chunk']:.2f} |")
    result = {
        "benchmark": "dataloader_shuffle",
        "source": str(a.root) if a.root else ("synthetic-quick" if a.quick else "synthetic") + "-chunks",
        "clips": n,
        "chunks": len(files),
        "chunk_mb": round(chunk_mb, 2),
        "chunk_load_ms": round(load_ms, 1),
        "sample": {"frames": [a.frames, 3, a.height, a.width], "interval": a.interval},
        "rows": rows,
        "simulated": {k: getattr(a, "sim_" + k) for k in ("clips", "chunk_size", "ranks", "workers")},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "command": " ".join(["benchmarks/dataloader.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    result["simulated"]["rows"] = sims
    atomic_write_json(out, result)
    print(f"\nwrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["pipelines", "shuffle"], default="pipelines", help="see above")
    p.add_argument(
        "--root", type=Path, default=None, help="RE10K layout (shuffle: chunks); default synthetic"
    )
    p.add_argument("--split", default="train")
    p.add_argument("--quick", action="store_true", help="pipelines: 4 clips, 2 rounds; shuffle: small set")
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--height", type=int, default=320)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--source-height", type=int, default=360, help="synthetic source frames (RE10K: 360)")
    p.add_argument("--source-width", type=int, default=640, help="synthetic source frames (RE10K: 640)")
    p.add_argument("--interval", type=int, default=1, help="frame stride (fixed)")
    p.add_argument("--workers", type=int, default=None, help="loader workers (pipelines: 0; shuffle: N)")
    p.add_argument("--clips", type=int, default=None, help="clips (16, quick 4; shuffle: an epoch)")
    p.add_argument("--rounds", type=int, default=None, help="pipelines: timed rounds (5, quick 2)")
    p.add_argument("--pipelines", default=",".join(PIPELINES), help="comma-separated subset")
    p.add_argument(
        "--chunk-size", type=int, default=None, help="shuffle: synthetic chunks' clips (4 quick, 8)"
    )
    p.add_argument("--batch-size", type=int, default=1, help="shuffle: per-rank batch size")
    p.add_argument("--sim-clips", type=int, default=67477, help="shuffle: simulated split (RE10K train)")
    p.add_argument("--sim-chunk-size", type=int, default=16, help="shuffle: simulated clips per chunk")
    p.add_argument("--sim-ranks", type=int, default=8)
    p.add_argument("--sim-workers", type=int, default=8)
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="pipelines: render the synthetic clips here (reused if the same)",
    )
    p.add_argument("--out", type=Path, default=None, help="default results/dataloader[_shuffle].json")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    import cv2

    cv2.setNumThreads(1)
    if a.mode == "shuffle":
        a.workers = a.workers if a.workers is not None else min(4, os.cpu_count() or 1)
        return main_shuffle(a, argv)
    return main_pipelines(a, argv)


def main_pipelines(a, argv: list[str] | None) -> int:
    out = a.out or ROOT / "benchmarks" / "results" / "dataloader.json"
    clips = a.clips if a.clips is not None else (4 if a.quick else 16)
    rounds = a.rounds if a.rounds is not None else (2 if a.quick else 5)
    workers = a.workers if a.workers is not None else 0
    names = [n.strip() for n in a.pipelines.split(",") if n.strip()]
    known = PIPELINES
    if not names or set(names) - set(known):
        print(f"error: --pipelines takes a subset of {','.join(known)}, got {a.pipelines!r}", file=sys.stderr)
        return 2
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="vid3d_bench_") as tmp:
        t0 = time.perf_counter()
        if a.root is None:
            print(
                f"rendering {clips} synthetic clips of {a.frames} frames at "
                f"{a.source_height}x{a.source_width} (JPEG) ...",
                flush=True,
            )
            root = synthetic_root(a.cache or Path(tmp), clips, a.frames, a.source_height, a.source_width)
        else:
            root = a.root
        build_s = time.perf_counter() - t0
        found = image_clips(root, a.split, clips)
        if len(found) < clips:
            print(
                f"error: {root}/{a.split}: {len(found)} image-folder clips, --clips {clips} asked",
                file=sys.stderr,
            )
            return 2
        cams = re10k.read_camera_file(found[0].camera_path)
        source_hw = list(re10k.read_frames(found[0], cams, [0]).shape[1:3])
        pipelines = make_pipelines(root, a.split, a.frames, a.height, a.width, a.interval, clips, names)
        print(f"{clips} clips, {rounds} rounds, {workers} workers, 1 thread", flush=True)
        m = measure_pipelines(pipelines, rounds, workers, a.frames, a.height, a.width)
    load.append(os.getloadavg()[0])
    rows = summarize(m)
    print()
    print(
        f"source: {a.root or f'synthetic, rendered in {build_s:.0f}s'}: {clips} clips, frames {source_hw[0]}x"
        f"{source_hw[1]} JPEG; sample {a.frames}x3x{a.height}x{a.width} + Plücker {a.frames}x6x"
        f"{a.height // LATENT_FACTOR}x{a.width // LATENT_FACTOR}; {workers} workers, 1 thread, "
        f"{rounds} rounds; load average {load[0]:.1f} -> {load[1]:.1f}"
    )
    has_base = BASELINE in names
    print(
        "| pipeline | frames out | clips/s | ms/clip (median pass) | first pass ms/clip |"
        + (" vs cameractrl (median [min-max] of rounds) |" if has_base else "")
    )
    print("|---|---|---|---|---|" + ("---|" if has_base else ""))
    for r in rows:
        kind = "uint8" if r["pipeline"] == "vid3d" else "float32 [-1, 1]"
        line = (
            f"| {r['pipeline']} | {kind} | {r['clips_per_s']:.2f} | {r['ms_per_clip_median']:.0f} "
            f"| {r['first_pass_ms_per_clip']:.0f} |"
        )
        if has_base:
            s = r["speedup_vs_cameractrl"]
            line += f" {s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}] |"
        print(line)
    result = {
        "benchmark": "dataloader",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "sample": {
            "frames": [a.frames, 3, a.height, a.width],
            "plucker": [a.frames, 6, a.height // LATENT_FACTOR, a.width // LATENT_FACTOR],
            "interval": a.interval,
        },
        "source": str(a.root) if a.root else "synthetic",
        "source_frame_hw": source_hw,
        "clips": clips,
        "rounds": rounds,
        "workers": workers,
        "threads": 1,
        "rows": rows,
        "pass_seconds": {"first": m["first_pass_s"], "rounds": m["rounds"]},
        "load_average": load,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "command": " ".join(["benchmarks/dataloader.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    atomic_write_json(out, result)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
