"""Seconds per denoising step with and without the per-video cache of step-invariant work, in ONE run.

``VideoSampler(cache_conditions=True)`` (the default) computes what does not change between steps once per
video: the camera encoder's features (once for classifier-free guidance's two equal halves), and it takes
the attention cameras as unchanged without copying or comparing them (``CameraVideoDiffusion.
sampling_cache``). ``cache_conditions=False`` is the reference path: all of that at every step. The CLIP
embedding, the VAE latent of the conditioning frame and the Plücker rays are computed once per video on
both paths (``VideoSampler.__call__``), and the epipolar geometry and band masks are cached by camera
value on both (``AttentionAdapter``). Conditional and unconditional passes are one batched forward on both.

Per model, the two paths alternate for ``--repeats`` rounds (so machine load hits both alike); each round
samples one video of ``--steps`` Euler steps with CFG from the same seed; seconds per step = wall time /
steps; the table gives the medians, their ratio (reference / cached: > 1 is faster) and the largest
difference between the two videos (pixels in [-1, 1]). Models: the committed
CPU camera model (``assets/cpu_camera_control/``, Plücker + epipolar, 32x48, 8 frames) and the tiny SVD
backbone with the Plücker encoder and epipolar attention at 128x192 (its zero-initialised camera outputs
given random values, so the camera path is not a no-op). Writes JSON (atomically).

    PYTHONPATH=. .venv/bin/python -m benchmarks.sampling_step [--steps 8 --repeats 3 --batch 4 --out FILE]

``--batch N`` adds, per model, N videos (different trajectories and seeds) sampled one by one against one
call with N generators (the batched evaluation path, ``eval.batch_size``): seconds per video and ratio.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big.safetensors"


def asset_model():
    """The committed CPU camera model, eval mode; (model, (H, W), frames)."""
    from vid3d.models.checkpoint import load_model

    return load_model(ASSET).eval(), (32, 48), 8


def tiny_model(size: tuple[int, int] = (128, 192), frames: int = 8, seed: int = 0):
    """The tiny SVD backbone + Plücker encoder + epipolar attention, camera outputs randomised."""
    from vid3d.models.backbone import build_tiny_backbone
    from vid3d.models.video_diffusion import CameraVideoDiffusion

    model = CameraVideoDiffusion(
        build_tiny_backbone(seed=seed), camera_encoder="plucker", attention="epipolar"
    )
    randomise_zero_init(model, seed)
    return model.eval(), size, frames


def randomise_zero_init(model, seed: int = 0, scale: float = 0.05) -> None:
    """Give the zero-initialised camera outputs (encoder and attention output layers) random values, so
    cached and uncached paths are compared where the camera changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (model.camera_encoder, model.attention_adapter):
            if module is None:
                continue
            for p in module.parameters():
                if not p.any():
                    p.copy_(scale * torch.randn(p.shape, generator=g))


def inputs(size: tuple[int, int], frames: int, batch: int = 1, seed: int = 0):
    """A first frame (B, 3, H, W) in [-1, 1], intrinsics (B, F, 3, 3) and a dolly-and-pan trajectory."""
    from vid3d.geometry.rotations import axis_angle_to_matrix

    H, W = size
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, H, W, generator=g) * 2 - 1
    K = torch.tensor([[0.9 * W, 0, W / 2], [0, 0.9 * W, H / 2], [0, 0, 1.0]]).expand(batch, frames, 3, 3)
    t = torch.linspace(0, 1, frames)
    c2w = torch.eye(4).repeat(batch, frames, 1, 1)
    c2w[:, :, :3, :3] = axis_angle_to_matrix(torch.tensor([0.0, 1.0, 0.0]).expand(frames, 3), 0.3 * t)
    c2w[:, :, 2, 3] = 0.5 * t
    return image, K.contiguous(), c2w


def sample(model, sampler, data, seed: int) -> tuple[torch.Tensor, float]:
    """One video (B, F, 3, H, W) in [-1, 1] and its wall time in seconds."""
    image, K, c2w = data
    t0 = time.perf_counter()
    video = sampler(model, image, K, c2w, generator=torch.Generator().manual_seed(seed))
    return video, time.perf_counter() - t0


