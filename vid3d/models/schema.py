"""Rebuild a model from a config stored in a file a user hands us: data, never instructions.

A checkpoint (``vid3d.model_config``) and an exported pipeline folder (``vid3d_model.json``) store the
composed ``model`` config: a tree of ``_target_`` nodes. Passing it to Hydra's ``instantiate`` would let
the file name any callable in any installed module (``torch.load``, ``os.system``, ``builtins.open``...).
Instead the tree is read against a **schema**, then built here without Hydra:

- every node sits in a *slot* (``model``, ``backbone``, ``camera_encoder``, ``attention``) and its
  ``_target_`` must be one of vid3d's own classes listed for that slot (``TARGETS``); the check is a
  string comparison done before anything is imported;
- the only other reserved key is ``_partial_``, and it must equal what the target is (a factory called
  with the UNet, or not); ``_args_``, ``_recursive_``, ``_convert_`` and any other ``_x_`` are refused;
- every other key must be a parameter of the target, and its value must match the parameter's annotation
  (numbers, strings, booleans, None, lists of those; plain ``{str: scalar}`` maps for ``*_kwargs``).
  A node is only allowed where the parameter is a slot.

Every number must also lie within its bound (``vid3d.models.bounds``: sizes, layers, heads, levels...),
so a received file cannot hang or exhaust memory. Anything else raises :class:`ConfigRefused` with one
line naming the file and the offending entry.
A new model part (a camera encoder of your own, say) becomes loadable by adding its dotted path to
``TARGETS`` with its slot: the list is code, reviewed like code, never data.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vid3d.errors import InputError
from vid3d.models.bounds import MAX_BACKBONE_PARAMETERS, bound_for, bound_problem, tiny_backbone_parameters


class ConfigRefused(InputError):
    """A stored model config that is not a valid vid3d model description."""


@dataclass(frozen=True)
class Target:
    """An allowed ``_target_``: the slot it fills, whether it is stored as a partial (a factory called
    with the UNet), the callable whose parameters are the node's fields, and fields filled by the
    builder, not the file."""

    slot: str
    partial: bool
    fields_of: str  # dotted path of the callable whose signature lists the allowed fields
    positional: tuple[str, ...] = ()  # leading parameters supplied by the builder (e.g. the UNet)
    # parameters only the user's own config sets (where weights come from): refused in a stored config
    user_only: tuple[str, ...] = ()


_M = "vid3d.models"
TARGETS: dict[str, Target] = {
    f"{_M}.video_diffusion.CameraVideoDiffusion": Target(
        "model", False, f"{_M}.video_diffusion.CameraVideoDiffusion.__init__", ("self",)
    ),
    f"{_M}.backbone.build_tiny_backbone": Target("backbone", False, f"{_M}.backbone.build_tiny_backbone"),
    f"{_M}.backbone.load_svd_backbone": Target(
        "backbone", False, f"{_M}.backbone.load_svd_backbone",
        user_only=("source", "revision", "local_files_only"),
    ),
    f"{_M}.camera_encoder.NoCameraEncoder": Target(
        "camera_encoder", False, f"{_M}.camera_encoder.NoCameraEncoder.__init__", ("self",)
    ),
    f"{_M}.camera_encoder.PluckerEncoder.from_unet": Target(
        "camera_encoder", True, f"{_M}.camera_encoder.PluckerEncoder.__init__", ("self", "block_out_channels")
    ),
    f"{_M}.camera_encoder.RTEncoder.from_unet": Target(
        "camera_encoder", True, f"{_M}.camera_encoder.RTEncoder.__init__", ("self", "temporal_dims")
    ),
    f"{_M}.published.cameractrl.CameraCtrlEncoder.from_unet": Target(
        "camera_encoder", True, f"{_M}.published.cameractrl.CameraCtrlEncoder.__init__",
        ("self", "block_out_channels", "merge_levels"),
    ),
    f"{_M}.published.motionctrl.MotionCtrlEncoder.from_unet": Target(
        "camera_encoder",
        True,
        f"{_M}.published.motionctrl.MotionCtrlEncoder.__init__",
        ("self", "temporal_dims"),
    ),
    f"{_M}.vae.PixelUnshuffleAutoencoder": Target(
        "vae", True, f"{_M}.vae.PixelUnshuffleAutoencoder.__init__", ("self",)
    ),
    f"{_M}.vae.tiny_kl_autoencoder": Target("vae", True, f"{_M}.vae.tiny_kl_autoencoder"),
    f"{_M}.attention.attach_epipolar_attention": Target(
        "attention", True, f"{_M}.attention.modules.attach_epipolar_attention", ("unet",)
    ),
    f"{_M}.attention.attach_full_attention": Target(
        "attention", True, f"{_M}.attention.modules.attach_full_attention", ("unet",)
    ),
    f"{_M}.attention.no_attention": Target(
        "attention", True, f"{_M}.attention.modules.no_attention", ("unet",)
    ),
}
# Stored layouts of earlier vid3d versions, rewritten to today's before validation (migrate_model_config).
# Until 2026-12: one attention target switched on a ``kind`` string.
LEGACY_ATTENTION = f"{_M}.attention.attach_attention"
# Until 2026-12 the tiny backbone chose its VAE by a string (``vae: pixel|tiny_kl`` + ``pixel_factor``).
LEGACY_TINY_BACKBONE = f"{_M}.backbone.build_tiny_backbone"
SVD_BACKBONE = f"{_M}.backbone.load_svd_backbone"
_LEGACY_KINDS = {
    "epipolar": (f"{_M}.attention.attach_epipolar_attention", None),  # every field carries over
    "full": (f"{_M}.attention.attach_full_attention", ("heads", "levels", "registers")),
    "none": (f"{_M}.attention.no_attention", ()),
}
# Per slot, the parameters that hold a node of another slot (a shortcut name is also accepted where the
# annotation allows a string: CameraVideoDiffusion(camera_encoder="plucker")).
SLOT_FIELDS: dict[str, dict[str, str]] = {
    "model": {"backbone": "backbone", "camera_encoder": "camera_encoder", "attention": "attention"},
    "backbone": {"vae": "vae"},
}
# Parameters never taken from a file: torch objects (the caller chooses them).
_NEVER_FROM_FILE = {"torch_dtype"}
_MAX_DEPTH = 8
_MAX_LIST = 64


def _resolve(dotted: str) -> Any:
    """Import a dotted path from TARGETS (never called with anything the file chose)."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@functools.cache
