"""Plan and run an acquisition: camera files -> videos -> frames in the RealEstate10K layout.

One job per YouTube video (the clips that share it use one download and one open file). A clip is written
into a temporary folder that replaces ``{out}/{split}/{clip}/`` when complete, then its camera file is
written atomically, last: a clip with a camera file in ``out`` is finished, and a rerun skips it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vid3d.atomic import atomic_dir, atomic_write_bytes, atomic_write_text
from vid3d.data.formats import re10k
from vid3d.data.test_lists import is_clip_id
from vid3d.errors import InputError

from .extract import FramesMissing, VideoReader, crop_resize_cameras, resize_frame
from .videos import VideoUnavailable, download_video, find_local_video, youtube_id

__all__ = ["AcquireOptions", "Summary", "acquire", "camera_folder", "is_finished"]


@dataclass
class AcquireOptions:
    """What ``python -m vid3d.data.acquire`` was asked (see its ``--help``)."""

    dataset: str
    split: str
    cameras: Path
    out: Path
    clip_ids: list[str] | None = None
    list_source: str | None = None
    from_local: Path | None = None
    ytdlp: str | None = None
    size: tuple[int, int] | None = None
    image_ext: str = "png"
    workers: int = 4
    cache_dir: Path | None = None
    keep_videos: bool = False
    max_height: int = 720
    download_timeout_s: float = 1800.0
    summary_path: Path | None = None


@dataclass
class Summary:
    """Counts of one run; ``unavailable`` maps a clip id to ``{video, reason, message}`` (``video``: the
    YouTube id, None for a clip refused before its video: a bad camera file or URL)."""

    written: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    unavailable: dict[str, dict[str, str | None]] = field(default_factory=dict)
    missing_camera_files: list[str] = field(default_factory=list)

    def clip_reasons(self) -> Counter:
        return Counter(v["reason"] for v in self.unavailable.values())

    def video_reasons(self) -> Counter:
        videos: dict[str, str] = {}
        for v in self.unavailable.values():
            if v["video"] is not None:
                videos.setdefault(v["video"], v["reason"])
        return Counter(videos.values())


def camera_folder(cameras: Path, split: str) -> Path:
    """``{cameras}/{split}`` when it is a folder (the published archive's layout), else ``cameras``."""
    sub = cameras / split
    return sub if sub.is_dir() else cameras


def is_finished(out: Path, split: str, clip_id: str) -> bool:
    """A clip with its camera file and a frames folder holding one image per camera line."""
    cam = out / split / f"{clip_id}.txt"
    frames = out / split / clip_id
    if not cam.is_file() or not frames.is_dir():
        return False
    try:
        n = len(re10k.read_camera_file(cam))
    except (ValueError, OSError):
        return False
    return sum(1 for p in frames.iterdir() if p.suffix.lower() in re10k.IMAGE_EXTS) == n


@dataclass
class _Clip:
    clip_id: str
    camera_path: Path
    cams: re10k.Re10kCameras


def _write_clip(reader: VideoReader, clip: _Clip, opts: AcquireOptions) -> None:
    """Extract, crop/resize and write one clip (frames folder, then the camera file)."""
    import cv2

    split_dir = opts.out / opts.split
    ext = "jpg" if opts.image_ext in ("jpg", "jpeg") else "png"
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    native: list[tuple[int, int]] = []
    with atomic_dir(split_dir / clip.clip_id) as tmp:

        def emit(i: int, rgb: np.ndarray, _t: int) -> None:
            native.append(rgb.shape[:2])
            if opts.size is not None:
                rgb = resize_frame(rgb, *opts.size)
            ok, buf = cv2.imencode(f".{ext}", np.ascontiguousarray(rgb[..., ::-1]), params)
            if not ok:
                raise ValueError(f"{tmp}: cannot encode a frame as {ext}")
            (tmp / f"{int(clip.cams.timestamps[i])}.{ext}").write_bytes(buf.tobytes())

        reader.frames_at(clip.cams.timestamps, emit)
    cam_out = split_dir / f"{clip.clip_id}.txt"
    if opts.size is None:  # the published file, byte for byte
        atomic_write_bytes(cam_out, clip.camera_path.read_bytes())
    else:
        h0, w0 = native[0]
        K = crop_resize_cameras(clip.cams.K_norm, h0, w0, *opts.size)
        cams = re10k.Re10kCameras(clip.cams.url, clip.cams.timestamps, K, clip.cams.w2c)
        re10k.write_camera_file(cam_out, cams)


def _run_video(video_id: str, url: str, clips: list[_Clip], opts: AcquireOptions,
               report: Callable[[str, str, str | None, str], None]) -> None:
    """Obtain one video and write its clips; ``report(clip_id, status, reason, message)`` per clip."""
    downloaded = False
    try:
        if opts.from_local is not None:
            path = find_local_video(opts.from_local, video_id)
        else:
            assert opts.ytdlp is not None and opts.cache_dir is not None
            path = download_video(opts.ytdlp, url, video_id, opts.cache_dir, max_height=opts.max_height,
                                  timeout_s=opts.download_timeout_s)
            downloaded = True
    except VideoUnavailable as e:
        for c in clips:
            report(c.clip_id, "unavailable", e.reason, str(e))
        return
    try:
        try:
            reader = VideoReader(path)
        except ValueError as e:
            for c in clips:
                report(c.clip_id, "unavailable", "unreadable_video", str(e))
            return
        with reader:
            for c in clips:
                try:
                    _write_clip(reader, c, opts)
                except FramesMissing as e:
                    report(c.clip_id, "unavailable", "frames_missing", str(e))
                except ValueError as e:
                    report(c.clip_id, "unavailable", "unreadable_video", str(e))
                else:
                    report(c.clip_id, "written", None, "")
    finally:
        if downloaded and not opts.keep_videos:
            path.unlink(missing_ok=True)


class _Progress:
    """A bar on a terminal; otherwise one line per clip (logs of SLURM / nohup runs)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.t0 = total, 0, time.monotonic()
        self.bar = None
        if sys.stdout.isatty() and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress("acquire", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            self.task = self.bar.add_task("clips", total=total)
            self.bar.start()

    def update(self, clip_id: str, status: str, reason: str | None, message: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self.task)
            if status != "written":
                self.bar.console.print(f"{clip_id}: {reason}: {message}")
            return
        rate = self.done / max(time.monotonic() - self.t0, 1e-9)
        what = "written" if status == "written" else f"unavailable ({reason}: {message})"
        print(f"[{self.done}/{self.total}] {clip_id}: {what} ({rate:.2f} clips/s)", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _plan(opts: AcquireOptions, summary: Summary) -> tuple[dict[str, tuple[str, list[_Clip]]], int]:
    """Camera files to do, grouped by video id; finished clips and bad camera files go to ``summary``."""
    folder = camera_folder(opts.cameras, opts.split)
    if not folder.is_dir():
        raise InputError(
            f"{opts.cameras}: camera folder does not exist (expected the unpacked {opts.dataset} archive)"
        )
    available = {p.stem: p for p in folder.glob("*.txt")}
    if opts.clip_ids is None:
        wanted = sorted(available)
        if not wanted:
            raise InputError(f"{folder}: no camera files (*.txt)")
    else:
        wanted = list(opts.clip_ids)
        summary.missing_camera_files = [c for c in wanted if c not in available]
        wanted = [c for c in wanted if c in available]
        if not wanted:
            raise InputError(
                f"{folder}: none of the {len(opts.clip_ids)} clips of {opts.list_source} has a camera file "
                f"here (is it the {opts.split} split of {opts.dataset}?)"
            )
    jobs: dict[str, tuple[str, list[_Clip]]] = {}
    todo = 0
    for clip_id in wanted:
        if is_finished(opts.out, opts.split, clip_id):
            summary.already_present.append(clip_id)
            continue
        path = available[clip_id]
        if not is_clip_id(clip_id):
            summary.unavailable[clip_id] = {
                "video": None, "reason": "bad_camera_file",
                "message": f"{path}: file name is not a clip id (letters, digits, '_', '-', '.')",
            }
            continue
        try:
            cams = re10k.read_camera_file(path)
        except (ValueError, OSError) as e:
            summary.unavailable[clip_id] = {"video": None, "reason": "bad_camera_file", "message": str(e)}
            continue
        vid = youtube_id(cams.url)
        if vid is None:
            summary.unavailable[clip_id] = {
                "video": None, "reason": "bad_url", "message": f"{path}:1: no YouTube id in {cams.url!r}"
            }
            continue
        jobs.setdefault(vid, (cams.url, []))[1].append(_Clip(clip_id, path, cams))
        todo += 1
    return jobs, todo


def acquire(opts: AcquireOptions) -> Summary:
    """Run the acquisition; print progress and the final counts; write the JSON summary. Returns it."""
    summary = Summary()
    jobs, todo = _plan(opts, summary)
    if opts.cache_dir is None:
        opts.cache_dir = opts.out / ".videos"
    print(
        f"acquire {opts.dataset} {opts.split}: {todo} clips from {len(jobs)} videos to do, "
        f"{len(summary.already_present)} already present in {opts.out / opts.split}"
        + (f", {len(summary.unavailable)} with bad camera files" if summary.unavailable else ""),
        flush=True,
    )
    progress = _Progress(todo)
    video_of = {c.clip_id: vid for vid, (_, clips) in jobs.items() for c in clips}

    lock = threading.Lock()

    def report(clip_id: str, status: str, reason: str | None, message: str) -> None:
        with lock:  # called from the worker threads
            if status == "written":
                summary.written.append(clip_id)
            else:
                summary.unavailable[clip_id] = {
                    "video": video_of[clip_id], "reason": reason, "message": message
                }
            progress.update(clip_id, status, reason, message)

    pool = ThreadPoolExecutor(max_workers=max(1, opts.workers))
    try:
        futures = [
            pool.submit(_run_video, vid, url, clips, opts, report) for vid, (url, clips) in jobs.items()
        ]
        for f in as_completed(futures):
            f.result()
    except BaseException:  # Ctrl-C or a failure such as a full disk: start no further video
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown()
    finally:
        progress.close()
        if opts.from_local is None and not opts.keep_videos and opts.cache_dir.is_dir():
            try:
                opts.cache_dir.rmdir()  # only when empty
            except OSError:
                pass
    _finish(opts, summary)
    return summary


def _finish(opts: AcquireOptions, summary: Summary) -> None:
    clip_r, video_r = summary.clip_reasons(), summary.video_reasons()
    by = ", ".join(f"{r} {n}" for r, n in sorted(video_r.items())) or "none"
    print(
        f"{len(summary.written)} clips written, {len(summary.already_present)} already present, "
        f"{len(summary.unavailable)} unavailable ({sum(video_r.values())} videos unavailable, by reason: {by}"
        + (f"; clips by reason: {', '.join(f'{r} {n}' for r, n in sorted(clip_r.items()))}" if clip_r else "")
        + ")"
        + (f"; {len(summary.missing_camera_files)} listed clips have no camera file"
           if summary.missing_camera_files else ""),
        flush=True,
    )
    path = opts.summary_path or opts.out / f"acquire_{opts.split}_summary.json"
    data = {
        "dataset": opts.dataset,
        "split": opts.split,
        "cameras": str(opts.cameras),
        "list": opts.list_source,
        "source": f"local folder {opts.from_local}" if opts.from_local else "yt-dlp",
        "size": list(opts.size) if opts.size else None,
        "written": len(summary.written),
        "already_present": len(summary.already_present),
        "unavailable_clips": len(summary.unavailable),
        "unavailable_clips_by_reason": dict(sorted(clip_r.items())),
        "unavailable_videos": sum(video_r.values()),
        "unavailable_videos_by_reason": dict(sorted(video_r.items())),
        "missing_camera_files": summary.missing_camera_files,
        "unavailable": dict(sorted(summary.unavailable.items())),
    }
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    print(f"summary: {path}", flush=True)