def measure(name: str, model, size, frames, steps: int, repeats: int, batch: int = 1) -> dict:
    from vid3d.sampling.video_sampler import VideoSampler

    data = inputs(size, frames, batch)
    samplers = {
        "reference": VideoSampler(num_steps=steps, cache_conditions=False),
        "cached": VideoSampler(num_steps=steps, cache_conditions=True),
    }
    times: dict[str, list[float]] = {k: [] for k in samplers}
    videos = {}
    sample(model, samplers["cached"], data, 0)  # warm-up (allocator, one-time dispatch)
    for _ in range(repeats):
        for key, s in samplers.items():
            videos[key], dt = sample(model, s, data, 0)
            times[key].append(dt / steps)
    ref, cached = (statistics.median(times[k]) for k in ("reference", "cached"))
    return {
        "model": name,
        "image_hw": list(size),
        "frames": frames,
        "batch": batch,
        "steps": steps,
        "repeats": repeats,
        "s_per_step_reference": ref,
        "s_per_step_cached": cached,
        "ratio": ref / cached,
        "all_s_per_step": times,
        "max_abs_diff": float((videos["reference"] - videos["cached"]).abs().max()),
    }


def measure_batch(name: str, model, size, frames, steps: int, batch: int, repeats: int) -> dict:
    """``batch`` videos one by one (one generator each) against one call with the ``batch`` generators
    (the batched evaluation path, ``eval.batch_size``): seconds per video, ratio, largest difference."""
    from vid3d.sampling.video_sampler import VideoSampler

    image, K, c2w = inputs(size, frames, batch)
    c2w[:, :, 0, 3] *= torch.linspace(-1, 1, batch)[:, None]  # a different trajectory per video
    sampler = VideoSampler(num_steps=steps)
    seeds = list(range(batch))
    times: dict[str, list[float]] = {"one_by_one": [], "batched": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        alone = torch.cat([sampler(model, image[i:i + 1], K[i:i + 1], c2w[i:i + 1],
                                   generator=torch.Generator().manual_seed(s)) for i, s in enumerate(seeds)])
        times["one_by_one"].append((time.perf_counter() - t0) / batch)
        t0 = time.perf_counter()
        both = sampler(model, image, K, c2w, generator=[torch.Generator().manual_seed(s) for s in seeds])
        times["batched"].append((time.perf_counter() - t0) / batch)
    one, many = (statistics.median(times[k]) for k in ("one_by_one", "batched"))
    return {"model": name, "image_hw": list(size), "frames": frames, "batch": batch, "steps": steps,
            "s_per_video_one_by_one": one, "s_per_video_batched": many, "ratio": one / many,
            "all_s_per_video": times, "max_abs_diff": float((alone - both).abs().max())}


def table(rows: list[dict]) -> str:
    lines = [
        "| model | size | steps | s/step reference | s/step cached | ratio | max |diff| |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        h, w = r["image_hw"]
        lines.append(
            f"| {r['model']} | {r['frames']}x{h}x{w} b{r['batch']} | {r['steps']} | "
            f"{r['s_per_step_reference']:.4f} | {r['s_per_step_cached']:.4f} | {r['ratio']:.3f} | "
            f"{r['max_abs_diff']:.1e} |"
        )
    return "\n".join(lines)


def batch_table(rows: list[dict]) -> str:
    lines = ["| model | size | videos | steps | s/video one by one | s/video batched | ratio | max |diff| |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        h, w = r["image_hw"]
        lines.append(f"| {r['model']} | {r['frames']}x{h}x{w} | {r['batch']} | {r['steps']} | "
                     f"{r['s_per_video_one_by_one']:.3f} | {r['s_per_video_batched']:.3f} | "
                     f"{r['ratio']:.3f} | {r['max_abs_diff']:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="asset,tiny", help="comma list of: asset, tiny")
    ap.add_argument("--tiny-size", default="128,192", help="H,W of the tiny model's videos")
    ap.add_argument("--batch", type=int, default=0,
                    help="also time this many videos one by one against one batched call (0: not)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sampling_step.json"))
    args = ap.parse_args(argv)
    from vid3d.atomic import atomic_write_json

    torch.set_num_threads(args.threads)
    rows, batch_rows = [], []
    for name in args.models.split(","):
        if name == "asset":
            model, size, frames = asset_model()
        elif name == "tiny":
            hw = tuple(int(v) for v in args.tiny_size.split(","))
            model, size, frames = tiny_model(hw)
        else:
            raise SystemExit(f"--models: unknown model {name!r} (asset, tiny)")
        rows.append(measure(name, model, size, frames, args.steps, args.repeats))
        print(table(rows[-1:]).splitlines()[-1] if len(rows) > 1 else table(rows), flush=True)
        if args.batch > 1:
            batch_rows.append(measure_batch(name, model, size, frames, args.steps, args.batch, args.repeats))
            print(batch_table(batch_rows[-1:]), flush=True)
    result = {
        "rows": rows,
        "batch_rows": batch_rows,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.platform(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print()
    print(table(rows))
    if batch_rows:
        print()
        print(batch_table(batch_rows))
    atomic_write_json(Path(args.out), result)
    print(f"\nwritten: {args.out}")
    return result


if __name__ == "__main__":
    main()
