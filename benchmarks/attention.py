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

    .venv/bin/python -m benchmarks.attention                       # CPU, default sizes
    .venv/bin/python -m benchmarks.attention --device cuda --out benchmarks/results/attention_cuda.json
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
DEFAULT_SIZES = "8x16x24,16x24x40,25x24x40,25x40x64"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0: ``5`` to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    """Peak RSS since the last reset (VmHWM), else since the process started (ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
    """Run one measurement (one method, one pass) in this process and return its record."""
    import torch

    from vid3d.geometry import rescale_K
    from vid3d.models.attention import (
        SharedMask,
        band_mask_cami2v,
        build_shared_mask,
        epipolar_attention,
        epipolar_mask_dense,
        masked_attention_dense,
        pair_geometry,
        shared_mask_attention,
    )
    from vid3d.models.attention.cami2v import NUM_REGISTER_TOKENS, zero_translation_noise
    from vid3d.models.attention.grouped import band_attention, build_band_plan

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    dev = torch.device(spec["device"])
    n, h, w, C, H = spec["frames"], spec["h"], spec["w"], spec["channels"], spec["heads"]
    T, bw, method = n * h * w, spec["band_width"], spec["method"]
    backward = spec.get("pass", "fwd") == "fwd_bwd"
    K, c2w = _cameras(1, n, h, w)
    F_hat, degenerate = pair_geometry(K.to(dev), c2w.to(dev))
    g = torch.Generator(device=dev).manual_seed(0)
    q, k, v = (torch.randn(1, H, T, C // H, generator=g, device=dev) for _ in range(3))
    R = NUM_REGISTER_TOKENS
    reg_k, reg_v = (torch.randn(1, H, R, C // H, generator=g, device=dev) for _ in range(2))
    if method == "flex" and backward and dev.type == "cpu":
        return {**spec, "tokens": T, "peak_mb": None, "rss_mb": None, "time_s": None,
                "note": "FlexAttention has no backward on the CPU (torch 2.14)"}

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    shared, extra = None, {}

    def cami2v_mask():
        # CamI2V's 512x320 setting: 8 image pixels per token at this level, its token centres and strict
        # sqrt(2) band, zero-translation noise drawn per forward, 4 register tokens every query attends to
        K_img = rescale_K(K.to(dev), (h, w), (8 * h, 8 * w))
        noise = zero_translation_noise(1, n, dev)
        return SharedMask(band_mask_cami2v(K_img, c2w.to(dev), h, w, 8, noise), (0,))

    def run(q=q, k=k, v=v):
        """One call as a model makes it: mask / plan built inside the call (except "fast", whose mask the
        adapter builds once per forward for all modules: timed apart)."""
        if method == "fast":
            return shared_mask_attention(q, k, v, shared)
        if method == "dense":
            return masked_attention_dense(q, k, v, epipolar_mask_dense(F_hat, degenerate, h, w, bw))
        if method == "cami2v":
            kr, vr = torch.cat([reg_k, k], 2), torch.cat([reg_v, v], 2)
            return shared_mask_attention(q, kr, vr, cami2v_mask(), registers=R)
        if method == "grouped":
            return band_attention(q, k, v, build_band_plan(F_hat, degenerate, h, w, bw))
        return epipolar_attention(q, k, v, F_hat, degenerate, h, w, bw, method, spec["chunk_mb"] * 2**20)

    leaves = [t.clone().requires_grad_() for t in (q, k, v)] if backward else []

    def call():
        """Forward (no autograd), or forward + backward from leaf inputs (made once: like q, k, v in the
        forward pass they are inputs, not counted; their gradients are)."""
        if not backward:
            with torch.no_grad():
                return run()
        for t in leaves:
            t.grad = None
        run(*leaves).sum().backward()
        return None

    small = dict(spec, frames=2, h=4, w=4)
    if small != spec and not spec.get("warm"):  # load kernels / thread pools on a tiny problem first
        worker({**small, "repeats": 0, "warm": True})
    if method == "fast":
        builds = []
        for _ in range(max(1, spec["repeats"])):
            t0 = time.perf_counter()
            shared = build_shared_mask(F_hat, degenerate, h, w, bw)
            bias = shared.bias(q.dtype)
            sync()
            builds.append(time.perf_counter() - t0)
        extra = {"build_s": min(builds), "build_mb": (shared.masks.nbytes + bias.nbytes) / 2**20}
    if spec.get("warm") or method == "flex":  # flex: the first call compiles (minutes on a CPU)
        t0 = time.perf_counter()
        call()
        if spec.get("warm"):
            return {}
        extra["compile_s"] = time.perf_counter() - t0
    import gc

    for t in leaves:
        t.grad = None
    gc.collect()  # process peak RSS growth over the first call at this size (allocator included)
    _reset_peak_rss()
    rss0 = _rss_bytes()
    call()
    rss = _peak_rss_bytes() - rss0
    peak = None
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        call()
        sync()
        peak = torch.cuda.max_memory_allocated() - base
    elif method != "flex":  # the tracker's dispatch mode cannot see through the compiled flex kernel
        for t in leaves:
            t.grad = None
        inputs = (q, k, v, *leaves, reg_k, reg_v, F_hat, degenerate)
        if shared is not None:
            inputs += (shared.masks, shared.bias(q.dtype))
        tracker = LiveTensorBytes(exclude=inputs)
        with tracker.mode:
            call()
        peak = tracker.peak
    times = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - t0)
    # the mask / plan alone, measured last so its allocations do not pre-grow the heap of the calls above
    if method == "grouped":
        t0 = time.perf_counter()
        plan = build_band_plan(F_hat, degenerate, h, w, bw)
        extra = {"build_s": time.perf_counter() - t0, "build_mb": plan.nbytes() / 2**20,
                 "scored_fraction": plan.scored_fraction()}
        del plan
    if method == "cami2v":
        t0 = time.perf_counter()
        m = cami2v_mask()
        extra = {"build_s": time.perf_counter() - t0, "build_mb": m.masks.nbytes / 2**20}
        del m
    rss_mb = None if rss is None else max(rss, 0) / 2**20
    return {**spec, **extra, "tokens": T, "peak_mb": None if peak is None else peak / 2**20, "rss_mb": rss_mb,
            "time_s": min(times) if times else None, "note": ""}


def dense_estimate_bytes(frames: int, h: int, w: int) -> int:
    """Dense footprint estimate: the bool (F h w)^2 mask, a float32 copy of it (the bias SDPA's fused kernels
    take) and the float64 distance work of building one query frame's rows, 3 x 8 x (F-1) (h w)^2."""
    T, N = frames * h * w, h * w
    return 5 * T * T + 24 * (frames - 1) * N * N


