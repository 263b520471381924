"""COLMAP (pycolmap >= 3.12, tested with 4.x) structure-from-motion pose estimator.

Pipeline: frames -> PNGs in a temp dir -> SIFT (CPU) -> sequential or exhaustive matching with
geometric verification -> incremental mapping -> largest reconstruction -> OpenCV camera-to-world.
COLMAP uses OpenCV camera axes and pixel centres at (u + 0.5, v + 0.5), the same conventions as
vid3d, so ``K_px`` passes through unchanged and ``cam_from_world`` is a plain world-to-camera matrix.

Failures are results: fewer than ``min_registered_fraction`` of the frames registered, no
reconstruction, or an exception inside COLMAP give ``success=False`` with the reason, never a
silently dropped sample. Runs single-threaded with fixed seeds by default for reproducibility.
Each stage (extraction, matching, mapping) prints a start and a done line with its time
(``vid3d.progress.stage``; ``progress.stages=false`` silences them).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vid3d.geometry import fundamental_matrix, w2c_to_c2w
from vid3d.progress import stage

from .base import PoseEstimator, PoseResult, check_frames

__all__ = ["ColmapPoseEstimator", "camera_params_from_K", "judge_registration"]

MATCHERS = ("sequential", "exhaustive")
MAPPERS = ("incremental", "global")


FOCALS = ("mean", "fx")


def camera_params_from_K(K_px: np.ndarray, camera_model: str, focal: str = "mean") -> list[float]:
    """COLMAP camera parameters for pixel intrinsics (3, 3) (distortion terms zero). A single-focal model
    (SIMPLE_*, RADIAL) gets f = (fx + fy) / 2 with ``focal="mean"``, f = fx with ``focal="fx"``
    (CamI2V's choice); the two agree for square pixels."""
    if focal not in FOCALS:
        raise ValueError(f"focal must be one of {FOCALS}, got {focal!r}")
    fx, fy, cx, cy = (float(K_px[0, 0]), float(K_px[1, 1]), float(K_px[0, 2]), float(K_px[1, 2]))
    f = 0.5 * (fx + fy) if focal == "mean" else fx
    table = {
        "SIMPLE_PINHOLE": [f, cx, cy],
        "PINHOLE": [fx, fy, cx, cy],
        "SIMPLE_RADIAL": [f, cx, cy, 0.0],
        "RADIAL": [f, cx, cy, 0.0, 0.0],
        "OPENCV": [fx, fy, cx, cy, 0.0, 0.0, 0.0, 0.0],
    }
    if camera_model not in table:
        raise ValueError(f"camera_model must be one of {sorted(table)}, got {camera_model!r}")
    return table[camera_model]


def judge_registration(
    c2w: np.ndarray, min_registered_fraction: float, n_models: int = 1
) -> tuple[bool, str | None, int]:
    """Success rule on (n, 4, 4) poses with NaN rows for unregistered frames.

    Returns (success, reason, n_registered): success iff n_registered >= ceil(fraction * n); reason is
    None for a full registration, "partial: registered k/n frames" for an accepted partial one, and
    "registered k/n frames (need m, ...)" for a failure.
    """
    n = len(c2w)
    n_reg = int(np.all(np.isfinite(c2w.reshape(n, -1)), axis=1).sum())
    needed = math.ceil(min_registered_fraction * n - 1e-9)
    if n_reg < needed:
        return False, f"registered {n_reg}/{n} frames (need {needed}, largest of {n_models} model(s))", n_reg
    return True, (None if n_reg == n else f"partial: registered {n_reg}/{n} frames"), n_reg


def _set_options(target: Any, values: dict[str, Any], what: str) -> None:
    """Set (dotted) attributes on a pycolmap options object, refusing unknown names."""
    for name, value in values.items():
        obj = target
        *parents, leaf = name.split(".")
        for part in parents:
            obj = getattr(obj, part, None)
        if obj is None or not hasattr(obj, leaf):
            raise ValueError(f"{what}: {type(target).__name__} has no option {name!r}")
        setattr(obj, leaf, value)


@contextlib.contextmanager
def _quiet_colmap(pycolmap, verbose: bool):
    """Silence COLMAP's glog INFO/WARNING output unless ``verbose`` (restored afterwards)."""
    if verbose:
        yield
        return
    old = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 3  # failures are reported in PoseResult.reason
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = old


def sampson_inliers(K: np.ndarray, c2w_a: np.ndarray, c2w_b: np.ndarray, xy_a: np.ndarray,
                    xy_b: np.ndarray, max_error: float) -> int:
    """Number of correspondences xy_a[i] <-> xy_b[i] (pixel coordinates, (m, 2)) whose Sampson distance
    to the epipolar geometry of cameras a and b (OpenCV camera-to-world (4, 4), shared pixel K) is below
    ``max_error`` pixels. Coincident camera centres give a zero fundamental matrix: no match counts."""
    F = fundamental_matrix(K, c2w_a, K, c2w_b)  # x_b^T F x_a = 0
    ha = np.c_[np.asarray(xy_a, np.float64), np.ones(len(xy_a))]
    hb = np.c_[np.asarray(xy_b, np.float64), np.ones(len(xy_b))]
    Fa, Fb = ha @ F.T, hb @ F
    err = np.einsum("ij,ij->i", hb, Fa)
    denom = Fa[:, 0] ** 2 + Fa[:, 1] ** 2 + Fb[:, 0] ** 2 + Fb[:, 1] ** 2
    ok = denom > 0
    return int((err[ok] ** 2 < max_error**2 * denom[ok]).sum())


class ColmapPoseEstimator(PoseEstimator):
    """Estimate per-frame camera-to-world poses with COLMAP.

    Args:
        matcher: "sequential" (pairs within ``overlap`` frames) or "exhaustive" (all pairs).
        camera_model: COLMAP model for the single shared camera (e.g. "PINHOLE", "SIMPLE_PINHOLE").
        fix_intrinsics: keep the given ``K_px`` fixed in registration and bundle adjustment (ignored when
            ``K_px`` is None: the focal length is then initialised by COLMAP and refined).
        min_registered_fraction: success requires at least ceil(fraction * n) registered frames. With
            the default 1.0 any unregistered frame is a failure. A partial success (fraction < 1) returns
            NaN poses for the unregistered frames and a note in ``reason``.
        max_num_features: SIFT features per image.
        num_threads: threads for extraction, matching and mapping (1 = deterministic).
        seed: random seed for RANSAC and the mapper.
        overlap: sequential matcher window.
        init_min_tri_angle: minimum triangulation angle (degrees) of the initial image pair, or a list:
            one mapping attempt with automatic initial-pair selection per value. COLMAP's default 16 deg
            finds no initial pair on short, small-baseline clips (measured: 4-6 frames of a walk through
            a synthetic room fail at 16 deg, 4 frames still fail at 8 deg, all succeed at 4 deg with
            0.03-0.13 deg/frame RotErr), so the default here is 4 deg; pass 16.0 for stock COLMAP.
        init_pair_gap: if set, further mapping attempts each start from a fixed initial pair of frames
            (i, i + gap), for up to ``max_init_pairs`` start frames i spread over the clip (pairs past
            the last frame are skipped). COLMAP picks the pair with the most matches, i.e. neighbours
            with a small baseline, whose relative pose is ambiguous on forward-moving clips: the mapper
            then converges to a wrong branch (measured on synthetic GT clips: 8-24 deg/frame at 0.5-0.8 px
            mean reprojection error, against 0.15-0.35 px for the right one). Wider pairs avoid it.
        max_init_pairs: the most fixed-pair attempts (see ``init_pair_gap``).
        consensus_max_error: all attempts share the features and matches; the kept reconstruction is the
            one with the most registered frames, ties broken by its consensus: how many of the verified
            matches of all image pairs its poses explain with a Sampson distance below this many pixels.
            (Its own mean reprojection error is no fair judge: a wrong model may drop the points it cannot
            fit; measured once at 0.23 px for a 4 deg/frame model against 0.25 px for the right one.)
        init_min_num_inliers, abs_pose_min_num_inliers: COLMAP mapper thresholds (COLMAP defaults).
        sift_options: extra ``SiftExtractionOptions`` attributes, e.g. {"peak_threshold": 0.004}.
        verification_options: extra ``TwoViewGeometryOptions`` attributes (geometric verification of
            the matches), dotted names reach nested options, e.g. {"ransac.max_error": 1.0}.
        matching_options: extra ``FeatureMatchingOptions`` attributes, e.g. {"guided_matching": True,
            "max_num_matches": 65536}.
        focal: the single focal length given to SIMPLE_PINHOLE / SIMPLE_RADIAL / RADIAL: "mean"
            ((fx + fy) / 2) or "fx" (CamI2V's); ``camera_params_from_K``.
        mapper_options: extra ``IncrementalPipelineOptions`` attributes (``GlobalPipelineOptions`` with
            ``mapper="global"``); dotted names reach nested options, e.g.
            {"mapper.init_max_forward_motion": 0.99}. Unknown names raise ValueError.
        mapper: "incremental" (COLMAP's incremental SfM with the attempts above) or "global" (GLOMAP's
            global SfM as bundled in pycolmap: rotation averaging, then global positioning; one attempt,
            the init_* settings do not apply) — CamI2V's protocol uses GLOMAP.
        verbose: let COLMAP print its log.
        workdir: keep the database/images/model under this directory instead of a temp dir.
    """

    name = "colmap"

    def __init__(
        self,
        matcher: str = "sequential",
        camera_model: str = "PINHOLE",
        fix_intrinsics: bool = True,
        min_registered_fraction: float = 1.0,
        max_num_features: int = 8192,
        num_threads: int = 1,
        seed: int = 0,
        overlap: int = 10,
        init_min_tri_angle: float | Sequence[float] = 4.0,
        init_pair_gap: int | None = None,
        max_init_pairs: int = 4,
        consensus_max_error: float = 1.0,
        init_min_num_inliers: int = 100,
        abs_pose_min_num_inliers: int = 30,
        sift_options: dict[str, Any] | None = None,
        verification_options: dict[str, Any] | None = None,
        mapper_options: dict[str, Any] | None = None,
        verbose: bool = False,
        workdir: str | Path | None = None,
        mapper: str = "incremental",
        matching_options: dict[str, Any] | None = None,
        focal: str = "mean",
    ) -> None:
        if mapper not in MAPPERS:
            raise ValueError(f"mapper must be one of {MAPPERS}, got {mapper!r}")
        self.mapper = mapper
        if matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {MATCHERS}, got {matcher!r}")
        camera_params_from_K(np.eye(3), camera_model, focal)  # validates the model name and focal rule
        self.focal = focal
        if not 0.0 < min_registered_fraction <= 1.0:
            raise ValueError(f"min_registered_fraction must be in (0, 1], got {min_registered_fraction}")
        self.matcher = matcher
        self.camera_model = camera_model
        self.fix_intrinsics = fix_intrinsics
        self.min_registered_fraction = min_registered_fraction
        self.max_num_features = max_num_features
        self.num_threads = num_threads
        self.seed = seed
        self.overlap = overlap
        angles = [init_min_tri_angle] if isinstance(init_min_tri_angle, (int, float)) else init_min_tri_angle
        self.init_min_tri_angles = [float(a) for a in angles]
        if not self.init_min_tri_angles or min(self.init_min_tri_angles) <= 0:
            raise ValueError(
                f"init_min_tri_angle must be > 0 (or a non-empty list), got {init_min_tri_angle}"
            )
        if init_pair_gap is not None and init_pair_gap < 1:
            raise ValueError(f"init_pair_gap must be >= 1 (or None), got {init_pair_gap}")
        self.init_pair_gap = None if init_pair_gap is None else int(init_pair_gap)
        self.max_init_pairs = int(max_init_pairs)
        self.consensus_max_error = float(consensus_max_error)
        self.init_min_num_inliers = init_min_num_inliers
        self.abs_pose_min_num_inliers = abs_pose_min_num_inliers
        self.sift_options = dict(sift_options or {})
        self.verification_options = dict(verification_options or {})
        self.matching_options = dict(matching_options or {})
        self.mapper_options = dict(mapper_options or {})
        import pycolmap  # validate option names now: a config error must not become a "failed sample"

        _set_options(pycolmap.SiftExtractionOptions(), self.sift_options, "sift_options")
        _set_options(pycolmap.TwoViewGeometryOptions(), self.verification_options, "verification_options")
        _set_options(pycolmap.FeatureMatchingOptions(), self.matching_options, "matching_options")
        if mapper == "global":
            _set_options(pycolmap.GlobalPipelineOptions(), self.mapper_options, "mapper_options")
        else:
            _set_options(pycolmap.IncrementalPipelineOptions(), self.mapper_options, "mapper_options")
        self.verbose = verbose
        self.workdir = None if workdir is None else Path(workdir)

    def describe(self) -> dict[str, Any]:
        import pycolmap

        return {
            "name": self.name,
            "pycolmap_version": getattr(pycolmap, "__version__", "unknown"),
            "matcher": self.matcher,
            "mapper": self.mapper,
            "camera_model": self.camera_model,
            "focal": self.focal,
            "fix_intrinsics": self.fix_intrinsics,
            "min_registered_fraction": self.min_registered_fraction,
            "max_num_features": self.max_num_features,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "overlap": self.overlap,
            "init_min_tri_angle": self.init_min_tri_angles,
            "init_pair_gap": self.init_pair_gap,
            "max_init_pairs": self.max_init_pairs,
            "consensus_max_error": self.consensus_max_error,
            "init_min_num_inliers": self.init_min_num_inliers,
            "abs_pose_min_num_inliers": self.abs_pose_min_num_inliers,
            "sift_options": self.sift_options,
            "verification_options": self.verification_options,
            "matching_options": self.matching_options,
            "mapper_options": self.mapper_options,
            "device": "cpu",
        }

    # ------------------------------------------------------------------ pipeline
    def _run(self, pycolmap, work: Path, frames: np.ndarray, K_px: np.ndarray | None) -> list[str]:
        """Write the frames, extract SIFT features and match them into work/database.db; image names."""
        image_dir = work / "images"
        image_dir.mkdir(parents=True, exist_ok=True)
        names = [f"{i:05d}.png" for i in range(len(frames))]
        for name, frame in zip(names, frames):
            if not cv2.imwrite(str(image_dir / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {image_dir / name}")
        database = work / "database.db"
        if database.exists():
            database.unlink()

        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = self.camera_model
        if K_px is not None:
            params = camera_params_from_K(K_px, self.camera_model, self.focal)
            reader.camera_params = ",".join(repr(v) for v in params)
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = self.num_threads
        extraction.use_gpu = False
        extraction.sift.max_num_features = self.max_num_features
        _set_options(extraction.sift, self.sift_options, "sift_options")
        with stage("colmap", f"feature extraction ({len(names)} frames)"):
            pycolmap.extract_features(
                database, image_dir, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
            )

        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = self.num_threads
        matching.use_gpu = False
        _set_options(matching, self.matching_options, "matching_options")
        verification = pycolmap.TwoViewGeometryOptions()
        verification.ransac.random_seed = self.seed
        _set_options(verification, self.verification_options, "verification_options")
        with stage("colmap", f"{self.matcher} matching"):
            if self.matcher == "sequential":
                pairing = pycolmap.SequentialPairingOptions()
                pairing.overlap = self.overlap
                pairing.num_threads = self.num_threads
                pycolmap.match_sequential(
                    database, matching_options=matching, pairing_options=pairing,
                    verification_options=verification, device=pycolmap.Device.cpu,
                )
            else:
                pycolmap.match_exhaustive(
                    database, matching_options=matching,
                    pairing_options=pycolmap.ExhaustivePairingOptions(),
                    verification_options=verification, device=pycolmap.Device.cpu,
                )

        return names

    def init_pairs(self, n: int) -> list[tuple[int, int]]:
        """Frame-index pairs (i, i + init_pair_gap) of the fixed-initial-pair attempts for n frames."""
        gap = self.init_pair_gap
        if gap is None or gap >= n or self.max_init_pairs < 1:
            return []
        starts = np.unique(np.round(np.linspace(0, n - 1 - gap, min(self.max_init_pairs, n - gap))))
        return [(int(i), int(i) + gap) for i in starts]

    def _attempts(self, pycolmap, work: Path, names: list[str], fixed: bool) -> list:
        """Every mapping attempt (automatic initial pair per angle, then the fixed pairs): all models.
        With ``mapper="global"``: the one global (GLOMAP) reconstruction."""
        if self.mapper == "global":
            return list(self._map_global(pycolmap, work, fixed, work / "sparse" / "global").values())
        models = []
        for k, angle in enumerate(self.init_min_tri_angles):
            models += self._map(pycolmap, work, angle, fixed, work / "sparse" / f"auto{k}").values()
        pairs = self.init_pairs(len(names))
        if pairs:
            db = pycolmap.Database.open(str(work / "database.db"))
            try:
                ids = {image.name: image.image_id for image in db.read_all_images()}
            finally:
                db.close()
            for i, j in pairs:
                out = work / "sparse" / f"pair{i}_{j}"
                pair = (ids[names[i]], ids[names[j]])
                models += self._map(pycolmap, work, self.init_min_tri_angles[0], fixed, out, pair).values()
        return models

    def _map(self, pycolmap, work: Path, tri_angle: float, fixed: bool, out: Path, pair=None) -> dict:
        """One incremental-mapping attempt on the database in ``work``: {index: Reconstruction}.
        ``pair``: COLMAP image ids of a fixed initial pair (then only one model is built: COLMAP would
        otherwise retry the same pair for every further model)."""
        opts = pycolmap.IncrementalPipelineOptions()
        opts.num_threads = self.num_threads
        opts.random_seed = self.seed
        opts.min_model_size = 2  # keep small partial models so the failure reason says how many registered
        opts.mapper.init_min_tri_angle = tri_angle
        opts.mapper.init_min_num_inliers = self.init_min_num_inliers
        opts.mapper.abs_pose_min_num_inliers = self.abs_pose_min_num_inliers
        opts.ba_refine_focal_length = not fixed
        opts.ba_refine_principal_point = False
        opts.ba_refine_extra_params = not fixed
        opts.mapper.abs_pose_refine_focal_length = not fixed
        opts.mapper.abs_pose_refine_extra_params = not fixed
        if pair is not None:
            opts.init_image_id1, opts.init_image_id2 = pair
            opts.multiple_models = False
            opts.init_num_trials = 2  # a fixed pair fails the same way every trial (200: up to 20 s wasted)
        _set_options(opts, self.mapper_options, "mapper_options")
        out.mkdir(parents=True, exist_ok=True)
        return pycolmap.incremental_mapping(work / "database.db", work / "images", out, options=opts)

    def _map_global(self, pycolmap, work: Path, fixed: bool, out: Path) -> dict:
        """One global-SfM (GLOMAP) reconstruction of the database in ``work``: {index: Reconstruction}."""
        opts = pycolmap.GlobalPipelineOptions()
        opts.num_threads = self.num_threads
        opts.random_seed = self.seed
        opts.min_model_size = 2
        ba = opts.mapper.bundle_adjustment
        ba.refine_focal_length = not fixed
        ba.refine_principal_point = False
        ba.refine_extra_params = not fixed
        _set_options(opts, self.mapper_options, "mapper_options")
        out.mkdir(parents=True, exist_ok=True)
        return pycolmap.global_mapping(work / "database.db", work / "images", out, options=opts)

    @staticmethod
    def _verified_matches(pycolmap, work: Path) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
        """(name_a, name_b, xy_a (m, 2), xy_b (m, 2)) of every geometrically verified image pair's inlier
        matches in work/database.db (COLMAP keypoints: pixel centres at +0.5, like vid3d)."""
        db = pycolmap.Database.open(str(work / "database.db"))
        try:
            names = {image.image_id: image.name for image in db.read_all_images()}
            xy = {i: np.asarray(db.read_keypoints(i), dtype=np.float64)[:, :2] for i in names}
            out = []
            for pair_id, geometry in zip(*db.read_two_view_geometries()):
                a, b = pycolmap.pair_id_to_image_pair(pair_id)
                m = np.asarray(geometry.inlier_matches, dtype=np.int64).reshape(-1, 2)
                if len(m):
                    out.append((names[a], names[b], xy[a][m[:, 0]], xy[b][m[:, 1]]))
            return out
        finally:
            db.close()

    def _consensus(self, model, names: list[str], matches) -> int:
        """Verified matches (all pairs, the same set for every model) that the model's poses and
        intrinsics explain (``sampson_inliers``); pairs with an unregistered image count nothing."""
        c2w, K = self._poses_from(model, names)
        if K is None:
            return 0
        index = {name: i for i, name in enumerate(names)}
        count = 0
        for name_a, name_b, xa, xb in matches:
            ca, cb = c2w[index[name_a]], c2w[index[name_b]]
            if np.isfinite(ca).all() and np.isfinite(cb).all():
                count += sampson_inliers(K, ca, cb, xa, xb, self.consensus_max_error)
        return count

    @staticmethod
    def _poses_from(model, names: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        index = {name: i for i, name in enumerate(names)}
        c2w = np.full((len(names), 4, 4), np.nan)
        K = None
        for image in model.images.values():
            if not image.has_pose or image.name not in index:
                continue
            w2c = np.eye(4)
            w2c[:3, :4] = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
            c2w[index[image.name]] = w2c_to_c2w(w2c)
            K = np.asarray(image.camera.calibration_matrix(), dtype=np.float64)
        return c2w, K

    @staticmethod
    def _first_frame_points(model, name: str) -> np.ndarray | None:
        """(m, 3) ``u, v, z`` of the model's 3D points observed in image ``name`` (None if unregistered)."""
        image = next((im for im in model.images.values() if im.name == name and im.has_pose), None)
        if image is None:
            return None
        w2c = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
        rows = []
        for p in image.points2D:
            if p.has_point3D():
                xyz = np.asarray(model.points3D[p.point3D_id].xyz, dtype=np.float64)
                rows.append([*np.asarray(p.xy, dtype=np.float64), float(w2c[2, :3] @ xyz + w2c[2, 3])])
        return np.asarray(rows, dtype=np.float64).reshape(-1, 3)

    def estimate(
        self, frames: np.ndarray, K_px: np.ndarray | None, gt_c2w: np.ndarray | None = None
    ) -> PoseResult:
        """Run COLMAP on (n, H, W, 3) uint8 frames with optional (3, 3) pixel intrinsics at (H, W).
        ``gt_c2w`` is ignored (accepted for interface compatibility)."""
        start = time.perf_counter()
        frames = check_frames(frames)
        n = len(frames)
        K = None if K_px is None else np.asarray(K_px, dtype=np.float64)
        if K is not None and K.shape != (3, 3):
            raise ValueError(f"K_px must be (3, 3), got {K.shape}")

        def result(c2w, K_est, success, reason, n_reg, points=None):
            return PoseResult(c2w, K_est, success, reason, time.perf_counter() - start, n_reg, points)

        try:
            import pycolmap

            pycolmap.set_random_seed(self.seed)
            with contextlib.ExitStack() as stack:
                stack.enter_context(_quiet_colmap(pycolmap, self.verbose))
                if self.workdir is None:
                    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vid3d_colmap_")))
                else:
                    work = self.workdir
                    work.mkdir(parents=True, exist_ok=True)
                names = self._run(pycolmap, work, frames, K)
                with stage("colmap", f"{self.mapper} mapping"):
                    models = self._attempts(pycolmap, work, names, self.fix_intrinsics and K is not None)
                if not models:
                    return result(None, None, False, f"no reconstruction (registered 0/{n} frames)", 0)
                if len(models) > 1:
                    matches = self._verified_matches(pycolmap, work)
                    key = {id(m): (m.num_reg_images(), self._consensus(m, names, matches)) for m in models}
                    best = max(models, key=lambda m: key[id(m)])
                else:
                    best = models[0]
                c2w, K_est = self._poses_from(best, names)
                points = self._first_frame_points(best, names[0])
        except Exception as e:  # COLMAP errors are failures of this sample, reported not raised
            return result(None, None, False, f"COLMAP error: {type(e).__name__}: {e}", 0)

        success, reason, n_reg = judge_registration(c2w, self.min_registered_fraction, len(models))
        return result(c2w if n_reg else None, K_est, success, reason, n_reg, points)
