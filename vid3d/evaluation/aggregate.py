"""Aggregate per-sample records into per-method results with bootstrap confidence intervals.

Records are the dicts written by ``vid3d.evaluation.records`` / ``camera_runner``: each has
``method``, ``clip_id``, ``trial``, ``success`` (bool) and, on success, ``errors`` (the dict returned by
``camera_errors``: per-video *sums over frames* such as ``rot_err_deg``, and ``*_per_frame`` means) and,
when FVD was requested, ``fvd_features`` (``fvd.FVDMetric.sample_features``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import tables
from .cami2v import cami2v_reduce
from .fvd import FVD_KEY, find_fvd, fvd_column, fvd_entry
from .protocol_notes import ABS_METRICS, arithmetic_notes, outlier_notes
from .records import read_records, record_key, to_jsonable

__all__ = [
    "DEFAULT_METRICS",
    "aggregate",
    "bootstrap_ci",
    "merge_shards",
    "trial_spread",
    "write_results",
]

DEFAULT_METRICS = ("rot_err_deg", "rot_err_rad", "trans_err", "cammc")
REDUCTIONS = ("flat", "cami2v")
ARITHMETICS = {"vid3d": "errors", "cami2v": "errors_cami2v"}  # arithmetic -> the record field holding it
# per-video values in record["fidelity"], aggregated over every record (pose failures included)
FIDELITY_METRICS = ("psnr_gt",)
FAILURE_POLICIES = ("exclude", "worst", "raise")


def preset_aggregation(preset: dict[str, Any]) -> dict[str, Any]:
    """``aggregate``'s rule arguments from a protocol preset (conf/protocol): what a key leaves out is
    vid3d's own rule (no outlier rule, flat mean, every clip, vid3d's arithmetic)."""
    arithmetic = preset.get("arithmetic", "vid3d")
    if arithmetic not in ARITHMETICS:
        raise ValueError(f"protocol.arithmetic must be one of {tuple(ARITHMETICS)}, got {arithmetic!r}")
    return {
        "outlier_sigma": preset.get("outlier_sigma"),
        "reduction": preset.get("reduction", "flat"),
        "skip_first_video": bool(preset.get("skip_first_video", False)),
        "errors_key": ARITHMETICS[arithmetic],
    }


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap (1 - alpha) confidence interval of the mean of ``values``.

    Resamples ``values`` with replacement ``n_boot`` times (``numpy.random.default_rng(seed)``) and
    returns the alpha/2 and 1 - alpha/2 percentiles of the resampled means. (nan, nan) for no values;
    (v, v) for a single value.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return (math.nan, math.nan)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    low, high = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(low), float(high))


def trial_spread(values: Sequence[float], trials: Sequence[int]) -> dict[str, Any]:
    """Spread over repeated trials (seeds): the mean of each trial's values and the sample standard
    deviation (ddof=1) of those per-trial means (nan with fewer than two trials)."""
    by_trial: dict[int, list[float]] = {}
    for v, t in zip(values, trials):
        by_trial.setdefault(int(t), []).append(float(v))
    means = {t: float(np.mean(by_trial[t])) for t in sorted(by_trial)}
    arr = np.asarray(list(means.values()), dtype=np.float64)
    return {
        "per_trial_mean": means,
        "n_trials": len(means),
        "std_over_trials": float(arr.std(ddof=1)) if arr.size > 1 else math.nan,
    }


def drop_outliers(values: Sequence[float], k: float) -> np.ndarray:
    """(n,) bool: True for values within ``k`` population standard deviations of the mean."""
    x = np.asarray(values, dtype=np.float64)
    if not k > 0:
        raise ValueError(f"outlier_sigma must be > 0, got {k}")
    std = x.std()
    if x.size == 0 or std == 0:
        return np.ones(x.shape, dtype=bool)
    return np.abs(x - x.mean()) <= k * std


def _metric_stats(
    values: list[float], per_frame: list[float], n_boot: int, seed: int, trials: list[int] | None = None
) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    low, high = bootstrap_ci(arr, n_boot=n_boot, seed=seed)
    out = {
        "mean": float(arr.mean()) if arr.size else math.nan,
        "ci_low": low,
        "ci_high": high,
        "std": float(arr.std(ddof=1)) if arr.size > 1 else math.nan,
        "per_frame_mean": float(np.mean(per_frame)) if per_frame else math.nan,
        "n": int(arr.size),
    }
    if trials is not None:
        out.update(trial_spread(values, trials))
    return out


def aggregate(
    records: Iterable[dict[str, Any]],
    metrics: Sequence[str] = DEFAULT_METRICS,
    group_by: str = "method",
    failure_policy: str = "exclude",
    n_boot: int = 1000,
    seed: int = 0,
    outlier_sigma: float | None = None,
    reduction: str = "flat",
    skip_first_video: bool = False,
    errors_key: str = "errors",
) -> dict[str, dict[str, Any]]:
    """Per-group summary of the records.

    Args:
        records: record dicts (each a (method, clip_id, trial) sample; duplicates must be removed first,
            see ``merge_shards``).
        metrics: keys of ``record["errors"]`` holding per-video sums over frames (e.g. ``rot_err_deg``).
            ``<metric>_per_frame`` is averaged too when present.
        group_by: record field to group on.
        failure_policy: ``"exclude"``: failed samples are left out of the metric means and reported via
            ``failures`` / ``failure_rate``; ``"worst"``: each failed sample is scored with the worst
            (largest) value of that metric over all successful samples of all groups; ``"raise"``:
            any failure raises ``ValueError``.
        outlier_sigma: None (default: every value counts) or k: per group and metric, values further
            than k standard deviations (population std of the group's values) from the group's mean are
            dropped before the statistics; ``n_outliers`` says how many. With ``reduction="cami2v"`` k is
            CamI2V's rule instead: whole (clip, trial) entries dropped (``cami2v.cami2v_reduce``).
        reduction: ``"flat"``: statistics over every (clip, trial) value; ``"cami2v"``: CamI2V's
            merge + summary (``cami2v.cami2v_reduce``): trials averaged per clip, then clips; mean, CI and
            std are over the per-clip means; ``n_outliers`` counts dropped entries, and each group gets a
            ``cami2v`` block (dropped entries, skipped clip, rule metrics). Needs failure_policy
            ``exclude`` or ``raise`` (CamI2V skips failures).
        skip_first_video: with ``reduction="cami2v"``, CamI2V's ``skiprows=[0]`` quirk: the first clip of
            its per-video table is left out of the means.
        errors_key: the record field holding the errors (``errors``: vid3d's arithmetic;
            ``errors_cami2v``: CamI2V's). ``trans_err_abs`` / ``cammc_abs`` are summarised when some
            record has them; otherwise the group's ``not_computed`` says why (records' ``abs_reason``).
    Returns:
        {group: {"n": successes, "n_total", "failures", "failure_rate", "success_rate",
        "metrics": {metric: {"mean" (of per-video sums), "ci_low", "ci_high" (95% percentile bootstrap),
        "std", "per_frame_mean", "n" (values averaged), "per_trial_mean" ({trial: mean over that
        trial's values}), "n_trials", "std_over_trials" (sample std, ddof=1, of the per-trial means:
        the spread over seeds; nan for a single trial)}},
        "fvd" (or "fvd [random-init (not I3D)]"): ``fvd.fvd_entry`` of all the group's records, failed
        pose estimations included (a number only when the records carry I3D features)}}
    """
    if failure_policy not in FAILURE_POLICIES:
        raise ValueError(f"failure_policy must be one of {FAILURE_POLICIES}, got {failure_policy!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "cami2v" and failure_policy == "worst":
        raise ValueError("reduction='cami2v' skips failed samples (CamI2V's rule): failure_policy exclude")
    records = list(records)
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault(str(rec[group_by]), []).append(rec)
    present = {m for r in records if r.get("success") and r.get(errors_key) for m in r[errors_key]}
    metrics = [*metrics, *(m for m in ABS_METRICS if m in present and m not in metrics)]

    worst: dict[str, float] = {}
    for recs in groups.values():
        for r in recs:
            if r.get("success"):
                for m in metrics:
                    if m not in r[errors_key]:
                        continue
                    worst[m] = max(worst.get(m, -math.inf), float(r[errors_key][m]))
                    pf = f"{m}_per_frame"
                    if pf in r[errors_key]:
                        worst[pf] = max(worst.get(pf, -math.inf), float(r[errors_key][pf]))

    out: dict[str, dict[str, Any]] = {}
    for group in sorted(groups):
        recs = sorted(groups[group], key=record_key)
        failed = [r for r in recs if not r.get("success")]
        if failed and failure_policy == "raise":
            r = failed[0]
            raise ValueError(
                f"{len(failed)} failed sample(s) in group {group!r}, e.g. {record_key(r)}: {r.get('reason')}"
            )
        ok = [r for r in recs if r.get("success")]
        stats, extra = {}, {}
        if reduction == "cami2v":
            stats, extra = _cami2v_stats(
                ok, metrics, errors_key, outlier_sigma, skip_first_video, n_boot, seed
            )
        for m in metrics if reduction == "flat" else ():
            with_m = [r for r in ok if m in r[errors_key]]
            vals = [float(r[errors_key][m]) for r in with_m]
            trials = [int(r["trial"]) for r in with_m]
            pfs = [float(r[errors_key][f"{m}_per_frame"]) for r in with_m
                   if f"{m}_per_frame" in r[errors_key]]
            if failure_policy == "worst" and failed:
                if m not in worst:
                    raise ValueError(f"failure_policy='worst' but no successful sample has metric {m!r}")
                vals += [worst[m]] * len(failed)
                trials += [int(r["trial"]) for r in failed]
                if f"{m}_per_frame" in worst:
                    pfs += [worst[f"{m}_per_frame"]] * len(failed)
            n_out = 0
            if outlier_sigma is not None and len(vals) > 2:
                keep = drop_outliers(vals, float(outlier_sigma))
                n_out = len(vals) - int(keep.sum())
                vals = [v for v, k in zip(vals, keep) if k]
                trials = [t for t, k in zip(trials, keep) if k]
                if len(pfs) == len(keep):
                    pfs = [v for v, k in zip(pfs, keep) if k]
            stats[m] = _metric_stats(vals, pfs, n_boot, seed, trials)
            if outlier_sigma is not None:
                stats[m]["n_outliers"] = n_out
        for m in FIDELITY_METRICS:
            with_value = [r for r in recs if (r.get("fidelity") or {}).get(m) is not None]
            if with_value:  # records written before the metric existed have none
                vals = [float(r["fidelity"][m]) for r in with_value]
                stats[m] = _metric_stats(vals, [], n_boot, seed, [int(r["trial"]) for r in with_value])
        n_total = len(recs)
        out[group] = {
            "n": len(ok),
            "n_total": n_total,
            "failures": len(failed),
            "failure_rate": len(failed) / n_total if n_total else math.nan,
            "success_rate": len(ok) / n_total if n_total else math.nan,
            "failure_reasons": sorted({str(r.get("reason")) for r in failed}),
            "metrics": stats,
            **extra,
        }
        missing = {m: sorted({str(r.get("abs_reason")) for r in ok if m not in r[errors_key]})
                   for m in ABS_METRICS if m not in stats}
        if reduction == "cami2v" or any(m in stats for m in ABS_METRICS):
            out[group]["not_computed"] = {
                m: "; ".join(why) or "no successful sample" for m, why in missing.items()
            }
        fvd_key, out[group][fvd_key] = fvd_entry(recs)
    return out


def _cami2v_stats(
    ok: list[dict[str, Any]], metrics: Sequence[str], errors_key: str, k: float | None, skip_first: bool,
    n_boot: int, seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-metric statistics by CamI2V's reduction over the successful records ``ok`` (sorted by clip):
    mean / CI / std over the averaged clips' means, ``n_outliers`` = dropped (clip, trial) entries."""
    entries = [{"video": r["clip_id"], "trial": int(r["trial"]), "values": r[errors_key]} for r in ok]
    names = [*metrics, *(f"{m}_per_frame" for m in metrics)]
    red = cami2v_reduce(entries, names, k=k, skip_first_video=skip_first)
    dropped = set(red["dropped"])
    kept = [e for e in entries if (e["video"], e["trial"]) not in dropped]
    stats = {}
    for m in metrics:
        per_video = [red["per_video"][v][m] for v in red["averaged_videos"]]
        vals = [v for v in per_video if math.isfinite(v)]
        if not vals and all(m not in e["values"] for e in entries):
            continue  # an absolute-scale metric no record carries: reported under not_computed
        pfs = [red["per_video"][v][f"{m}_per_frame"] for v in red["averaged_videos"]]
        s = _metric_stats(vals, [p for p in pfs if math.isfinite(p)], n_boot, seed)
        with_m = [e for e in kept if m in e["values"]]
        s.update(trial_spread([float(e["values"][m]) for e in with_m], [e["trial"] for e in with_m]))
        if k is not None:
            s["n_outliers"] = len(dropped)
        stats[m] = s
    extra = {"cami2v": {
        "dropped_entries": [list(d) for d in red["dropped"]], "skipped_video": red["skipped_video"],
        "rule_metrics": red["rule_metrics"], "n_entries": red["n_entries"], "n_kept": red["n_kept"],
        "n_videos": len(red["averaged_videos"]),
    }}
    return stats, extra


def merge_shards(dirs: Iterable[str | os.PathLike], pattern: str = "records*.jsonl") -> list[dict[str, Any]]:
    """All records from the ``pattern`` files of each directory (sorted file order), de-duplicated by
    (method, clip_id, trial) keeping the first occurrence, sorted by key."""
    seen: dict[tuple, dict[str, Any]] = {}
    for d in dirs:
        for path in sorted(Path(d).glob(pattern)):
            for rec in read_records(path):
                seen.setdefault(record_key(rec), rec)
    return [seen[k] for k in sorted(seen)]


def _fmt(x: float | None, digits: int = 2) -> str:
    return "nan" if x is None or not math.isfinite(x) else tables.fmt(x, digits)


def _fvd_cell(entry: dict[str, Any]) -> str:
    if not entry.get("computed"):
        return "not computed"
    n = sorted(set(entry["n_videos"].values()))
    return f"{_fmt(entry['value'])} (n={'/'.join(map(str, n))})"


def _fvd_notes(results: dict[str, dict[str, Any]]) -> list[str]:
    entries = [find_fvd(r)[1] for r in results.values()]
    if not any(entries):
        return []
    if not any(e.get("computed") for e in entries):
        return ["", f"FVD: not computed ({next(e for e in entries if e).get('reason')})."]
    notes = [
        "",
        "FVD: Fréchet distance between Gaussians fitted to the I3D features of each trial's generated videos "
        "and of the ground-truth videos of the same clips, mean over trials; n = videos per set. With few "
        "videos FVD is biased upwards and has a high variance: compare only at equal n.",
    ]
    key = fvd_column(results)
    if key != FVD_KEY:  # fvd.fvd_key: only I3D features get the plain key
        notes.append(f"WARNING: the {key} column comes from a random-init network, not I3D: NOT FVD.")
    return notes


def results_table(results: dict[str, dict[str, Any]], protocol: dict[str, Any]) -> tuple[tables.Table, str]:
    """The results table and the Markdown document around it (preset line, notes, protocol)."""
    fvd_key = fvd_column(results)
    fvd_header = "FVD" + fvd_key[len(FVD_KEY):]
    preset = protocol.get("preset") or {}
    with_abs = any("not_computed" in r or ABS_METRICS[0] in r["metrics"] for r in results.values())
    abs_header = ["TransErr_abs (Σ frames, metric scale) [95% CI]", "CamMC_abs (Σ frames) [95% CI]"]
    abs_header = abs_header if with_abs else []
    rad_first = preset.get("units") == "rad"  # the published tables' unit leads (protocol=cami2v|cameractrl)
    rot = ["RotErr (deg, Σ frames) [95% CI]", "RotErr per frame (deg)", "RotErr (rad, Σ frames) [95% CI]"]
    if rad_first:
        rot = [rot[2], rot[0], rot[1]]
    header = ["method", "n", "failures", *rot, "TransErr (Σ frames, scale-normalised) [95% CI]",
              "CamMC (Σ frames) [95% CI]", *abs_header, "success rate",
              "PSNR vs GT (dB, frames 1..N) [95% CI]", f"{fvd_header} (n videos)"]
    above = []
    if preset.get("name") and preset.get("name") != "vid3d":
        differs = "; ".join(preset.get("differs_from_publication") or []) or "nothing listed"
        above = [
            f"Protocol preset: {preset['name']} ({preset.get('publication')}). Differs from the publication: "
            f"{differs}.",
            "",
        ]
    rows = []
    for method, r in results.items():
        m = r["metrics"]

        def cell(key: str, m=m) -> str:
            s = m.get(key)
            if s is None:
                return "n/a"
            return f"{_fmt(s['mean'])} [{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]"  # NaN: "nan"

        rot_pf = _fmt(m["rot_err_deg"]["per_frame_mean"], 3) if "rot_err_deg" in m else "n/a"
        rot_cells = [cell("rot_err_deg"), rot_pf, cell("rot_err_rad")]
        if rad_first:
            rot_cells = [rot_cells[2], rot_cells[0], rot_cells[1]]
        abs_cells = [cell(k) if k in m else "not computed" for k in ABS_METRICS] if with_abs else []
        rows.append([method, str(r["n"]), str(r["failures"]), *rot_cells, cell("trans_err"), cell("cammc"),
                     *abs_cells, f"{_fmt(100 * r['success_rate'], 1)}%", cell("psnr_gt"),
                     _fvd_cell(find_fvd(r)[1])])
    table = tables.Table(header, rows, text_columns=1)
    spread = []
    for method, r in results.items():
        m = r["metrics"]
        if any(s.get("n_trials", 1) > 1 for s in m.values()):
            parts = [
                f"{label} ±{_fmt(m[k]['std_over_trials'], 3)}"
                for k, label in (("rot_err_deg", "RotErr"), ("trans_err", "TransErr"), ("cammc", "CamMC"))
                if k in m
            ]
            n_trials = max(s.get("n_trials", 1) for s in m.values())
            spread.append(f"- {method}: {', '.join(parts)} (std of the {n_trials} per-trial means)")
    if spread:
        spread = ["", "Spread over trials (seeds):", "", *spread]
    notes = [
        "",
        "Σ frames: per-video sum over the frames of the clip, then mean over videos; CI: 95% percentile "
        "bootstrap of that mean. Means exclude failed pose estimations unless the failure policy says "
        "otherwise. RotErr in radians summed over frames is the unit of the published CameraCtrl / CamI2V "
        "tables. PSNR vs GT: generated frames 1..N against the ground truth, every video (no pose "
        "estimation involved); static_first_frame is the copy-the-first-frame baseline a model must beat.",
        *arithmetic_notes(results, protocol),
        *outlier_notes(results, preset),
        *_fvd_notes(results),
        *tables.protocol_lines(protocol, skip=("reproducibility",)),
    ]
    if "reproducibility" in protocol:  # kilobytes of versions and config: collapsed (also in results.json)
        record = json.dumps(to_jsonable(protocol["reproducibility"]), sort_keys=True, indent=1)
        notes += ["", "<details><summary>Reproducibility record</summary>", "", "```json", record, "```",
                  "", "</details>"]
    return table, tables.text(above, tables.markdown(table), spread, notes)


def _results_csv(results: dict[str, dict[str, Any]]) -> str:
    metric_names = sorted({m for r in results.values() for m in [*r["metrics"], *r.get("not_computed", {})]})
    stat_names = ("mean", "ci_low", "ci_high", "std", "per_frame_mean", "n_trials", "std_over_trials")
    fvd_key = fvd_column(results)
    fvd_stats = ("std_over_trials", "n_generated", "n_ground_truth")
    header = (
        ["method", "n", "n_total", "failures", "failure_rate"]
        + [f"{m}_{s}" for m in metric_names for s in stat_names]
        + [fvd_key] + [f"{fvd_key}_{s}" for s in fvd_stats]
    )
    rows = []
    for method, r in results.items():
        row = [method, r["n"], r["n_total"], r["failures"], r["failure_rate"]]
        for m in metric_names:
            s = r["metrics"].get(m, {})
            if m in (r.get("not_computed") or {}):
                s = {"mean": "not computed"}
            row += [s.get(k, "") for k in stat_names]
        fvd = find_fvd(r)[1]
        if fvd.get("computed"):
            row += [fvd["value"], *(fvd[k] for k in fvd_stats)]
        else:
            row += ["not computed", "", "", ""]
        rows.append(row)
    return tables.csv_text(header, rows)


def write_results(
    out_dir: str | os.PathLike, results: dict[str, dict[str, Any]], protocol: dict[str, Any]
) -> dict[str, Path]:
    """Write ``results.json`` ({"protocol": ..., "results": ...}), ``results.csv``, ``results.md`` and the
    table as LaTeX (``results.tex``) into ``out_dir``, each atomically. Returns their paths.

    ``protocol`` should state the pose estimator and its settings, the normalisation, sum-over-frames
    vs per-frame means, units and the failure policy; it is copied verbatim into every file.
    """
    table, md = results_table(results, protocol)
    payload = {"protocol": to_jsonable(protocol), "results": to_jsonable(results)}
    return tables.write_texts(out_dir, "results", {
        "json": tables.json_text(payload), "csv": _results_csv(results), "md": md, "tex": tables.latex(table)
    })