def _fields(target: str) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    spec = TARGETS[target]
    fn = _resolve(spec.fields_of)
    params = dict(inspect.signature(fn).parameters)
    for name in spec.positional:
        params.pop(name, None)
    params = {
        k: p
        for k, p in params.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and k not in _NEVER_FROM_FILE
    }
    return params, typing.get_type_hints(fn)


# ------------------------------------------------------------------ value checks against annotations
def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _plain(v: Any, depth: int = 0) -> bool:
    """Scalars and lists of scalars (no mappings: a mapping could carry a ``_target_``)."""
    if _is_scalar(v):
        return True
    return (
        isinstance(v, (list, tuple))
        and len(v) <= _MAX_LIST
        and depth < 2
        and all(_plain(x, depth + 1) for x in v)
    )


def _matches(v: Any, hint: Any) -> bool:
    if hint is Any:
        return _plain(v)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(v, a) for a in args)
    if hint is type(None):
        return v is None
    if hint is bool:
        return isinstance(v, bool)
    if hint is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if hint is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if hint is str:
        return isinstance(v, str)
    if origin in (tuple, list, Sequence, Iterable) or hint in (tuple, list):
        if not isinstance(v, (list, tuple)) or len(v) > _MAX_LIST:
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(v) == len(args) and all(_matches(x, a) for x, a in zip(v, args, strict=True))
        elem = args[0] if args else Any
        return all(_matches(x, elem) for x in v)
    if origin in (dict, Mapping):
        key_t, val_t = args if args else (str, Any)
        return (
            isinstance(v, dict)
            and len(v) <= _MAX_LIST
            and all(isinstance(k, str) and not k.startswith("_") and _matches(x, val_t) for k, x in v.items())
            and key_t is str
        )
    return False  # classes, callables, torch objects: never from a file


def _accepts_str(hint: Any) -> bool:
    return hint is str or str in typing.get_args(hint)


# ------------------------------------------------------------------ migration of earlier layouts
def migrate_model_config(cfg: Any) -> Any:
    """``cfg`` with earlier vid3d layouts rewritten to today's (a new tree; ``cfg`` is not changed):

    - ``attention: {_target_: ...attach_attention, kind: epipolar|full|none, ...}`` becomes the node of
      that choice's own target (fields another choice ignored are dropped);
    - the tiny backbone's ``vae: pixel|tiny_kl`` string with ``pixel_factor`` / ``kl_channels`` /
      ``kl_latent_channels`` becomes a ``vae`` node (``PixelUnshuffleAutoencoder`` / ``tiny_kl_autoencoder``).

    Anything else is returned as is, and anything unknown is left for validation to refuse. Pure data:
    nothing is imported."""
    if not isinstance(cfg, dict):
        return cfg
    cfg = {**cfg, "backbone": _migrate_backbone(cfg["backbone"])} if "backbone" in cfg else cfg
    if not isinstance(cfg.get("attention"), dict):
        return cfg
    node = cfg["attention"]
    if node.get("_target_") != LEGACY_ATTENTION or node.get("kind", "epipolar") not in _LEGACY_KINDS:
        return cfg
    target, keep = _LEGACY_KINDS[node.get("kind", "epipolar")]
    fields = {k: v for k, v in node.items() if not k.startswith("_") and k != "kind"}
    if keep is not None:
        fields = {k: v for k, v in fields.items() if k in keep}
    partial = {"_partial_": node["_partial_"]} if "_partial_" in node else {}  # validation checks it
    return {**cfg, "attention": {"_target_": target, **partial, **fields}}


