"""Chunk loads of a training epoch over pixelSplat chunks, by shuffle order (issue 21).

Compares training orders over pixelSplat chunks (``ChunkClipDataset``): ``full`` and
``grouped`` shuffling (``data.datamodule.shuffle``; ``grouped_rr``: grouped without the per-worker layout,
batches dealt round robin) through ``ResumableSampler`` + DataLoader, counting chunk loads (per process,
summed over workers) and ms per sample over one epoch. Without --root the split is a synthetic set
converted with ``python -m vid3d.data.formats.convert --from re10k --to chunks``. It also counts the loads
of an epoch at RealEstate10K scale (--sim-*: item -> chunk map and sampler only, no I/O). Writes
``benchmarks/results/dataloader_shuffle.json``.

    .venv/bin/python -m benchmarks.shuffle_loads --quick --workers 2
    .venv/bin/python -m benchmarks.shuffle_loads --root /data/re10k_chunks --clips 400 --workers 8
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader, Dataset, get_worker_info

from vid3d.data.datamodule import ResumableSampler, StepIndexedDataset, collate_samples
from vid3d.data.formats import convert, pixelsplat
from vid3d.data.interval import FixedInterval

from ._loader_common import LoaderSettings, add_sample_arguments, default_out, one_thread, write_result
from .clip_loaders import add_plucker


class CountingChunks(Dataset):
    """``ChunkClipDataset`` + Plücker maps; each sample also carries this process' chunk loads so far and
    its loader worker id (-1 in the main process)."""

    def __init__(self, s: LoaderSettings):
        self.ds = pixelsplat.ChunkClipDataset(
            s.root, s.split, s.frames, s.height, s.width, FixedInterval(s.interval)
        )
        self.height, self.width = s.height, s.width

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_sample_arguments(p, "a pixelSplat chunk folder; default: synthetic", "a small synthetic set")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="loader workers")
    p.add_argument("--clips", type=int, default=None, help="samples measured (default: an epoch)")
    p.add_argument("--chunk-size", type=int, default=None, help="synthetic chunks' clips (4 quick, 8)")
    p.add_argument("--batch-size", type=int, default=1, help="per-rank batch size")
    p.add_argument("--sim-clips", type=int, default=67477, help="simulated split (RE10K train)")
    p.add_argument("--sim-chunk-size", type=int, default=16, help="simulated clips per chunk")
    p.add_argument("--sim-ranks", type=int, default=8)
    p.add_argument("--sim-workers", type=int, default=8)
    p.add_argument(
        "--out", type=Path, default=None, help="default benchmarks/results/dataloader_shuffle.json"
    )
    a = p.parse_args(argv)
    one_thread()
    return run(a, argv)


def run(a: argparse.Namespace, argv: list[str] | None) -> int:
    """The benchmark for parsed arguments: prints the tables, writes the JSON."""
    out = a.out or default_out("dataloader_shuffle")
    with tempfile.TemporaryDirectory(prefix="vid3d_bench_") as tmp:
        root, build_s = chunk_split(a, Path(tmp))
        split_dir = root / a.split
        files = sorted(set(pixelsplat.read_index(split_dir).values()))
        t0 = time.perf_counter()
        for name in files[:8]:
            pixelsplat.load_chunk(split_dir / name)
        load_ms = 1000 * (time.perf_counter() - t0) / min(8, len(files))
        chunk_mb = sum((split_dir / f).stat().st_size for f in files) / len(files) / 1e6

        settings = LoaderSettings.from_args(a, root)

        def make() -> CountingChunks:
            return CountingChunks(settings)

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
    }
    result["simulated"]["rows"] = sims
    write_result(out, result, "shuffle_loads", argv)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
