"""Data loading throughput: clips/s to a ready training sample, vid3d's loader vs a plain PIL baseline.

A ready sample is what a training step consumes: 25 frames centre-cropped and resized to 320x512 as a
float tensor in [-1, 1], pixel intrinsics, camera-to-world poses relative to the first frame, and the
Plücker maps at the latent resolution 40x64 (``vid3d.geometry.plucker_embedding``). Two pipelines produce
the same sample from the same RealEstate10K-layout clips (image folders):

- ``vid3d``: ``Re10kClipDataset`` (OpenCV decode, one crop + INTER_AREA resize per frame, validation,
  bad-clip handling) + Plücker maps;
- ``pil_baseline``: per frame ``PIL.Image.open(...).convert("RGB")``, crop, ``resize(BILINEAR)``, to tensor;
  the same camera parsing and Plücker maps.

Each runs through a torch DataLoader (batch size 1) with 1 worker and with N workers; clips/s is measured
over --clips samples after --warmup samples. Without --root the data is a synthetic set rendered on the
fly into a temporary folder (--quick: a small one). Prints a table and writes JSON (atomically).

    .venv/bin/python benchmarks/dataloader.py --quick
    .venv/bin/python benchmarks/dataloader.py --root /path/to/re10k --split train --workers 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vid3d.data.clips import Re10kClipDataset, choose_stride_window  # noqa: E402
from vid3d.data.datamodule import collate_samples  # noqa: E402
from vid3d.data.formats import re10k  # noqa: E402
from vid3d.data.interval import FixedInterval  # noqa: E402
from vid3d.data.transforms import center_crop_box, crop_resize_intrinsics  # noqa: E402
from vid3d.geometry import K_norm_to_px, plucker_embedding, relative_to_first, w2c_to_c2w  # noqa: E402

LATENT_FACTOR = 8  # 320x512 frames -> 40x64 latents


def add_plucker(sample: dict, height: int, width: int) -> dict:
    """Add ``plucker`` (F, 6, height / 8, width / 8) computed from the sample's K_px and c2w."""
    h, w = height // LATENT_FACTOR, width // LATENT_FACTOR
    K_lat = crop_resize_intrinsics(sample["K_px"], 0, 0, width, height, w, h)
    sample["plucker"] = plucker_embedding(K_lat, sample["c2w"], h, w).float()
    return sample


class VidLoader(Dataset):
    """vid3d's clip dataset + Plücker maps."""

    def __init__(self, root: Path, split: str, frames: int, height: int, width: int, interval: int):
        self.ds = Re10kClipDataset(root, split, frames, height, width, interval=FixedInterval(interval))
        self.height, self.width = height, width

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        return add_plucker(self.ds[i], self.height, self.width)


