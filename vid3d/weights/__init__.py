"""Pretrained weights: what each benchmark needs (``registry``), fetched on first use into the standard
caches and reused offline (``fetch``); ``python -m vid3d.weights list|fetch|verify`` (``__main__``)."""

from .fetch import (
    WeightsUnavailable,
    cached_hub_file,
    fetch,
    fetch_hub_files,
    fetch_url,
    hub_cache,
    is_offline,
    torch_cache,
)
from .registry import BENCHMARKS, REGISTRY, HubWeights, UrlWeights, entry_for_repo, get, svd_files

__all__ = [
    "BENCHMARKS",
    "REGISTRY",
    "HubWeights",
    "UrlWeights",
    "WeightsUnavailable",
    "cached_hub_file",
    "entry_for_repo",
    "fetch",
    "fetch_hub_files",
    "fetch_url",
    "get",
    "hub_cache",
    "is_offline",
    "svd_files",
    "torch_cache",
]