def _migrate_backbone(node: Any) -> Any:
    if isinstance(node, dict) and node.get("_target_") == SVD_BACKBONE and "weights" not in node:
        return _migrate_svd_backbone(node)
    if not isinstance(node, dict) or node.get("_target_") != LEGACY_TINY_BACKBONE:
        return node
    legacy = ("vae", "pixel_factor", "kl_channels", "kl_latent_channels")
    if isinstance(node.get("vae"), dict) or not any(k in node for k in legacy):
        return node
    kind = node.get("vae", "pixel")
    rest = {k: v for k, v in node.items() if k not in legacy}
    if kind == "pixel":
        vae = {"_target_": f"{_M}.vae.PixelUnshuffleAutoencoder", "_partial_": True,
               "factor": node.get("pixel_factor", 4)}
    elif kind == "tiny_kl":
        vae = {"_target_": f"{_M}.vae.tiny_kl_autoencoder", "_partial_": True,
               "channels": node.get("kl_channels", [32, 32, 32]),
               "latent_channels": node.get("kl_latent_channels", 4)}
    else:
        return node  # unknown: validation refuses it
    return {**rest, "vae": vae}


def _migrate_svd_backbone(node: dict) -> dict:
    """Until 2026-12 a stored SVD backbone named its ``source`` (hub id or folder), ``revision`` and
    ``local_files_only``. They are dropped (the user's config chooses them now); a ``source`` that is a
    registered repository becomes ``weights: <its registry name>``, anything else leaves ``weights`` unset
    (loading then needs the user's ``pretrained.source``)."""
    from vid3d.weights.registry import entry_for_repo

    user_only = TARGETS[SVD_BACKBONE].user_only
    out = {k: v for k, v in node.items() if k not in user_only}
    source = node.get("source")
    entry = entry_for_repo(source) if isinstance(source, str) else None
    if entry is not None:
        out["weights"] = entry.name
    return out


def stored_model_config(cfg: Any) -> Any:
    """``cfg`` (a composed model config, plain data) as a checkpoint stores it: without the fields only a
    user's config may set (``Target.user_only``: where pretrained weights come from). An SVD backbone
    trained from a ``source`` keeps ``weights`` only when that source is the entry's registered repository.
    A new tree."""
    if isinstance(cfg, list):
        return [stored_model_config(v) for v in cfg]
    if not isinstance(cfg, dict):
        return cfg
    spec = TARGETS.get(cfg.get("_target_")) if isinstance(cfg.get("_target_"), str) else None
    drop = spec.user_only if spec else ()
    out = {k: stored_model_config(v) for k, v in cfg.items() if k not in drop}
    if cfg.get("_target_") == SVD_BACKBONE and cfg.get("source") not in (None, ""):
        # trained from the user's own folder or repository: the registered name would be a guess, so none
        # is stored and loading asks for the source again (eval/sample: pretrained.source, SVD_PATH)
        from vid3d.weights.registry import entry_for_repo

        entry = entry_for_repo(str(cfg["source"]))
        out["weights"] = entry.name if entry is not None else None
    return out


# ------------------------------------------------------------------ validation and building
def _refuse(where: str, path: str, what: str) -> ConfigRefused:
    return ConfigRefused(f"{where}: model config entry '{path}' refused: {what}")


def validate_model_config(cfg: Any, where: str = "model config", slot: str = "model") -> None:
    """Raise :class:`ConfigRefused` unless ``cfg`` is a valid stored model config (nothing imported
    outside vid3d.models, nothing built). Earlier layouts are accepted (``migrate_model_config``)."""
    _validate(migrate_model_config(cfg) if slot == "model" else cfg, where, slot, slot, 0)


