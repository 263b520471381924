"""The user's mistakes that are cheap to find, found before an entry point's heavy imports (< 3 s).

``check_inputs(cfg, task)`` runs in train.py, sample.py and eval.py right after Hydra composed the config
and before torch, Lightning or a model is touched. Each check raises ``InputError`` (one line naming the
option and what to pass; ``vid3d.errors.user_errors`` prints it, exits with code 2 and removes the run
folder Hydra had just created, so nothing is left behind):

- a mandatory value left unset (``???``): ``data=re10k`` without ``data.root``, ``trajectory=file``
  without ``trajectory.path``, ``ckpt`` for sample.py;
- ``ckpt=``: not there, not a safetensors file, not a vid3d checkpoint (its header alone is read), a
  stored model config naming a class outside vid3d's models (a string check; the full schema check runs
  at load), or trained at another frame size than the one sampling would use (``data.height``/
  ``data.width``; allowed with ``allow_resize=true`` and a warning);
- user images without a ``trajectory=`` (single, interpolate); ``mode=interpolate`` with ``image=`` but
  no ``image_end=``;
- ``metrics.fvd.i3d=`` or ``pose.checkpoint=`` naming no file; the registered weights the run needs (LPIPS
  for the image benchmarks, ``metrics.fvd.i3d=auto``, DUSt3R's release for ``pose=dust3r`` without a
  checkpoint) fetched into the cache, or refused in one line naming the repository and the fetch command;
- ``resume=``: no such path, or no complete checkpoint in it;
- ``eval.camera_controls``: a name that is not a control, or controls without a ``ckpt`` or an
  ``eval.oracle_rows`` row to control; ``eval.oracle_rows``: a name that is not one.
- ``eval.batch_size`` below 1.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from vid3d.errors import InputError

log = logging.getLogger("vid3d")

# what to pass for a mandatory value, by key
_HINTS = {
    "data.root": "the data option reads a dataset folder: pass data.root=<folder holding train/ and test/>",
    "trajectory.path": "trajectory=file reads a camera file: pass trajectory.path=<.txt, .json or .npy>",
    "ckpt": "pass ckpt=<checkpoint file or training run dir>",
}


def missing_values(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Dotted keys of the mandatory values (``???``) left unset in ``cfg`` (depth first, in order)."""
    out = []
    items = enumerate(cfg) if isinstance(cfg, ListConfig) else ((k, None) for k in cfg)
    for key, _ in items:
        full = f"{prefix}{key}"
        if OmegaConf.is_missing(cfg, key):
            out.append(full)
            continue
        node = cfg._get_node(key)
        container = isinstance(node, (DictConfig, ListConfig))
        if container and not node._is_none() and not node._is_interpolation():
            out += missing_values(node, f"{full}.")
    return out


def check_missing(cfg: DictConfig) -> None:
    missing = [k for k in missing_values(cfg) if not k.startswith("hydra.")]
    if missing:
        key = missing[0]
        hint = _HINTS.get(key) or f"pass {key}=<value>"
        more = f" (also unset: {', '.join(missing[1:4])})" if len(missing) > 1 else ""
        raise InputError(f"{key} is not set: {hint}{more}")


