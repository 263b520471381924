"""Estimate camera poses of a video and write them as a RealEstate10K camera file.

    python -m vid3d.tools.video_to_poses video.mp4 --estimator colmap
        [--fov-deg 60 | --intrinsics fx,fy,cx,cy] [--stride k] [--max-frames n] --out cams.txt
    python -m vid3d.tools.video_to_poses video.mp4 --estimator dust3r --checkpoint DUSt3R.pth --out c.txt
    python -m vid3d.tools.video_to_poses small.mp4 --estimator flow --fov-deg 60 --out c.txt   (tiny clips)
        [--set key=value ...]   (any setting of conf/pose/<estimator>.yaml, e.g. --set matcher=sequential)

The estimator is the camera benchmark's own (``conf/pose/colmap.yaml``, ``flow.yaml`` — dense-flow tracks
for clips too small for SIFT, needs the intrinsics — or ``dust3r.yaml``: for
COLMAP the tuned matching and the several mapping attempts that register every ground-truth clip), with
the intrinsics fixed when ``--fov-deg``/``--intrinsics`` give them (COLMAP: PINHOLE, fixed) and estimated
otherwise (COLMAP: SIMPLE_PINHOLE, refined). COLMAP runs as a retry ladder (``pose_ladder.py``): the
benchmark's settings, then GLOMAP's global mapper, then both with more features and lower thresholds,
until an estimate registers every frame and agrees with the two-view geometry of neighbouring frames
(80th-percentile rotation disagreement <= ``--max-disagreement-deg``, default 2); each rung prints one
line, and ``--report r.json`` records which frames registered and by which rung (``--no-retry``: first
rung only).

The file (line 1: the video's URI; then per kept frame "timestamp_us fx fy cx cy 0 0" + the row-major 3x4
world-to-camera matrix, intrinsics normalised by width/height) is what ``sample.py trajectory=file`` and the
RealEstate10K reader take. Poses are in the estimator's own world frame and scale (COLMAP/DUSt3R recover
them up to a similarity transform, like RealEstate10K's own SfM poses); vid3d's loaders take poses
relative to the first frame, and the benchmark also normalises the scale.
Timestamps are the decoded frames' presentation times in microseconds. ``--intrinsics`` are pixels at the
video's resolution; ``--fov-deg`` is the horizontal field of view (square pixels, centred principal point);
with neither, the estimator estimates the focal length, which needs parallax: on a short, slow synthetic
walk COLMAP's self-calibrated focal was 2x off and the poses with it (5 deg/frame), so pass the field of view
when it is known (the estimated FOV is printed). Any failure exits non-zero with one line naming the
frames not registered and why.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vid3d.data.formats.re10k import Re10kCameras, write_camera_file
from vid3d.evaluation.pose.base import PoseEstimator
from vid3d.geometry import K_px_to_norm
from vid3d.tools.pose_ladder import COLMAP_RUNGS, Rung, frame_ranges, run_ladder

__all__ = [
    "VideoToPosesError",
    "build_rungs",
    "decode_video",
    "intrinsics_from_args",
    "video_to_poses",
    "main",
]

ESTIMATORS = ("colmap", "dust3r", "flow")


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

    from vid3d.data.files import ImageTooLarge, check_video_pixels

    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoToPosesError(f"{path}: no video stream")
            stream = container.streams.video[0]
            try:
                check_video_pixels(stream, path)  # from the header, before any frame is decoded
            except ImageTooLarge as e:
                raise VideoToPosesError(str(e)) from None
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
            raise VideoToPosesError(f"--intrinsics: need finite values and fx, fy > 0, got {intrinsics!r}")
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return None


def pose_config(
    name: str,
    checkpoint: str | None = None,
    device: str = "auto",
    known_focal: bool = False,
    settings: list[str] | tuple[str, ...] = (),
    rung: tuple[str, ...] = (),
):
    """The benchmark's ``conf/pose/<name>.yaml`` (composed as eval.py's ``pose`` group) with this tool's
    intrinsics choice, a ladder rung's ``key=value`` overrides and the user's ``key=value`` settings on
    top (``+key=value`` adds a key the file lacks); returns the ``pose`` node."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from vid3d.config import CONFIG_DIR

    if name not in ESTIMATORS:
        raise VideoToPosesError(f"--estimator must be one of {ESTIMATORS}, got {name!r}")
    own = []
    if name == "colmap":  # known intrinsics: PINHOLE, fixed; unknown: one focal length, refined by COLMAP
        own = [
            f"pose.camera_model={'PINHOLE' if known_focal else 'SIMPLE_PINHOLE'}",
            f"pose.fix_intrinsics={str(known_focal).lower()}",
        ]
    elif name == "dust3r":
        own = [f"pose.known_focal={str(known_focal).lower()}", f"pose.device={device}"]
        if checkpoint:
            own.append(f"pose.checkpoint={checkpoint}")
    for s in settings:
        if "=" not in s:
            raise VideoToPosesError(f"--set needs key=value (a setting of conf/pose/{name}.yaml), got {s!r}")
    # a rung's overrides may add keys the file lacks (++); the user's must name existing ones or start with +
    extra = [f"++pose.{s}" for s in rung]
    extra += [f"++pose.{s[1:]}" if s.startswith("+") else f"pose.{s}" for s in settings]
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("eval", overrides=[f"pose={name}", *own, *extra])
    except (HydraException, OmegaConfBaseException) as e:
        raise VideoToPosesError(f"--set: {str(e).splitlines()[0]} (see conf/pose/{name}.yaml)") from None
    return cfg.pose


