"""Where a clip's source video comes from: a user's own folder (``--from-local``) or YouTube via yt-dlp.

Local videos are named by their YouTube id, the ``v=`` of the camera file's URL line:
``{dir}/{youtube_id}.mp4`` (or ``.webm``, ``.mkv``, ``.mov``; the first that exists, in that order).

yt-dlp is an optional extra (``pip install 'vid3d[acquire]'``): the executable ``yt-dlp`` on PATH, else the
one next to the running Python (a virtual environment's ``bin/``). A failed download is classified by
yt-dlp's error text into a reason (``UNAVAILABLE_REASONS``) that the summary counts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from vid3d.atomic import replace_file
from vid3d.errors import InputError

__all__ = [
    "LOCAL_EXTS",
    "UNAVAILABLE_REASONS",
    "VideoUnavailable",
    "classify_ytdlp_error",
    "download_video",
    "find_local_video",
    "find_ytdlp",
    "youtube_id",
]

LOCAL_EXTS = (".mp4", ".webm", ".mkv", ".mov")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
INSTALL_HINT = (
    "yt-dlp is not installed: pip install 'vid3d[acquire]' (or pip install yt-dlp), "
    "or pass --from-local DIR with videos you already have"
)

# (reason, lower-case phrases of yt-dlp's error output), checked in this order
_REASON_PHRASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("private", ("private video", "video is private")),
    ("removed", ("has been removed", "account associated with this video has been terminated",
                 "no longer available", "copyright", "removed by the uploader", "video has been deleted")),
    ("age_restricted", ("confirm your age", "age-restricted", "age restricted",
                        "inappropriate for some users")),
    ("geo_blocked", ("not available in your country", "geo restriction", "geo-restricted",
                     "uploader has not made this video available")),
    ("members_only", ("members-only", "join this channel")),
    ("login_required", ("sign in to confirm you", "login required", "cookies")),
    ("unavailable", ("video unavailable", "this video is unavailable", "not available", "does not exist")),
)
UNAVAILABLE_REASONS = tuple(r for r, _ in _REASON_PHRASES) + (
    "timeout", "download_failed", "not_found_locally", "bad_url", "unreadable_video",
)


class VideoUnavailable(Exception):
    """A clip's video cannot be had; ``reason`` is one of ``UNAVAILABLE_REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def youtube_id(url: str) -> str | None:
    """The 11-character YouTube id of ``url`` (``watch?v=``, ``youtu.be/``, ``/embed/``, ``/shorts/``, or a
    bare id), None when there is none."""
    url = url.strip()
    if _ID_RE.match(url):
        return url
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    candidates: list[str] = []
    if host.endswith("youtu.be"):
        candidates.append(parsed.path.strip("/").split("/")[0])
    elif host.endswith("youtube.com") or host.endswith("youtube-nocookie.com"):
        candidates += parse_qs(parsed.query).get("v", [])
        parts = parsed.path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] in ("embed", "shorts", "v", "live"):
            candidates.append(parts[1])
    for c in candidates:
        if _ID_RE.match(c):
            return c
    return None


def find_local_video(folder: str | os.PathLike, video_id: str) -> Path:
    """``{folder}/{video_id}{ext}`` for the first of ``LOCAL_EXTS`` that is a file; VideoUnavailable
    ("not_found_locally") otherwise."""
    folder = Path(folder)
    for ext in LOCAL_EXTS:
        p = folder / f"{video_id}{ext}"
        if p.is_file():
            return p
    raise VideoUnavailable(
        "not_found_locally", f"{folder}: no {video_id}.mp4 (or {', '.join(LOCAL_EXTS[1:])})"
    )


def find_ytdlp() -> str:
    """Path of the yt-dlp executable; InputError with the install line when there is none."""
    found = shutil.which("yt-dlp")
    if found:
        return found
    beside = Path(sys.executable).parent / "yt-dlp"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise InputError(INSTALL_HINT)


def classify_ytdlp_error(text: str) -> str:
    """The reason (``UNAVAILABLE_REASONS``) yt-dlp's error output ``text`` names; "download_failed" when
    none of the known phrases occurs."""
    low = text.lower()
    for reason, phrases in _REASON_PHRASES:
        if any(p in low for p in phrases):
            return reason
    return "download_failed"


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["(no output)"])[-1][:300]


def download_video(
    ytdlp: str, url: str, video_id: str, cache_dir: str | os.PathLike, *, max_height: int = 720,
    timeout_s: float = 1800.0,
) -> Path:
    """Download ``url`` into ``{cache_dir}/{video_id}.{ext}`` (video stream only, at most ``max_height``
    lines, mp4 preferred) and return that path; a file already there from an earlier run is reused.

    yt-dlp writes into a temporary sibling folder that is removed afterwards, so a killed download leaves
    no partial video under the final name. Raises VideoUnavailable with the classified reason.
    """
    cache_dir = Path(cache_dir)
    try:
        return find_local_video(cache_dir, video_id)
    except VideoUnavailable:
        pass
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{video_id}.", suffix=".tmp"))
    h = int(max_height)
    fmt = f"bv*[height<={h}][ext=mp4]/bv*[height<={h}]/b[height<={h}]/bv*/b"
    cmd = [ytdlp, "--no-playlist", "--no-progress", "--no-warnings", "--quiet", "--no-part",
           "-f", fmt, "-o", str(tmp / f"{video_id}.%(ext)s"), "--", url]
    try:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise VideoUnavailable("timeout", f"{url}: yt-dlp took more than {timeout_s:.0f} s") from None
        except OSError as e:
            raise VideoUnavailable("download_failed", f"{url}: cannot run {ytdlp} ({e.strerror})") from None
        output = (proc.stderr or "") + "\n" + (proc.stdout or "")
        if proc.returncode != 0:
            reason = classify_ytdlp_error(output)
            raise VideoUnavailable(reason, f"{url}: {_last_error_line(output)}")
        files = [p for p in tmp.iterdir() if p.is_file() and p.stem == video_id and p.suffix in LOCAL_EXTS]
        if not files:
            raise VideoUnavailable(
                "download_failed", f"{url}: yt-dlp exited 0 but wrote no {video_id}.mp4/.webm/.mkv/.mov"
            )
        final = cache_dir / files[0].name
        replace_file(files[0], final)  # 0644, one step
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
