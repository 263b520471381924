"""Peak memory and time of epipolar band attention (memory-efficient kernels) vs dense masked attention.

Every measurement runs in a fresh subprocess. Peak memory is the peak of live tensor bytes created by the
call beyond its inputs q, k, v: on CUDA ``max_memory_allocated`` minus the allocation before the call; on
CPU (no allocator statistics) a TorchDispatchMode tracker that adds each new tensor storage an op
returns and subtracts it when the last tensor using it dies (buffers internal to one kernel, e.g. inside
SDPA, are not seen). The process' peak RSS growth (ru_maxrss, allocator-dependent) is recorded as rss_mb.
Time is a separate run without the tracker (the best of --repeats). "dense" builds the (F h w)^2 boolean mask
(``epipolar_mask_dense``) and runs ``scaled_dot_product_attention`` with it; it is skipped (with a note)
when its estimated footprint exceeds --dense-limit-gb. "fast" is the adapter's dense-mask fast path: the
mask is built once (``build_shared_mask`` and its float bias, timed apart as ``mask_build_s``: the adapter
builds them once per forward and token grid and shares them) and each call runs ``shared_mask_attention``;
its peak and time are those of one call with the mask already built (the bool mask + bias are
``mask_mb``). With --backward the time of forward + backward (q, k, v requiring grad) is measured as well.
Prints a table and writes JSON (atomically).

    .venv/bin/python benchmarks/attention.py                       # CPU, default sizes
    .venv/bin/python benchmarks/attention.py --device cuda --out benchmarks/results/attention_cuda.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = "2x8x8,4x16x16,8x20x32,14x24x40,25x24x40,25x32x48,25x40x64"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class LiveTensorBytes:
    """CPU peak-live-bytes tracker (see module docstring); storages in ``exclude`` (inputs) never count."""

    def __init__(self, exclude=()):
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        tracker = self
        self.live = self.peak = 0
        self.refs: dict[int, int] = {}
        self.excluded = {t.untyped_storage().data_ptr() for t in exclude}

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_flatten(out)[0]:
                    if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                        tracker._add(t)
                return out

        self.mode = _Mode()

    def _add(self, t) -> None:
        import weakref

        storage = t.untyped_storage()
        key, nbytes = storage.data_ptr(), storage.nbytes()
        if key in self.excluded or nbytes == 0:
            return
        if key not in self.refs:
            self.refs[key] = 0
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        self.refs[key] += 1
        weakref.finalize(t, self._drop, key, nbytes)

    def _drop(self, key: int, nbytes: int) -> None:
        self.refs[key] -= 1
        if self.refs[key] == 0:
            del self.refs[key]
            self.live -= nbytes


def _cameras(B: int, n: int, h: int, w: int):
    """A forward-moving, slightly turning trajectory (RealEstate10K-like), K at the token grid."""
    import torch

    from vid3d.geometry import axis_angle_to_matrix, intrinsics_matrix

    s = torch.linspace(0, 1, n, dtype=torch.float64)
    c2w = torch.eye(4, dtype=torch.float64).repeat(B, n, 1, 1)
    c2w[..., :3, :3] = axis_angle_to_matrix(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), 0.3 * s)
    c2w[..., 0, 3], c2w[..., 2, 3] = 0.4 * s, 1.0 * s
    f = torch.full((B, n), 0.9 * w, dtype=torch.float64)
    K = intrinsics_matrix(f, f, torch.full_like(f, w / 2), torch.full_like(f, h / 2))
    return K, c2w


def worker(spec: dict) -> dict:
    """Run one measurement in this process and return its record."""
    import torch

    from vid3d.models.attention import (
        build_shared_mask,
        epipolar_attention,
        epipolar_mask_dense,
        masked_attention_dense,
        pair_geometry,
        shared_mask_attention,
    )

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    dev = torch.device(spec["device"])
    n, h, w, C, H = spec["frames"], spec["h"], spec["w"], spec["channels"], spec["heads"]
    T, bw = n * h * w, spec["band_width"]
    K, c2w = _cameras(1, n, h, w)
    F_hat, degenerate = pair_geometry(K.to(dev), c2w.to(dev))
    g = torch.Generator(device=dev).manual_seed(0)
    q, k, v = (torch.randn(1, H, T, C // H, generator=g, device=dev) for _ in range(3))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    shared, extra = None, {}

    def run(q=q, k=k, v=v):
        if spec["method"] == "fast":
            return shared_mask_attention(q, k, v, shared)
        if spec["method"] == "dense":
            return masked_attention_dense(q, k, v, epipolar_mask_dense(F_hat, degenerate, h, w, bw))
        return epipolar_attention(q, k, v, F_hat, degenerate, h, w, bw, spec["method"],
                                  spec["chunk_mb"] * 2**20)

    with torch.no_grad():
        small = dict(spec, frames=2, h=4, w=4)
        if small != spec:  # load kernels / thread pools on a tiny problem before measuring
            worker({**small, "repeats": 0, "warm": True})
        if spec["method"] == "fast":
            builds = []
            for _ in range(max(1, spec["repeats"])):
                t0 = time.perf_counter()
                shared = build_shared_mask(F_hat, degenerate, h, w, bw)
                bias = shared.bias(q.dtype)
                sync()
                builds.append(time.perf_counter() - t0)
            extra = {"mask_build_s": min(builds),
                     "mask_mb": (shared.masks.nbytes + bias.nbytes) / 2**20}
        if spec.get("warm"):
            run()
            return {}
        rss0 = _rss_bytes()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            run()
            sync()
            peak = torch.cuda.max_memory_allocated() - base
        else:
            inputs = (q, k, v, F_hat, degenerate)
            if shared is not None:
                inputs += (shared.masks, shared.bias(q.dtype))
            tracker = LiveTensorBytes(exclude=inputs)
            with tracker.mode:
                run()
            peak = tracker.peak
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
        times = []
        for _ in range(spec["repeats"]):
            t0 = time.perf_counter()
            run()
            sync()
            times.append(time.perf_counter() - t0)
    if spec.get("backward") and spec["repeats"]:
        qkv = [t.clone().requires_grad_() for t in (q, k, v)]
        grad_times = []
        for _ in range(spec["repeats"]):
            t0 = time.perf_counter()
            run(*qkv).sum().backward()
            sync()
            grad_times.append(time.perf_counter() - t0)
        extra["fwd_bwd_s"] = min(grad_times)
    return {**spec, **extra, "tokens": T, "peak_mb": peak / 2**20, "rss_mb": max(rss, 0) / 2**20,
            "time_s": min(times) if times else None, "note": ""}


def dense_estimate_bytes(frames: int, h: int, w: int) -> int:
    """Dense footprint estimate: the bool (F h w)^2 mask, a float32 copy of it (the bias SDPA's fused kernels
    take) and the float64 distance work of building one query frame's rows, 3 x 8 x (F-1) (h w)^2."""
    T, N = frames * h * w, h * w
    return 5 * T * T + 24 * (frames - 1) * N * N


