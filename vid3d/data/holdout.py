"""A validation set held out of a training split, by clip id (no extra folder, no list file).

A clip is *held out* when a hash of ``(seed, clip_id)`` mapped to [0, 1) is below ``fraction``: the
decision depends on the clip's own id only, so it is the same on every machine, process and data order,
and adding clips to the split never moves an existing clip between the two sides. The training dataset
keeps the rest (``keep="rest"``); the validation dataset, built on the same split, keeps the held-out
clips (``keep="held_out"``). Used by ``hparams_search=optuna`` so that the searched objective is never
measured on the test split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
KEEP = ("rest", "held_out")


def holdout_score(clip_id: str, seed: int) -> float:
    """Uniform number in [0, 1) from SHA-256 of ``"{seed}:{clip_id}"`` (first 8 bytes, big endian)."""
    digest = hashlib.sha256(f"{int(seed)}:{clip_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_held_out(clip_id: str, fraction: float, seed: int) -> bool:
    return holdout_score(clip_id, seed) < fraction


def check_holdout(holdout: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Validate ``{"fraction": (0, 1), "seed": int, "keep": "rest" | "held_out"}`` (keep defaults to rest)."""
    if holdout is None:
        return None
    h = dict(holdout)
    unknown = set(h) - {"fraction", "seed", "keep"}
    if unknown or "fraction" not in h:
        raise ValueError(f"holdout must be {{fraction, seed, keep}}, got {dict(holdout)}")
    h["fraction"], h["seed"], h["keep"] = float(h["fraction"]), int(h.get("seed", 0)), h.get("keep", "rest")
    if not 0.0 < h["fraction"] < 1.0:
        raise ValueError(f"holdout.fraction must be in (0, 1), got {h['fraction']}")
    if h["keep"] not in KEEP:
        raise ValueError(f"holdout.keep must be one of {KEEP}, got {h['keep']!r}")
    return h


def select(items: Sequence[T], clip_id: Callable[[T], str], holdout: Mapping[str, Any] | None,
           source: str, clip_list: tuple[Sequence[str], str] | None = None) -> list[T]:
    """The items on ``holdout["keep"]``'s side (all items when ``holdout`` is None). ``source`` names the
    split in the error raised when that side is empty. ``clip_list``: ``(ids, where they came from)``
    (``vid3d.data.test_lists.resolve_clip_list``): keep only those clips first."""
    if clip_list is not None:
        from .test_lists import keep_listed

        items = keep_listed(items, clip_id, clip_list[0], clip_list[1], source)
    h = check_holdout(holdout)
    if h is None:
        return list(items)
    want = h["keep"] == "held_out"
    out = [it for it in items if is_held_out(clip_id(it), h["fraction"], h["seed"]) == want]
    if items and not out:
        raise ValueError(
            f"{source}: holdout {h} leaves no {'held-out' if want else 'training'} clip of {len(items)}; "
            "change holdout.fraction or holdout.seed"
        )
    return out
