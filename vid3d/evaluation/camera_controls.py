"""Control cameras for the camera benchmark's model rows (``eval.camera_controls``; pure numpy, torch-free).

A control row samples the same model, from the same first frame and with the same seed as its model row,
but along cameras that are not the clip's; it is scored against the clip's ground-truth trajectory as any
row is. A model that follows its camera scores far better with its own cameras than with these.

- ``static``: every frame's camera-to-world = frame 0's (the camera never moves).
- ``other``: another clip's trajectory, re-anchored at this clip's frame 0: ``c2w_i[0] @ inv(c2w_j[0]) @
  c2w_j`` (the other clip's motion relative to its first frame, started where this clip starts). The donor
  ``j`` is a fixed derangement of the evaluated clips: sorted by clip id, clip ``k`` takes clip ``k+1``'s
  trajectory and the last takes the first's (a cyclic shift, so no clip keeps its own; independent of
  sharding and trials). Intrinsics stay the clip's own (they describe its frame 0).

Conventions: ``c2w`` is (F, 4, 4) OpenCV camera-to-world, float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vid3d.errors import InputError, check_names

CAMERA_CONTROLS = ("static", "other")
LABELS = {"static": "static cameras", "other": "other clip's cameras"}


def check_controls(names: Sequence[str], where: str = "eval.camera_controls") -> list[str]:
    """``names`` as a list when each is one of ``CAMERA_CONTROLS`` and none repeats; else ValueError (one
    line naming ``where``, the bad name and the choices; an ``InputError``)."""
    return check_names(names, CAMERA_CONTROLS, where, "camera control")


def control_row_name(model_name: str, control: str) -> str:
    """The results row of ``control`` for the model row ``model_name``, e.g. ``epipolar[static cameras]``."""
    return f"{model_name}[{LABELS[control]}]"


def static_cameras(c2w: np.ndarray) -> np.ndarray:
    """(F, 4, 4) -> (F, 4, 4): every frame's pose = frame 0's."""
    c2w = np.asarray(c2w, dtype=np.float64)
    return np.repeat(c2w[:1], len(c2w), axis=0)


def reanchored(c2w: np.ndarray, donor_c2w: np.ndarray) -> np.ndarray:
    """The donor's motion started at ``c2w``'s frame 0: ``c2w[0] @ inv(donor[0]) @ donor`` (F, 4, 4).
    Frame 0 is ``c2w[0]``; the relative pose from frame 0 to frame f is the donor's."""
    c2w = np.asarray(c2w, dtype=np.float64)
    donor = np.asarray(donor_c2w, dtype=np.float64)
    if donor.shape != c2w.shape:
        raise ValueError(f"the donor trajectory has shape {donor.shape}, the clip's {c2w.shape}")
    return c2w[0] @ np.linalg.inv(donor[0]) @ donor


def donors(clip_ids: Sequence[str]) -> dict[str, str]:
    """The fixed derangement: {clip_id: donor clip_id}, clip k (ids sorted) takes clip k+1 (the last takes
    the first). Needs >= 2 distinct ids (``InputError`` otherwise)."""
    ids = sorted(set(clip_ids))
    if len(ids) < 2:
        raise InputError(f"eval.camera_controls: 'other' needs at least 2 clips, got {len(ids)}")
    return {a: b for a, b in zip(ids, ids[1:] + ids[:1])}
