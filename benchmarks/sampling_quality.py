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
    nice .venv/bin/python -m benchmarks.sampling_quality --model toy --steps 4 8 12 25

``--model toy``: the same study on a second model, the positive-control toy
(``vid3d.evaluation.positive_control``: 32×48, 4 frames, clips whose motion only the camera explains), trained
by ``train_positive_control`` with its fast recipe (``TOY_RECIPE``: ln σ ~ N(1.6, 0.3²), 2 px per scene
unit, 200 Adam steps, its fixed seeds; ~2-5 CPU minutes) or loaded from the safetensors file an earlier run
wrote (``--cache-dir``, default ``benchmarks/results/``, named by a hash of the recipe, not of the code:
after a change to ``toy_model`` or the training loop pass ``--retrain``, which overwrites it), and sampled
on ``--toy-clips`` (32) toy clips drawn from ``TOY_CLIP_SEED`` (training draws its clips from seed 0). It is
the same ``CameraVideoDiffusion`` class as the camera model, sampled by the same ``VideoSampler``, so the
network count is the same.

Writes ``benchmarks/results/sampling_quality.json`` (``sampling_quality_toy.json`` for the toy; atomically)
and a plot (``.png`` beside it).
"""

from __future__ import annotations

import argparse
import hashlib
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
MODELS = ("camera", "toy")
# positive_control's fast recipe (its module docstring): the toy_model and train_positive_control arguments
TOY_RECIPE = {"encoder": "plucker", "pixel_factor": 2, "p_mean": 1.6, "p_std": 0.3, "high_fraction": 0.0,
              "pixels_per_unit": 2.0, "steps": 200, "lr": 1e-3, "batch": 4}
TOY_CLIP_SEED = 39_000  # the toy clips sampled here; train_positive_control draws its clips from seed 0


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


def camera_model_and_clips(ckpt: Path, data: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """The checkpoint's model (eval mode) and the data option's test clips as one float batch."""
    from vid3d.data.frames import as_unit_range
    from vid3d.evaluation.camera_gap import stack_clips
    from vid3d.models.checkpoint import load_model

    model = load_model(ckpt).eval()
    clips = stack_clips(held_out_clips(data))
    clips["frames"] = as_unit_range(clips["frames"]).float()
    clips["K_px"], clips["c2w"] = clips["K_px"].float(), clips["c2w"].float()
    return model, clips


def toy_cache_path(cache_dir: Path, recipe: dict[str, Any]) -> Path:
    """Where the toy trained by ``recipe`` is kept: a name from the recipe's sha256 (sorted-key JSON)."""
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / f"positive_control_toy_{key}.safetensors"


