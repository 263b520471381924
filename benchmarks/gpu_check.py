"""The prepared GPU check (`bash benchmarks/gpu/run.sh` on an offline node, or `make gpu-check`): everything
that needs CUDA, in one command, under one wall-clock deadline (default 480 s).

With the real SVD-XT architecture (diffusers' UNetSpatioTemporalConditionModel, AutoencoderKLTemporalDecoder
and a ViT-H/14 CLIP image encoder at SVD-XT's configuration, **random init**: no weights exist on these
machines; built directly on the GPU, where random init takes seconds, and saved once in fp16 as a diffusers
folder that vid3d's own `model/backbone=svd` path loads), plus the Plücker encoder and epipolar attention
(`model=epipolar`). The parts, in order of value (each writes its rows as it ends):

1. training steps at 320×512×25 (stage 1), bf16 and fp16 autocast, batch 1 and 2, with/without gradient
   checkpointing (benchmarks/train_step.py: step time, peak memory, TFLOP/s from torch's FLOP counter and
   MFU against ``--peak-tflops``, the device's dense fp16/bf16 datasheet peak);
2. epipolar attention at 16×24×40, 25×24×40 and 25×40×64 tokens, in this one process (FlexAttention
   compiled once per shape, reused for forward and forward+backward): each kernel (grouped, blocked, gather,
   flex, the dense-mask fast path) against SDPA with the dense epipolar mask (the reference; skipped where
   its mask would pass ``--dense-limit-gb``, then ``blocked`` is the reference), forward and
   forward+backward: time, peak memory, and the largest output and q/k/v-gradient differences;
3. a sampling run (25 EDM steps with CFG) at 320×512×25: seconds per video;
4. 3 steps under DeepSpeed ZeRO-2 through Lightning (`trainer=deepspeed_zero2`, one GPU), the checkpoint
   resumed for 2 more steps: the resumed loss sequence must continue the uninterrupted one;
5. one training step configuration at 576×1024×25 (stage 2) with gradient checkpointing;
6. gsplat against vid3d's torch rasteriser (same Gaussians, same cameras) if gsplat imports, else recorded
   as absent;
7. the sampler options at 320×512×25, 8 steps with CFG: seconds per step with the step-invariant cache off
   and on, with bf16 autocast, and (its own part, last: compilation takes minutes) with the UNet compiled
   (``sampler.compile_unet=inductor``), each with its largest pixel difference from float32.

Each part runs under its own time limit (``PART_LIMITS_S``, cut to what is left of the deadline); a part
that fails (OOM included) or runs out of time is recorded as such ("failed" / "timed out"), never fatal, and
a part that would start after the deadline is "skipped". After every part ``<out>/gpu_check.json`` and
``<out>/gpu_check.md`` (a table) are rewritten, so a killed run leaves every finished part on disk
(attention rows in ``attention.json``/``.md``, each training configuration's JSON under ``<out>/parts/``).
``--dry`` runs every part on a CPU at tiny shapes (the tiny backbone saved and loaded the same way;
DeepSpeed skipped with its reason; gsplat recorded absent or, if importable, skipped: CUDA only): CI runs it
(tests/tools/test_gpu_check_dry.py), and benchmarks/gpu/ci_offline.sh runs it through run.sh from a venv
installed from the wheelhouse alone.

    python -m benchmarks.gpu_check --peak-tflops 989 --budget-s 420   # H100/H200 SXM dense bf16/fp16
    .venv/bin/python -m benchmarks.gpu_check --dry                    # CPU, tiny shapes
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# dense fp16/bf16 datasheet peaks (TFLOP/s, no sparsity), by a substring of torch.cuda.get_device_name
DATASHEET_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}
# SVD-XT's image encoder: OpenCLIP ViT-H/14 as transformers' CLIPVisionModelWithProjection
CLIP_VIT_H14 = dict(
    hidden_size=1280,
    intermediate_size=5120,
    num_attention_heads=16,
    num_hidden_layers=32,
    patch_size=14,
    image_size=224,
    projection_dim=1024,
    hidden_act="gelu",
)


def build_backbone_folder(folder: Path, dry: bool) -> Path:
    """A diffusers SVD-layout folder: SVD-XT's architecture at random init (or the tiny one with --dry)."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from vid3d.models.backbone import Backbone, build_tiny_backbone, save_backbone
    from vid3d.models.vae import TemporalVAEAdapter, tiny_kl_autoencoder

    if dry:
        return save_backbone(build_tiny_backbone(vae=tiny_kl_autoencoder, seed=0), folder)
    torch.manual_seed(0)
    with torch.device("cuda"):  # random init on the GPU: seconds (the CPU takes minutes for 2.2 B weights)
        unet = UNetSpatioTemporalConditionModel(num_frames=25)  # the class defaults are SVD's configuration
        vae = TemporalVAEAdapter(AutoencoderKLTemporalDecoder())
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VIT_H14))
    out = save_backbone(Backbone(unet.half(), vae.half(), clip.half()), folder)  # fp16 on disk: ~4.4 GB
    del unet, vae, clip
    torch.cuda.empty_cache()
    return out


