"""What a received pipeline folder must hold before vid3d reads anything else from it.

An exported folder (``vid3d.sampling.pipeline``) is data, but diffusers' ``trust_remote_code=True``
*executes* its ``vid3d_pipeline.py``. vid3d's own loader never runs code from the folder, and refuses a
folder that would make diffusers run anything but what vid3d wrote:

- ``vid3d_pipeline.py`` is absent (exports written before the diffusers entry) or its bytes are exactly
  an entry some vid3d version wrote (``ENTRY_SHA256``: a change of the entry adds its hash here, so
  earlier exports keep loading; a test checks today's is listed);
- no other Python file (``.py``, ``.pyc``, ``.so``...) anywhere in the folder;
- ``model_index.json`` names no components (diffusers would import and build them) and no other class;
- the components' ``config.json`` numbers are bounded (``vid3d.models.bounds.COMPONENT_BOUNDS``) and the
  backbone they describe has at most ``MAX_BACKBONE_PARAMETERS`` parameters (counted on the meta device).

Every JSON file is read only if it is a regular file of at most ``MAX_JSON_BYTES``. Each refusal is an
:class:`~vid3d.errors.InputError` with one line naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vid3d.data.files import UnsafePath, read_regular_bytes
from vid3d.errors import InputError

MAX_JSON_BYTES = 1 << 20
# sha256 of every vid3d_pipeline.py vid3d has written (vid3d.sampling.pipeline.DIFFUSERS_ENTRY)
ENTRY_SHA256 = (
    # until 2026-12-04: imports vid3d.sampling.export, removed 2026-12-07 (issue 36). vid3d's loader never
    # runs the entry, so such folders still load here; diffusers' trust_remote_code needs a re-export.
    "3beb0b5ca286f17ba17cb095e5c0302d1b92ea8ca7afd739a34a67fe6bb7c58d",
    "cb400e80d757055b768c50bd54643adbe182c54ce0edc6e9c12bbf7d03bda3cf",  # since 2026-12-04
)
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".so", ".dylib", ".dll")
COMPONENTS = ("unet", "vae", "image_encoder")


class FolderRefused(InputError):
    """A pipeline folder vid3d will not load (str: "<file>: <what is wrong>")."""


def read_json(path: str | os.PathLike, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in ``path``: a regular file of at most ``max_bytes``; FolderRefused otherwise."""
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise FolderRefused(f"{path}: {size} bytes, more than the {max_bytes} allowed for this file")
        return json.loads(read_regular_bytes(path))
    except (UnsafePath, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise FolderRefused(f"{path}: not a readable JSON file ({str(e).splitlines()[0][:120]})") from None


def check_entry_file(folder: Path, entry_name: str) -> None:
    """FolderRefused unless ``folder/entry_name`` is absent or holds exactly an entry listed in
    ``ENTRY_SHA256``."""
    path = folder / entry_name
    if not os.path.lexists(path):
        return
    try:
        data = read_regular_bytes(path) if os.stat(path).st_size <= 1 << 16 else None
    except UnsafePath as e:
        raise FolderRefused(str(e)) from None
    if data is None or hashlib.sha256(data).hexdigest() not in ENTRY_SHA256:
        raise FolderRefused(
            f"{path}: differs from the file vid3d writes; diffusers would run it as code "
            "(trust_remote_code), so this folder is refused: export it again with vid3d"
        )


def check_no_other_code(folder: Path, entry_name: str) -> None:
    """FolderRefused if any file other than the entry could be imported as code."""
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in CODE_SUFFIXES and p != folder / entry_name:
            raise FolderRefused(f"{p}: a code file in a pipeline folder (vid3d writes none but {entry_name})")


def check_index(index: Any, path: Path, class_name: list[str]) -> None:
    """FolderRefused unless ``model_index.json`` names only vid3d's entry class and no component (every
    key underscored, as vid3d writes it; ``format``/``version`` of exports before 2026-12 allowed)."""
    if not isinstance(index, dict):
        raise FolderRefused(f"{path}: expected a JSON object, got {type(index).__name__}")
    legacy = "_vid3d_format" not in index
    for key in index:
        if not key.startswith("_") and not (legacy and key in ("format", "version")):
            raise FolderRefused(
                f"{path}: entry '{key}' refused (a component diffusers would import; vid3d writes none)"
            )
    name = index.get("_class_name")
    if not legacy and name != class_name:
        raise FolderRefused(f"{path}: '_class_name' {name!r:.80} is not vid3d's entry {class_name}")
    if legacy and name not in (None, "CameraVideoPipeline", class_name):
        raise FolderRefused(f"{path}: '_class_name' {name!r:.80} is not a vid3d pipeline")


def check_component_configs(folder: Path, pixel_vae_file: str) -> None:
    """FolderRefused for a component ``config.json`` (or the pixel VAE's file) holding an out-of-bound
    number, or a backbone above ``MAX_BACKBONE_PARAMETERS`` parameters."""
    from vid3d.models.bounds import (
        MAX_BACKBONE_PARAMETERS,
        backbone_folder_parameters,
        component_config_problem,
    )

    configs: dict[str, dict[str, Any]] = {}
    files = [(c, folder / c / "config.json") for c in COMPONENTS]
    files.append(("pixel_vae", folder / "vae" / pixel_vae_file))
    for name, path in files:
        if not os.path.lexists(path):
            continue
        config = read_json(path)
        problem = component_config_problem(config)
        if problem is not None:
            raise FolderRefused(f"{path}: entry '{problem[0]}' refused: {problem[1]}")
        if name != "pixel_vae":
            configs[name] = config
    try:
        n = backbone_folder_parameters(configs)
    except Exception as e:  # noqa: BLE001 - any config diffusers/transformers cannot build is refused
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise FolderRefused(f"{folder}: component configs cannot be built ({first})") from None
    if n > MAX_BACKBONE_PARAMETERS:
        raise FolderRefused(
            f"{folder}: the component configs describe {n:.3g} parameters, more than the limit "
            f"{MAX_BACKBONE_PARAMETERS:.3g}"
        )