class PilBaseline(Dataset):
    """Plain per-frame PIL decode + crop + resize; same cameras and Plücker maps (image folders only)."""

    def __init__(self, root: Path, split: str, frames: int, height: int, width: int, interval: int):
        self.clips = [c for c in re10k.list_clips(root, split, missing="skip") if c.frames_dir is not None]
        self.frames, self.height, self.width, self.interval = frames, height, width, interval

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        clip = self.clips[i]
        cams = re10k.read_camera_file(clip.camera_path)
        rng = np.random.default_rng(i)
        idx = choose_stride_window(len(cams), self.frames, self.interval, rng)
        files = sorted(p for p in clip.frames_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        imgs, K = [], None
        for k in idx:
            with Image.open(files[int(k)]) as im:
                im = im.convert("RGB")
                W0, H0 = im.size
                x0, y0, cw, ch = center_crop_box(H0, W0, self.height, self.width)
                im = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((self.width, self.height), Image.BILINEAR)
                imgs.append(torch.from_numpy(np.array(im)).permute(2, 0, 1))
            if K is None:
                K = crop_resize_intrinsics(
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


def measure(dataset: Dataset, workers: int, clips: int, warmup: int) -> dict:
    """clips/s over ``clips`` samples after ``warmup`` (worker start-up excluded), cycling the dataset."""

    class Cycle(Dataset):
        def __len__(self) -> int:
            return clips + warmup

        def __getitem__(self, i: int) -> dict:
            return dataset[i % len(dataset)]

    loader = DataLoader(
        Cycle(),
        batch_size=1,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_samples,
        prefetch_factor=2,
    )
    it = iter(loader)
    for _ in range(warmup):
        batch = next(it)
    start = time.perf_counter()
    n = 0
    for b in it:
        batch, n = b, n + 1
    seconds = time.perf_counter() - start
    assert batch["frames"].ndim == 5 and batch["plucker"].shape[2] == 6
    return {
        "workers": workers,
        "clips": n,
        "seconds": round(seconds, 3),
        "clips_per_s": round(n / seconds, 3),
    }


def synthetic_root(tmp: Path, quick: bool) -> Path:
    from vid3d.data.synthetic import build_synthetic_dataset

    if quick:  # small source frames (upscaled to 320x512), enough clips to cycle
        kw = dict(num_train=3, num_test=0, num_frames=26, height=144, width=256)
    else:  # RealEstate10K's 360p resolution
        kw = dict(num_train=6, num_test=0, num_frames=50, height=360, width=640)
    return build_synthetic_dataset(tmp / "synthetic", image_ext="jpg", workers=1, **kw)


def atomic_write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=None, help="RealEstate10K-layout root (default: synthetic)")
    p.add_argument("--split", default="train")
    p.add_argument("--quick", action="store_true", help="small synthetic set and few clips")
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--height", type=int, default=320)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--interval", type=int, default=1, help="frame stride (fixed)")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="N for the N-worker rows")
    p.add_argument("--clips", type=int, default=None, help="timed clips per row (default 6 quick, 40)")
    p.add_argument("--warmup", type=int, default=None, help="untimed clips per row (default 1 quick, 4)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dataloader.json")
    a = p.parse_args(argv)
    clips = a.clips if a.clips is not None else (6 if a.quick else 40)
    warmup = a.warmup if a.warmup is not None else (1 if a.quick else 4)
    torch.set_num_threads(1)  # DataLoader workers use one thread each; keep the 1-worker row comparable

    with tempfile.TemporaryDirectory(prefix="vid3d_bench_") as tmp:
        t0 = time.perf_counter()
        root = a.root if a.root is not None else synthetic_root(Path(tmp), a.quick)
        build_s = time.perf_counter() - t0
        args = (root, a.split, a.frames, a.height, a.width, a.interval)
        pipelines = {"vid3d": VidLoader(*args), "pil_baseline": PilBaseline(*args)}
        if not len(pipelines["pil_baseline"]):
            print(f"error: no image-folder clips in {root}/{a.split}", file=sys.stderr)
            return 2
        first = cv_frame_shape(root, a.split)
        rows = []
        for workers in sorted({1, max(1, a.workers)}):
            for name, ds in pipelines.items():
                r = {"pipeline": name, **measure(ds, workers, clips, warmup)}
                rows.append(r)
                print(f"  {name:13s} workers={workers}: {r['clips_per_s']:.2f} clips/s", flush=True)

    base = {r["workers"]: r["clips_per_s"] for r in rows if r["pipeline"] == "pil_baseline"}
    for r in rows:
        r["speedup_vs_baseline"] = round(r["clips_per_s"] / base[r["workers"]], 2)
    print()
    print(
        f"source: {a.root or 'synthetic (built in ' + f'{build_s:.0f}s)'}, source frames {first}, "
        f"sample {a.frames}x3x{a.height}x{a.width} + Plücker {a.frames}x6x{a.height // 8}x{a.width // 8}"
    )
    print("| pipeline | workers | clips/s | ms/clip | vs PIL baseline |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['pipeline']} | {r['workers']} | {r['clips_per_s']:.2f} | {1000 / r['clips_per_s']:.0f} "
            f"| {r['speedup_vs_baseline']:.2f}x |"
        )
    result = {
        "benchmark": "dataloader",
        "sample": {
            "frames": [a.frames, 3, a.height, a.width],
            "plucker": [a.frames, 6, a.height // LATENT_FACTOR, a.width // LATENT_FACTOR],
            "interval": a.interval,
        },
        "source": str(a.root) if a.root else ("synthetic-quick" if a.quick else "synthetic"),
        "source_frame_hw": first,
        "clips_timed": clips,
        "warmup": warmup,
        "rows": rows,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "command": " ".join(["benchmarks/dataloader.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    atomic_write_json(a.out, result)
    print(f"\nwrote {a.out}")
    return 0


def cv_frame_shape(root: Path, split: str) -> list[int]:
    clip = re10k.list_clips(root, split, missing="skip")[0]
    cams = re10k.read_camera_file(clip.camera_path)
    return list(re10k.read_frames(clip, cams, [0]).shape[1:3])


if __name__ == "__main__":
    raise SystemExit(main())