class PartTimeout(BaseException):
    """Raised (by SIGALRM) in a part that passed its time limit; a BaseException so that no library's
    ``except Exception`` swallows it."""


_PART_END = [float("inf")]  # monotonic time at which the running part must end


def part_seconds_left() -> float:
    """Seconds left to the running part (for the subprocess timeouts inside it)."""
    return max(_PART_END[0] - time.monotonic(), 1.0)


def _on_alarm(signum, frame):
    raise PartTimeout()


def run_part(name: str, fn, results: list, deadline: float, limit_s: float, write=None) -> dict:
    """Run one part under ``min(limit_s, deadline - now)`` seconds; append its record to ``results`` and call
    ``write(results)`` (the partial report). Status: ok / skipped (its reason) / failed (the error) /
    timed out (the limit) / skipped (deadline passed before it started)."""
    left = deadline - time.monotonic()
    if left <= 1:
        rec = {"part": name, "status": "skipped", "reason": "time budget spent"}
        print(f"[gpu-check] {name}: skipped (time budget spent)", flush=True)
    else:
        limit = min(limit_s, left)
        print(f"[gpu-check] {name} (limit {limit:.0f} s) ...", flush=True)
        t0 = time.monotonic()
        _PART_END[0] = t0 + limit
        old = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            out, status = fn() or {}, "ok"
            if out.get("skipped_reason"):
                status = "skipped"
        except PartTimeout:
            out, status = {"reason": f"ran out of its {limit:.1f} s limit"}, "timed out"
        except Exception as e:  # noqa: BLE001 - a failed part (OOM included) is a result, not the end
            out = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
            status = "failed"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            _PART_END[0] = float("inf")
        rec = {"part": name, "status": status, "seconds": round(time.monotonic() - t0, 1), **out}
        print(f"[gpu-check] {name}: {status} in {time.monotonic() - t0:.0f} s", flush=True)
    results.append(rec)
    if write is not None:
        write(results)
    return rec


