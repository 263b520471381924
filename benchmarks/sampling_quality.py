"""Sampling quality against cost (issue 39): PSNR / SSIM against the ground truth and the sampled camera gap,
per solver × number of steps × guidance, with the network evaluations counted.

On the committed CPU camera model (``assets/cpu_camera_control/``, 32×48, 8 frames) and its 16 held-out clips
(``data=synthetic_heldout600``, rendered on first use, ~15 s), one video per clip is sampled from the clip's
first frame with its own cameras and one with another clip's (``vid3d.evaluation.sampled_gap``), with the
same seed for every setting and variant (the same initial noise: differences between settings are the
solver's, not the noise's). Per clip, over frames 1..F-1:

- PSNR (dB) and SSIM: ``vid3d.evaluation.image_metrics`` on uint8 frames, per frame, then the clip's mean;
- the camera gap: MSE with another clip's cameras / MSE with its own (ratio of means over clips; 1 means the
  samples ignore their cameras).

NFE is the number of network evaluations per video, **counted** (rows through the model's UNet divided by
the batch); with classifier-free guidance each denoiser call is one batched pass over twice the batch, so it
counts 2. 95% percentile-bootstrap CIs over the clips (``vid3d.evaluation.aggregate.bootstrap_ci``; the gap's
resamples clips and takes the ratio of the resampled means). ``Δ PSNR`` is the paired difference to the
reference (25-step Euler with the default guidance) with its paired bootstrap CI.

A setting "matches the reference" when its mean PSNR, SSIM and camera gap all lie inside the reference's 95%
CIs (issue 39's rule, two-sided: above the CI is a different result, here smoother frames, not a better one);
the cheapest matching setting per guidance mode is printed.

    nice .venv/bin/python -m benchmarks.sampling_quality        # the full grid: ~100 minutes of one idle core
    nice .venv/bin/python -m benchmarks.sampling_quality --steps 4 8 --solvers edm_euler dpmpp_2m

Writes ``benchmarks/results/sampling_quality.json`` (atomically) and a plot (``.png`` beside it).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big.safetensors"
STEPS = (4, 6, 8, 12, 16, 25, 50)
SOLVER_NAMES = ("edm_euler", "edm_heun", "ddim", "dpmpp_2m")
GUIDANCE = {"off": (1.0, 1.0), "on": (1.0, 3.0)}  # on: the default per-frame ramp 1 -> 3 (SVD)
REFERENCE = ("edm_euler", 25, "on")
COLORS = {"edm_euler": "tab:blue", "edm_heun": "tab:orange", "ddim": "tab:purple", "dpmpp_2m": "tab:green"}
N_BOOT = 2000


def held_out_clips(data: str = "synthetic_heldout600") -> list[dict[str, Any]]:
    """The data option's test clips (built under ``paths.data_dir`` if not there yet)."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from vid3d.config import CONFIG_DIR
    from vid3d.tasks.common import prepare_data

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[f"data={data}", "ckpt=unused"])
    prepare_data(cfg)
    ds = instantiate(cfg.data.test_dataset)
    return [ds[i] for i in range(len(ds))]


class NetworkCounter:
    """Counts the rows that go through ``model.unet_forward`` (the network), per video of the batch."""

    def __init__(self, model: Any) -> None:
        self.model, self.rows = model, 0
        self._forward = model.unet_forward

        def counted(sample, *args, **kwargs):
            self.rows += int(sample.shape[0])
            return self._forward(sample, *args, **kwargs)

        model.unet_forward = counted

    def close(self) -> None:
        del self.model.unet_forward  # the instance attribute: the class method again


def _ci(values: np.ndarray, seed: int = 0) -> list[float]:
    from vid3d.evaluation.aggregate import bootstrap_ci

    return list(bootstrap_ci(values, n_boot=N_BOOT, seed=seed))