def trained_toy(recipe: dict[str, Any], cache_dir: Path, retrain: bool = False) -> tuple[Any, dict[str, Any]]:
    """The positive-control toy trained by ``recipe`` (``TOY_RECIPE``'s keys), in eval mode, and a record
    {"cache", "trained_now", "train_seconds", "train_rows"} (``train_rows``: positive_control's camera gap on
    its 8 held-out clips at step 0 and at the end).

    Loads the cache file when it exists (its stored recipe must be ``recipe``; every weight must load), else
    trains with ``positive_control.train_positive_control`` (its fixed seeds) and writes the file atomically.
    A cache file that cannot be read or does not fit is one line (SystemExit) naming it."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from vid3d.atomic import atomic_target
    from vid3d.evaluation.positive_control import toy_model, train_positive_control

    r = recipe
    model = toy_model(r["encoder"], r["pixel_factor"], r["p_mean"], r["p_std"], r["high_fraction"])
    path = toy_cache_path(cache_dir, recipe)
    if path.exists() and not path.is_file():
        raise SystemExit(f"{path}: the toy cache is not a regular file; remove it")
    if path.exists() and not retrain:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
            stored = json.loads(meta.get("recipe", "null"))
            if stored != recipe:
                raise ValueError(f"its recipe {stored} is not {recipe}")
            model.load_state_dict(state, strict=True)
            rows, seconds = json.loads(meta["train_rows"]), float(meta["train_seconds"])
        except Exception as e:  # safetensors' own errors, a bad header, missing or unexpected weights
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SystemExit(f"{path}: not a usable toy cache ({msg}); delete it or pass --retrain") from None
        return model.eval(), {"cache": str(path), "trained_now": False, "train_seconds": seconds,
                              "train_rows": rows}
    t0 = time.perf_counter()
    rows, _ = train_positive_control(
        model, r["steps"], max(r["steps"], 1), r["lr"], r["batch"], r["pixels_per_unit"]
    )
    seconds = round(time.perf_counter() - t0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    meta = {"recipe": json.dumps(recipe, sort_keys=True), "train_rows": json.dumps(rows),
            "train_seconds": str(seconds)}
    with atomic_target(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    record = {"cache": str(path), "trained_now": True, "train_seconds": seconds, "train_rows": rows}
    return model.eval(), record


def toy_clips(n: int, pixels_per_unit: float, seed: int = TOY_CLIP_SEED) -> dict[str, torch.Tensor]:
    """``n`` positive-control clips drawn in order from ``np.random.default_rng(seed)``, as one batch
    {"frames" (n, 4, 3, 32, 48) in [-1, 1], "K_px" (n, 4, 3, 3), "c2w" (n, 4, 4, 4)}."""
    from vid3d.evaluation.camera_gap import stack_clips
    from vid3d.evaluation.positive_control import toy_clip

    rng = np.random.default_rng(seed)
    return stack_clips([toy_clip(rng, pixels_per_unit) for _ in range(n)])


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


def table(rows: dict[str, dict[str, Any]], n_clips: int = 16) -> list[str]:
    """The markdown table (one row per setting); ``n_clips``: the videos per batch the seconds are for."""
    head = (
        "| guidance | solver | steps | NFE | PSNR (dB) [95% CI] | Δ PSNR vs ref [95% CI] | SSIM [95% CI] | "
        f"camera gap another/own [95% CI] | s / {n_clips} videos | PSNR / SSIM / gap vs ref CI |"
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


def plot(
    rows: dict[str, dict[str, Any]],
    ref: dict[str, Any],
    path: Path,
    title: str = "CPU camera model, held-out clips",
    frames: int = 8,
) -> None:
    """PSNR and camera gap against NFE, one line per solver, one column per guidance mode (PNG); ``title``
    names the model and clips, ``frames`` the clips' frame count (PSNR over frames 1..frames-1)."""
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
        for i, (key, label) in enumerate((("psnr", f"PSNR vs ground truth, frames 1..{frames - 1} (dB)"),
                                          ("camera_gap", "camera gap: MSE another / own cameras"))):
            ax = axes[i, j]
            ax.axhspan(*ref[f"{key}_ci"], color="grey", alpha=0.2, label="25-step Euler, guidance on: 95% CI")
            ax.set_xscale("log")
            nfe = [r["nfe"] for r in rows.values() if r["guidance"] == mode]
            ticks = [2**k for k in range(int(math.log2(min(nfe))), int(math.ceil(math.log2(max(nfe)))) + 1)]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])  # powers of 2: every NFE's label would overlap
            ax.minorticks_off()
            ax.set_xlabel("network evaluations per video (NFE; CFG counts 2 per call)")
            ax.set_ylabel(label)
            ax.set_title(f"guidance {mode} ({GUIDANCE[mode][0]:g} → {GUIDANCE[mode][1]:g} over the frames)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"Sampling quality vs cost: {title}\n95% bootstrap CIs over clips")  # fits one column too
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



def measure(
    model: Any,
    clips: dict[str, torch.Tensor],
    settings: Sequence[tuple[str, int, str]],
    seed: int,
    partial: Path,
    key_of: str,
    resume: bool = False,
) -> dict[tuple[str, int, str], dict[str, Any]]:
    """{(solver, steps, guidance): ``run_setting``'s record} for every setting, the reference first. Each one
    is kept in ``partial`` as it finishes; ``resume`` reuses those stored under the same ``key_of``."""
    from vid3d.atomic import atomic_write_json

    settings = list(settings)
    if REFERENCE not in settings:
        settings.insert(0, REFERENCE)
    settings.sort(key=lambda x: x != REFERENCE)  # the reference first (every row's Δ needs it)
    done: dict[str, Any] = {}
    if resume and partial.is_file():
        saved = json.loads(partial.read_text())
        done = saved["settings"] if saved.get("key") == key_of else {}
    partial.parent.mkdir(parents=True, exist_ok=True)
    raw = {}
    for solver, steps, guidance in settings:
        name = f"{guidance}/{solver}/{steps}"
        if name in done:
            raw[(solver, steps, guidance)] = {
                k: (np.asarray(v) if isinstance(v, list) else v) for k, v in done[name].items()
            }
            continue
        raw[(solver, steps, guidance)] = run_setting(model, clips, solver, steps, guidance, seed)
        r = raw[(solver, steps, guidance)]
        done[name] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
        atomic_write_json(partial, {"key": key_of, "settings": done})
        print(f"  {guidance:>3} {solver:<10} {steps:>3} steps: NFE {r['nfe']:g}, "
              f"PSNR {r['psnr'].mean():.2f}, {r['seconds_per_batch']:.1f} s", flush=True)
    return raw


def report(raw: dict[tuple[str, int, str], dict[str, Any]]) -> tuple[dict, dict, dict]:
    """(rows {"guidance/solver/steps": summary + vs_reference + matches_reference}, the reference's summary,
    {guidance mode: the cheapest matching row or None}) from ``measure``'s records."""
    ref = summarize(raw[REFERENCE], raw[REFERENCE])
    rows = {}
    for (solver, steps, guidance), r in raw.items():
        row = {"solver": solver, "steps": steps, "guidance": guidance, **summarize(r, raw[REFERENCE])}
        row["vs_reference"] = against_reference(row, ref)
        row["matches_reference"] = matches(row, ref)
        rows[f"{guidance}/{solver}/{steps}"] = row
    rows = dict(sorted(rows.items(), key=lambda kv: (kv[1]["guidance"], kv[1]["solver"], kv[1]["steps"])))
    cheapest = {}
    for mode in sorted({g for _, _, g in raw}):
        ok = [r for r in rows.values() if r["guidance"] == mode and r["matches_reference"]]
        cheapest[mode] = min(ok, key=lambda r: (r["nfe"], -r["psnr"]), default=None)
    return rows, ref, cheapest


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=MODELS, default="camera",
                   help="camera: --ckpt on --data's test clips; toy: the positive-control toy (docstring)")
    p.add_argument("--ckpt", type=Path, default=None, help=f"--model camera only (default {ASSET.name})")
    p.add_argument("--data", default=None, help="--model camera only: data option whose test clips are used "
                   "(default synthetic_heldout600)")
    p.add_argument("--toy-clips", type=int, default=32, help="--model toy: clips sampled (>= 2)")
    p.add_argument("--toy-train-steps", type=int, default=TOY_RECIPE["steps"],
                   help="--model toy: Adam steps of the fast recipe (>= 0)")
    p.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / "results",
                   help="--model toy: where the trained toy is kept (safetensors, named by the recipe)")
    p.add_argument("--retrain", action="store_true", help="--model toy: train again, overwriting the cache")
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    p.add_argument("--solvers", nargs="+", default=list(SOLVER_NAMES), choices=SOLVER_NAMES)
    p.add_argument("--guidance", nargs="+", default=list(GUIDANCE), choices=list(GUIDANCE))
    p.add_argument("--settings", nargs="+", default=None, metavar="GUIDANCE/SOLVER/STEPS",
                   help="explicit settings (e.g. on/dpmpp_2m/8) instead of the grid of the options above")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None,
                   help="default benchmarks/results/sampling_quality.json (_toy.json for --model toy)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the settings measured in OUT.partial.json (same model, clips, seed)")
    a = p.parse_args(argv)
    if a.model == "toy" and (a.ckpt is not None or a.data is not None):
        p.error("--ckpt and --data choose the camera model's checkpoint and clips; --model toy takes neither")
    if a.model == "toy" and (a.toy_clips < 2 or a.toy_train_steps < 0):
        p.error(f"--toy-clips must be >= 2 and --toy-train-steps >= 0, got {a.toy_clips} and "
                f"{a.toy_train_steps}")
    if a.steps and min(a.steps) < 1:
        p.error(f"--steps must be positive integers, got {a.steps}")
    from vid3d.atomic import atomic_write_json

    torch.set_num_threads(a.threads)
    results = ROOT / "benchmarks" / "results"
    if a.model == "camera":
        ckpt, data = a.ckpt or ASSET, a.data or "synthetic_heldout600"
        out = a.out or results / "sampling_quality.json"
        model, clips = camera_model_and_clips(ckpt, data)
        key_of = f"{ckpt.resolve()}|{data}|{a.seed}"
        source: dict[str, Any] = {
            "model": "camera",
            "checkpoint": str(ckpt.relative_to(ROOT) if ckpt.resolve().is_relative_to(ROOT) else ckpt),
            "data": data,
        }
        title = f"CPU camera model, {len(clips['frames'])} held-out clips"
    else:
        out = a.out or results / "sampling_quality_toy.json"
        recipe = {**TOY_RECIPE, "steps": a.toy_train_steps}
        model, trained = trained_toy(recipe, a.cache_dir, a.retrain)
        end = trained["train_rows"][-1]
        print(f"toy ({'trained now' if trained['trained_now'] else 'cached'}: {trained['cache']}): "
              f"{recipe['steps']} steps, {trained['train_seconds']:g} s; denoiser camera gap on "
              f"positive_control's 8 clips at step {end['step']}: σ 1 {end['camera_gap@1']:.3f}, "
              f"σ 5 {end['camera_gap@5']:.3f}",
              flush=True)
        clips = toy_clips(a.toy_clips, recipe["pixels_per_unit"])
        key_of = f"toy|{Path(trained['cache']).name}|{a.toy_clips}|{TOY_CLIP_SEED}|{a.seed}"
        source = {"model": "toy", "recipe": recipe, "clip_seed": TOY_CLIP_SEED, **trained}
        title = f"positive-control toy ({recipe['steps']} steps, fast recipe), {a.toy_clips} toy clips"
    settings = [(s, n, g) for g in a.guidance for s in a.solvers for n in sorted(a.steps)]
    if a.settings:
        settings = [_parse_setting(x) for x in a.settings]
    raw = measure(model, clips, settings, a.seed, out.with_suffix(".partial.json"), key_of, a.resume)
    rows, ref, cheapest = report(raw)
    n_clips = int(clips["frames"].shape[0])
    lines = table(rows, n_clips)
    print(f"\n{n_clips} clips, {tuple(clips['frames'].shape[1:])}; reference: 25-step Euler, "
          f"guidance on (PSNR {ref['psnr']:.2f} [{ref['psnr_ci'][0]:.2f}, {ref['psnr_ci'][1]:.2f}])")
    print("\n".join(lines))
    for mode, r in cheapest.items():
        what = f"{r['solver']} {r['steps']} steps, NFE {r['nfe']:g}" if r else "none"
        print(f"cheapest setting within the reference's CIs, guidance {mode}: {what}")
    result = {
        "what": "sampling quality vs cost (benchmarks/sampling_quality.py)",
        **source,
        "clips": n_clips,
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
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, result)
    png = out.with_suffix(".png")
    plot(rows, ref, png, title, int(clips["frames"].shape[1]))
    print(f"wrote {out} and {png}")
    return result


if __name__ == "__main__":
    main()