def train_steps(folder: Path, size: tuple[int, int, int], batch: int, precision: str, ckpt: bool, a) -> dict:
    import torch

    from benchmarks import train_step

    f, h, w = size
    argv = [
        "--model",
        "epipolar",
        "--size",
        "custom",
        "--device",
        a.device,
        "--batch",
        str(batch),
        "--precision",
        precision,
        "--steps",
        str(a.steps),
        "--warmup",
        "1",
        "--override",
        "model/backbone=svd",
        "--override",
        f"model.backbone.source={folder}",
        "--override",
        f"data.num_frames={f}",
        "--override",
        f"data.height={h}",
        "--override",
        f"data.width={w}",
        "--out",
        str(a.out / "parts" / f"train_step_{f}x{h}x{w}_b{batch}_{precision}{'_ckpt' if ckpt else ''}.json"),
    ]
    if ckpt:
        argv.append("--grad-ckpt")
    if a.peak_tflops:
        argv += ["--peak-tflops", str(a.peak_tflops)]
    try:
        r = train_step.main(argv)
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {
        "frames_hw": r["frames_hw"],
        "batch": batch,
        "precision": precision,
        "grad_ckpt": ckpt,
        "step_ms": r["step_ms"],
        "peak_mem_mb": max(p["peak_mem_mb"] for p in r["phases"].values()),
        "samples_per_s": 1000 * batch / r["step_ms"],
        "tflops": r["achieved_tflops"],
        "mfu": r["mfu"],
        "trainable_params": r["trainable_params"],
        "total_params": r["total_params"],
        "device": r["device"],
    }


def deepspeed_resume(folder: Path, a) -> dict:
    """3 steps under DeepSpeed ZeRO-2 (train.py, one GPU), then resume from the step-3 checkpoint to step 5;
    the resumed losses must equal the uninterrupted run's."""
    if a.dry:
        return {"skipped_reason": "DeepSpeed ZeRO-2 trains on CUDA only (its strategy is built in the tests)"}
    import csv

    base = [
        "model=epipolar",
        "model/backbone=svd",
        f"model.backbone.source={folder}",
        "trainer=deepspeed_zero2",
        "trainer.devices=1",
        "trainer.num_nodes=1",
        "data.num_frames=25",
        "data.height=320",
        "data.width=512",
        "data.datamodule.batch_size=1",
        "data.datamodule.num_workers=2",
        "logger=csv",
        "trainer.log_every_n_steps=1",
        "callbacks.checkpoint.every_n_train_steps=3",
        "module.warmup_steps=1",
        "callbacks.media.every_n_steps=0",
        "callbacks.camera_gap.every_n_steps=0",
    ]

    def run(out: Path, steps: int, extra: list[str]) -> dict[int, float]:
        cmd = [
            sys.executable,
            "train.py",
            *base,
            f"trainer.max_steps={steps}",
            f"hydra.run.dir={out}",
            *extra,
        ]
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=part_seconds_left(),
            env={**os.environ, "WANDB_MODE": "offline"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"train.py failed: {proc.stderr[-1500:]}")
        losses = {}
        for f in out.rglob("metrics.csv"):
            for row in csv.DictReader(open(f)):
                if row.get("train/loss"):
                    losses[int(row["step"])] = float(row["train/loss"])
        return losses

    runs = folder.parent  # the temporary folder: three runs' ZeRO checkpoints are GBs, not results
    ref = run(runs / "ds_ref", 5, [])
    run(runs / "ds_killed", 3, [])
    ckpt = next((runs / "ds_killed" / "checkpoints").glob("*.ckpt"))
    resumed = run(runs / "ds_resumed", 5, [f"resume={ckpt}"])
    same = all(abs(resumed[s] - ref[s]) <= 1e-3 * max(1.0, abs(ref[s])) for s in resumed if s in ref)
    return {"reference_losses": ref, "resumed_losses": resumed, "resumed_matches": bool(same and resumed)}


# float32 kernels vs the SDPA reference: the largest |difference| over the reference's largest |value|
# (outputs and q/k/v gradients); summation order alone gives ~1e-6, a wrong band or mask gives ~1e-1
ATTN_TOL = 1e-4


