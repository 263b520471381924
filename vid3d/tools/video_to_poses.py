"""Estimate camera poses of a video and write them as a RealEstate10K camera file.

    python -m vid3d.tools.video_to_poses video.mp4 --estimator colmap
        [--fov-deg 60 | --intrinsics fx,fy,cx,cy] [--stride k] [--max-frames n] --out cams.txt
    python -m vid3d.tools.video_to_poses video.mp4 --estimator dust3r --checkpoint DUSt3R.pth --out c.txt

The file (line 1: the video's URI; then per kept frame "timestamp_us fx fy cx cy 0 0" + the row-major 3x4
world-to-camera matrix, intrinsics normalised by width/height) is what ``sample.py trajectory=file`` and the
RealEstate10K reader take. Poses are in the estimator's own world frame and scale (COLMAP/DUSt3R recover
them up to a similarity transform, like RealEstate10K's own SfM poses); vid3d's loaders take poses
relative to the first frame, and the benchmark also normalises the scale.
Timestamps are the decoded frames' presentation times in microseconds. ``--intrinsics`` are pixels at the
video's resolution; ``--fov-deg`` is the horizontal field of view (square pixels, centred principal point);
with neither, the estimator estimates the focal length, which needs parallax: on a short, slow synthetic
walk COLMAP's self-calibrated focal was 2x off and the poses with it (5 deg/frame), so pass the field of view
when it is known (the estimated FOV is printed). Any failure exits non-zero with a message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vid3d.data.formats.re10k import Re10kCameras, write_camera_file
from vid3d.geometry import K_px_to_norm

__all__ = ["VideoToPosesError", "decode_video", "intrinsics_from_args", "video_to_poses", "main"]

ESTIMATORS = ("colmap", "dust3r")


class VideoToPosesError(RuntimeError):
    """A user-facing failure: unreadable video, bad arguments, or the estimator could not register it."""


def decode_video(
    path: str | Path, stride: int = 1, max_frames: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every ``stride``-th frame (at most ``max_frames``): frames (n, H, W, 3) uint8 RGB and their
    presentation timestamps (n,) int64 in microseconds (frame index / average rate when the container has
    no timestamps)."""
    if stride < 1:
        raise VideoToPosesError(f"--stride must be >= 1, got {stride}")
    if max_frames is not None and max_frames < 1:
        raise VideoToPosesError(f"--max-frames must be >= 1, got {max_frames}")
    path = Path(path)
    if not path.is_file():
        raise VideoToPosesError(f"{path}: no such video file")
    import av

    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoToPosesError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else None
            for i, frame in enumerate(container.decode(stream)):
                if i % stride:
                    continue
                if frame.pts is not None and frame.time_base is not None:
                    t = float(frame.pts * frame.time_base)
                elif rate:
                    t = i / rate
                else:
                    raise VideoToPosesError(
                        f"{path}: frame {i} has no timestamp and the stream no frame rate"
                    )
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(int(round(t * 1e6)))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoToPosesError:
        raise
    except Exception as e:  # av.error.* and friends: corrupt/unsupported files
        raise VideoToPosesError(f"{path}: cannot decode video ({type(e).__name__}: {e})") from e
    if not frames:
        raise VideoToPosesError(f"{path}: no frames decoded")
    ts = np.asarray(times, dtype=np.int64)
    ts -= ts[0]  # relative to the first kept frame (containers may start at a non-zero pts)
    return np.stack(frames), ts


def intrinsics_from_args(
    height: int, width: int, fov_deg: float | None = None, intrinsics: str | None = None
) -> np.ndarray | None:
    """(3, 3) pixel intrinsics from ``--fov-deg`` (horizontal) or ``--intrinsics fx,fy,cx,cy``, else None."""
    if fov_deg is not None and intrinsics is not None:
        raise VideoToPosesError("give either --fov-deg or --intrinsics, not both")
    if fov_deg is not None:
        if not 0.0 < fov_deg < 180.0:
            raise VideoToPosesError(f"--fov-deg must be in (0, 180), got {fov_deg}")
        f = width / (2.0 * np.tan(np.deg2rad(fov_deg) / 2.0))
        return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    if intrinsics is not None:
        try:
            fx, fy, cx, cy = (float(v) for v in intrinsics.split(","))
        except ValueError:
            raise VideoToPosesError(
                f"--intrinsics must be four numbers fx,fy,cx,cy (pixels), got {intrinsics!r}"
            ) from None
        if not (np.isfinite([fx, fy, cx, cy]).all() and fx > 0 and fy > 0):
            raise VideoToPosesError(
                f"--intrinsics: need finite values and fx, fy > 0, got {intrinsics!r}"
            )
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return None


