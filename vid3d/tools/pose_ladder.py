"""A retry ladder of pose estimators for one video, with a per-frame registration record.

Each rung is a whole estimation of the clip (its own features, matches and mapping). A rung is accepted
when its estimator calls the estimate a success (enough frames registered: ``min_registered_fraction``)
and its poses agree with the clip's two-view geometry: the 80th percentile, over neighbouring frame
pairs, of the angle between the estimate's relative rotation and the essential matrix's (``two_view.py``)
is at most ``max_disagreement_deg``. Not the median: a model can drift on a third of the clip and agree on
the rest (measured: GLOMAP on an H.264 24-frame walk at stride 4, drifting 4 deg per pair over frames 0-9
and 25 deg/frame off in all: median 0.7 deg, 80th percentile above 2); not the maximum: a few pairs'
essential matrices are wrong on their own (the rendering cameras on the same clip: 3 of 45 pairs 7-8 deg
off, 80th percentile 0.7 deg). The ladder stops at the first accepted rung that registers every frame; else
it keeps the accepted rung with the most registered frames (the earliest on a tie); else it fails, and
``LadderResult.failure_line`` says which frames were not registered and why.

COLMAP's rungs (``COLMAP_RUNGS``): the benchmark's own settings (conf/pose/colmap.yaml) first; GLOMAP's
global mapper, which found the right poses where the incremental mapper took a wrong branch (16-frame
walk at stride 8, lossless: 0.6 against 49 deg/frame) or left a frame out (23/24 -> 24/24); then both
again with twice the SIFT features, a lower SIFT peak threshold and lower registration thresholds, which
registered every frame right where the first two did not (through H.264: a 24-frame walk at stride 4,
both first rungs rejected by the check; a 16-frame walk at stride 8, 14/16 and 15/16 registered). The
measurements are in ``tests/tools/test_pose_ladder.py`` (slow) and README's video -> poses section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vid3d.evaluation.pose.base import PoseEstimator, PoseResult
from vid3d.evaluation.pose.two_view import TwoView, neighbour_pairs, rotation_disagreement, two_view_geometry

__all__ = ["COLMAP_RUNGS", "LadderResult", "Rung", "RungResult", "frame_ranges", "run_ladder"]

# (name, overrides of conf/pose/colmap.yaml); the user's own --set settings are applied on top of each.
MORE = (
    "max_num_features=16384",
    "sift_options={peak_threshold:0.002}",
    "init_min_num_inliers=30",
    "abs_pose_min_num_inliers=15",
    "init_min_tri_angle=[2.0,4.0,8.0]",
    "init_pair_gap=2",
    "max_init_pairs=6",
)
COLMAP_RUNGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("benchmark", ()),
    ("global", ("mapper=global",)),
    ("more-features", MORE),
    ("more-features-global", (*MORE[:2], "mapper=global")),
)


@dataclass(frozen=True)
class Rung:
    """One rung: a name for the report and the estimator it runs."""

    name: str
    estimator: PoseEstimator


@dataclass
class RungResult:
    """One rung's outcome: the estimate, the 80th-percentile rotation disagreement with the two-view geometry
    (degrees; None when no pair could be checked), whether that passed the check, whether the rung was
    accepted, and a note saying why (not)."""

    name: str
    result: PoseResult
    disagreement_deg: float | None
    consistent: bool
    accepted: bool
    note: str

    def registered(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.result.registered_mask())]


@dataclass
class LadderResult:
    """Every rung tried (in order), the kept one (None on failure) and per-frame notes on the frames the
    kept (or, on failure, the best) rung left unregistered."""

    n: int
    tried: list[RungResult]
    kept: RungResult | None
    frame_notes: dict[int, str] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.kept is not None

    def best(self) -> RungResult | None:
        """The kept rung, else the one with the most registered frames among those that passed the
        two-view check (then among all; the earliest on a tie)."""
        if self.kept is not None or not self.tried:
            return self.kept
        return max(self.tried, key=lambda r: (r.consistent, r.result.n_registered, -self.tried.index(r)))

    def frames(self) -> list[dict]:
        """Per frame: index, registered (by the kept rung), the rung's name or None, and a note."""
        kept = self.kept
        reg = set(kept.registered()) if kept is not None else set()
        return [
            {
                "index": i,
                "registered": i in reg,
                "rung": kept.name if i in reg else None,
                "note": self.frame_notes.get(i),
            }
            for i in range(self.n)
        ]

    def report(self) -> dict:
        """JSON-ready record: the frames, and each rung's registered frames, disagreement and note."""
        return {
            "success": self.success,
            "kept_rung": None if self.kept is None else self.kept.name,
            "frames": self.frames(),
            "rungs": [
                {
                    "name": r.name,
                    "registered": r.registered(),
                    "n_registered": r.result.n_registered,
                    "reason": r.result.reason,
                    "rotation_disagreement_p80_deg": r.disagreement_deg,
                    "accepted": r.accepted,
                    "note": r.note,
                    "seconds": round(r.result.seconds, 3),
                }
                for r in self.tried
            ],
        }

    def failure_line(self) -> str:
        """One line: the best rung's unregistered frames and why, or its disagreement."""
        best = self.best()
        if best is None:
            return "no estimator was run"
        missing = [i for i in range(self.n) if i not in set(best.registered())]
        by_note: dict[str, list[str]] = {}  # rungs (then frames) that share a note are named together
        for r in self.tried:
            by_note.setdefault(r.note, []).append(r.name)
        tried = "; ".join(f"{', '.join(names)}: {note}" for note, names in by_note.items())
        if not missing:
            return f"no rung was accepted ({tried})"
        frames: dict[str, list[int]] = {}
        for i in missing:
            frames.setdefault(self.frame_notes.get(i, "not registered"), []).append(i)
        why = "; ".join(f"{frame_ranges(idx)}: {note}" for note, idx in frames.items())
        return (
            f"frames {frame_ranges(missing)} of 0-{self.n - 1} not registered (best rung {best.name!r}: "
            f"{best.result.n_registered}/{self.n}; {why}); rungs tried: {tried}"
        )


