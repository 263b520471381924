"""The notes under a camera results table that say which arithmetic and aggregation rules made its
numbers (``aggregate.write_results``): the outlier rule, CamI2V's reduction, the absolute-scale columns."""

from __future__ import annotations

from typing import Any

__all__ = ["ABS_METRICS", "arithmetic_notes", "outlier_notes"]

# metric-scale metrics (protocol=cami2v): averaged when the records carry them, else "not computed" + why
ABS_METRICS = ("trans_err_abs", "cammc_abs")

CAMI2V_ARITHMETIC_NOTE = (
    "Arithmetic: the RotErr (rad, deg, per frame), TransErr and CamMC columns use CamI2V's "
    "(glomap_evaluation.py, utils/common.py): arccos of the raw relative rotations (general inverses, no "
    "projection onto SO(3)); translations divided by (largest centre norm + 1e-9), so a static trajectory is "
    "divided by 1e-9. vid3d's exact arithmetic of the same records is in each record's errors."
)
VID3D_ARITHMETIC_NOTE = (
    "Arithmetic: vid3d's exact one (rotations projected onto SO(3), angle by atan2; a static trajectory's "
    "translations zeroed); CamI2V's arithmetic of the same records is in each record's errors_cami2v."
)
ABS_NOTE = (
    "TransErr_abs / CamMC_abs: CamI2V's, against COLMAP on the ground-truth video of the same trial, both "
    "trajectories in metric-depth scale, divided by the reference's extent + 1e-9."
)


def arithmetic_notes(results: dict[str, dict[str, Any]], protocol: dict[str, Any]) -> list[str]:
    """Which arithmetic the error columns use, and why an absolute-scale column is empty."""
    lines = []
    note = {"cami2v": CAMI2V_ARITHMETIC_NOTE, "vid3d": VID3D_ARITHMETIC_NOTE}.get(protocol.get("arithmetic"))
    if note:
        lines += ["", note]
    why = sorted({f"{k}: {v}" for r in results.values() for k, v in (r.get("not_computed") or {}).items()})
    if why:
        lines += ["", "Not computed (no number is shown in their place):", "", *(f"- {w}" for w in why)]
    elif any(ABS_METRICS[0] in r["metrics"] for r in results.values()):
        lines += ["", ABS_NOTE]
    return lines


def outlier_notes(results: dict[str, dict[str, Any]], preset: dict[str, Any]) -> list[str]:
    """The outlier rule and, for CamI2V's reduction, how many entries each row dropped and which clip
    its skiprows quirk left out."""
    k = preset.get("outlier_sigma")
    blocks = {m: r["cami2v"] for m, r in results.items() if "cami2v" in r}
    if blocks:
        tested = ", ".join(next(iter(blocks.values()))["rule_metrics"])
        rule = ("no outlier rule" if k is None else
                f"a whole (clip, trial) entry dropped when any of {tested} lies beyond {k:g} population "
                "standard deviations of the mean pooled over the method's entries")
        lines = ["", f"Aggregation: CamI2V's (merge.py, summary.py): failed estimations skipped, {rule}; the "
                 "kept trials averaged per clip, then the clips; CI over the per-clip means (the table's n "
                 "counts successful estimations, the clips averaged are below)."]
        for m, b in blocks.items():
            skipped = (f"; clip {b['skipped_video']} left out (CamI2V's skiprows=[0] quirk)"
                       if b["skipped_video"] is not None else "")
            lines.append(f"- {m}: {b['n_entries'] - b['n_kept']} of {b['n_entries']} entries dropped, "
                         f"{b['n_videos']} clips averaged{skipped}")
        return lines
    if k is None:
        return []
    dropped = {m: sum(int(s.get("n_outliers", 0)) for s in r["metrics"].values()) for m, r in results.items()}
    counts = ", ".join(f"{m}: {n}" for m, n in dropped.items())
    return ["", f"Outlier rule ON: values further than {k:g} standard deviations from their row's mean are "
                f"dropped per metric (values dropped, all metrics: {counts})."]