def screen_model_config(node, where: str, path: str = "model") -> None:
    """The torch-free part of ``vid3d.models.schema.validate_model_config``, run before the size check so
    that a hostile stored config is what a user is told about: every ``_target_`` at any depth must be one
    of vid3d's model classes (a string lookup in ``TARGETS``) and no other ``_``-key (``_args_``,
    ``_recursive_``, ...) may appear. The full validation (types, bounds) runs when the model is loaded."""
    from vid3d.models.schema import TARGETS, ConfigRefused

    if isinstance(node, list):
        for i, v in enumerate(node):
            screen_model_config(v, where, f"{path}[{i}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        sub = f"{path}.{key}"
        if key == "_target_" and (not isinstance(value, str) or value not in TARGETS):
            raise ConfigRefused(f"{where}: model config entry '{sub}' refused: {value!r:.80} is not a vid3d "
                                "model class")
        if isinstance(key, str) and key.startswith("_") and key not in ("_target_", "_partial_"):
            raise ConfigRefused(f"{where}: model config entry '{sub}' refused: reserved key")
        screen_model_config(value, where, sub)


def check_checkpoint(cfg: DictConfig) -> dict:
    """``ckpt=``: a vid3d checkpoint, trained at the frame size sampling will use. Returns its metadata."""
    from vid3d.models.checkpoint import read_checkpoint_info, resolve_checkpoint

    path = resolve_checkpoint(cfg.ckpt)
    info = read_checkpoint_info(path)
    screen_model_config(info.get("model_config"), str(path))
    trained = info.get("image_size")
    if not (isinstance(trained, list) and len(trained) == 2 and all(type(v) is int for v in trained)):
        return info  # not recorded (or not a size): nothing to compare; loading checks the file
    size = [OmegaConf.select(cfg, "data.height"), OmegaConf.select(cfg, "data.width")]
    if all(isinstance(v, int) for v in size) and trained != size:
        what = (
            f"ckpt={cfg.ckpt} was trained at {trained[0]}x{trained[1]} (H x W) but would sample at "
            f"{size[0]}x{size[1]} (data.height x data.width)"
        )
        if not cfg.get("allow_resize", False):
            raise InputError(
                f"{what}: pass data.height={trained[0]} data.width={trained[1]}, or allow_resize=true to "
                "sample at another size anyway"
            )
        log.warning("%s (allow_resize=true): results off the training size may be worse", what)
    return info


def check_mode(cfg: DictConfig) -> None:
    """User images need a camera path (single, interpolate) and interpolation needs a last frame."""
    target = str(OmegaConf.select(cfg, "mode._target_") or "")
    explore = target.endswith("ExploreMode")
    if (cfg.get("image") or cfg.get("images")) and not explore and cfg.get("trajectory") is None:
        raise InputError(
            "user images need a camera path: add trajectory=<preset> (e.g. trajectory=zoom_in) or "
            "trajectory=file trajectory.path=<camera file>"
        )
    if target.endswith("InterpolateMode") and cfg.get("image") and not cfg.get("image_end"):
        raise InputError(
            f"mode=interpolate with image={cfg.image} needs its last frame: pass image_end=<image file> "
            "(or images=<list.txt> with 'first last' on each line)"
        )


def check_weights(cfg: DictConfig) -> None:
    """Evaluation weights named by a local path must exist; the registered ones the run needs are fetched
    now (or refused in one line, within seconds, offline): ``fetch_registered_weights``."""
    i3d = OmegaConf.select(cfg, "metrics.fvd.i3d")
    if i3d and i3d != "auto" and not Path(str(i3d)).expanduser().is_file():
        raise InputError(f"metrics.fvd.i3d={i3d}: no such file (the I3D TorchScript weights, e.g. "
                         "i3d_torchscript.pt; metrics.fvd.i3d=auto fetches the registered one)")
    pose = cfg.get("pose")
    if pose is not None and str(pose.get("_target_", "")).endswith("Dust3rPoseEstimator"):
        ckpt = pose.get("checkpoint")
        p = Path(str(ckpt or "")).expanduser()
        local = str(ckpt or "").startswith(("/", ".", "~")) or p.suffix in (".pth", ".safetensors", ".pt")
        if ckpt and local and not p.exists():
            raise InputError(f"pose.checkpoint={ckpt}: no such file or folder (the DUSt3R weights)")
    fetch_registered_weights(cfg)


def fetch_registered_weights(cfg: DictConfig) -> None:
    """Fetch (or refuse in one line, within seconds offline) the registered weights an eval run will load:
    LPIPS' backbone for the benchmarks that score images (sparse, recon) unless
    ``metrics.lpips.backbone_weights`` names a file, the I3D file for ``metrics.fvd.i3d=auto``, and DUSt3R's
    hub weights for ``pose=dust3r``. Uses ``vid3d.weights`` only (no torch import)."""
    from vid3d.weights import fetch_hub_files, fetch_url, get

    bench = str(OmegaConf.select(cfg, "benchmark._target_") or "")
    net = OmegaConf.select(cfg, "metrics.lpips.net")
    if bench.endswith(("SparseBenchmark", "ReconBenchmark")) and net in ("alex", "vgg") and not (
        OmegaConf.select(cfg, "metrics.lpips.backbone_weights")
    ):
        fetch_url(get(f"lpips_{net}"), what=f"metrics.lpips.net={net}")
    if OmegaConf.select(cfg, "metrics.fvd.i3d") == "auto" and bench.endswith("CameraBenchmark"):
        fetch_url(get("i3d"), what="metrics.fvd.i3d=auto")
    pose = cfg.get("pose")
    if bench.endswith("CameraBenchmark") and pose is not None and str(pose.get("_target_", "")).endswith(
        "Dust3rPoseEstimator"
    ) and not pose.get("random_init"):
        import re

        ckpt = pose.get("checkpoint") or get("dust3r_512").repo
        if not Path(str(ckpt)).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", str(ckpt)):
            fetch_hub_files(str(ckpt), ("model.safetensors",), what=f"pose.checkpoint={ckpt}")


def check_eval_options(cfg: DictConfig) -> None:
    """``eval.batch_size``: videos per forward, at least 1 (the typed schema fixes only its type)."""
    batch_size = OmegaConf.select(cfg, "eval.batch_size")
    if batch_size is not None and int(batch_size) < 1:
        raise InputError(f"eval.batch_size={batch_size}: videos per forward must be >= 1 (1: one at a time)")


def check_resume(cfg: DictConfig) -> None:
    """``resume=``: a checkpoint file, a DeepSpeed checkpoint dir, or a run dir with a complete checkpoint."""
    resume = cfg.get("resume")
    if not resume:
        return
    from vid3d.models.checkpoint import WEIGHTS_FILE, read_checkpoint_info

    p = Path(str(resume)).expanduser()
    if not p.exists():
        raise InputError(f"resume={resume}: no such file or run folder (pass resume=<training run dir> or "
                         "resume=<run>/checkpoints/last.ckpt)")
    if p.is_dir() and (p.name.endswith(".ckpt") or (p / WEIGHTS_FILE).is_file()):
        return  # a DeepSpeed checkpoint directory: DeepSpeed reads it
    if p.is_file():
        read_checkpoint_info(p)
        return
    folder = p / "checkpoints" if (p / "checkpoints").is_dir() else p
    for c in sorted(folder.glob("*.ckpt"), key=lambda c: c.stat().st_mtime, reverse=True):
        try:
            if c.is_dir() or read_checkpoint_info(c) is not None:
                return
        except InputError:
            continue  # a damaged or partly written file: an older one may be complete
    raise InputError(f"resume={resume}: no complete checkpoint (*.ckpt) in {folder} to resume from")


def check_camera_controls(cfg: DictConfig) -> None:
    """``eval.camera_controls``: known names (``vid3d.evaluation.camera_controls``), each once, and a ``ckpt``
    or ``eval.oracle_rows`` whose rows they control; ``eval.oracle_rows``: known names
    (``vid3d.evaluation.depth_warp.ORACLE_ROWS``), each once (the camera benchmark only)."""
    from vid3d.evaluation.camera_controls import check_controls
    from vid3d.evaluation.depth_warp import check_oracle_rows

    oracle = check_oracle_rows(list(OmegaConf.select(cfg, "eval.oracle_rows", default=None) or []))
    names = list(OmegaConf.select(cfg, "eval.camera_controls", default=None) or [])
    if not names:
        return
    check_controls(names)
    if not cfg.get("ckpt") and not oracle:
        raise InputError(
            "eval.camera_controls adds rows of a model or of eval.oracle_rows: pass ckpt=<checkpoint> or "
            "'eval.oracle_rows=[depth_warp]', or drop it"
        )


def check_inputs(cfg: DictConfig, task: str) -> None:
    """All the checks that apply to ``task`` ("train", "sample" or "eval"); see the module docstring."""
    check_missing(cfg)
    if task == "eval":
        check_eval_options(cfg)
    if task == "train":
        check_resume(cfg)
        return
    if cfg.get("ckpt"):
        check_checkpoint(cfg)
    if task == "sample":
        check_mode(cfg)
    if task == "eval":
        check_weights(cfg)
        check_camera_controls(cfg)