def frame_ranges(indices: Sequence[int]) -> str:
    """'0-3,5,7-8' for [0, 1, 2, 3, 5, 7, 8]; 'none' for none."""
    idx = sorted(int(i) for i in indices)
    if not idx:
        return "none"
    parts, start = [], idx[0]
    for a, b in zip(idx, idx[1:] + [None]):
        if b is None or b != a + 1:
            parts.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return ",".join(parts)


def _frame_notes(n: int, registered: set[int], views: dict[tuple[int, int], TwoView], gaps) -> dict[int, str]:
    """Why each unregistered frame may have been left out: its two-view links to its neighbours."""
    notes = {}
    for k in range(n):
        if k in registered:
            continue
        links = sorted(
            (v.j if v.i == k else v.i, v.inliers) for v in views.values() if k in (v.i, v.j)
        )
        if not links:
            notes[k] = f"no two-view geometry with frames within {max(gaps)} of it (too few inlier matches)"
        else:
            linked = ", ".join(f"{j} ({m} inliers)" for j, m in links)
            notes[k] = f"two-view geometry with frames {linked}, but the mapper did not register it"
    return notes


def run_ladder(
    frames: np.ndarray,
    K_px: np.ndarray | None,
    rungs: Sequence[Rung],
    max_disagreement_deg: float | None = 2.0,
    gaps: tuple[int, ...] = (1, 2),
    on_rung=None,
) -> LadderResult:
    """Run ``rungs`` on (n, H, W, 3) uint8 ``frames`` (pixel intrinsics ``K_px`` or None) until one is
    accepted with every frame registered (see the module docstring). ``max_disagreement_deg=None`` skips
    the two-view check. ``on_rung(rung_result)`` is called after each rung (progress lines)."""
    n = len(frames)
    pairs = neighbour_pairs(n, gaps)
    views_by_K: dict[bytes, dict] = {}

    def views_for(K):
        key = np.asarray(K, dtype=np.float64).tobytes()
        if key not in views_by_K:
            views_by_K[key] = two_view_geometry(frames, K, pairs)
        return views_by_K[key]

    tried: list[RungResult] = []
    for rung in rungs:
        res = rung.estimator.estimate(frames, K_px)
        disagreement, accepted, consistent = None, False, False
        if res.c2w is None:
            note = f"failed ({res.reason})"
        else:
            K = K_px if K_px is not None else res.K_px
            if max_disagreement_deg is not None and K is not None:
                d = rotation_disagreement(res.c2w, views_for(K))
                disagreement = float(np.percentile(d, 80)) if len(d) else None
            consistent = disagreement is None or disagreement <= max_disagreement_deg
            accepted = bool(res.success and consistent)
            check = "" if disagreement is None else f", {disagreement:.2f} deg from two-view (p80)"
            if not res.success:
                note = f"{res.n_registered}/{n} registered ({res.reason}){check}"
            elif not consistent:
                note = (
                    f"{res.n_registered}/{n} registered but inconsistent{check} "
                    f"(> {max_disagreement_deg:g}: a wrong reconstruction)"
                )
            else:
                note = f"{res.n_registered}/{n} registered{check}"
        rr = RungResult(rung.name, res, disagreement, consistent, accepted, note)
        tried.append(rr)
        if on_rung is not None:
            on_rung(rr)
        if accepted and res.n_registered == n:
            break
    accepted = [r for r in tried if r.accepted]
    kept = max(accepted, key=lambda r: (r.result.n_registered, -tried.index(r))) if accepted else None
    out = LadderResult(n, tried, kept)
    best = out.best()
    if best is not None and best.result.n_registered < n:
        K = K_px if K_px is not None else best.result.K_px
        if K is not None:
            out.frame_notes = _frame_notes(n, set(best.registered()), views_for(K), gaps)
    return out