def measure(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "peak_mb": None, "time_s": None, "note": f"timed out after {timeout:.0f} s"}
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1]
        return {**spec, "peak_mb": None, "time_s": None, "note": f"failed: {tail[:120]}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a and b else ""


def _seconds(t: float | None) -> str:
    return f"{t:.3f}" if t is not None else "-"


def print_table(records: list[dict]) -> None:
    """Columns: dense/this = dense peak / this peak; this/fast = this time / the fast path's time (forward,
    and forward + backward with --backward), both from the same run."""
    cols = ["F", "h", "w", "tokens", "method", "peak MB", "KB/token", "time s", "fwd+bwd s", "dense/this",
            "this/fast", "note"]
    rows = []
    by = {(r["frames"], r["h"], r["w"], r["method"]): r for r in records}
    for r in records:
        size = (r["frames"], r["h"], r["w"])
        d, f = by.get((*size, "dense"), {}), by.get((*size, "fast"), {})
        mem = _ratio(d.get("peak_mb"), r.get("peak_mb")) if r["method"] not in ("dense", "fast") else ""
        speed = ""
        if r["method"] != "fast" and f:
            speed = " / ".join(x for x in (_ratio(r.get("time_s"), f.get("time_s")),
                                           _ratio(r.get("fwd_bwd_s"), f.get("fwd_bwd_s"))) if x)
        note = r.get("note", "")
        if r.get("mask_build_s") is not None:
            built = f"mask + bias {r['mask_mb']:.0f} MB, built once in {r['mask_build_s']:.3f} s"
            note = f"{built} {note}".strip()
        peak = r.get("peak_mb")
        tokens = r["frames"] * r["h"] * r["w"]
        rows.append([str(r["frames"]), str(r["h"]), str(r["w"]), str(tokens), r["method"],
                     f"{peak:.1f}" if peak is not None else "-",
                     f"{1024 * peak / tokens:.2f}" if peak is not None else "-",
                     _seconds(r.get("time_s")), _seconds(r.get("fwd_bwd_s")), mem, speed, note])
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="epipolar attention vs dense masked attention")
        for c in cols:
            table.add_column(c)
        for row in rows:
            table.add_row(*row)
        Console(width=160).print(table)
    except ImportError:
        print(" | ".join(cols))
        for row in rows:
            print(" | ".join(row))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/attention.json"))
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated FRAMESxHxW token grids")
    p.add_argument("--methods", default="blocked,gather,dense,fast")
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--band-width", type=float, default=2.0)
    p.add_argument("--chunk-mb", type=int, default=32,
                   help="epipolar per-chunk budget (library default: 32 CPU, 512 GPU)")
    p.add_argument("--dense-limit-gb", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=0, help="torch threads in workers (0 = torch default)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs (after the memory run)")
    p.add_argument("--backward", action="store_true", help="also time forward + backward")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    records = []
    for size in args.sizes.split(","):
        n, h, w = (int(x) for x in size.lower().split("x"))
        for method in args.methods.split(","):
            spec = {"method": method, "frames": n, "h": h, "w": w, "channels": args.channels,
                    "heads": args.heads,
                    "band_width": args.band_width, "chunk_mb": args.chunk_mb, "device": args.device,
                    "threads": args.threads, "repeats": args.repeats, "backward": args.backward}
            est = dense_estimate_bytes(n, h, w)
            if method in ("dense", "fast") and est > args.dense_limit_gb * 2**30:
                rec = {**spec, "peak_mb": None, "time_s": None,
                       "note": f"skipped: ~{est / 2**30:.0f} GB > {args.dense_limit_gb:g} GB"}
            else:
                rec = measure(spec, args.timeout)
            records.append(rec)
            print(f"{size} {method}: peak {rec['peak_mb']} MB, {rec['time_s']} s {rec['note']}",
                  file=sys.stderr)
    print_table(records)
    import torch

    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "torch": torch.__version__,
              "platform": platform.platform(), "device": args.device, "records": records}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
