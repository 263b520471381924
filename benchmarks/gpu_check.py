"""The prepared GPU check (`make gpu-check`): everything that needs CUDA, in one command, ≤ 8 minutes.

With the real SVD-XT architecture (diffusers' UNetSpatioTemporalConditionModel, AutoencoderKLTemporalDecoder
and a ViT-H/14 CLIP image encoder at SVD-XT's configuration, **random init**: no weights exist on these
machines), saved as a diffusers folder and loaded by vid3d's own `model/backbone=svd` path, plus the Plücker
encoder and epipolar attention (`model=epipolar`):

1. training steps at 320×512×25 (stage 1): batch 1 and 2, `16-mixed` and `bf16-mixed`, with and without
   gradient checkpointing (benchmarks/train_step.py: step time, peak memory, TFLOP/s from torch's FLOP
   counter and MFU against ``--peak-tflops``, the device's dense fp16/bf16 datasheet peak);
2. the same at 576×1024×25 (stage 2) with gradient checkpointing;
3. 3 steps under DeepSpeed ZeRO-2 through Lightning (`trainer=deepspeed_zero2`, one GPU), the checkpoint
   resumed for 2 more steps: the resumed loss sequence must continue the uninterrupted one;
4. benchmarks/attention.py on CUDA: grouped / FlexAttention / chunked kernels vs the fast path vs the
   CamI2V-style dense mask;
5. a sampling run (25 EDM steps with CFG) at 320×512×25: seconds per video.

Each part runs under a time budget and its failure (OOM included) is recorded, not fatal. Prints progress,
writes ``<out>/gpu_check.json`` and ``<out>/gpu_check.md`` (a table). ``--dry`` runs every part on a CPU at
tiny shapes (the tiny backbone saved and loaded the same way; DeepSpeed skipped with its reason): CI runs
it so the script cannot rot.

    python benchmarks/gpu_check.py --peak-tflops 989          # H100/H200 SXM dense bf16/fp16
    .venv/bin/python benchmarks/gpu_check.py --dry            # CPU, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

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
    unet = UNetSpatioTemporalConditionModel(num_frames=25)  # the class defaults are SVD's configuration
    vae = TemporalVAEAdapter(AutoencoderKLTemporalDecoder())
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VIT_H14))
    return save_backbone(Backbone(unet.half(), vae.half(), clip.half()), folder)


def run_part(name: str, fn, results: list, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        results.append({"part": name, "status": "skipped", "reason": "time budget spent"})
        print(f"[gpu-check] {name}: skipped (time budget spent)", flush=True)
        return
    print(f"[gpu-check] {name} ...", flush=True)
    t0 = time.monotonic()
    try:
        out = fn()
        status = "ok"
    except Exception as e:  # noqa: BLE001 - a failed part (OOM included) is a result, not the end
        out = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
        status = "failed"
    if status == "ok" and (out or {}).get("skipped_reason"):
        status = "skipped"
    results.append(
        {"part": name, "status": status, "seconds": round(time.monotonic() - t0, 1), **(out or {})}
    )
    print(f"[gpu-check] {name}: {status} in {time.monotonic() - t0:.0f} s", flush=True)


def train_steps(folder: Path, size: tuple[int, int, int], batch: int, precision: str, ckpt: bool, a) -> dict:
    import torch
    import train_step

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
        str(a.out / f"train_step_{f}x{h}x{w}_b{batch}_{precision}{'_ckpt' if ckpt else ''}.json"),
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
            timeout=300,
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

    ref = run(a.out / "ds_ref", 5, [])
    run(a.out / "ds_killed", 3, [])
    ckpt = next((a.out / "ds_killed" / "checkpoints").glob("*.ckpt"))
    resumed = run(a.out / "ds_resumed", 5, [f"resume={ckpt}"])
    same = all(abs(resumed[s] - ref[s]) <= 1e-3 * max(1.0, abs(ref[s])) for s in resumed if s in ref)
    return {"reference_losses": ref, "resumed_losses": resumed, "resumed_matches": bool(same and resumed)}


def attention(a) -> dict:
    out = a.out / "attention.json"
    sizes = "2x8x8" if a.dry else "16x24x40,25x24x40,25x40x64"
    # flex compiles per shape (minutes on a CPU): GPU only
    methods = "cami2v,grouped,fast" if a.dry else "cami2v,grouped,flex,blocked,gather,fast"
    cmd = [
        sys.executable,
        "benchmarks/attention.py",
        "--device",
        a.device,
        "--sizes",
        sizes,
        "--methods",
        methods,
        "--channels",
        "320",
        "--heads",
        "5",
        "--passes",
        "fwd,fwd_bwd",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-1500:])
    print(proc.stdout[-3000:], flush=True)
    rows = [x for x in proc.stdout.splitlines() if x.startswith("|")]
    return {"table": rows, "json": str(out), "summary": f"{max(len(rows) - 2, 0)} rows in {out.name}"}


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


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--dry", action="store_true", help="CPU, tiny shapes: checks the script, measures nothing"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check")
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=480.0)
    a = ap.parse_args(argv)
    a.device = "cpu" if a.dry else "cuda"
    if not a.dry and a.peak_tflops is None:
        import torch

        name = torch.cuda.get_device_name()
        a.peak_tflops = next((v for k, v in DATASHEET_PEAK_TFLOPS.items() if k in name), None)
        print(f"[gpu-check] {name}: datasheet peak {a.peak_tflops} TFLOP/s (dense fp16/bf16)", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + a.budget_s
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "svd_xt_random"
        print(
            f"[gpu-check] building the {'tiny' if a.dry else 'SVD-XT'} random-init backbone folder",
            flush=True,
        )
        build_backbone_folder(folder, a.dry)
        s1 = (4, 64, 96) if a.dry else (25, 320, 512)
        s2 = (4, 96, 128) if a.dry else (25, 576, 1024)
        configs = [
            (s1, 1, "16-mixed", False),
            (s1, 2, "16-mixed", False),
            (s1, 2, "16-mixed", True),
            (s1, 2, "bf16-mixed", True),
            (s1, 1, "bf16-mixed", False),
            (s2, 1, "bf16-mixed", True),
        ]
        if a.dry:  # what a CPU runs: fp32 and bf16 autocast
            configs = [(s1, 1, "32", False), (s1, 1, "bf16-mixed", True), (s2, 1, "32", True)]
        for s, b, p, c in configs:
            name = f"train {s[0]}x{s[1]}x{s[2]} b{b} {p}{' ckpt' if c else ''}"
            run_part(name, lambda s=s, b=b, p=p, c=c: train_steps(folder, s, b, p, c, a), results, deadline)
        run_part("deepspeed zero-2 resume", lambda: deepspeed_resume(folder, a), results, deadline)
        run_part("attention kernels", lambda: attention(a), results, deadline)
        run_part("sampling", lambda: sampling(folder, a), results, deadline)
    report = {"dry": a.dry, "device": a.device, "peak_tflops": a.peak_tflops, "results": results}
    from vid3d.atomic import atomic_write_text

    atomic_write_text(a.out / "gpu_check.json", json.dumps(report, indent=1, default=str))
    md = table(results)
    atomic_write_text(a.out / "gpu_check.md", md + "\n")
    print(md)
    print(f"wrote {a.out / 'gpu_check.json'} and gpu_check.md")
    return report


if __name__ == "__main__":
    main()
