"""Time and peak memory of one training step, split into data, forward, backward and optimiser.

One process, one model config and size. The data phase is one batch from the real loading pipeline
(RealEstate10K reader + crop/resize + collate) over a small synthetic set rendered into a temporary
folder; forward is ``model.training_loss`` (EDM loss, under autocast fp16 on CUDA with ``--precision
16-mixed``), backward ``loss.backward()``, optimiser Adam ``step`` + ``zero_grad`` on the trainable weights
(the freeze policy of conf/train.yaml unless ``--trainable all``). Each phase is timed (CUDA synchronised)
over ``--steps`` steps after ``--warmup`` steps; the median is reported. Peak memory: on CUDA the
``max_memory_allocated`` during the phase (reset before it); on CPU the process' peak RSS at the end of
the phase (cumulative, allocator-dependent). FLOPs of forward + backward come from
``torch.utils.flop_counter.FlopCounterMode`` (matmuls/convolutions/attention) in a separate step; achieved
TFLOP/s = FLOPs / (forward + backward time), compared with ``--peak-tflops`` (the card's dense peak for
the precision used, e.g. H100 SXM fp16/bf16 dense ~989) when given. Prints a table, writes JSON atomically.

    .venv/bin/python -m benchmarks.train_step                                  # tiny, CPU
    python -m benchmarks.train_step --size stage1 --device cuda --peak-tflops 989   # SVD-XT 25x320x512, b=2
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from vid3d.atomic import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]

SIZES = {
    # name: (hydra overrides, batch size)
    "tiny": (["model/backbone=tiny", "data.num_frames=8", "data.height=128", "data.width=192"], 1),
    "stage1": (["model/backbone=svd", "data.num_frames=25", "data.height=320", "data.width=512"], 2),
    "custom": ([], 1),  # everything from --override (benchmarks/gpu_check.py)
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="epipolar", help="conf/model option")
    ap.add_argument("--size", default="tiny", choices=sorted(SIZES))
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: per size)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--precision", default=None, help="32 | 16-mixed | bf16-mixed (default: 32 CPU, 16-mixed CUDA)"
    )
    ap.add_argument("--trainable", default=None, help="'all' or comma list (default: the config's)")
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (module option)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's peak TFLOP/s")
    ap.add_argument("--override", action="append", default=[], help="extra Hydra override (repeatable)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_step.json"))
    args = ap.parse_args(argv)

    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from torch.utils.flop_counter import FlopCounterMode

    import vid3d.config  # noqa: F401
    from vid3d.config import CONFIG_DIR
    from vid3d.data.synthetic import build_synthetic_dataset
    from vid3d.training.module import CameraDiffusionModule

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    precision = args.precision or ("16-mixed" if cuda else "32")
    amp_dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
    overrides, default_batch = SIZES[args.size]
    batch_size = args.batch or default_batch

    tmp = tempfile.TemporaryDirectory()
    root = build_synthetic_dataset(
        Path(tmp.name) / "set", num_train=2, num_test=1, num_frames=48, height=144, width=256
    )
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"model={args.model}",
                "data=re10k",
                f"data.root={root}",
                f"data.datamodule.batch_size={batch_size}",
                "data.datamodule.num_workers=0",
                *overrides,
                *args.override,
            ],
        )
    trainable = cfg.module.trainable
    if args.trainable:
        trainable = ["all"] if args.trainable == "all" else args.trainable.split(",")
    dm = instantiate(cfg.data.datamodule)
    model = instantiate(cfg.model)
    module = CameraDiffusionModule(
        model, optimizer=torch.optim.Adam, trainable=trainable, gradient_checkpointing=args.grad_ckpt
    )
    module.to(dev).train()
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-5)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and amp_dtype == torch.float16)
    loader = dm.train_dataloader()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    def phase(fn):
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        out = fn()
        sync()
        dt = time.perf_counter() - t0
        mem = torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else _rss_mb()
        return out, dt, mem

    def autocast():
        return torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    it = iter(loader)

    def next_batch():
        nonlocal it
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        return {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in b.items()}

    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in ("data", "forward", "backward", "optimizer")}
    for step in range(args.warmup + args.steps):
        batch, t_data, m_data = phase(next_batch)
        gen = torch.Generator(device=dev).manual_seed(step)

        def fwd(batch=batch, gen=gen):
            with autocast():
                return module.model.training_loss(batch, generator=gen)[0]

        loss, t_fwd, m_fwd = phase(fwd)
        _, t_bwd, m_bwd = phase(lambda loss=loss: scaler.scale(loss).backward())

        def opt_step():
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)

        _, t_opt, m_opt = phase(opt_step)
        if step >= args.warmup:
            for k, t, m in (
                ("data", t_data, m_data),
                ("forward", t_fwd, m_fwd),
                ("backward", t_bwd, m_bwd),
                ("optimizer", t_opt, m_opt),
            ):
                rows[k].append((t, m))

    batch = next_batch()
    with FlopCounterMode(display=False) as fc:
        with autocast():
            loss = module.model.training_loss(batch, generator=torch.Generator(device=dev).manual_seed(0))[0]
        loss.backward()
    opt.zero_grad(set_to_none=True)
    flops = int(fc.get_total_flops())

    phases = {
        k: {"time_ms": 1000 * statistics.median(t for t, _ in v), "peak_mem_mb": max(m for _, m in v)}
        for k, v in rows.items()
    }
    step_ms = sum(p["time_ms"] for p in phases.values())
    compute_s = (phases["forward"]["time_ms"] + phases["backward"]["time_ms"]) / 1000
    achieved = flops / compute_s / 1e12 if compute_s > 0 else 0.0
    result = {
        "benchmark": "train_step",
        "model": args.model,
        "size": args.size,
        "batch_size": batch_size,
        "frames_hw": [cfg.data.num_frames, cfg.data.height, cfg.data.width],
        "trainable": list(trainable),
        "trainable_params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in module.parameters()),
        "device": str(dev)
        + (
            f" ({torch.cuda.get_device_name(dev)})"
            if cuda
            else f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        ),
        "precision": precision,
        "gradient_checkpointing": args.grad_ckpt,
        "steps": args.steps,
        "warmup": args.warmup,
        "phases": phases,
        "step_ms": step_ms,
        "fwd_bwd_tflop": flops / 1e12,
        "achieved_tflops": achieved,
        "peak_tflops": args.peak_tflops,
        "mfu": achieved / args.peak_tflops if args.peak_tflops else None,
        "memory_note": "CUDA: max_memory_allocated per phase"
        if cuda
        else "CPU: process peak RSS (cumulative)",
        "torch": torch.__version__,
        "argv": sys.argv[1:] if argv is None else argv,
    }
    print(
        f"train step: model={args.model} size={args.size} batch={batch_size} "
        f"{result['frames_hw'][0]}x{result['frames_hw'][1]}x{result['frames_hw'][2]} {result['device']} "
        f"precision={precision} trainable={result['trainable_params']:,}/{result['total_params']:,} params"
    )
    print("| phase | time (ms, median) | peak memory (MB) |")
    print("|---|---:|---:|")
    for k, p in phases.items():
        print(f"| {k} | {p['time_ms']:.1f} | {p['peak_mem_mb']:.0f} |")
    print(f"| step | {step_ms:.1f} | |")
    mfu = f", {100 * result['mfu']:.1f}% of {args.peak_tflops} TFLOP/s peak" if args.peak_tflops else ""
    print(f"forward+backward: {flops / 1e12:.4f} TFLOP, achieved {achieved:.4f} TFLOP/s{mfu}")
    out = Path(args.out)
    atomic_write_json(out, result)
    print(f"wrote {out}")
    tmp.cleanup()
    return result


if __name__ == "__main__":
    main()