def _validate(node: Any, where: str, slot: str, path: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _refuse(where, path, "nested too deeply")
    if not isinstance(node, dict):
        raise _refuse(
            where, path, f"expected a {slot} node (a mapping with '_target_'), got {type(node).__name__}"
        )
    target = node.get("_target_")
    if not isinstance(target, str) or target not in TARGETS:
        allowed = sorted(t for t, s in TARGETS.items() if s.slot == slot)
        raise _refuse(
            where, f"{path}._target_", f"{target!r} is not a vid3d {slot} class (allowed: {allowed})"
        )
    spec = TARGETS[target]
    if spec.slot != slot:
        raise _refuse(where, f"{path}._target_", f"{target!r} is a {spec.slot}, not a {slot}")
    partial = node.get("_partial_", False)
    if partial is not spec.partial:
        raise _refuse(where, f"{path}._partial_", f"must be {spec.partial} for {target}, got {partial!r}")
    params, hints = _fields(target)
    for key, value in node.items():
        sub = f"{path}.{key}"
        if not isinstance(key, str):
            raise _refuse(where, sub, "keys must be strings")
        if key in ("_target_", "_partial_"):
            continue
        if key.startswith("_"):
            raise _refuse(where, sub, "reserved key (only '_target_' and '_partial_' are accepted)")
        if key in spec.user_only:
            raise _refuse(
                where, sub, "where pretrained weights come from is set by your own config (model.backbone."
                f"{key} in train.py, pretrained.{key} in sample.py / eval.py), never by a stored file"
            )
        if key not in params:
            raise _refuse(where, sub, f"{target} has no parameter {key!r}")
        child = SLOT_FIELDS.get(slot, {}).get(key)
        if child is not None:
            if isinstance(value, dict):
                _validate(value, where, child, sub, depth + 1)
                continue
            if isinstance(value, str) and _accepts_str(hints.get(key, Any)):
                continue
            raise _refuse(where, sub, f"expected a {child} node or shortcut name, got {value!r:.80}")
        if not _matches(value, hints.get(key, Any)):
            raise _refuse(where, sub, f"{value!r:.80} does not match {hints.get(key, Any)}")
        _check_bounds(where, target, sub, key, value)


def _check_bounds(where: str, target: str, path: str, key: str, value: Any) -> None:
    """Refuse a number out of its bound (vid3d.models.bounds); a ``{name: value}`` map (``*_kwargs``)
    has each entry checked under its own name."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_bounds(where, target, f"{path}.{k}", k, v)
        return
    problem = bound_problem(value, bound_for(target, key))
    if problem is not None:
        raise _refuse(where, path, problem)


def _build(node: dict, extra: Mapping[str, Any] | None = None) -> Any:
    target = node["_target_"]
    spec = TARGETS[target]
    kwargs: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("_target_", "_partial_"):
            continue
        kwargs[key] = (
            _build(value) if isinstance(value, dict) and key in SLOT_FIELDS.get(spec.slot, {}) else value
        )
    kwargs.update(extra or {})
    fn = _resolve(target)
    return functools.partial(fn, **kwargs) if spec.partial else fn(**kwargs)


def build_model(cfg: Any, where: str, backbone: Any = None, pretrained: Mapping[str, Any] | None = None):
    """Validate then build a stored model config (see the module docstring).

    Args:
        cfg: the stored tree (plain dicts/lists/scalars as read from JSON).
        where: the file it came from, named in every error.
        backbone: an already built Backbone (an exported pipeline folder); else the config's own
            ``backbone`` node is built.
        pretrained: the user's choice of where a pretrained backbone's files come from (``source``,
            ``revision``, ``local_files_only``; None values are left out), given to a backbone whose
            target takes them. Never read from the file.
    Raises:
        ConfigRefused: before anything is imported or called, for anything outside the schema.
    """
    cfg = migrate_model_config(cfg)
    validate_model_config(cfg, where)
    if backbone is not None:
        return _build({k: v for k, v in cfg.items() if k != "backbone"}, {"backbone": backbone})
    if not isinstance(cfg.get("backbone"), dict):
        raise _refuse(where, "model.backbone", "missing (needed to rebuild the frozen backbone)")
    _check_tiny_size(cfg["backbone"], where)
    node = cfg["backbone"]
    user = {k: v for k, v in dict(pretrained or {}).items() if v is not None}
    user = {k: v for k, v in user.items() if k in TARGETS[node["_target_"]].user_only}
    return _build({**cfg, "backbone": {**node, **user}})


def _check_tiny_size(node: dict, where: str) -> None:
    """Refuse a tiny backbone larger than ``bounds.MAX_BACKBONE_PARAMETERS`` (counted on the meta device)."""
    if node.get("_target_") != f"{_M}.backbone.build_tiny_backbone":
        return
    try:
        n = tiny_backbone_parameters(node)
    except (ValueError, TypeError, RuntimeError) as e:  # e.g. channels that GroupNorm cannot divide
        raise _refuse(where, "model.backbone", f"cannot be built: {str(e).splitlines()[0]:.200}") from None
    if n > MAX_BACKBONE_PARAMETERS:
        raise _refuse(
            where, "model.backbone", f"{n:.3g} parameters, more than the limit {MAX_BACKBONE_PARAMETERS:.3g}"
        )