def _attention_grid(a, dev, size: str, methods: list[str], rows: list[dict]) -> None:
    """``attention_compare`` at one token grid ``size`` ("FxHxW"): appends its rows to ``rows``."""
    import statistics

    import torch

    from benchmarks.attention import _cameras, dense_estimate_bytes
    from vid3d.models.attention import (
        build_shared_mask,
        epipolar_attention,
        epipolar_mask_dense,
        masked_attention_dense,
        pair_geometry,
        shared_mask_attention,
    )

    C, H, bw = 320, 5, 2.0

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    n, h, w = (int(x) for x in size.lower().split("x"))

    def rel(x, y) -> float:
        return float((x - y).abs().max() / y.abs().max().clamp_min(1e-30))

    T = n * h * w
    K, c2w = _cameras(1, n, h, w)
    F_hat, degenerate = pair_geometry(K.to(dev), c2w.to(dev))
    g = torch.Generator(device=dev).manual_seed(0)
    q, k, v, g_out = (torch.randn(1, H, T, C // H, generator=g, device=dev) for _ in range(4))
    dense_ok = dense_estimate_bytes(n, h, w) <= a.dense_limit_gb * 2**30
    ref_name = "dense" if dense_ok else "blocked"

    def fn(method: str):
        if method == "dense":
            mask = epipolar_mask_dense(F_hat, degenerate, h, w, bw)
            return lambda q, k, v: masked_attention_dense(q, k, v, mask)
        if method == "fast":
            shared = build_shared_mask(F_hat, degenerate, h, w, bw)
            return lambda q, k, v: shared_mask_attention(q, k, v, shared)
        return lambda q, k, v: epipolar_attention(q, k, v, F_hat, degenerate, h, w, bw, method)

    ref: dict = {}
    order = [ref_name] + [m for m in methods if m != ref_name]
    for method in order:
        if method == "dense" and not dense_ok:
            rows.append({"size": size, "tokens": T, "method": "dense",
                         "note": "dense mask over --dense-limit-gb"})
            continue
        for ps in ("fwd", "fwd_bwd"):
            row = {"size": size, "tokens": T, "method": method, "pass": ps, "reference": ref_name}
            if ps == "fwd_bwd" and method == "flex" and dev.type == "cpu":
                rows.append({**row, "note": "FlexAttention has no backward on the CPU"})
                continue
            try:
                f = fn(method)
                leaves = [t.clone().requires_grad_() for t in (q, k, v)]

                def call(f=f, leaves=leaves, ps=ps):
                    if ps == "fwd":
                        with torch.no_grad():
                            return f(q, k, v), None
                    for t in leaves:
                        t.grad = None
                    out = f(*leaves)
                    (out * g_out).sum().backward()
                    return out.detach(), [t.grad for t in leaves]

                t0 = time.perf_counter()
                out, grads = call()  # warm-up; compiles flex at this shape the first time
                sync()
                row["first_call_s"] = time.perf_counter() - t0
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                times = []
                for _ in range(a.attn_repeats):
                    t0 = time.perf_counter()
                    call()
                    sync()
                    times.append(time.perf_counter() - t0)
                row["time_s"] = statistics.median(times)
                if dev.type == "cuda":
                    row["peak_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
                if method == ref_name:
                    ref[ps] = (out, grads)
                elif ps in ref:
                    r_out, r_grads = ref[ps]
                    rel = lambda x, y: float((x - y).abs().max() / y.abs().max().clamp_min(1e-30))  # noqa: E731
                    row["out_rel_err"] = rel(out, r_out)
                    if grads is not None:
                        row["grad_rel_err"] = max(rel(x, y) for x, y in zip(grads, r_grads))
                del out, grads
            except torch.OutOfMemoryError as e:
                row["note"] = f"out of memory: {str(e)[:80]}"
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            rows.append(row)
            write_attention(a.out, rows)  # every row on disk as it ends: a part cut short keeps them
            print(f"[gpu-check]   {size} {method} {ps}: {row.get('time_s')} s "
                  f"err {row.get('out_rel_err')} / {row.get('grad_rel_err')} {row.get('note', '')}",
                  flush=True)


def attention_compare(a) -> dict:
    """Epipolar attention kernels against SDPA with the dense epipolar mask, in this process.

    Per token grid (F, h, w): q, k, v (1, H, T, D) float32 (seeded), one upstream gradient for all; each
    method's output and q/k/v gradients are compared with the reference's (largest |difference| over the
    reference's largest |value|). Times are the median of ``--attn-repeats`` calls after one warm-up call
    (which compiles FlexAttention: once per shape, reused by forward+backward). Rows are written to
    ``<out>/attention.json`` after each grid."""
    import torch

    dev = torch.device(a.device)
    sizes = a.attn_sizes or ("2x8x8" if a.dry else "16x24x40,25x24x40,25x40x64")
    methods = a.attn_methods.split(",")
    rows: list[dict] = []
    for size in sizes.split(","):
        _attention_grid(a, dev, size, methods, rows)
    write_attention(a.out, rows)
    worst = max((r.get(k, 0.0) for r in rows for k in ("out_rel_err", "grad_rel_err")), default=0.0)
    ok = worst <= ATTN_TOL
    return {"rows": rows, "json": str(a.out / "attention.json"), "max_rel_err": worst, "within_tol": ok,
            "summary": f"{len(rows)} rows in attention.md, largest relative difference to the reference "
                       f"{worst:.1e} ({'within' if ok else 'OVER'} {ATTN_TOL:g})"}


def write_attention(out: Path, rows: list[dict]) -> None:
    """``<out>/attention.json`` (the rows) and ``attention.md`` (their table), atomically."""
    from vid3d.atomic import atomic_write_text

    atomic_write_text(out / "attention.json", json.dumps(rows, indent=1))
    atomic_write_text(out / "attention.md", attention_table(rows) + "\n")


def attention_table(rows: list[dict]) -> str:
    """Markdown table of ``attention_compare``'s rows."""
    head = "| tokens (FxHxW) | method | pass | time ms | peak MB | first call s | out err | grad err | note |"
    lines = [head,
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    f = lambda x, fmt: "" if x is None else format(x, fmt)  # noqa: E731
    for r in rows:
        lines.append(f"| {r['tokens']} ({r['size']}) | {r['method']} | {r.get('pass', '')} | "
                     f"{f(r.get('time_s') and 1000 * r['time_s'], '.2f')} | {f(r.get('peak_mb'), '.0f')} | "
                     f"{f(r.get('first_call_s'), '.1f')} | {f(r.get('out_rel_err'), '.1e')} | "
                     f"{f(r.get('grad_rel_err'), '.1e')} | {r.get('note', '')} |")
    return "\n".join(lines)


def gsplat_compare(a) -> dict:
    """gsplat's CUDA rasteriser against vid3d's torch one: the same 20 000 random Gaussians rendered at
    25 cameras of an orbit (320x512): seconds per frame each, and the mean |difference| of the uint8
    images."""
    import importlib.util

    if importlib.util.find_spec("gsplat") is None:
        return {"skipped_reason": "gsplat not importable (absent: no wheel carried for this node)"}
    if a.dry:
        return {"skipped_reason": "gsplat importable; its rasteriser runs on CUDA only"}
    import numpy as np
    import torch

    from vid3d.reconstruction.fit import render_frames
    from vid3d.reconstruction.gaussians import Gaussians
    from vid3d.sampling.trajectories import make_trajectory

    g = torch.Generator().manual_seed(0)
    N, f, h, w = 20000, 25, 320, 512
    gs = Gaussians(
        means=torch.randn(N, 3, generator=g) * 0.5 + torch.tensor([0.0, 0.0, 3.0]),
        quats=torch.randn(N, 4, generator=g),
        log_scales=torch.full((N, 3), -3.5) + 0.3 * torch.randn(N, 3, generator=g),
        opacity_logits=torch.randn(N, generator=g),
        sh0=torch.randn(N, 3, generator=g) * 0.5,
    )
    gs = Gaussians(**{k: v.cuda() for k, v in gs.tensors().items()})
    K1 = np.array([[0.8 * w, 0, w / 2], [0, 0.8 * w, h / 2], [0, 0, 1.0]], np.float32)
    K = np.broadcast_to(K1, (f, 3, 3))
    c2w = np.asarray(make_trajectory("orbit_left", f).c2w, np.float32)
    out = {}
    for r in ("gsplat", "torch"):
        render_frames(gs, K[:1], c2w[:1], h, w, renderer=r)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out[r] = render_frames(gs, K, c2w, h, w, renderer=r)
        out[r + "_s_per_frame"] = (time.perf_counter() - t0) / f
    diff = float(np.abs(out["gsplat"].astype(np.float32) - out["torch"].astype(np.float32)).mean())
    return {"gsplat_s_per_frame": out["gsplat_s_per_frame"], "torch_s_per_frame": out["torch_s_per_frame"],
            "mean_abs_diff_uint8": diff,
            "summary": f"gsplat {1000 * out['gsplat_s_per_frame']:.1f} ms/frame, torch "
                       f"{1000 * out['torch_s_per_frame']:.1f} ms/frame, mean |diff| {diff:.2f}/255"}


def sampling(folder: Path, a) -> dict:
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from vid3d.config import CONFIG_DIR
    from vid3d.sampling.trajectories import make_trajectory
    from vid3d.sampling.video_sampler import VideoSampler

    f, h, w = (4, 64, 96) if a.dry else (25, 320, 512)
    steps = 2 if a.dry else 25
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train", overrides=["model=epipolar", "model/backbone=svd", f"model.backbone.source={folder}"]
        )
    dev = torch.device(a.device)
    model = instantiate(cfg.model).to(dev).eval()  # float32 weights, bf16 autocast on CUDA
    dtype = torch.float32 if a.dry else torch.bfloat16
    sampler = VideoSampler(num_steps=steps, guidance_min=1.0, guidance_max=3.0)
    image = torch.rand(1, 3, h, w, device=dev) * 2 - 1
    K = torch.tensor([[0.8 * w, 0, w / 2], [0, 0.8 * w, h / 2], [0, 0, 1.0]], device=dev).expand(1, f, 3, 3)
    c2w = torch.as_tensor(make_trajectory("orbit_left", f).c2w, dtype=torch.float32, device=dev)[None]
    times = []
    for _ in range(1 if a.dry else 2):  # the second run is the timed one (the first warms kernels up)
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
            video = sampler(model, image, K, c2w, generator=torch.Generator(dev).manual_seed(0))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    assert video.shape[1] == f and torch.isfinite(video.float()).all()
    mem = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    return {
        "frames_hw": [f, h, w],
        "steps": steps,
        "cfg": True,
        "seconds_per_video": times[-1],
        "peak_mem_mb": mem,
    }


def _sampling_inputs(folder: Path, a):
    """The sampling parts' model (SVD-XT architecture + Plücker + epipolar, float32 weights) and inputs."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from vid3d.config import CONFIG_DIR
    from vid3d.sampling.trajectories import make_trajectory

    f, h, w = (4, 64, 96) if a.dry else (25, 320, 512)
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train", overrides=["model=epipolar", "model/backbone=svd", f"model.backbone.source={folder}"]
        )
    dev = torch.device(a.device)
    model = instantiate(cfg.model).to(dev).eval()
    image = torch.rand(1, 3, h, w, device=dev) * 2 - 1
    K = torch.tensor([[0.8 * w, 0, w / 2], [0, 0.8 * w, h / 2], [0, 0, 1.0]], device=dev).expand(1, f, 3, 3)
    c2w = torch.as_tensor(make_trajectory("orbit_left", f).c2w, dtype=torch.float32, device=dev)[None]
    return model, (image, K, c2w), (f, h, w), dev


def _timed_video(model, sampler, data, dev) -> tuple[float, object]:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    video = sampler(model, *data, generator=torch.Generator(dev).manual_seed(0))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, video


def sampling_options(folder: Path, a, compile_unet: bool = False) -> dict:
    """Seconds per step of the sampler options (vid3d/sampling/video_sampler.py) in one process, each after
    a warm-up video: the step-invariant cache off (reference) and on, bf16 autocast (``autocast="bf16"``);
    with ``compile_unet`` instead: float32 cached, then the UNet compiled in place (inductor; the first
    compiled video pays the compilation, reported apart). The largest pixel difference of each against the
    first variant. --dry: tiny shapes, no bf16, compile with the "eager" backend."""
    from vid3d.sampling.video_sampler import VideoSampler

    model, data, (f, h, w), dev = _sampling_inputs(folder, a)
    steps = 2 if a.dry else 8
    if compile_unet:
        variants = {"fp32 cached": {}, "compiled UNet": dict(compile_unet="eager" if a.dry else "inductor")}
    else:
        variants = {"fp32 reference (no cache)": dict(cache_conditions=False), "fp32 cached": {}}
        if not a.dry:
            variants["bf16 autocast cached"] = dict(autocast="bf16")
    out, base = {}, None
    for name, kw in variants.items():
        sampler = VideoSampler(num_steps=steps, **kw)
        first, _ = _timed_video(model, sampler, data, dev)  # warm-up (and the compilation)
        seconds, video = _timed_video(model, sampler, data, dev)
        base = video if base is None else base
        out[name] = {"s_per_step": seconds / steps, "first_video_s": first,
                     "max_abs_diff": float((video - base).abs().max())}
    summary = "; ".join(f"{k}: {v['s_per_step']:.3f} s/step (max |diff| {v['max_abs_diff']:.1e})"
                        for k, v in out.items())
    return {"frames_hw": [f, h, w], "steps": steps, "variants": out, "summary": summary}


def table(results: list[dict]) -> str:
    lines = ["| part | status | s | details |", "|---|---|---:|---|"]
    for r in results:
        shape = "x".join(map(str, r.get("frames_hw", [])))
        if "step_ms" in r:
            mfu = f"{100 * r['mfu']:.1f}% MFU" if r.get("mfu") else "MFU n/a (no --peak-tflops)"
            d = (
                f"{shape} b{r['batch']} {r['precision']}{' +ckpt' if r['grad_ckpt'] else ''}: "
                f"{r['step_ms']:.0f} ms/step, {r['peak_mem_mb']:.0f} MB, "
                f"{r['samples_per_s']:.2f} samples/s, {r['tflops']:.1f} TFLOP/s, {mfu}"
            )
        elif "seconds_per_video" in r:
            d = f"{shape}, {r['steps']} steps + CFG: {r['seconds_per_video']:.1f} s/video"
        elif "summary" in r:
            d = r["summary"]
        elif "resumed_matches" in r:
            d = f"resumed loss sequence matches: {r['resumed_matches']}"
        else:
            d = r.get("skipped_reason") or r.get("reason") or r.get("error", "")[:120]
        lines.append(f"| {r['part']} | {r['status']} | {r.get('seconds', '')} | {d} |")
    return "\n".join(lines)


# seconds each part may take at most (cut to what is left of the deadline)
PART_LIMITS_S = {"backbone": 120, "train": 75, "attention": 180, "sampling": 90, "deepspeed": 200,
                 "train stage 2": 90, "gsplat": 45, "sampling options": 90, "sampling compiled": 150}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--dry", action="store_true", help="CPU, tiny shapes: checks the script, measures nothing"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check")
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=480.0, help="wall-clock deadline for all parts")
    ap.add_argument("--attn-sizes", default=None, help="FxHxW token grids (default: per --dry)")
    ap.add_argument("--attn-methods", default="grouped,blocked,gather,flex,fast",
                    help="kernels compared with SDPA + dense mask")
    ap.add_argument("--attn-repeats", type=int, default=3)
    ap.add_argument("--dense-limit-gb", type=float, default=16.0, help="largest dense reference mask + work")
    a = ap.parse_args(argv)
    a.device = "cpu" if a.dry else "cuda"
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    t_start = time.monotonic()
    deadline = t_start + a.budget_s
    if not a.dry and a.peak_tflops is None:
        import torch

        name = torch.cuda.get_device_name()
        a.peak_tflops = next((v for k, v in DATASHEET_PEAK_TFLOPS.items() if k in name), None)
        print(f"[gpu-check] {name}: datasheet peak {a.peak_tflops} TFLOP/s (dense fp16/bf16)", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    from vid3d.atomic import atomic_write_text

    def write(results: list[dict]) -> None:
        report = {"dry": a.dry, "device": a.device, "peak_tflops": a.peak_tflops, "budget_s": a.budget_s,
                  "elapsed_s": round(time.monotonic() - t_start, 1), "results": results}
        atomic_write_text(a.out / "gpu_check.json", json.dumps(report, indent=1, default=str))
        atomic_write_text(a.out / "gpu_check.md", table(results) + "\n")

    results: list[dict] = []
    s1 = (4, 64, 96) if a.dry else (25, 320, 512)
    s2 = (4, 96, 128) if a.dry else (25, 576, 1024)
    # stage 1: bf16 and fp16 at batch 1, then the recipe's batch 2 (fp16, as under DeepSpeed) with and
    # without checkpointing: the three fp16 cells are the memory model's measured column
    train1 = [(1, "bf16-mixed", False), (1, "16-mixed", False), (2, "16-mixed", True), (2, "16-mixed", False)]
    if a.dry:  # what a CPU runs: fp32 and bf16 autocast
        train1 = [(1, "32", False), (1, "bf16-mixed", True)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "svd_xt_random"
        name = "build tiny backbone" if a.dry else "build SVD-XT random-init backbone (GPU init, fp16 save)"
        built = run_part(name, lambda: {"folder": str(build_backbone_folder(folder, a.dry))}, results,
                         deadline, PART_LIMITS_S["backbone"], write)
        if built["status"] != "ok":
            print("[gpu-check] no backbone: the model parts cannot run", flush=True)
        for b, p, c in train1:
            name = f"train {s1[0]}x{s1[1]}x{s1[2]} b{b} {p}{' ckpt' if c else ''}"
            run_part(name, lambda b=b, p=p, c=c: train_steps(folder, s1, b, p, c, a), results, deadline,
                     PART_LIMITS_S["train"], write)
        run_part("attention kernels vs SDPA dense", lambda: attention_compare(a), results, deadline,
                 PART_LIMITS_S["attention"], write)
        run_part("sampling", lambda: sampling(folder, a), results, deadline, PART_LIMITS_S["sampling"], write)
        run_part("deepspeed zero-2 resume", lambda: deepspeed_resume(folder, a), results, deadline,
                 PART_LIMITS_S["deepspeed"], write)
        p2 = "32" if a.dry else "bf16-mixed"
        run_part(f"train {s2[0]}x{s2[1]}x{s2[2]} b1 {p2} ckpt",
                 lambda: train_steps(folder, s2, 1, p2, True, a), results,
                 deadline, PART_LIMITS_S["train stage 2"], write)
        run_part("gsplat vs torch rasteriser", lambda: gsplat_compare(a), results, deadline,
                 PART_LIMITS_S["gsplat"], write)
        run_part("sampling options (cache, bf16 autocast)", lambda: sampling_options(folder, a), results,
                 deadline, PART_LIMITS_S["sampling options"], write)
        run_part("sampling compiled UNet", lambda: sampling_options(folder, a, compile_unet=True), results,
                 deadline, PART_LIMITS_S["sampling compiled"], write)
    print(table(results))
    print(f"wrote {a.out / 'gpu_check.json'}, gpu_check.md and attention.json/.md "
          f"in {time.monotonic() - t_start:.0f} s")
    return json.loads((a.out / "gpu_check.json").read_text())


if __name__ == "__main__":
    main()
