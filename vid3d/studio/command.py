"""What the studio runs, as ``sample.py`` overrides: one request, one override list, one command line.

The studio composes the same override list with Hydra (``conf/sample.yaml``) to get the config it runs,
so the command line shown in the page is the one that reproduces the result (same inputs, camera path,
sampler, seed and frame size): ``python sample.py <overrides>``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from vid3d.config import CONFIG_DIR
from vid3d.config_schema import SamplerOptions
from vid3d.errors import InputError
from vid3d.sampling.trajectories import PRESETS

__all__ = [
    "PATH_KINDS",
    "Request",
    "hydra_value",
    "REPO_ROOT",
    "relative_to_root",
    "reproduce_command",
    "sample_command",
    "sample_overrides",
]

# camera-path sources: a preset, the keyframe table (written to a JSON file), an uploaded pose file,
# the dataset clip's own ground-truth path
PATH_KINDS = ("preset", "keyframes", "file", "clip")
_PLAIN = re.compile(r"[A-Za-z0-9_./:+@-]+")
# the folder ``python sample.py`` runs from: the repository root (sample.py's and conf/'s folder)
REPO_ROOT = CONFIG_DIR.parent


@dataclass
class Request:
    """One generation: inputs, camera path and sampler settings (the fields of the command line).

    ``image``: path of the input image; or ``data`` (a ``conf/data`` option) and ``clip_index``: the
    clip of that option's test set whose first frame is the input (sample.py takes the first
    ``clip_index + 1`` clips; the studio's sample is the last of them). ``trajectory_file``: the pose file
    of ``path="keyframes"`` (written by the studio) or ``path="file"`` (the upload)."""

    ckpt: str
    height: int
    width: int
    num_frames: int
    path: str = "preset"
    image: str | None = None
    data: str | None = None
    clip_index: int | None = None
    preset: str = "orbit_left"
    amplitude: str | float = "medium"
    speed: float = 1.0
    trajectory_file: str | None = None
    steps: int = SamplerOptions.num_steps  # the sampler's default (vid3d.config_schema)
    guidance_min: float = 1.0
    guidance_max: float = 3.0
    seed: int = 0
    fov_deg: float = 60.0
    fps: int = 8
    reconstruct: dict[str, int | float] | None = field(default=None)


def hydra_value(value) -> str:
    """``value`` as a Hydra override value: plain text as is, anything else single-quoted (Hydra's
    quoting: backslash before a quote or backslash)."""
    text = str(value)
    if _PLAIN.fullmatch(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _number(x) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


def sample_overrides(req: Request) -> list[str]:
    """The Hydra overrides of ``sample.py`` for ``req`` (InputError for a request it cannot express)."""
    if req.path not in PATH_KINDS:
        raise InputError(f"camera path: choose one of {', '.join(PATH_KINDS)}, got {req.path!r}")
    out = [f"ckpt={hydra_value(req.ckpt)}"]
    if req.image is not None:
        if req.path == "clip":
            raise InputError(
                "camera path 'clip': an uploaded image has no trajectory of its own; pick a "
                "dataset clip as the input, or another camera path"
            )
        out.append(f"image={hydra_value(req.image)}")
    elif req.data is not None and req.clip_index is not None:
        if req.clip_index < 0:
            raise InputError(f"clip: the index must be >= 0, got {req.clip_index}")
        out += [f"data={hydra_value(req.data)}", f"num_samples={int(req.clip_index) + 1}"]
    else:
        raise InputError("input: upload an image, or pick a clip of the dataset")
    out += [
        f"data.height={int(req.height)}",
        f"data.width={int(req.width)}",
        f"data.num_frames={int(req.num_frames)}",
    ]
    if req.path == "preset":
        if req.preset not in PRESETS:
            raise InputError(f"preset: unknown {req.preset!r}; choose from {', '.join(PRESETS)}")
        out += [
            f"trajectory={req.preset}",
            f"trajectory.amplitude={hydra_value(_number(req.amplitude))}",
            f"trajectory.speed={_number(float(req.speed))}",
        ]
    elif req.path in ("keyframes", "file"):
        if not req.trajectory_file:
            raise InputError(
                f"camera path {req.path!r}: no pose file (upload one, or fill the keyframe table)"
            )
        out += ["trajectory=file", f"trajectory.path={hydra_value(req.trajectory_file)}"]
    out += [
        f"sampler.num_steps={int(req.steps)}",
        f"sampler.guidance_min={_number(float(req.guidance_min))}",
        f"sampler.guidance_max={_number(float(req.guidance_max))}",
        f"seed={int(req.seed)}",
        f"fov_deg={_number(float(req.fov_deg))}",
        f"fps={int(req.fps)}",
    ]
    if req.reconstruct:
        out.append("reconstruct=true")
        out += [f"reconstruction.{k}={_number(v)}" for k, v in sorted(req.reconstruct.items())]
    return out


def relative_to_root(path: str, root: str | Path) -> str:
    """``path`` relative to ``root`` (POSIX separators) when it lies under ``root``; else unchanged.
    Both are resolved first, so a symlinked or ``..``-laden path under ``root`` still counts."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def sample_command(
    req: Request, python: str = "python", multiline: bool = False, root: str | Path | None = None
) -> str:
    """The shell command line: ``python sample.py`` and the overrides, each quoted for a POSIX shell;
    ``multiline``: one override per line, joined by backslash-newline (the same command for the shell).
    ``root``: the folder the command is said to run from (the repository root): a checkpoint under it is
    shown relative to it (``ckpt=assets/...``), one elsewhere keeps its absolute path."""
    if root is not None:
        req = replace(req, ckpt=relative_to_root(req.ckpt, root))
    words = [f"{python} sample.py", *(shlex.quote(o) for o in sample_overrides(req))]
    return " \\\n  ".join(words) if multiline else " ".join(words)


def reproduce_command(req: Request, multiline: bool = False) -> str:
    """The command line a studio result names, in the page and in its ``command.txt``: ``sample_command``
    run from ``REPO_ROOT``, so a checkpoint under the repository (the committed default model:
    ``ckpt=assets/...``) is relative to it and any other keeps its absolute path."""
    return sample_command(req, multiline=multiline, root=REPO_ROOT)
