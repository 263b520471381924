"""ReconBenchmark (``python eval.py benchmark=recon overlap=small ckpt=...``): Gaussians from generated views.

For each context-view pair of the overlap bucket the model generates the views between the two context
views (interpolation mode) at some of the pair's non-target cameras, 3D Gaussians are fitted to them plus
the context views, and the reconstruction is scored at the held-out target cameras (PSNR / SSIM / LPIPS),
beside two reference reconstructions: from the two context views alone, and from every ground-truth
in-between view (``vid3d.evaluation.recon_methods``). Same engine, records, resume, shards and tables as the
sparse-view benchmark (``sparse_benchmark.evaluate_pairs``).
"""

from __future__ import annotations

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from vid3d.evaluation.recon_methods import (
    ReconSettings,
    all_gt_method,
    cached_reference,
    context_only_method,
    generated_method,
)
from vid3d.tasks.sparse_benchmark import evaluate_pairs, run_buckets

INIT_NOTES = {
    "random": "Gaussians at random in the fitted views' frustums between near and far",
    "triangulated": "Gaussians at points triangulated from epipolar (plane-sweep ZNCC) matches between the "
    "two context views with their known cameras, topped up at random in the frustums to num_gaussians",
    "dust3r": "Gaussians at DUSt3R's pointmap of the two context views (confidence > dust3r_min_conf), "
    "scaled to the known cameras through the second view's rays, topped up at random in the frustums",
}


def preset_departures(cfg: DictConfig) -> list[str]:
    """What the composed run changes from its reconstruction preset's own settings (command-line overrides
    of the size, the overlap estimator, the generated views or the initialisation), each as a sentence."""
    p, out = cfg.protocol, []
    checks = (
        ("size", p.get("size"), [int(cfg.overlap.height), int(cfg.overlap.width)], "height x width"),
        ("overlap_estimator", p.get("overlap_estimator"), cfg.overlap.estimator, "overlap.estimator"),
        ("generated_views", p.get("generated_views"), int(cfg.benchmark.generated_views),
         "benchmark.generated_views"),
        ("init", p.get("init"), cfg.benchmark.get("init", "random"), "benchmark.init"),
    )
    for name, want, got, key in checks:
        if want is not None and (list(want) if name == "size" else want) != got:
            out.append(f"{key}: {got} where protocol.{name} is {want}")
    return out

VIEWS = (
    "two context views [i, j] and held-out targets strictly between, centre-cropped and resized to {h}x{w}; "
    "3D Gaussians fitted to the context views plus the views named by the row, rendered at the target "
    "cameras (poses relative to the first context view); the targets are never fitted on"
)
REFERENCE_ROWS = {
    "context_only + 3dgs": "Gaussians fitted to the two context views alone",
    "all_gt + 3dgs": "Gaussians fitted to the context views and every non-target ground-truth frame between "
    "them (the ceiling)",
}


class ReconBenchmark:
    """``conf/benchmark/recon.yaml``: the reconstruction settings (``ReconSettings``) are its keys."""

    name = "recon"

    def __init__(self, **settings) -> None:
        self.settings = ReconSettings(**settings)

    def methods(self, cfg: DictConfig, model) -> dict:
        s = self.settings
        methods = {}
        if model is not None:
            sampler = instantiate(cfg.sampler)
            methods[f"{model.name} + 3dgs"] = generated_method(_generator(model, sampler, int(cfg.seed)), s)
        if cfg.eval.reference_rows:  # kept per pair across runs (benchmark.reference_cache)
            methods["context_only + 3dgs"] = cached_reference(context_only_method(s), "context_only", s)
            methods["all_gt + 3dgs"] = cached_reference(all_gt_method(s), "all_gt", s)
        return methods

    def run(self, cfg: DictConfig) -> dict:
        """One overlap bucket, or each of the preset's ``protocol.buckets`` into its own folder and table."""
        preset = cfg.get("protocol")
        ours = preset is not None and preset.get("benchmark") == "reconstruction"
        buckets = preset.get("buckets") if ours else None
        if buckets:
            return run_buckets(cfg, list(buckets), self._run_one)
        return self._run_one(cfg)

    def _run_one(self, cfg: DictConfig) -> dict:
        from dataclasses import asdict

        extra = {"reconstruction": {**asdict(self.settings), "renderer_note": (
            "torch: vid3d's PyTorch renderer, fixed number of Gaussians (no densification); gsplat: CUDA "
            "rasteriser with gsplat's DefaultStrategy"), "init_note": INIT_NOTES[self.settings.init]}}
        preset = cfg.get("protocol")
        if preset is not None and preset.get("benchmark") == "reconstruction":
            extra["differs_from_preset"] = preset_departures(cfg)
        # every pair must leave room for the generated views (the targets are never fitted on)
        return evaluate_pairs(cfg, self.methods, "reconstruction", VIEWS, REFERENCE_ROWS,
                              extra_protocol=extra, with_path=True, wandb_name="recon",
                              min_free_views=int(self.settings.generated_views))


def _generator(model, sampler, seed_offset: int):
    """The model's interpolation video along given cameras (vid3d.sampling.modes.InterpolateMode)."""
    from vid3d.sampling.io import SampleJob
    from vid3d.sampling.modes import InterpolateMode

    mode = InterpolateMode(poses="path")

    def generate(first, last, K_px, c2w_rel, item_id) -> np.ndarray:
        job = SampleJob(item_id, first, K_px, c2w_rel, image_end=last)
        gen = torch.Generator().manual_seed(seed_offset + int(torch.initial_seed() % 1_000_003))
        return mode.run(model, sampler, job, generator=gen)

    return generate
