"""``python -m vid3d.weights list|fetch|verify [NAME or BENCHMARK ...]``

- ``list``: per benchmark, the weights it needs: source (repository@revision or URL), where they are cached,
  size and sha256 (a hub file's sha256 is its cache blob's name for LFS files; a URL file's is computed by
  ``verify``), or "not cached" with the cache folder they would go to.
- ``fetch``: download what is missing (progress bars; a gated repository needs its licence accepted and
  ``HF_TOKEN``).
- ``verify``: hash every cached file and compare it with its blob name / the published sha256; exit 1 on a
  mismatch (the file is named), 0 otherwise.

With no names every registered entry is meant. Exit 2 with one line for a failed fetch or an unknown name.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from vid3d.atomic import file_sha256

from .fetch import WeightsUnavailable, cached_hub_file, fetch, hash_problem, hub_cache, torch_cache
from .registry import BENCHMARKS, REGISTRY, HubWeights, UrlWeights

_SHA = re.compile(r"[0-9a-f]{64}")


def _names(args: list[str]) -> list[str]:
    if not args:
        return list(REGISTRY)
    out: list[str] = []
    for a in args:
        if a in BENCHMARKS:
            out += [n for n in BENCHMARKS[a] if n not in out]
        elif a in REGISTRY:
            out += [] if a in out else [a]
        else:
            raise WeightsUnavailable(
                f"unknown weights or benchmark {a!r}; weights: {', '.join(REGISTRY)}; "
                f"benchmarks: {', '.join(BENCHMARKS)}"
            )
    return out


def _files(name: str) -> list[tuple[str, Path | None]]:
    """(label, cached path or None) per file of an entry."""
    e = REGISTRY[name]
    if isinstance(e, HubWeights):
        return [(f, cached_hub_file(e.repo, f, e.revision)) for f in e.files]
    p = torch_cache() / e.filename
    return [(e.filename, p if p.is_file() else None)]


def _blob_sha(path: Path) -> str | None:
    """An LFS file's sha256 as the HF cache names its blob (None for small git files)."""
    name = Path(path).resolve().name
    return name if _SHA.fullmatch(name) else None


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_list(names: list[str]) -> int:
    users = {n: [b for b, need in BENCHMARKS.items() if n in need] for n in REGISTRY}
    for name in names:
        e = REGISTRY[name]
        src = f"{e.repo}@{e.revision}" if isinstance(e, HubWeights) else e.url
        print(f"{name}: {e.description}")
        print(f"  source: {src}" + ("  [gated: licence + HF_TOKEN]" if getattr(e, "gated", False) else ""))
        print(f"  used by: {', '.join(users[name]) or '-'}")
        files = _files(name)
        for label, path in files:
            if path is None:
                where = hub_cache() if isinstance(e, HubWeights) else torch_cache()
                print(f"  {label}: not cached (goes to {where})")
                continue
            sha = _blob_sha(path) if isinstance(e, HubWeights) else (
                e.sha256 or (f"{e.sha256_prefix}... (published prefix)" if e.sha256_prefix else "run verify"))
            if isinstance(e, HubWeights) and sha is None:
                sha = e.sha256.get(label, "small git file (run verify)")
            print(f"  {label}: {path}  {_human(path.stat().st_size)}  sha256 {sha}")
        missing = sum(p is None for _, p in files)
        if missing:
            cmd = e.fetch_command() if isinstance(e, UrlWeights) else f"python -m vid3d.weights fetch {name}"
            print(f"  {missing} file(s) missing: {cmd}")
    return 0


def cmd_fetch(names: list[str]) -> int:
    for name in names:
        path = fetch(name, what=f"weights {name}")
        print(f"{name}: {path}")
    return 0


def cmd_verify(names: list[str]) -> int:
    bad = 0
    for name in names:
        e = REGISTRY[name]
        for label, path in _files(name):
            if path is None:
                print(f"{name} {label}: not cached")
                continue
            digest = file_sha256(path)
            if isinstance(e, HubWeights):
                want = _blob_sha(path) or e.sha256.get(label)
                problem = None if want in (None, digest) else f"sha256 {digest} differs from {want}"
            else:
                problem = hash_problem(e, digest)
            if problem:
                bad += 1
                print(f"{name} {label}: {path}: {problem} (delete it and fetch again)")
            else:
                print(f"{name} {label}: ok  sha256 {digest}  {_human(path.stat().st_size)}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vid3d.weights", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["list", "fetch", "verify"])
    p.add_argument("names", nargs="*", help=f"weights ({', '.join(REGISTRY)}) or benchmarks "
                                           f"({', '.join(BENCHMARKS)}); none: all")
    a = p.parse_args(argv)
    try:
        names = _names(a.names)
        return {"list": cmd_list, "fetch": cmd_fetch, "verify": cmd_verify}[a.command](names)
    except WeightsUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