def build_estimator(
    name: str, checkpoint: str | None = None, device: str = "auto", known_focal: bool = False
):
    """The pose estimator for ``--estimator`` (COLMAP: sequential matching, fixed intrinsics when given)."""
    if name == "colmap":
        from vid3d.evaluation.pose import ColmapPoseEstimator

        # Known intrinsics: PINHOLE, fixed. Unknown: one focal length (square pixels), refined by COLMAP.
        model = "PINHOLE" if known_focal else "SIMPLE_PINHOLE"
        return ColmapPoseEstimator(matcher="sequential", camera_model=model, fix_intrinsics=known_focal)
    if name == "dust3r":
        if not checkpoint:
            raise VideoToPosesError(
                "--estimator dust3r needs --checkpoint /path/to/DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth "
                "(nothing is downloaded)"
            )
        try:
            from vid3d.evaluation.pose.dust3r import Dust3rPoseEstimator
        except ImportError as e:
            raise VideoToPosesError(f"--estimator dust3r needs the mini-dust3r extra ({e})") from e
        try:
            return Dust3rPoseEstimator(checkpoint=checkpoint, device=device, known_focal=known_focal)
        except (OSError, ValueError) as e:
            raise VideoToPosesError(f"--checkpoint {checkpoint}: {e}") from e
    raise VideoToPosesError(f"--estimator must be one of {ESTIMATORS}, got {name!r}")


def video_to_poses(
    video: str | Path,
    out: str | Path,
    estimator,
    K_px: np.ndarray | None = None,
    stride: int = 1,
    max_frames: int | None = None,
    fov_deg: float | None = None,
    intrinsics: str | None = None,
) -> Re10kCameras:
    """Decode ``video``, estimate its poses with ``estimator`` (a ``PoseEstimator``), write ``out``.

    ``K_px`` (pixels at the video's resolution) overrides ``fov_deg``/``intrinsics``. Unregistered frames
    (only possible with an estimator allowing partial registration) are left out of the file. Raises
    ``VideoToPosesError`` when the estimator fails. The file's intrinsics are the given ones when given, else
    the estimator's estimate (COLMAP SIMPLE_PINHOLE: one focal length, centred principal point)."""
    frames, ts = decode_video(video, stride, max_frames)
    n, height, width = frames.shape[:3]
    if n < 2:
        raise VideoToPosesError(f"{video}: {n} frame(s) after --stride/--max-frames; need at least 2")
    if K_px is None:
        K_px = intrinsics_from_args(height, width, fov_deg, intrinsics)
    res = estimator.estimate(frames, K_px)
    if not res.success or res.c2w is None:
        raise VideoToPosesError(
            f"{video}: pose estimation with {estimator.name} failed on {n} frames ({res.reason}); try a "
            "larger --stride (more motion between frames), more frames, or --fov-deg/--intrinsics"
        )
    # Given intrinsics are written as given (the poses were estimated with them; DUSt3R's known_focal
    # returns them only up to float32 round-off and its crop's principal point); else the estimate.
    K_used = K_px if K_px is not None else res.K_px
    if K_used is None:
        raise VideoToPosesError(
            f"{video}: {estimator.name} returned no intrinsics; pass --fov-deg or --intrinsics"
        )
    keep = res.registered_mask()
    K_norm = K_px_to_norm(np.asarray(K_used, dtype=np.float64), height, width)
    url = f"file://{Path(video).resolve()}#estimator={estimator.name}"
    cams = Re10kCameras.from_c2w(res.c2w[keep], K_norm, ts[keep], url=url)
    write_camera_file(out, cams)
    return cams


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vid3d.tools.video_to_poses", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("video", help="input video (any format PyAV decodes)")
    p.add_argument("--estimator", choices=ESTIMATORS, default="colmap")
    p.add_argument("--fov-deg", type=float, default=None, help="horizontal field of view in degrees")
    p.add_argument("--intrinsics", default=None, help="fx,fy,cx,cy in pixels at the video's resolution")
    p.add_argument("--stride", type=int, default=1, help="keep every k-th frame")
    p.add_argument("--max-frames", type=int, default=None, help="at most n frames (after --stride)")
    p.add_argument("--checkpoint", default=None, help="DUSt3R weights (--estimator dust3r)")
    p.add_argument("--device", default="auto", help="DUSt3R device: auto, cpu, cuda, ...")
    p.add_argument("--out", required=True, help="RealEstate10K camera file to write")
    args = p.parse_args(argv)
    try:
        known = args.fov_deg is not None or args.intrinsics is not None
        est = build_estimator(args.estimator, args.checkpoint, args.device, known_focal=known)
        cams = video_to_poses(
            args.video, args.out, est, stride=args.stride, max_frames=args.max_frames,
            fov_deg=args.fov_deg, intrinsics=args.intrinsics,
        )
    except VideoToPosesError as e:
        print(f"video_to_poses: error: {e}", file=sys.stderr)
        return 1
    hfov = float(np.rad2deg(2.0 * np.arctan(0.5 / cams.K_norm[0, 0, 0])))
    source = "given" if args.fov_deg is not None or args.intrinsics is not None else "estimated"
    print(f"wrote {len(cams.timestamps)} cameras to {args.out} (horizontal FOV {hfov:.1f} deg, {source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
