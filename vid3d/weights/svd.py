"""Where an SVD backbone's files are: a local folder, or a hub repository fetched into the HF cache.

Kept free of torch/diffusers imports so that entry points can resolve (download, or refuse in one line)
before their heavy imports: ``train.py model/backbone=svd`` answers offline within seconds.
"""

from __future__ import annotations

import os
import re

from vid3d.errors import InputError

from .fetch import fetch_hub_files
from .registry import HubWeights, get, svd_files

__all__ = ["resolve_svd_source"]

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def resolve_svd_source(
    source: str | os.PathLike | None = None,
    weights: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    variant: str | None = None,
) -> str:
    """The local folder of an SVD backbone: ``source`` if it is a folder (or not a hub id: the loader then
    names what is missing); else the hub repository ``source`` (or, with no source, registry entry
    ``weights``'s repository and revision) with the files of ``svd_files(variant)``, fetched into the
    Hugging Face cache when missing. Raises ``WeightsUnavailable`` / ``InputError`` in one line."""
    if source in (None, ""):
        if not weights:
            raise InputError(
                "model.backbone: no pretrained backbone named: set model.backbone.weights=svd|svd_xt (the "
                "registered hub repositories) or model.backbone.source=<diffusers SVD folder or hub id>"
            )
        try:
            entry = get(str(weights))
        except KeyError as e:
            raise InputError(f"model.backbone.weights: {e.args[0]}") from None
        if not isinstance(entry, HubWeights) or "unet/config.json" not in entry.files:
            raise InputError(f"model.backbone.weights={weights}: not an SVD backbone entry")
        source, revision = entry.repo, revision or entry.revision
    if variant is not None and not re.fullmatch(r"\w{1,32}", str(variant)):
        raise InputError(f"model.backbone.variant={variant!r}: expected a name such as fp16")
    source = str(source)
    if os.path.isdir(source) or not _HUB_ID.fullmatch(source):
        return source
    return str(fetch_hub_files(source, svd_files(variant), revision, local_files_only,
                               what=f"model.backbone.source={source}"))