def build_estimator(
    name: str,
    checkpoint: str | None = None,
    device: str = "auto",
    known_focal: bool = False,
    settings: list[str] | tuple[str, ...] = (),
    rung: tuple[str, ...] = (),
):
    """The camera benchmark's pose estimator ``name`` (``conf/pose/<name>.yaml``) for this video, with a
    ladder rung's overrides (``pose_config``)."""
    from hydra.utils import instantiate

    if name == "flow" and not known_focal:
        raise VideoToPosesError("--estimator flow needs the intrinsics: pass --fov-deg or --intrinsics")
    cfg = pose_config(name, checkpoint, device, known_focal, settings, rung)
    if name == "dust3r" and not cfg.get("checkpoint"):
        raise VideoToPosesError(
            "--estimator dust3r needs --checkpoint /path/to/DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth "
            "(nothing is downloaded)"
        )
    try:
        return instantiate(cfg)
    except ImportError as e:
        raise VideoToPosesError(f"--estimator {name} needs its extra ({e})") from e
    except Exception as e:  # Hydra wraps the estimator's own errors (a missing checkpoint, a bad setting)
        cause = e.__cause__ or e
        raise VideoToPosesError(f"--estimator {name}: {cause}") from e


def build_rungs(
    name: str,
    checkpoint: str | None = None,
    device: str = "auto",
    known_focal: bool = False,
    settings: list[str] | tuple[str, ...] = (),
    retry: bool = True,
) -> list[Rung]:
    """The estimators the tool tries in turn: for COLMAP the rungs of ``pose_ladder.COLMAP_RUNGS`` (only
    the first with ``retry=False``), each with the user's ``settings`` on top; DUSt3R is one rung."""
    if name != "colmap":
        return [Rung(name, build_estimator(name, checkpoint, device, known_focal, settings))]
    rungs = COLMAP_RUNGS if retry else COLMAP_RUNGS[:1]
    return [
        Rung(rung_name, build_estimator(name, checkpoint, device, known_focal, settings, overrides))
        for rung_name, overrides in rungs
    ]