def measure(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.attention", "--worker", json.dumps(spec)]
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


def _time_ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else ""


def _seconds(t: float | None) -> str:
    return f"{t:.3f}" if t is not None else "-"


def _mb(x: float | None) -> str:
    return f"{x:.1f}" if x is not None else "-"


def print_table(records: list[dict], baseline: str = "cami2v") -> list[list[str]]:
    """One row per (size, method, pass). Ratios against ``baseline`` in the same run and pass:
    base/this peak = baseline peak live bytes / this; base/this RSS = the same for the process' peak RSS
    growth; this/base time = this time / the baseline's (< 1: faster). Returns the rows."""
    cols = ["F", "h", "w", "tokens", "method", "pass", "peak MB", "RSS MB", "time s", "build s",
            "base/this peak", "base/this RSS", "this/base time", "note"]
    rows = []
    by = {(r["frames"], r["h"], r["w"], r["method"], r.get("pass", "fwd")): r for r in records}
    for r in records:
        ps = r.get("pass", "fwd")
        base = by.get((r["frames"], r["h"], r["w"], baseline, ps), {})
        own = r["method"] == baseline
        note = r.get("note", "")
        if r.get("scored_fraction") is not None:
            note = f"scores {100 * r['scored_fraction']:.1f}% of pairs {note}".strip()
        if r.get("compile_s") is not None:
            note = f"compiled in {r['compile_s']:.0f} s {note}".strip()
        if r.get("build_mb") is not None:
            note = f"mask/plan {r['build_mb']:.0f} MB {note}".strip()
        tokens = r["frames"] * r["h"] * r["w"]
        rows.append([str(r["frames"]), str(r["h"]), str(r["w"]), str(tokens), r["method"], ps,
                     _mb(r.get("peak_mb")), _mb(r.get("rss_mb")), _seconds(r.get("time_s")),
                     _seconds(r.get("build_s")),
                     "" if own else _ratio(base.get("peak_mb"), r.get("peak_mb")),
                     "" if own else _ratio(base.get("rss_mb"), r.get("rss_mb")),
                     "" if own else _time_ratio(r.get("time_s"), base.get("time_s")), note])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/attention.json"))
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated FRAMESxHxW token grids")
    p.add_argument("--methods", default="cami2v,dense,grouped,blocked,gather,fast",
                   help="cami2v (the CamI2V-style dense baseline), dense (the reference), grouped, blocked, "
                        "gather, flex (FlexAttention; CPU: forward only), fast (dense-mask fast path)")
    p.add_argument("--passes", default="fwd,fwd_bwd", help="fwd (no autograd) and/or fwd_bwd")
    p.add_argument("--baseline", default="cami2v", help="method the ratio columns compare against")
    p.add_argument("--channels", type=int, default=320)
    p.add_argument("--heads", type=int, default=5)
    p.add_argument("--band-width", type=float, default=2.0)
    p.add_argument("--chunk-mb", type=int, default=32,
                   help="blocked/gather per-chunk budget (library default: 32 CPU, 512 GPU)")
    p.add_argument("--dense-limit-gb", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=0, help="torch threads in workers (0 = torch default)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs (after the memory run)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    records = []
    for size in args.sizes.split(","):
        n, h, w = (int(x) for x in size.lower().split("x"))
        for ps in args.passes.split(","):
            for method in args.methods.split(","):
                spec = {"method": method, "pass": ps, "frames": n, "h": h, "w": w, "channels": args.channels,
                        "heads": args.heads, "band_width": args.band_width, "chunk_mb": args.chunk_mb,
                        "device": args.device, "threads": args.threads, "repeats": args.repeats}
                est = dense_estimate_bytes(n, h, w)
                if method in ("dense", "fast", "cami2v") and est > args.dense_limit_gb * 2**30:
                    rec = {**spec, "peak_mb": None, "time_s": None,
                           "note": f"skipped: ~{est / 2**30:.0f} GB > {args.dense_limit_gb:g} GB"}
                else:
                    rec = measure(spec, args.timeout)
                records.append(rec)
                print(f"{size} {method} {ps}: peak {rec['peak_mb']} MB, rss {rec.get('rss_mb')} MB, "
                      f"{rec['time_s']} s {rec['note']}", file=sys.stderr, flush=True)
    print_table(records, args.baseline)
    import torch

    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "torch": torch.__version__,
              "platform": platform.platform(), "device": args.device, "records": records}
    out = Path(args.out)
    from vid3d.atomic import atomic_write_json

    atomic_write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
