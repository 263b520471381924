"""The trainer and callback state of a resumed checkpoint: data checked against a schema before Lightning
restores it, file paths kept inside the run's checkpoint folder, removals confined to that folder.

A checkpoint may be a file a user received. Lightning restores ``ModelCheckpoint``'s state as stored (the
``last``, ``best`` and ``kth`` checkpoint paths, ``best_k_models``) and later *removes* the files those paths
name when it writes newer ones. So, before restoring (``check_resumed_state``, called from the module's
``on_load_checkpoint``, i.e. before Lightning's callback restore):

- the top-level trainer fields must have their types (``epoch``/``global_step`` non-negative ints, ``loops``
  and ``callbacks`` mappings, ``optimizer_states``/``lr_schedulers`` lists of mappings), else the checkpoint
  is refused with one line naming the file and the field (:class:`CheckpointStateRefused`);
- each ``ModelCheckpoint`` state must match its schema (``CHECKPOINT_FIELDS``; unknown fields are dropped);
- every path in it is moved from the stored ``dirpath`` to the run's own checkpoint folder (a copied or
  moved run keeps its ``last.ckpt``), resolved (``..`` and symlinks) and kept only when it is a ``*.ckpt``
  strictly inside that folder; any other path is dropped with a warning;
- the state is filed under the running callback's key, so a run resumed with another checkpoint interval
  (Lightning's key holds the interval) keeps writing ``last.ckpt`` instead of ``last-v1.ckpt``.

:func:`removable` is the one rule both checkpoint writers (``SafetensorsCheckpointIO`` and
``Vid3dDeepSpeedStrategy``) apply before deleting: a ``*.ckpt`` entry whose folder resolves inside the run's
checkpoint folder; anything else is left in place with a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from vid3d.errors import InputError

__all__ = [
    "CHECKPOINT_FIELDS",
    "CheckpointStateRefused",
    "check_resumed_state",
    "confine_path",
    "removable",
]

log = logging.getLogger(__name__)

CKPT_SUFFIX = ".ckpt"
PATH_FIELDS = ("best_model_path", "kth_best_model_path", "last_model_path")
SCORE_FIELDS = ("best_model_score", "current_score", "kth_value")
# ModelCheckpoint.state_dict() of Lightning 2.x: field -> what it must hold
CHECKPOINT_FIELDS = {
    "monitor": "a string or null",
    "dirpath": "a string or null",
    **{k: "a path string" for k in PATH_FIELDS},
    **{k: "a number, a 0-d tensor or null" for k in SCORE_FIELDS},
    "best_k_models": "a mapping {checkpoint path: score}",
}


class CheckpointStateRefused(InputError):
    """A resumed checkpoint whose trainer or callback state does not match its schema."""


def _refuse(where: str, field: str, what: str) -> CheckpointStateRefused:
    return CheckpointStateRefused(f"checkpoint {where}: trainer state '{field}' refused: {what}")


# ----------------------------------------------------------------------------------------- paths
def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(p))))


def confine_path(path: str, folder: str | os.PathLike) -> Path | None:
    """``path`` (normalised, absolute) when it is a ``*.ckpt`` strictly inside ``folder`` both as written
    and resolved (``..`` and symlinks followed), else None. A link inside the folder keeps its own name
    (``save_last="link"``'s ``last.ckpt``), but one pointing out of the folder is refused."""
    if not isinstance(path, str) or not path or "\x00" in path or not path.endswith(CKPT_SUFFIX):
        return None
    lexical = Path(os.path.normpath(os.path.abspath(os.path.expanduser(path))))
    root = Path(os.path.normpath(os.path.abspath(folder)))
    if root not in lexical.parents or _real(folder) not in _real(lexical).parents:
        return None
    return lexical


def removable(path: str | os.PathLike, folder: str | os.PathLike | None) -> bool:
    """Whether a checkpoint writer may delete ``path``: a ``*.ckpt`` entry (file, link or DeepSpeed folder)
    whose parent folder resolves to ``folder`` or below it. A link itself is removed, never its target."""
    if folder is None:
        return False
    p = Path(os.path.abspath(os.path.expanduser(path)))
    if not p.name.endswith(CKPT_SUFFIX) or p.name in (".", ".."):
        return False
    root, parent = _real(folder), _real(p.parent)
    return parent == root or root in parent.parents


def _rebase(path: str, stored_dir: Any, run_dir: str | os.PathLike) -> str:
    """A path recorded under the checkpoint's own ``dirpath`` -> the same name under the run's folder
    (a copied or moved run); any other path unchanged (``confine_path`` judges it)."""
    if not (isinstance(path, str) and path and isinstance(stored_dir, str) and stored_dir):
        return path
    p, d = os.path.normpath(path), os.path.normpath(stored_dir)
    if not (os.path.isabs(p) and os.path.isabs(d)) or p == d or os.path.commonpath([p, d]) != d:
        return path
    return os.path.join(os.fspath(run_dir), os.path.relpath(p, d))


# ---------------------------------------------------------------------------------------- schema
def _is_score(v: Any) -> bool:
    if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        return True
    return getattr(v, "shape", None) == () and hasattr(v, "item") and isinstance(v.item(), (int, float))


def _check_top_level(ckpt: dict, where: str) -> None:
    for k in ("epoch", "global_step"):
        v = ckpt.get(k, 0)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise _refuse(where, k, f"must be a non-negative integer, got {v!r:.60}")
    for k in ("loops", "callbacks", "vid3d"):
        v = ckpt.get(k)
        if v is not None and not isinstance(v, dict):
            raise _refuse(where, k, f"must be a mapping, got {type(v).__name__}")
    for k in ("optimizer_states", "lr_schedulers"):
        v = ckpt.get(k)
        if v is not None and not (isinstance(v, list) and all(isinstance(x, dict) for x in v)):
            raise _refuse(where, k, "must be a list of mappings")
    for i, s in enumerate(ckpt.get("lr_schedulers") or []):
        # torch schedulers load with __dict__.update: no stored entry may replace the optimizer they drive
        if "optimizer" in s:
            raise _refuse(where, f"lr_schedulers[{i}].optimizer", "a scheduler state holds no optimizer")
    for key, state in (ckpt.get("callbacks") or {}).items():
        if not isinstance(state, dict):
            raise _refuse(where, f"callbacks/{key!s:.80}", f"must be a mapping, got {type(state).__name__}")


def _check_model_checkpoint_state(state: dict, where: str, field: str) -> dict:
    """The schema of one stored ModelCheckpoint state; unknown fields are dropped. Returns a new dict."""
    out = {}
    for k, v in state.items():
        if k not in CHECKPOINT_FIELDS:
            log.warning("checkpoint %s: unknown field %s/%s dropped", where, field, k)
            continue
        ok = {
            "monitor": v is None or isinstance(v, str),
            "dirpath": v is None or isinstance(v, str),
            "best_k_models": isinstance(v, dict)
            and all(isinstance(p, str) and _is_score(s) for p, s in v.items()),
        }.get(k, isinstance(v, str) if k in PATH_FIELDS else _is_score(v))
        if not ok:
            raise _refuse(where, f"{field}/{k}", f"must be {CHECKPOINT_FIELDS[k]}")
        out[k] = v
    return out


def _confined_state(state: dict, run_dir: str, where: str, field: str) -> dict:
    """Paths moved from the stored dirpath to ``run_dir``; those outside it dropped with a warning."""
    stored_dir = state.get("dirpath")

    def keep(p: str, name: str) -> str | None:
        if p == "":
            return p
        q = confine_path(_rebase(p, stored_dir, run_dir), run_dir)
        if q is None:
            log.warning(
                "checkpoint %s: %s/%s %r is not a *.ckpt inside the run's checkpoint folder %s; dropped",
                where, field, name, p[:200], run_dir,
            )  # fmt: skip
            return None
        return str(q)

    out = dict(state)
    for k in PATH_FIELDS:
        if k in out:
            out[k] = keep(out[k], k) or ""
    if "best_k_models" in out:
        kept = {}
        for p, s in out["best_k_models"].items():
            q = keep(p, "best_k_models")
            if q is not None:
                kept[q] = s
        out["best_k_models"] = kept
    if "best_model_path" in state and not out["best_model_path"] and "best_model_score" in out:
        out["best_model_score"] = None
    out.setdefault("best_model_path", "")  # Lightning's load_state_dict requires both
    out.setdefault("best_model_score", None)
    out["dirpath"] = os.fspath(run_dir)  # so that Lightning restores the (now confined) fields
    return out


def check_resumed_state(ckpt: dict, callbacks: list, where: str) -> None:
    """Check a loaded checkpoint's trainer and callback state in place before Lightning restores it.

    ``callbacks``: the running trainer's callbacks (``ModelCheckpoint`` ones with their resolved ``dirpath``).
    Raises :class:`CheckpointStateRefused` (one line: file and field) on a type mismatch; paths outside the
    run's checkpoint folder are dropped with a warning (see the module docstring)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    if not isinstance(ckpt, dict):
        raise _refuse(where, "/", "must be a mapping")
    _check_top_level(ckpt, where)
    stored = ckpt.get("callbacks")
    if not stored:
        return
    ours = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    theirs = [k for k in stored if isinstance(k, str) and k.startswith("ModelCheckpoint{")]
    checked = {k: _check_model_checkpoint_state(stored.pop(k), where, f"callbacks/{k}") for k in theirs}
    for cb in ours:
        key = cb.state_key
        if key not in checked and len(ours) == 1 and len(checked) == 1:
            # the same callback with another interval (its key holds the interval): same files, same state
            (old, state), = checked.items()
            if state.get("monitor") == cb.monitor:
                log.info("checkpoint %s: ModelCheckpoint state of %s restored for %s", where, old, key)
                key, checked = old, {old: state}
        if key in checked and cb.dirpath:
            stored[cb.state_key] = _confined_state(checked[key], cb.dirpath, where, f"callbacks/{key}")
    # a stored ModelCheckpoint state no running callback takes is dropped: nothing restores its paths

