"""CameraBenchmark (``benchmark=camera``, eval.py's default): camera control on the data option's test clips.

Rows: the model of ``ckpt`` (if given) and two references — the ground-truth video (the pose
estimator's noise floor) and the first frame repeated (a model that ignores the camera). Opt-in:
``eval.oracle_rows=[depth_warp]`` (frame 0 forward-warped along the cameras with its true depth: a video
that follows its camera by construction; clips without depth skip it) and ``eval.camera_controls`` (the
model's and the oracle rows' videos along static / another clip's cameras). With
``metrics.fvd.i3d=/path/i3d_torchscript.pt`` every row also gets its FVD against the ground-truth videos of
the evaluated clips (``vid3d.evaluation.fvd``); without it the results say FVD was not computed. Writes
``samples.jsonl``-style records (``records.shard*.jsonl``), ``results.{json,csv,md,tex}`` in the run dir and
logs the table to W&B (offline without an account).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vid3d.evaluation.camera_runner import (
    EvalClip,
    gt_video_method,
    run_camera_eval,
    static_first_frame_method,
)
from vid3d.evaluation.fvd import FVDMetric, is_random_init_label
from vid3d.evaluation.random_init import (
    FVD_RANDOM_INIT_WARNING,
    RANDOM_INIT_SUFFIX,
    RANDOM_INIT_WARNING,
    is_random_init,
)
from vid3d.evaluation.runner import shard_lock
from vid3d.evaluation.wandb_log import log_to_wandb
from vid3d.sampling.video_sampler import from_uint8, to_uint8
from vid3d.tasks.common import (
    log,
    prepare_data,
    pretrained_choice,
    print_config_tree,
    reproducibility,
    run_dir,
)


def first_frame_depth(dataset, i: int, frame_index: int, height: int, width: int) -> np.ndarray | None:
    """(height, width) z-depth of source frame ``frame_index`` of clip ``i`` of a RealEstate10K-layout
    dataset (``{clip_id}.depth.npz``, ``re10k.read_depth``), centre-cropped and resized as the frames are
    (``depth_warp.crop_resize_depth``); None when the clip (or the dataset class) has no depth."""
    from vid3d.data.formats.re10k import read_depth
    from vid3d.evaluation.depth_warp import crop_resize_depth

    clip = (getattr(dataset, "clips", None) or [None] * (i + 1))[i]
    if getattr(clip, "depth_path", None) is None:
        return None
    depth = read_depth(clip, [int(frame_index)])
    return None if depth is None else crop_resize_depth(depth[0], height, width)


def eval_clips(cfg: DictConfig, with_depth: bool = False) -> tuple[list[EvalClip], list[dict[str, str]]]:
    """Test clips as the training transform sees them (centre crop + resize to the model size), and the
    broken ones skipped: ``[{"clip_id", "reason", "message"}]`` (reason from ``vid3d.data.clips.
    SKIP_REASONS``). Each index gives its own clip or a skip, never another clip in its place, so the
    good clips are the same, with the same frames, as in a test set without the broken ones. With
    ``with_depth`` each clip also gets its frame 0's depth where the dataset has one
    (``first_frame_depth``)."""
    from vid3d.data.clips import BadClip

    prepare_data(cfg)
    dataset = instantiate(cfg.data.test_dataset)
    n = len(dataset) if cfg.eval.max_clips is None else min(len(dataset), cfg.eval.max_clips)
    clips, skipped = [], []
    for i in range(n):
        try:
            s = dataset.exact_item(i)
        except BadClip as e:
            skipped.append({"clip_id": dataset.clip_name(i), "reason": e.reason, "message": str(e)})
            continue
        frames = to_uint8(s["frames"])
        depth0 = None
        if with_depth:
            depth0 = first_frame_depth(dataset, i, int(s["frame_indices"][0]), *frames.shape[1:3])
        clips.append(
            EvalClip(
                clip_id=s["clip_id"],
                frames=frames,
                K_px=s["K_px"][0].double().numpy(),
                gt_c2w=s["c2w"].double().numpy(),
                frame_indices=s["frame_indices"].numpy(),
                depth0=depth0,
            )
        )
    if skipped:
        log.warning(
            "%d of %d test clips skipped (broken): %s", len(skipped), n,
            "; ".join(f"{s['clip_id']} ({s['reason']})" for s in skipped[:5]),
        )
    return clips, skipped


def model_method(model, sampler, seed: int, cameras=None, seed_as: str | None = None):
    """A runner method generating each clip's video from its first frame along its GT trajectory, seeded by
    ``seed`` + the engine's per-item seed (``torch.initial_seed()`` when called alone);
    ``generate.batch(clips, item_seeds)`` is the same for several clips in one forward
    (``eval.batch_size``; not offered for a model whose attention draws from the global RNG:
    ``uses_global_rng``).

    cameras: None (the clip's own trajectory) or ``clip -> (F, 4, 4)`` c2w handed to the sampler instead (a
        camera control: ``control_methods``). seed_as: the row whose per-item seeds the engine uses for this
        method (``camera_runner.seed_name``), so a control draws its model row's noise."""

    def generator(item_seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed + int(item_seed % 1_000_003))

    def c2w_of(clip: EvalClip) -> np.ndarray:
        return clip.gt_c2w if cameras is None else cameras(clip)

    def inputs(clips: list[EvalClip]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = len(clips[0].frames)
        return (
            torch.cat([from_uint8(c.frames[0])[None] for c in clips]),
            torch.stack([torch.from_numpy(np.repeat(c.K_px[None], n, axis=0)).float() for c in clips]),
            torch.stack([torch.from_numpy(np.asarray(c2w_of(c), dtype=np.float64)).float() for c in clips]),
        )

    def generate(clip: EvalClip) -> np.ndarray:
        video = sampler(model, *inputs([clip]), generator=generator(torch.initial_seed()))
        return to_uint8(video[0])

    def generate_batch(clips: list[EvalClip], item_seeds: list[int]) -> list[np.ndarray]:
        video = sampler(model, *inputs(clips), generator=[generator(s) for s in item_seeds])
        return [to_uint8(v) for v in video]

    if not uses_global_rng(model):
        generate.batch = generate_batch
    if seed_as is not None:
        generate.seed_as = seed_as
    return generate


def control_cameras(controls, clips: list[EvalClip]) -> dict[str, object]:
    """{control: ``clip -> (F, 4, 4)`` c2w} for the names in ``controls`` (``vid3d.evaluation.
    camera_controls``), in their order. "other" takes its donors from the evaluated ``clips`` (all shards'
    clips: the derangement does not depend on sharding)."""
    from vid3d.evaluation import camera_controls as cc

    controls = cc.check_controls(controls)
    by_id = {c.clip_id: c for c in clips}
    donor = cc.donors(list(by_id)) if "other" in controls else {}

    def static(clip: EvalClip) -> np.ndarray:
        return cc.static_cameras(clip.gt_c2w)

    def other(clip: EvalClip) -> np.ndarray:
        return cc.reanchored(clip.gt_c2w, by_id[donor[clip.clip_id]].gt_c2w)

    make = {"static": static, "other": other}
    return {c: make[c] for c in controls}


def control_methods(
    model, sampler, seed: int, name: str, controls, clips: list[EvalClip]
) -> dict[str, object]:
    """The camera-control rows of the model row ``name`` (``eval.camera_controls``;
    ``vid3d.evaluation.camera_controls``): {``name[static cameras]`` | ``name[other clip's cameras]``:
    ``model_method`` with those cameras (``control_cameras``) and ``name``'s seeds}, in the order of
    ``controls``."""
    from vid3d.evaluation.camera_controls import control_row_name

    return {
        control_row_name(name, c): model_method(model, sampler, seed, cameras=cams, seed_as=name)
        for c, cams in control_cameras(controls, clips).items()
    }


def depth_warp_method(cameras=None):
    """The ``depth_warp`` reference row: each clip's frame 0 forward-warped with its true depth
    (``EvalClip.depth0``) from its frame-0 camera into every camera of its trajectory
    (``depth_warp.warp_video``): a video that follows the cameras by construction. cameras: None (the
    clip's own trajectory) or ``clip -> (F, 4, 4)`` c2w (a camera control). Deterministic (no seed). The
    method's ``applies(clip)`` says whether the clip has depth; the others get no record."""
    from vid3d.evaluation.depth_warp import warp_video

    def generate(clip: EvalClip) -> np.ndarray:
        c2w = clip.gt_c2w if cameras is None else cameras(clip)
        return warp_video(clip.frames[0], clip.depth0, clip.K_px, c2w)

    generate.applies = lambda clip: clip.depth0 is not None
    return generate


def oracle_methods(rows, controls, clips: list[EvalClip]) -> dict[str, object]:
    """The reference rows of ``eval.oracle_rows`` (``depth_warp.ORACLE_ROWS``), each followed by its
    camera-control rows (``eval.camera_controls``: ``depth_warp[static cameras]``, ``depth_warp[other clip's
    cameras]``), with the same control cameras as a model row (``control_cameras``)."""
    from vid3d.evaluation.camera_controls import control_row_name
    from vid3d.evaluation.depth_warp import check_oracle_rows

    make = {"depth_warp": depth_warp_method}
    out: dict[str, object] = {}
    cams = control_cameras(controls, clips) if controls else {}
    for row in check_oracle_rows(rows):
        out[row] = make[row]()
        out.update({control_row_name(row, c): make[row](cameras=fn) for c, fn in cams.items()})
    return out


def uses_global_rng(model) -> bool:
    """Whether sampling ``model`` draws from torch's global RNG (CamI2V's mask rule draws its zero-translation
    lines there): its videos depend on what ran before, so they are generated one by one."""
    return getattr(getattr(model, "attention_adapter", None), "mask_rule", None) == "cami2v"


def model_camera_gap(cfg: DictConfig, model, clips: list[EvalClip], out: Path) -> tuple[dict, str] | None:
    """The model's camera gap on the evaluated clips -> camera_gap.{json,md}; returns ({name: gaps},
    the markdown table), or None when not measured."""
    import json

    from vid3d.atomic import atomic_write_bytes
    from vid3d.evaluation.camera_gap import camera_gap_markdown, measure_camera_gap

    opts = cfg.eval.camera_gap  # typed: vid3d.config_schema.CameraGapOptions
    use = clips[: int(opts.max_clips)]
    if not opts.enabled or int(cfg.eval.shard) != 0 or len(use) < 2:
        return None
    samples = [
        {"frames": from_uint8(c.frames), "K_px": torch.from_numpy(c.K_px).float().expand(len(c.frames), 3, 3),
         "c2w": torch.from_numpy(c.gt_c2w).float()}
        for c in use
    ]
    gap = measure_camera_gap(model, samples, tuple(opts.sigmas), int(cfg.seed))
    table = camera_gap_markdown({model.name: gap})
    atomic_write_bytes(out / "camera_gap.json", json.dumps({model.name: gap}, indent=1).encode())
    atomic_write_bytes(out / "camera_gap.md", (table + "\n").encode())
    return {model.name: gap}, table


def fvd_metric(cfg: DictConfig) -> FVDMetric | None:
    """The video metric of the ``metrics`` suite (``conf/metrics/``, by ``_target_``): FVD of
    ``metrics.fvd.i3d``, None when unset (FVD is not computed). A missing or unloadable file raises
    ``FVDWeightsError`` naming it; called before any clip is loaded or video generated."""
    return instantiate(cfg.metrics, _convert_="all").video()


def preset_rules(preset: dict) -> dict:
    """``run_camera_eval``'s aggregation and trial arguments from a protocol preset (conf/protocol): what a
    key leaves out is vid3d's own rule (generations, flat mean, vid3d arithmetic, no outlier rule)."""
    depth = preset.get("metric_depth")
    return {
        "outlier_sigma": preset.get("outlier_sigma"),
        "trials_are": preset.get("trials_are", "generations"),
        "reduction": preset.get("reduction", "flat"),
        "skip_first_video": bool(preset.get("skip_first_video", False)),
        "arithmetic": preset.get("arithmetic", "vid3d"),
        "metric_depth": None if depth is None else instantiate(depth),
    }


class CameraBenchmark:
    """``conf/benchmark/camera.yaml``: ``run(cfg)`` scores ``cfg.ckpt`` (and the reference rows) on the
    eval config ``cfg`` and returns what it computed: {results_md (results.md's text), summary_md (what it
    printed), run_dir, results (per-method aggregate), records (every record scored), table
    (``tables.Table``), camera_gap ({model: gaps} or None), camera_gap_md}."""

    name = "camera"

    def run(self, cfg: DictConfig) -> dict:
        return evaluate_camera(cfg)


def evaluate_camera(cfg: DictConfig) -> dict:
    # the shard's lock first: a second process on this shard answers at once, not after loading the model
    with shard_lock(run_dir(cfg), int(cfg.eval.shard), int(cfg.eval.num_shards)):
        return _evaluate_camera(cfg)


def _evaluate_camera(cfg: DictConfig) -> dict:
    model = None
    if cfg.ckpt:  # a wrong or refused checkpoint fails before anything else
        from vid3d.models.checkpoint import load_model

        model = load_model(cfg.ckpt, pretrained=pretrained_choice(cfg))
        from vid3d.sampling.model_defaults import apply_model_sampler_defaults

        apply_model_sampler_defaults(cfg)  # the checkpoint's manifest's sampler settings, unless given
    out = run_dir(cfg)
    print_config_tree(cfg, save_to=out / "config.yaml")
    fvd = fvd_metric(cfg)  # a bad metrics.fvd.i3d fails here, before any data or sampling work
    oracle_rows = list(cfg.eval.oracle_rows)
    clips, skipped = eval_clips(cfg, with_depth=bool(oracle_rows))
    if not clips:
        raise ValueError(f"no usable test clip: all {len(skipped)} were skipped as broken (see the log)")
    methods, gap, gap_table = {}, None, None
    if model is not None:
        sampler = instantiate(cfg.sampler)
        methods[model.name] = model_method(model, sampler, cfg.seed)
        # the same model along cameras that are not the clip's, with the model row's seeds
        methods.update(control_methods(model, sampler, cfg.seed, model.name, cfg.eval.camera_controls, clips))
        gap, gap_table = model_camera_gap(cfg, model, clips, out) or (None, None)
    if cfg.eval.reference_rows:
        methods["gt_video"] = gt_video_method
        methods["static_first_frame"] = static_first_frame_method
    no_depth = []
    if oracle_rows:
        methods.update(oracle_methods(oracle_rows, cfg.eval.camera_controls, clips))
        no_depth = [c.clip_id for c in clips if c.depth0 is None]
        if no_depth:
            log.warning(
                "eval.oracle_rows: %d of %d clips have no depth file; the depth_warp rows skip them: %s",
                len(no_depth), len(clips), ", ".join(no_depth[:10]) + (" ..." if len(no_depth) > 10 else ""),
            )
    if not methods:
        raise ValueError("nothing to evaluate: give ckpt=... or keep eval.reference_rows=true")
    estimator = instantiate(cfg.pose)
    extra = {"reproducibility": reproducibility(cfg)}
    if skipped:  # not a method's failure: reported beside the table, never scored
        extra["skipped_test_clips"] = skipped
    if no_depth:  # the depth_warp rows have no record of these clips
        extra["oracle_rows_skipped_clips"] = {"reason": "no depth file", "clip_ids": no_depth}
    preset = OmegaConf.to_container(cfg.protocol, resolve=True) if cfg.get("protocol") else None
    if preset:
        extra["preset"] = preset
    warning_lines, tags = [], []
    if is_random_init(estimator):
        # Never presented as the real estimator's numbers: every row and the protocol say so.
        warning_lines.append(RANDOM_INIT_WARNING)
        tags.append("random-init-poses")
        methods = {f"{name}{RANDOM_INIT_SUFFIX}": fn for name, fn in methods.items()}
        for fn in methods.values():  # a control keeps its model row's seeds under the new name
            if getattr(fn, "seed_as", None):
                fn.seed_as = f"{fn.seed_as}{RANDOM_INIT_SUFFIX}"
    if fvd is not None and is_random_init_label(fvd.label):
        # Likewise for FVD: the results key, the table column and the protocol say random-init.
        warning_lines.append(FVD_RANDOM_INIT_WARNING)
        tags.append("random-init-fvd")
    warning = " ".join(warning_lines) or None
    if warning:
        extra["WARNING"] = warning
        log.warning(warning)
    summary = run_camera_eval(
        clips,
        methods,
        estimator,
        out,
        shard=cfg.eval.shard,
        num_shards=cfg.eval.num_shards,
        trials=cfg.eval.trials,
        failure_policy=cfg.eval.failure_policy,
        extra_protocol=extra,
        save_videos=bool(cfg.eval.save_videos),
        video_fps=float(cfg.eval.video_fps),
        fvd=fvd,
        batch_size=int(cfg.eval.batch_size),
        **preset_rules(preset or {}),
    )
    table, shown = summary["markdown"], summary["summary_md"]
    if warning:
        table, shown = f"WARNING: {warning}\n\n{table}", f"WARNING: {warning}\n\n{shown}"
    print(shown.rstrip())  # the protocol and reproducibility record: results.*
    if skipped:
        print(f"\n{len(skipped)} broken test clip(s) skipped, not scored (results.json: skipped_test_clips): "
              + "; ".join(f"{s['clip_id']} ({s['reason']})" for s in skipped[:10]))
    if gap_table:
        print(
            "\nCamera gap (denoising error with another clip's cameras / with the clip's own; > 1: the "
            f"camera is used, model=svd reads 1):\n\n{gap_table}"
        )
    print(f"\nresults: {out / 'results.md'} (protocol, reproducibility record), results.{{json,csv,tex}}")
    log_to_wandb(
        cfg, out, summary["results"], summary["records"], {c.clip_id: c for c in clips}, warning,
        tags or None, gap,
    )
    log.info("results written to %s", out)
    return {
        "results_md": table,
        "summary_md": shown,
        "run_dir": str(out),
        "results": summary["results"],
        "records": summary["records"],
        "table": summary["table"],
        "camera_gap": gap,
        "camera_gap_md": gap_table,
    }