def _ratio_ci(num: np.ndarray, den: np.ndarray, seed: int = 0) -> list[float]:
    """Percentile-bootstrap 95% CI of mean(num) / mean(den), clips resampled in pairs."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num.size, size=(N_BOOT, num.size))
    r = num[idx].mean(1) / den[idx].mean(1)
    return [float(x) for x in np.percentile(r, [2.5, 97.5])]


def per_clip_metrics(video: torch.Tensor, frames: torch.Tensor) -> dict[str, np.ndarray]:
    """{"psnr", "ssim"}: (B,) means over frames 1..F-1 of the per-frame values (uint8 frames)."""
    from vid3d.evaluation.image_metrics import psnr, ssim
    from vid3d.sampling.video_sampler import to_uint8

    pred, gt = to_uint8(video[:, 1:]), to_uint8(frames[:, 1:])  # (B, F-1, H, W, 3)
    b, f = pred.shape[:2]
    flat = (pred.reshape(b * f, *pred.shape[2:]), gt.reshape(b * f, *gt.shape[2:]))
    return {"psnr": psnr(*flat).reshape(b, f).mean(1), "ssim": ssim(*flat).reshape(b, f).mean(1)}


def run_setting(model, clips: dict[str, torch.Tensor], solver: str, steps: int, guidance: str, seed: int):
    """One setting: per-clip PSNR, SSIM, MSE own / another, the counted NFE per video and the seconds."""
    from vid3d.evaluation.sampled_gap import frame_errors, sample_variants
    from vid3d.sampling.samplers import SOLVERS
    from vid3d.sampling.video_sampler import VideoSampler

    g_min, g_max = GUIDANCE[guidance]
    sampler = VideoSampler(SOLVERS[solver], num_steps=steps, guidance_min=g_min, guidance_max=g_max)
    frames = clips["frames"]
    counter = NetworkCounter(model)
    t0 = time.perf_counter()
    try:
        videos = sample_variants(
            model, sampler, frames, clips["K_px"], clips["c2w"], ("own", "another"), seed
        )
    finally:
        counter.close()
    seconds = time.perf_counter() - t0
    m = per_clip_metrics(videos["own"], frames)
    return {
        "psnr": m["psnr"],
        "ssim": m["ssim"],
        "mse_own": frame_errors(videos["own"], frames).numpy(),
        "mse_another": frame_errors(videos["another"], frames).numpy(),
        "nfe": counter.rows / (2 * frames.shape[0]),  # two variants sampled
        "seconds_per_batch": seconds / 2,
    }


def summarize(raw: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    psnr, ssim, own, another = raw["psnr"], raw["ssim"], raw["mse_own"], raw["mse_another"]
    d = psnr - ref["psnr"]
    return {
        "nfe": raw["nfe"],
        "seconds_per_batch": raw["seconds_per_batch"],
        "psnr": float(psnr.mean()), "psnr_ci": _ci(psnr),
        "ssim": float(ssim.mean()), "ssim_ci": _ci(ssim),
        "camera_gap": float(another.mean() / own.mean()), "camera_gap_ci": _ratio_ci(another, own),
        "delta_psnr_vs_ref": float(d.mean()), "delta_psnr_vs_ref_ci": _ci(d),
        "per_clip": {k: raw[k].tolist() for k in ("psnr", "ssim", "mse_own", "mse_another")},
    }


METRICS = ("psnr", "ssim", "camera_gap")


def against_reference(row: dict[str, Any], ref: dict[str, Any]) -> dict[str, str]:
    """{metric: "in" | "above" | "below"}: where the row's mean lies against the reference's 95% CI."""
    out = {}
    for k in METRICS:
        lo, hi = ref[f"{k}_ci"]
        out[k] = "below" if row[k] < lo else "above" if row[k] > hi else "in"
    return out


def matches(row: dict[str, Any], ref: dict[str, Any]) -> bool:
    """Issue 39's rule, read two-sided: mean PSNR, SSIM and camera gap all inside the reference's 95% CIs. (On
    this model fewer steps give smoother frames, which PSNR/SSIM reward: "above" is a different result, not a
    better one, so it does not match.)"""
    return all(v == "in" for v in against_reference(row, ref).values())


def table(rows: dict[str, dict[str, Any]]) -> list[str]:
    head = (
        "| guidance | solver | steps | NFE | PSNR (dB) [95% CI] | Δ PSNR vs ref [95% CI] | SSIM [95% CI] | "
        "camera gap another/own [95% CI] | s / 16 videos | PSNR / SSIM / gap vs ref CI |"
    )
    out = [head, "|" + "---|" * 10]
    for r in rows.values():
        out.append(
            f"| {r['guidance']} | {r['solver']} | {r['steps']} | {r['nfe']:g} | {r['psnr']:.2f} "
            f"[{r['psnr_ci'][0]:.2f}, {r['psnr_ci'][1]:.2f}] | {r['delta_psnr_vs_ref']:+.2f} "
            f"[{r['delta_psnr_vs_ref_ci'][0]:+.2f}, {r['delta_psnr_vs_ref_ci'][1]:+.2f}] | {r['ssim']:.3f} "
            f"[{r['ssim_ci'][0]:.3f}, {r['ssim_ci'][1]:.3f}] | {r['camera_gap']:.3f} "
            f"[{r['camera_gap_ci'][0]:.3f}, {r['camera_gap_ci'][1]:.3f}] | {r['seconds_per_batch']:.1f} | "
            f"{' / '.join(r['vs_reference'].values())} |"
        )
    return out


def plot(rows: dict[str, dict[str, Any]], ref: dict[str, Any], path: Path) -> None:
    """PSNR and camera gap against NFE, one line per solver, one column per guidance mode (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vid3d.atomic import atomic_target

    modes = sorted({r["guidance"] for r in rows.values()})
    fig, axes = plt.subplots(2, len(modes), figsize=(6 * len(modes), 8), squeeze=False)
    for j, mode in enumerate(modes):
        for solver in SOLVER_NAMES:
            pts = sorted(
                ((r["nfe"], r) for r in rows.values() if r["guidance"] == mode and r["solver"] == solver),
                key=lambda p: p[0],
            )
            if not pts:
                continue
            nfe = [p[0] for p in pts]
            dashed = "--" if solver == "ddim" else "-"  # DDIM (eta 0) lies on Euler's points
            style = {"marker": "o", "capsize": 3, "label": solver, "linestyle": dashed,
                     "color": COLORS[solver]}
            for i, key in enumerate(("psnr", "camera_gap")):
                val = np.array([p[1][key] for p in pts])
                ci = np.array([p[1][f"{key}_ci"] for p in pts]).T
                axes[i, j].errorbar(nfe, val, yerr=[val - ci[0], ci[1] - val], **style)
        for i, (key, label) in enumerate((("psnr", "PSNR vs ground truth, frames 1..7 (dB)"),
                                          ("camera_gap", "camera gap: MSE another / own cameras"))):
            ax = axes[i, j]
            ax.axhspan(*ref[f"{key}_ci"], color="grey", alpha=0.2, label="25-step Euler, guidance on: 95% CI")
            ax.set_xscale("log")
            ticks = sorted({r["nfe"] for r in rows.values()})
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("network evaluations per video (NFE; CFG counts 2 per call)")
            ax.set_ylabel(label)
            ax.set_title(f"guidance {mode} ({GUIDANCE[mode][0]:g} → {GUIDANCE[mode][1]:g} over the frames)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("Sampling quality vs cost: CPU camera model, held-out clips (95% bootstrap CIs over clips)")
    fig.tight_layout()
    with atomic_target(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _parse_setting(text: str) -> tuple[str, int, str]:
    guidance, _, rest = text.partition("/")
    solver, _, steps = rest.partition("/")
    if guidance not in GUIDANCE or solver not in SOLVER_NAMES or not steps.isdigit() or int(steps) < 1:
        raise SystemExit(
            f"--settings {text!r}: expected GUIDANCE/SOLVER/STEPS with GUIDANCE in {list(GUIDANCE)}, "
            f"SOLVER in {list(SOLVER_NAMES)}, STEPS a positive integer"
        )
    return solver, int(steps), guidance


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", type=Path, default=ASSET)
    p.add_argument("--data", default="synthetic_heldout600", help="data option whose test clips are used")
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    p.add_argument("--solvers", nargs="+", default=list(SOLVER_NAMES), choices=SOLVER_NAMES)
    p.add_argument("--guidance", nargs="+", default=list(GUIDANCE), choices=list(GUIDANCE))
    p.add_argument("--settings", nargs="+", default=None, metavar="GUIDANCE/SOLVER/STEPS",
                   help="explicit settings (e.g. on/dpmpp_2m/8) instead of the grid of the options above")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sampling_quality.json")
    p.add_argument("--resume", action="store_true",
                   help="reuse the settings measured in OUT.partial.json (same checkpoint, data, seed)")
    a = p.parse_args(argv)
    from vid3d.atomic import atomic_write_json
    from vid3d.data.frames import as_unit_range
    from vid3d.evaluation.camera_gap import stack_clips
    from vid3d.models.checkpoint import load_model

    torch.set_num_threads(a.threads)
    model = load_model(a.ckpt).eval()
    clips = stack_clips(held_out_clips(a.data))
    clips["frames"] = as_unit_range(clips["frames"]).float()
    clips["K_px"], clips["c2w"] = clips["K_px"].float(), clips["c2w"].float()
    settings = [(s, n, g) for g in a.guidance for s in a.solvers for n in sorted(a.steps)]
    if a.settings:
        settings = [_parse_setting(x) for x in a.settings]
    if REFERENCE not in settings:
        settings.insert(0, REFERENCE)
    settings.sort(key=lambda x: x != REFERENCE)  # the reference first (every row's Δ needs it)
    # each measured setting is kept in OUT.partial.json as it finishes (a long grid can be stopped, resumed)
    partial = a.out.with_suffix(".partial.json")
    key_of = f"{a.ckpt.resolve()}|{a.data}|{a.seed}"
    done: dict[str, Any] = {}
    if a.resume and partial.is_file():
        saved = json.loads(partial.read_text())
        done = saved["settings"] if saved.get("key") == key_of else {}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    raw = {}
    for solver, steps, guidance in settings:
        name = f"{guidance}/{solver}/{steps}"
        if name in done:
            raw[(solver, steps, guidance)] = {
                k: (np.asarray(v) if isinstance(v, list) else v) for k, v in done[name].items()
            }
            continue
        raw[(solver, steps, guidance)] = run_setting(model, clips, solver, steps, guidance, a.seed)
        r = raw[(solver, steps, guidance)]
        done[name] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
        atomic_write_json(partial, {"key": key_of, "settings": done})
        print(f"  {guidance:>3} {solver:<10} {steps:>3} steps: NFE {r['nfe']:g}, "
              f"PSNR {r['psnr'].mean():.2f}, {r['seconds_per_batch']:.1f} s", flush=True)
    ref = summarize(raw[REFERENCE], raw[REFERENCE])
    rows = {}
    for (solver, steps, guidance), r in raw.items():
        row = {"solver": solver, "steps": steps, "guidance": guidance, **summarize(r, raw[REFERENCE])}
        row["vs_reference"] = against_reference(row, ref)
        row["matches_reference"] = matches(row, ref)
        rows[f"{guidance}/{solver}/{steps}"] = row
    rows = dict(sorted(rows.items(), key=lambda kv: (kv[1]["guidance"], kv[1]["solver"], kv[1]["steps"])))
    cheapest = {}
    for mode in sorted({g for _, _, g in settings}):
        ok = [r for r in rows.values() if r["guidance"] == mode and r["matches_reference"]]
        cheapest[mode] = min(ok, key=lambda r: (r["nfe"], -r["psnr"]), default=None)
    lines = table(rows)
    print(f"\n{len(clips['frames'])} clips, {tuple(clips['frames'].shape[1:])}; reference: 25-step Euler, "
          f"guidance on (PSNR {ref['psnr']:.2f} [{ref['psnr_ci'][0]:.2f}, {ref['psnr_ci'][1]:.2f}])")
    print("\n".join(lines))
    for mode, r in cheapest.items():
        what = f"{r['solver']} {r['steps']} steps, NFE {r['nfe']:g}" if r else "none"
        print(f"cheapest setting within the reference's CIs, guidance {mode}: {what}")
    result = {
        "what": "sampling quality vs cost (benchmarks/sampling_quality.py)",
        "checkpoint": str(a.ckpt.relative_to(ROOT) if a.ckpt.is_relative_to(ROOT) else a.ckpt),
        "data": a.data,
        "clips": int(clips["frames"].shape[0]),
        "frames_shape": list(clips["frames"].shape[1:]),
        "seed": a.seed,
        "guidance_modes": {k: list(v) for k, v in GUIDANCE.items()},
        "reference": dict(zip(("solver", "steps", "guidance"), REFERENCE, strict=True)),
        "rule": "mean PSNR, SSIM and camera gap all inside the reference's 95% bootstrap CIs (two-sided)",
        "cheapest_matching": {m: (None if r is None else {k: r[k] for k in ("solver", "steps", "nfe")})
                              for m, r in cheapest.items()},
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": a.threads},
        "rows": rows,
        "table_md": lines,
    }
    for v in rows.values():  # JSON has no inf/nan literals
        for k, x in list(v.items()):
            if isinstance(x, float) and not math.isfinite(x):
                v[k] = None
    a.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out, result)
    png = a.out.with_suffix(".png")
    plot(rows, ref, png)
    print(f"wrote {a.out} and {png}")
    return result


if __name__ == "__main__":
    main()
