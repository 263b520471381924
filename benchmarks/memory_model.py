"""The paper's memory budget per GPU, before booking GPUs: `python -m benchmarks.memory_model`.

For stage 1 (320x512, 25 frames) and stage 2 (576x1024, 25 frames) of the seed's recipe, batch 1 and 2
per GPU, 8 GPUs under DeepSpeed ZeRO-2 with fp16 (``trainer=deepspeed_zero2``), with and without gradient
checkpointing, it adds up:

- **weights**: every parameter in fp16 (DeepSpeed's fp16 mode casts the model): SVD-XT's UNet with the
  Plücker encoder and epipolar attention (``model=epipolar``), the temporal VAE and the ViT-H/14 image
  encoder;
- **trainable-set states** (camera encoder + epipolar + temporal, the freeze policy): fp32 master weights
  and Adam's two moments partitioned over the GPUs (ZeRO-2), fp16 gradients partitioned too, plus
  DeepSpeed's reduce and all-gather buckets (``reduce_bucket_size``/``allgather_bucket_size`` of the
  trainer config, fp16);
- **the epipolar kernels' working set**: one query chunk at a time, ``max_chunk_bytes`` (512 MiB on a GPU);
- **activations kept for backward**: *counted, not guessed*: one forward of the real modules runs under
  ``FakeTensorMode`` (shapes only, no memory, seconds on a CPU) with fp16 weights, and every tensor autograd
  saves is recorded once per storage. With gradient checkpointing the count is what stays outside the
  checkpointed blocks plus their inputs, plus the largest block's own activations (recomputed one block at
  a time in backward).

Not counted: the VAE encoding of the clip and CLIP (no grad, freed before the UNet runs), the allocator's
fragmentation and CUDA/NCCL workspaces (budget ~2-4 GB), the loss and its gradient (one latent-sized
tensor). The table shows what ``make gpu-check`` measured beside it when
``benchmarks/results/gpu_check/gpu_check.json`` exists (one GPU, no ZeRO partitioning, Lightning 16-mixed:
fp32 weights), else "not measured yet".

    python -m benchmarks.memory_model [--gpus 8] [--gpu-gb 80] [--out benchmarks/results/memory_model.json]
    python -m benchmarks.memory_model --dry     # the tiny backbone's shapes: seconds (CI)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vid3d.atomic import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent

GiB = 2**30
STAGES = {"stage1": (320, 512, 25), "stage2": (576, 1024, 25)}
DRY_STAGES = {"stage1": (32, 48, 4), "stage2": (64, 96, 4)}
VAE_FACTOR = 8
ATTENTION_CHUNK_BYTES = 512 * 2**20  # the epipolar kernels' per-chunk working set on a GPU (their default)


class SavedCounter:
    """A ``saved_tensors_hooks`` pack hook summing the bytes of each distinct storage autograd saves,
    except the storages in ``exclude`` (the parameters: counted as weights)."""

    def __init__(self, exclude: set[int] | None = None) -> None:
        self.storages: dict[int, int] = {}
        self.exclude = exclude or set()

    def pack(self, t):
        s = t.untyped_storage()
        if s._cdata not in self.exclude:
            self.storages[s._cdata] = max(self.storages.get(s._cdata, 0), s.nbytes())
        return t

    def add(self, args) -> None:
        """Count the tensors among ``args`` (inputs a checkpoint keeps for its recomputation)."""
        import torch

        for a in args:
            if isinstance(a, torch.Tensor):
                self.pack(a)

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())

    def hooks(self):
        import torch

        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)


def build(dry: bool):
    """(model, counts): a CameraVideoDiffusion (UNet + Plücker encoder + epipolar attention) whose backbone
    holds SVD-XT's UNet (or the tiny one), frozen per the paper's policy; counts of parameters by part."""
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from benchmarks.gpu_check import CLIP_VIT_H14
    from vid3d.models.backbone import Backbone, build_tiny_backbone
    from vid3d.models.freeze import apply_freeze_policy
    from vid3d.models.vae import TemporalVAEAdapter, tiny_kl_autoencoder
    from vid3d.models.video_diffusion import CameraVideoDiffusion

    if dry:
        backbone = build_tiny_backbone(vae=tiny_kl_autoencoder, seed=0)
        vae_clip = sum(p.numel() for m in (backbone.vae, backbone.image_encoder) for p in m.parameters())
    else:
        unet = UNetSpatioTemporalConditionModel(num_frames=25)  # the class defaults are SVD's configuration
        vae = TemporalVAEAdapter(AutoencoderKLTemporalDecoder())
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VIT_H14))
        vae_clip = sum(p.numel() for m in (vae, clip) for p in m.parameters())
        backbone = Backbone(unet, vae, clip)
    # the memory-linear kernels at every grid (the dense-mask fast path compares camera values). What they
    # keep for backward (q, k, v) does not depend on the chunking, so the count runs them in one chunk per
    # frame (fake tensors: no memory) and the budget adds the GPU chunk working set, ATTENTION_CHUNK_BYTES
    model = CameraVideoDiffusion(
        backbone,
        camera_encoder="plucker",
        attention="epipolar",
        attention_kwargs={
            "heads": 8 if not dry else 2,
            "dense_mask_max_elements": 0,
            "max_chunk_bytes": 2**50,
            # "blocked": runs on fake tensors (the grouped kernel's band plan needs real values); it keeps
            # q, k, v for backward, the grouped kernel also its output and log-sum-exp (+T (C + 4 H) bytes)
            "method": "blocked",
        },
    )
    groups = apply_freeze_policy(model, ["camera_encoder", "epipolar", "temporal"])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters()) - vae_clip
    counts = {
        "unet_and_camera_params": total,
        "vae_and_clip_params": vae_clip,
        "trainable_params": trainable,
        "trainable_groups": {g: len(v) for g, v in groups.items()},
    }
    return model, counts


def activation_bytes(model, size: tuple[int, int, int], batch: int, checkpointing: bool, dry: bool) -> int:
    """Bytes autograd keeps for backward in one training forward of the UNet (fp16 weights), counted on
    fake tensors; with ``checkpointing`` the peak of the checkpointed scheme (see the module docstring)."""
    import torch

    H, W, F = size
    h, w = H // (VAE_FACTOR if not dry else 4), W // (VAE_FACTOR if not dry else 4)
    import vid3d.models.attention.epipolar as epipolar_kernels

    unet = model.backbone.unet
    c = unet.config.in_channels // 2
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    outside = SavedCounter(params)
    largest_block = [0]

    def checkpointed(module, *args):
        """Stand-in for torch.utils.checkpoint in the count: the block's inputs stay, its own activations
        exist only while it is recomputed (the largest one is the peak's share)."""
        outside.add(args)
        inner = SavedCounter(params)
        with inner.hooks():
            out = module(*args)
        largest_block[0] = max(largest_block[0], inner.bytes)
        return out

    real_checkpoint = epipolar_kernels.checkpoint

    def attention_checkpoint(fn, *args, **kw):
        """The epipolar kernels checkpoint every query chunk: q, k, v stay (counted), a chunk's scores are
        recomputed in backward (bounded by the kernel's chunk budget, not counted)."""
        outside.add(args)
        return real_checkpoint(fn, *args, **kw)

    if checkpointing:
        unet.enable_gradient_checkpointing(checkpointed)
    else:
        unet.disable_gradient_checkpointing()
    model.attention_adapter.forget_cache()  # its camera cache compares values: not on fake tensors
    K = torch.tensor([[0.9 * W, 0, W / 2], [0, 0.9 * W, H / 2], [0, 0, 1.0]]).expand(batch, F, 3, 3)
    c2w = torch.eye(4).repeat(batch, F, 1, 1)
    c2w[..., 0, 3] = torch.linspace(0, 1, F)  # a sideways walk: every pair has a baseline
    cams = model.prepare_cameras(K, c2w, (h, w), image_hw=(H, W))
    cond = {
        "encoder_hidden_states": torch.randn(batch, 1, unet.config.cross_attention_dim, dtype=torch.float16),
        "added_time_ids": torch.randn(batch, 3, dtype=torch.float16),
        **cams,
    }
    sample = torch.randn(batch, F, 2 * c, h, w, dtype=torch.float16)
    model.train()
    epipolar_kernels.checkpoint = attention_checkpoint
    try:
        with outside.hooks():
            model.unet_forward(sample, torch.ones(batch, dtype=torch.float16), cond)
    finally:
        epipolar_kernels.checkpoint = real_checkpoint
    return outside.bytes + largest_block[0]


def budget(counts: dict, act: int, gpus: int, buckets: tuple[int, int]) -> dict:
    """GiB per GPU under ZeRO-2 + fp16 (see the module docstring)."""
    P, Pt = counts["unet_and_camera_params"] + counts["vae_and_clip_params"], counts["trainable_params"]
    parts = {
        "weights_fp16": 2 * P,
        "master_fp32_partitioned": 4 * Pt / gpus,
        "adam_partitioned": 8 * Pt / gpus,
        "grads_fp16_partitioned": 2 * Pt / gpus,
        "deepspeed_buckets_fp16": 2 * (buckets[0] + buckets[1]),
        "activations": act,
        "attention_chunk": ATTENTION_CHUNK_BYTES,
    }
    out = {k: v / GiB for k, v in parts.items()}
    out["total"] = sum(out.values())
    return out


def latest_gpu_check() -> Path | None:
    """The newest non-dry GPU check report: ``benchmarks/results/gpu-<date>/gpu_check.json`` (written by
    benchmarks/gpu/run.sh) or ``benchmarks/results/gpu_check/gpu_check.json`` (make gpu-check)."""
    res = ROOT / "benchmarks" / "results"
    candidates = [*res.glob("gpu-*/gpu_check.json"), res / "gpu_check" / "gpu_check.json"]
    found = [p for p in candidates if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def measured(path: Path | None = None) -> dict:
    """{(stage, batch, gradient checkpointing): peak GiB} of the GPU check's 16-mixed training parts, when
    it has run (its ``results``: ``frames_hw`` [F, H, W], ``batch``, ``precision``, ``grad_ckpt``,
    ``peak_mem_mb``). ``path``: the report (default ``latest_gpu_check()``)."""
    path = path or latest_gpu_check()
    if path is None or not path.is_file():
        return {}
    report = json.loads(path.read_text())
    if report.get("dry"):
        return {}
    by_size = {(H, W, F): stage for stage, (H, W, F) in STAGES.items()}
    found = {}
    for r in report.get("results", []):
        if r.get("status") != "ok" or r.get("precision") != "16-mixed" or "peak_mem_mb" not in r:
            continue
        F, H, W = r["frames_hw"]
        stage = by_size.get((H, W, F))
        if stage is not None:
            found[(stage, int(r["batch"]), bool(r["grad_ckpt"]))] = r["peak_mem_mb"] / 1024
    return found


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--gpu-gb", type=float, default=80.0, help="memory per GPU to compare with (GiB)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dry", action="store_true", help="the tiny backbone at tiny shapes (CPU, seconds)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "memory_model.json")
    a = ap.parse_args(argv)

    import torch
    from omegaconf import OmegaConf
    from torch._subclasses.fake_tensor import FakeTensorMode

    strategy = OmegaConf.load(ROOT / "conf" / "trainer" / "deepspeed_zero2.yaml").strategy
    buckets = (int(strategy.reduce_bucket_size), int(strategy.allgather_bucket_size))
    torch.manual_seed(0)
    rows = []
    with FakeTensorMode(allow_non_fake_inputs=True):
        torch.set_default_dtype(torch.float16)  # DeepSpeed's fp16 mode: the whole model in half precision
        try:
            model, counts = build(a.dry)
        finally:
            torch.set_default_dtype(torch.float32)
        for stage, size in (DRY_STAGES if a.dry else STAGES).items():
            for batch in a.batches:
                for ckpt in (False, True):
                    act = activation_bytes(model, size, batch, ckpt, a.dry)
                    b = budget(counts, act, a.gpus, buckets)
                    rows.append(
                        {
                            "stage": stage,
                            "size": list(size),
                            "batch": batch,
                            "gradient_checkpointing": ckpt,
                            **{k: round(v, 6) for k, v in b.items()},
                            "fits": b["total"] <= a.gpu_gb,
                        }
                    )
    found = measured()
    for r in rows:
        r["measured_gpu_check_gib"] = found.get((r["stage"], r["batch"], r["gradient_checkpointing"]))
    result = {
        "gpus": a.gpus,
        "gpu_gb": a.gpu_gb,
        "dry": a.dry,
        "zero_stage": 2,
        "precision": "fp16",
        "buckets_elements": buckets,
        **counts,
        "rows": rows,
    }
    atomic_write_json(a.out, result, indent=1)
    print(
        f"parameters: UNet + camera modules {counts['unet_and_camera_params'] / 1e6:.1f} M, VAE + CLIP "
        f"{counts['vae_and_clip_params'] / 1e6:.1f} M, trainable {counts['trainable_params'] / 1e6:.1f} M; "
        f"ZeRO-2 over {a.gpus} GPUs, fp16" + (" (--dry: tiny shapes)" if a.dry else "")
    )
    head = [
        "stage",
        "H x W x F",
        "batch",
        "grad ckpt",
        "weights",
        "optim+grads",
        "buckets+attn",
        "activations",
        "total GiB",
        f"fits {a.gpu_gb:g} GiB",
        "measured (gpu-check)",
    ]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        optim = r["master_fp32_partitioned"] + r["adam_partitioned"] + r["grads_fp16_partitioned"]
        meas = r["measured_gpu_check_gib"]
        print(
            "| "
            + " | ".join(
                [
                    r["stage"],
                    "x".join(map(str, r["size"])),
                    str(r["batch"]),
                    "yes" if r["gradient_checkpointing"] else "no",
                    f"{r['weights_fp16']:.2f}",
                    f"{optim:.2f}",
                    f"{r['deepspeed_buckets_fp16'] + r['attention_chunk']:.2f}",
                    f"{r['activations']:.2f}",
                    f"{r['total']:.2f}",
                    "yes" if r["fits"] else "NO",
                    f"{meas:.1f}" if meas is not None else "not measured yet",
                ]
            )
            + " |"
        )
    print(f"written to {a.out}")
    return result


if __name__ == "__main__":
    main()
