"""Fetch registered weights on first use, reuse them offline, and say in one line what is missing.

Hub files go through ``huggingface_hub.hf_hub_download`` into the standard Hugging Face cache (with its
progress bars; an interrupted download is resumed from its ``.incomplete`` blob and only a complete, size-
checked file is moved into the snapshot). URL files are streamed to a temporary sibling in torch hub's
cache, size- and hash-checked, then renamed: a half-written file is never where a loader looks.

Order, so that no network means an answer within seconds (huggingface_hub alone retries a failing HEAD
for about 25 s per file): the cache first; then, when something is missing, offline mode
(``HF_HUB_OFFLINE=1``) or ``local_files_only`` stop at once; else one TCP connection to the endpoint with a
short timeout decides whether the network is there at all. Every failure is a ``WeightsUnavailable``
(an ``InputError``: entry points print one line) naming the repository or URL, the file, the cache folder
and the command that fetches it; a gated repository's 401/403 names its licence page and ``HF_TOKEN``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from vid3d.atomic import atomic_target
from vid3d.errors import InputError

from .registry import HubWeights, UrlWeights, entry_for_repo, get

__all__ = [
    "WeightsUnavailable",
    "cached_hub_file",
    "fetch",
    "fetch_hub_files",
    "fetch_url",
    "hub_cache",
    "is_offline",
    "torch_cache",
]

CONNECT_TIMEOUT_S = 3.0  # the reachability probe
READ_TIMEOUT_S = 10.0  # per read of a URL download; hub downloads use HF_HUB_DOWNLOAD_TIMEOUT
_TRUE = {"1", "on", "yes", "true"}


class WeightsUnavailable(InputError):
    """Pretrained weights that are neither cached nor fetchable now (the message says how to get them)."""


# ------------------------------------------------------------------------------------------ where
def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set now or when huggingface_hub was imported."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or env.strip().lower() in _TRUE


def hub_cache() -> Path:
    """The Hugging Face hub cache (``HF_HUB_CACHE``, default ``$HF_HOME/hub``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def torch_cache() -> Path:
    """Torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where URL weights are kept: the
    folder ``torch.hub.get_dir()`` names by default, computed without importing torch."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:  # honours torch.hub.set_dir
        return Path(torch.hub.get_dir()) / "checkpoints"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("TORCH_HOME") or os.path.join(cache, "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def _endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def _unreachable(url: str) -> str | None:
    """None when a TCP connection to ``url``'s host (or to the proxy configured for its scheme:
    ``HTTPS_PROXY`` ...) opens within CONNECT_TIMEOUT_S; else the reason."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as e:
        return f"{parts.hostname}:{port} cannot be reached ({type(e).__name__}: {e})"


# ------------------------------------------------------------------------------------------ hub
def _hub_line(repo: str, file: str, revision: str, why: str, what: str | None) -> str:
    entry = entry_for_repo(repo)
    rev = "" if revision == "main" else f" --revision {revision}"
    cmd = entry.fetch_command(revision) if entry else f"hf download {repo} {file}{rev}"
    head = f"{what}: " if what else ""
    return (f"{head}{repo} (revision {revision}) file {file} is not in the Hugging Face cache "
            f"({hub_cache()}) and {why}; fetch it where there is a network with `{cmd}` (then copy "
            f"{hub_cache()} here)")


def _gated_line(repo: str, what: str | None) -> str:
    head = f"{what}: " if what else ""
    return (f"{head}{repo} is a gated repository: accept its licence at https://huggingface.co/{repo} "
            "(logged in), make a read token at https://huggingface.co/settings/tokens, set HF_TOKEN=<token> "
            f"(or run `hf auth login`), then run again")