def check_output_paths(out: str | Path, report: str | Path | None = None) -> None:
    """Refuse an ``--out``/``--report`` file whose folder does not exist: before minutes of estimation."""
    for flag, path in (("--out", out), ("--report", report)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise VideoToPosesError(f"{flag} {path}: its folder {Path(path).resolve().parent} does not exist")


def video_to_poses(
    video: str | Path,
    out: str | Path,
    estimator,
    K_px: np.ndarray | None = None,
    stride: int = 1,
    max_frames: int | None = None,
    fov_deg: float | None = None,
    intrinsics: str | None = None,
    max_disagreement_deg: float | None = None,
    report: str | Path | None = None,
    log=None,
) -> Re10kCameras:
    """Decode ``video``, estimate its poses with ``estimator``, write ``out``.

    ``estimator``: a ``PoseEstimator`` or a list of ``Rung`` tried in turn (``pose_ladder.run_ladder``,
    with the two-view check at ``max_disagreement_deg``; None skips it). ``K_px`` (pixels at the video's
    resolution) overrides ``fov_deg``/``intrinsics``. Unregistered frames (only with an estimator allowing
    partial registration) are left out of the file. ``report``: a JSON file with which frames registered
    and by which rung, written on success and on failure. ``log(line)`` gets one line per rung (stderr by
    default). Raises ``VideoToPosesError`` (one line naming the frames not registered and why) when no rung
    is accepted. The file's intrinsics are the given ones when given, else the estimator's estimate
    (COLMAP SIMPLE_PINHOLE: one focal length, centred principal point)."""
    from vid3d.atomic import atomic_write_json

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    check_output_paths(out, report)
    frames, ts = decode_video(video, stride, max_frames)
    n, height, width = frames.shape[:3]
    if n < 2:
        raise VideoToPosesError(f"{video}: {n} frame(s) after --stride/--max-frames; need at least 2")
    if K_px is None:
        K_px = intrinsics_from_args(height, width, fov_deg, intrinsics)
    rungs = [Rung(estimator.name, estimator)] if isinstance(estimator, PoseEstimator) else list(estimator)

    def on_rung(r):
        if len(rungs) > 1:
            frames_ok = frame_ranges(r.registered())
            log(f"video_to_poses: rung {r.name!r}: {r.note}; registered frames {frames_ok}")

    ladder = run_ladder(frames, K_px, rungs, max_disagreement_deg, on_rung=on_rung)
    if report is not None:
        record = {"video": str(video), "timestamps_us": ts.tolist(), **ladder.report()}
        try:
            atomic_write_json(report, record)
        except OSError as e:
            raise VideoToPosesError(f"--report {report}: cannot write it ({e.strerror or e})") from None
    if not ladder.success:
        raise VideoToPosesError(
            f"{video}: pose estimation with {rungs[0].estimator.name} failed on {n} frames: "
            f"{ladder.failure_line()}; try a different "
            "--stride, more frames, or --fov-deg/--intrinsics"
        )
    res = ladder.kept.result
    # Given intrinsics are written as given (the poses were estimated with them; DUSt3R's known_focal
    # returns them only up to float32 round-off and its crop's principal point); else the estimate.
    K_used = K_px if K_px is not None else res.K_px
    if K_used is None:
        raise VideoToPosesError(
            f"{video}: {ladder.kept.name} returned no intrinsics; pass --fov-deg or --intrinsics"
        )
    keep = res.registered_mask()
    if not keep.all():
        left_out = [int(i) for i in np.flatnonzero(~keep)]
        log(
            f"video_to_poses: {len(left_out)} of {n} frames not registered and left out of the file: "
            f"decoded frames {left_out} (after --stride/--max-frames)"
        )
    K_norm = K_px_to_norm(np.asarray(K_used, dtype=np.float64), height, width)
    log(
        f"video_to_poses: registered {int(keep.sum())}/{n} frames ({frame_ranges(np.flatnonzero(keep))}) "
        f"by rung {ladder.kept.name!r}"
    )
    url = f"file://{Path(video).resolve()}#estimator={rungs[0].estimator.name}"
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
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of conf/pose/<estimator>.yaml (repeatable), e.g. --set min_registered_fraction=0.75",
    )
    p.add_argument(
        "--no-retry", action="store_true", help="COLMAP: only the benchmark's settings, no further rungs"
    )
    p.add_argument(
        "--max-disagreement-deg",
        type=float,
        default=2.0,
        help="accept an estimate only if 80%% of the neighbouring frame pairs' relative rotations are within "
        "this many degrees of their two-view geometry (default 2; 'inf' turns the check off)",
    )
    p.add_argument("--report", default=None, help="JSON file: which frames registered, by which rung")
    args = p.parse_args(argv)
    try:
        check_output_paths(args.out, args.report)
        known = args.fov_deg is not None or args.intrinsics is not None
        rungs = build_rungs(
            args.estimator, args.checkpoint, args.device, known, args.set, retry=not args.no_retry
        )
        cams = video_to_poses(
            args.video,
            args.out,
            rungs,
            stride=args.stride,
            max_frames=args.max_frames,
            fov_deg=args.fov_deg,
            intrinsics=args.intrinsics,
            max_disagreement_deg=None if np.isinf(args.max_disagreement_deg) else args.max_disagreement_deg,
            report=args.report,
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
