"""Frames of a video at a camera file's timestamps (PyAV), and the crop/resize that goes with the cameras.

A frame's time is ``(pts - stream.start_time) * time_base`` (seconds from the stream's first frame, as the
RealEstate10K timestamps count them). Each timestamp gets the frame whose time is nearest (the earlier one
on a tie); a timestamp whose nearest frame is more than ``tolerance_us`` away (beyond the video's end, or a
seek that landed late) fails the clip.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

__all__ = ["FramesMissing", "VideoReader", "crop_resize_cameras", "resize_frame"]

SEEK_MARGIN_S = 2.0  # seek this long before a clip's first timestamp (to the keyframe before it)


class FramesMissing(Exception):
    """A timestamp has no frame within the tolerance."""


class VideoReader:
    """An open video, read clip after clip (one open per video, a seek per clip).

    Raises ValueError ("<path>: cannot open video (...)") for a file PyAV cannot open or without a
    video stream, ``vid3d.data.files.ImageTooLarge`` for frames above the pixel limit.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import av

        from vid3d.data.files import check_video_pixels

        self.path = Path(path)
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as e:
            raise ValueError(f"{self.path}: cannot open video ({e})") from None
        if not self.container.streams.video:
            self.container.close()
            raise ValueError(f"{self.path}: no video stream")
        self.stream = self.container.streams.video[0]
        check_video_pixels(self.stream, self.path)
        self.stream.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.frame_period_us = 1e6 / float(rate) if rate else 100_000.0
        self.start_pts = int(self.stream.start_time or 0)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _time_us(self, pts: int) -> int:
        return int(round((pts - self.start_pts) * float(self.stream.time_base) * 1e6))

    def _decode_from(self, t_us: int) -> Iterator[tuple[int, object]]:
        import av

        target = self.start_pts + int((max(t_us / 1e6 - SEEK_MARGIN_S, 0.0)) / float(self.stream.time_base))
        try:
            self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            self.container.seek(self.start_pts, stream=self.stream, backward=True, any_frame=False)
        for frame in self.container.decode(self.stream):
            if frame.pts is not None:
                yield self._time_us(frame.pts), frame

    def frames_at(
        self, timestamps_us: np.ndarray, emit: Callable[[int, np.ndarray, int], None],
        tolerance_us: float | None = None,
    ) -> None:
        """Call ``emit(i, rgb, frame_time_us)`` for each ``timestamps_us[i]`` with the nearest frame
        ((H, W, 3) uint8 RGB), in increasing time order.

        Args:
            tolerance_us: largest allowed distance between a timestamp and its frame (default: one frame
                period of the stream, plus 1 ms).
        Raises:
            FramesMissing: a timestamp with no frame that near (naming the first such timestamp).
            ValueError: the video cannot be decoded ("<path>: cannot decode ...").
        """
        import av

        ts = np.asarray(timestamps_us, dtype=np.int64).reshape(-1)
        if len(ts) == 0:
            return
        tol = self.frame_period_us + 1000.0 if tolerance_us is None else float(tolerance_us)
        order = np.argsort(ts, kind="stable")
        k, n = 0, len(ts)
        prev: tuple[int, object] | None = None

        def pick(i: int, cand: tuple[int, object]) -> None:
            t_frame, frame = cand
            if abs(t_frame - int(ts[i])) > tol:
                raise FramesMissing(
                    f"{self.path}: no frame within {tol / 1000:.1f} ms of timestamp {int(ts[i])} us "
                    f"(nearest at {t_frame} us)"
                )
            emit(i, frame.to_ndarray(format="rgb24"), t_frame)

        try:
            for cur in self._decode_from(int(ts[order[0]])):
                while k < n and ts[order[k]] <= cur[0]:
                    target = int(ts[order[k]])
                    near_prev = prev is not None and target - prev[0] <= cur[0] - target
                    pick(int(order[k]), prev if near_prev else cur)
                    k += 1
                if k == n:
                    return
                prev = cur
        except av.error.FFmpegError as e:
            raise ValueError(f"{self.path}: cannot decode ({e})") from None
        if prev is None:
            raise FramesMissing(f"{self.path}: no frame decoded at or after {int(ts[order[0]])} us")
        while k < n:  # timestamps after the last frame
            pick(int(order[k]), prev)
            k += 1


def crop_resize_cameras(K_norm: np.ndarray, height: int, width: int, out_h: int, out_w: int) -> np.ndarray:
    """(N, 3, 3) normalised intrinsics of frames of (height, width) after ``resize_frame`` to
    (out_h, out_w): the centre crop to the output aspect, then the resize (vid3d.data.transforms)."""
    from vid3d.data.transforms import center_crop_box, crop_resize_K
    from vid3d.geometry import K_norm_to_px, K_px_to_norm

    x0, y0, cw, ch = center_crop_box(height, width, out_h, out_w)
    K_px = crop_resize_K(np.asarray(K_norm_to_px(K_norm, height, width)), x0, y0, cw, ch, out_w, out_h)
    return np.asarray(K_px_to_norm(K_px, out_h, out_w), dtype=np.float64)


def resize_frame(rgb: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """(out_h, out_w, 3) uint8: the centre crop of ``rgb`` (H, W, 3) to the output aspect, resized."""
    from vid3d.data.transforms import center_crop_resize

    if rgb.shape[:2] == (out_h, out_w):
        return rgb
    out, _ = center_crop_resize(rgb[None], np.eye(3), out_h, out_w)
    return out[0]