def cached_hub_file(repo: str, file: str, revision: str = "main") -> Path | None:
    """The cached path of ``file`` of ``repo`` at ``revision``, or None (never touches the network)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(repo, file, revision=revision, cache_dir=hub_cache(),
                                    local_files_only=True))
    except (EntryNotFoundError, OSError, ValueError):
        return None


def _snapshot_of(path: Path, file: str) -> Path:
    return path.parents[len(Path(file).parts) - 1]


def fetch_hub_files(
    repo: str,
    files: tuple[str, ...] | list[str],
    revision: str | None = None,
    local_files_only: bool = False,
    what: str | None = None,
) -> Path:
    """The snapshot folder holding every one of ``files`` of ``repo`` at ``revision``, downloaded if needed.

    Args:
        repo: hub repository id ("owner/name").
        files: paths inside the repository.
        revision: branch, tag or commit (None: "main").
        local_files_only: never touch the network (a missing file is an error at once).
        what: the option the user set (e.g. "model.backbone"), put first in error lines.
    Raises:
        WeightsUnavailable: one line naming the repository, the file, the cache and the fetch command.
    """
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    revision = revision or "main"
    cached = {f: cached_hub_file(repo, f, revision) for f in files}
    folders = {_snapshot_of(p, f) for f, p in cached.items() if p is not None}
    missing = [f for f, p in cached.items() if p is None]
    if not missing and len(folders) == 1:
        return folders.pop()
    first = (missing or list(files))[0]
    if local_files_only or is_offline():
        why = "offline mode is on (HF_HUB_OFFLINE=1)" if is_offline() else "local_files_only is set"
        raise WeightsUnavailable(_hub_line(repo, first, revision, why, what))
    reason = _unreachable(_endpoint())
    if reason:
        why = f"the hub is not reachable: {reason}"
        raise WeightsUnavailable(_hub_line(repo, first, revision, why, what))
    entry = entry_for_repo(repo)
    paths = {}
    for f in files:
        try:
            paths[f] = Path(hf_hub_download(repo, f, revision=revision, cache_dir=hub_cache(),
                                            endpoint=_endpoint(), etag_timeout=CONNECT_TIMEOUT_S * 3))
        except hf_errors.GatedRepoError as e:
            raise WeightsUnavailable(_gated_line(repo, what)) from e
        except hf_errors.RepositoryNotFoundError as e:  # the hub answers 401 for a gated repo without token
            if entry is not None and entry.gated:
                raise WeightsUnavailable(_gated_line(repo, what)) from e
            raise WeightsUnavailable(
                f"{what + ': ' if what else ''}{repo}: no such repository on {_endpoint()} (or it is "
                "private: set HF_TOKEN)"
            ) from e
        except hf_errors.RevisionNotFoundError as e:
            raise WeightsUnavailable(f"{what + ': ' if what else ''}{repo}: no revision {revision!r}") from e
        except hf_errors.RemoteEntryNotFoundError as e:
            raise WeightsUnavailable(
                f"{what + ': ' if what else ''}{repo} (revision {revision}) has no file {f}"
            ) from e
        except Exception as e:  # connection lost mid-body (httpx errors), size check failed, ...
            why = f"the download failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
            raise WeightsUnavailable(_hub_line(repo, f, revision, why, what)) from e
    folders = {_snapshot_of(p, f) for f, p in paths.items()}
    if len(folders) != 1:
        raise WeightsUnavailable(
            f"{repo}: revision {revision} changed on the hub during the download; run again"
        )
    return folders.pop()


# ------------------------------------------------------------------------------------------ URLs
def hash_problem(entry: UrlWeights, digest: str) -> str | None:
    """Why ``digest`` (a file's sha256) is not ``entry``'s file, or None when it matches what is known."""
    if entry.sha256 and digest != entry.sha256:
        return f"sha256 {digest} differs from the published {entry.sha256}"
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix):
        return f"sha256 {digest[:16]}... does not start with the published {entry.sha256_prefix}"
    return None


def _url_line(entry: UrlWeights, why: str, what: str | None) -> str:
    target = torch_cache() / entry.filename
    head = f"{what}: " if what else ""
    return (f"{head}{entry.filename} ({entry.url}) is not in torch hub's cache ({target.parent}) and {why}; "
            f"fetch it where there is a network with `{entry.fetch_command()}` (or `curl -L -o {target} "
            f"'{entry.url}'`)")


def fetch_url(entry: UrlWeights, what: str | None = None, progress: bool = True) -> Path:
    """The cached file of ``entry`` in torch hub's cache, downloaded (atomically, hash-checked) if missing."""
    target = torch_cache() / entry.filename
    if target.is_file():
        return target
    if is_offline():
        raise WeightsUnavailable(_url_line(entry, "offline mode is on (HF_HUB_OFFLINE=1)", what))
    reason = _unreachable(entry.url)
    if reason:
        raise WeightsUnavailable(_url_line(entry, f"the download failed: {reason}", what))
    try:
        with atomic_target(target, keep_suffix=False) as tmp:  # 0644; removed on any failure below
            _download_checked(entry, tmp, progress)
    except (OSError, urllib.error.URLError, ValueError) as e:
        why = f"the download failed ({type(e).__name__}: {e}); nothing was kept"
        raise WeightsUnavailable(_url_line(entry, why, what)) from e
    return target


def _download_checked(entry: UrlWeights, tmp: Path, progress: bool) -> None:
    """Stream ``entry.url`` into ``tmp``; OSError when the length or the SHA-256 is not the expected."""
    h = hashlib.sha256()
    got = 0
    with open(tmp, "wb") as out, urllib.request.urlopen(entry.url, timeout=READ_TIMEOUT_S) as resp:
        expected = resp.headers.get("Content-Length")
        expected = int(expected) if expected and expected.isdigit() else None
        bar = _progress(entry.filename, expected) if progress else None
        while block := resp.read(1 << 20):
            out.write(block)
            h.update(block)
            got += len(block)
            if bar is not None:
                bar.update(len(block))
        if bar is not None:
            bar.close()
    if expected is not None and got != expected:
        raise OSError(f"received {got} of {expected} bytes")
    problem = hash_problem(entry, h.hexdigest())
    if problem:
        raise OSError(problem)


def _progress(name: str, total: int | None):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=name)


# ------------------------------------------------------------------------------------------ by name
def fetch(name: str, what: str | None = None, revision: str | None = None) -> Path:
    """Registered weights ``name``: a hub entry's snapshot folder or a URL entry's file."""
    entry = get(name)
    if isinstance(entry, HubWeights):
        return fetch_hub_files(entry.repo, entry.files, revision or entry.revision, what=what)
    return fetch_url(entry, what=what)
