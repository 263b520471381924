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
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def add_plucker(sample: dict, height: int, width: int) -> dict:
    """Add ``plucker`` (F, 6, height / 8, width / 8) computed from the sample's K_px and c2w."""
    h, w = height // LATENT_FACTOR, width // LATENT_FACTOR
    K_lat = crop_resize_K(sample["K_px"], 0, 0, width, height, w, h)
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
    p.add_argument("--quick", action="store_true", help="small synthetic set and few clips")
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--height", type=int, default=320)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--interval", type=int, default=1, help="frame stride (fixed)")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="N for the N-worker rows")
    p.add_argument("--clips", type=int, default=None, help="clips per row (6 quick, 40; shuffle: an epoch)")
    p.add_argument("--warmup", type=int, default=None, help="untimed clips per row (default 1 quick, 4)")
    p.add_argument(
        "--chunk-size", type=int, default=None, help="shuffle: synthetic chunks' clips (4 quick, 8)"
    )
    p.add_argument("--batch-size", type=int, default=1, help="shuffle: per-rank batch size")
    p.add_argument("--sim-clips", type=int, default=67477, help="shuffle: simulated split (RE10K train)")
    p.add_argument("--sim-chunk-size", type=int, default=16, help="shuffle: simulated clips per chunk")
    p.add_argument("--sim-ranks", type=int, default=8)
    p.add_argument("--sim-workers", type=int, default=8)
    p.add_argument("--out", type=Path, default=None, help="default results/dataloader[_shuffle].json")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    if a.mode == "shuffle":
        return main_shuffle(a, argv)
    a.out = a.out or ROOT / "benchmarks" / "results" / "dataloader.json"
    clips = a.clips if a.clips is not None else (6 if a.quick else 40)
    warmup = a.warmup if a.warmup is not None else (1 if a.quick else 4)

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
