"""``python -m vid3d.data.acquire``: see the package docstring and the README (Getting RealEstate10K)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from vid3d.errors import InputError, user_errors

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[x,]\s*(\d+)\s*$")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vid3d.data.acquire",
        description="Download the videos of RealEstate10K / ACID camera files and write their frames in the "
        "RealEstate10K layout (resumable: finished clips are skipped).",
    )
    p.add_argument("dataset", choices=("re10k", "acid"))
    p.add_argument("--split", default="test", help="split name (default test): a subfolder of --cameras and "
                   "of --out")
    p.add_argument("--cameras", required=True, type=Path,
                   help="the unpacked camera files: DIR/{split}/<clip>.txt or DIR/<clip>.txt")
    p.add_argument("--out", required=True, type=Path, help="dataset root to write ({out}/{split}/...)")
    p.add_argument("--list", dest="clip_list", default=None,
                   help="only these clips: a file of clip ids or a preset (pixelsplat_re10k, "
                   "pixelsplat_acid)")
    p.add_argument("--from-local", type=Path, default=None,
                   help="take videos from this folder, named <youtube id>.mp4 (.webm, .mkv, .mov), "
                   "instead of yt-dlp")
    p.add_argument("--size", default=None, help="HxW: centre-crop to this aspect and resize (intrinsics "
                   "adjusted); default: the video's own frames")
    p.add_argument("--image-ext", choices=("png", "jpg"), default="png")
    p.add_argument("--workers", type=int, default=4, help="videos handled at once (threads; default 4)")
    p.add_argument("--cache", type=Path, default=None,
                   help="where downloads go until their clips are written (default {out}/.videos)")
    p.add_argument("--keep-videos", action="store_true", help="keep the downloaded videos in --cache")
    p.add_argument("--max-height", type=int, default=720, help="largest video height to download (720)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per download (1800)")
    p.add_argument("--summary", type=Path, default=None,
                   help="JSON summary path (default {out}/acquire_{split}_summary.json)")
    return p


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = _SIZE_RE.match(text)
    if not m or int(m.group(1)) < 8 or int(m.group(2)) < 8:
        raise InputError(f"--size {text!r}: expected HxW with both at least 8, e.g. 256x256 or 360x640")
    return int(m.group(1)), int(m.group(2))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with user_errors():
        from vid3d.data.test_lists import PRESET_DIR, resolve_clip_list

        from .run import AcquireOptions, acquire
        from .videos import find_ytdlp

        size = _parse_size(args.size)
        if args.workers < 1:
            raise InputError(f"--workers {args.workers}: must be at least 1")
        clip_ids = list_source = None
        if args.clip_list is not None:
            clip_ids, list_source = resolve_clip_list(args.clip_list)
            preset = (PRESET_DIR / f"{args.clip_list}.txt").is_file() and not Path(args.clip_list).is_file()
            if preset and not args.clip_list.endswith(f"_{args.dataset}"):
                raise InputError(f"--list {args.clip_list}: this preset lists clips of another dataset, "
                                 f"not {args.dataset}")
        if args.from_local is not None:
            if not args.from_local.is_dir():
                raise InputError(f"--from-local {args.from_local}: not a folder")
            ytdlp = None
        else:
            ytdlp = find_ytdlp()
        opts = AcquireOptions(
            dataset=args.dataset, split=args.split, cameras=args.cameras, out=args.out, clip_ids=clip_ids,
            list_source=list_source, from_local=args.from_local, ytdlp=ytdlp, size=size,
            image_ext=args.image_ext, workers=args.workers, cache_dir=args.cache,
            keep_videos=args.keep_videos,
            max_height=args.max_height, download_timeout_s=args.timeout, summary_path=args.summary,
        )
        acquire(opts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
