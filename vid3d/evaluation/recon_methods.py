"""Reconstruction rows of the pair benchmarks: fit 3D Gaussians to some views of a pair, render its targets.

Each row is a method of ``sparse_runner`` (pair -> predicted target frames), so the reconstruction
benchmark runs on the same engine, records, resume and tables as the sparse-view benchmark; only what the
Gaussians are fitted on differs:

- ``<model> + 3dgs``: the two context views plus the model's views generated between them, at
  ``generated_views`` of the pair's non-target in-between cameras (the generation in interpolation mode);
- ``context_only + 3dgs``: the two context views alone (what the generated views add);
- ``all_gt + 3dgs``: the two context views plus the ground-truth frames at every non-target in-between
  camera (the ceiling of this reconstruction at this size).

The targets are never fitted on. Poses are made relative to the first context view before fitting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vid3d.geometry import relative_to_first
from vid3d.reconstruction.fit import FitConfig, fit_frames, render_frames

from .sparse_runner import SparsePair


@dataclass
class ReconSettings:
    """num_gaussians initialised in the fitted views' frustums between near and far (scene units; None:
    from the pair's depth range, 0.8 x min to 1.1 x max, when the dataset has depth); steps, lr_scale,
    ssim_weight, renderer: ``FitConfig``; generated_views: how many in-between cameras the model generates
    at (evenly spaced over the pair's non-target frames; a pair with fewer is refused); seed of the
    initialisation and view order; init: "random", "triangulated" (``fit_frames``: points from the two
    context views' matches) or "dust3r" (``dust3r_points``: DUSt3R's pointmap of the two context views,
    confidence > dust3r_min_conf, scaled to the known cameras; needs dust3r_checkpoint); reference_cache: a
    folder where the reference rows' renders are kept per pair (``cached_reference``; None: not kept)."""

    num_gaussians: int = 2000
    steps: int = 300
    lr_scale: float = 10.0
    ssim_weight: float = 0.2
    renderer: str = "auto"
    near: float | None = None
    far: float | None = None
    generated_views: int = 6
    seed: int = 0
    threads: int | None = 1
    init: str = "random"
    dust3r_checkpoint: str | None = None
    dust3r_min_conf: float = 3.0
    reference_cache: str | None = None

    def __post_init__(self) -> None:
        from vid3d.errors import InputError
        from vid3d.reconstruction.fit import INITS

        if self.init not in INITS:
            raise InputError(f"benchmark.init={self.init!r}: must be one of {', '.join(INITS)}")
        if self.init == "dust3r" and not self.dust3r_checkpoint:
            raise InputError("benchmark.init=dust3r needs the DUSt3R weights: benchmark.dust3r_checkpoint="
                             "/path/to/DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth (or DUST3R_CHECKPOINT); "
                             "nothing is downloaded")


def near_far(pair: SparsePair, s: ReconSettings) -> tuple[float, float]:
    if s.near is not None and s.far is not None:
        return float(s.near), float(s.far)
    if "depth_range" in pair.info:
        lo, hi = pair.info["depth_range"]
        return 0.8 * lo, 1.1 * hi
    raise ValueError(
        f"pair {pair.pair_id}: its clip has no depth to bound the scene; give the range in scene units: "
        "benchmark.near=... benchmark.far=..."
    )


def reconstruct_targets(
    frames: np.ndarray, K_px: np.ndarray, c2w: np.ndarray, target_K: np.ndarray, target_c2w: np.ndarray,
    near: float, far: float, s: ReconSettings, pair: tuple[int, int] = (0, 1),
) -> np.ndarray:
    """Fit Gaussians to ``frames`` (V, H, W, 3) uint8 at (K_px (V, 3, 3), c2w (V, 4, 4) OpenCV c2w) and
    render the targets (target_K (T, 3, 3), target_c2w (T, 4, 4), same world) -> (T, H, W, 3) uint8.
    ``pair``: the indices of the two context views among ``frames`` (for ``init="triangulated"``)."""
    cfg = FitConfig(steps=s.steps, lr_scale=s.lr_scale, ssim_weight=s.ssim_weight, renderer=s.renderer,
                    seed=s.seed)
    points = None
    if s.init == "dust3r":
        i, j = pair
        points = dust3r_points(_dust3r(s.dust3r_checkpoint), frames[i], frames[j], K_px[i], c2w[i], K_px[j],
                               c2w[j], s.dust3r_min_conf)
    g = fit_frames(frames, K_px, c2w, near, far, s.num_gaussians, cfg, s.threads, init=s.init, pair=pair,
                   init_points=points)
    return render_frames(g, target_K, target_c2w, frames.shape[1], frames.shape[2], s.renderer)


@functools.lru_cache(maxsize=1)
def _dust3r(checkpoint: str):
    from vid3d.evaluation.pose.dust3r import Dust3rPoseEstimator

    return Dust3rPoseEstimator(checkpoint=checkpoint)


def dust3r_points(
    estimator, img1: np.ndarray, img2: np.ndarray, K1: np.ndarray, c2w1: np.ndarray, K2: np.ndarray,
    c2w2: np.ndarray, min_conf: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """World points (M, 3) and colours (M, 3) in [0, 1] of view 1's pixels from DUSt3R's pointmaps of the pair
    (img1, img2 (H, W, 3) uint8 with known K_px and OpenCV c2w): the network's pts3d (view 1) and
    pts3d_in_other_view (view 2), both in camera 1's frame up to scale, on DUSt3R's resized grid (pixel
    centres mapped back through ``preprocess_frames``' affine map); pixels with confidence > ``min_conf``;
    scale and placement by ``points_from_pointmaps``."""
    from vid3d.evaluation.pose.dust3r import preprocess_frames
    from vid3d.reconstruction.triangulate import points_from_pointmaps

    imgs, A = preprocess_frames(np.stack([img1, img2]), estimator.image_size)
    out = estimator._pairwise(imgs)
    k = out["view1"]["idx"].index(0)  # the pair (0, 1): view 1 first
    Y1, c1 = out["pred1"]["pts3d"][k].double().numpy(), out["pred1"]["conf"][k].double().numpy()
    Y2, c2 = out["pred2"]["pts3d_in_other_view"][k].double().numpy(), out["pred2"]["conf"][k].double().numpy()
    h, w = Y1.shape[:2]
    v, u = np.mgrid[0:h, 0:w] + 0.5
    grid = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ np.linalg.inv(A).T  # frame pixels
    m1, m2 = c1.reshape(-1) > min_conf, c2.reshape(-1) > min_conf
    pts = points_from_pointmaps(Y1.reshape(-1, 3)[m1], grid[m1, :2], Y2.reshape(-1, 3)[m2], grid[m2, :2],
                                K1, c2w1, K2, c2w2)
    colours = ((imgs[0].permute(1, 2, 0).double().numpy() + 1) / 2).reshape(-1, 3)[m1]
    return pts, colours.clip(0, 1)


def _fit_and_render(pair: SparsePair, frames, K_px, c2w, s: ReconSettings,
                    context: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Fit on the given views (c2w in the pair's world; ``context``: where the two context views are among
    them), render the pair's targets; poses relative to the first context view."""
    world = np.asarray(pair.c2w[0], np.float64)
    rel = np.asarray(relative_to_first(np.concatenate([world[None], c2w, pair.c2w[1:-1]])))
    n = len(frames)
    near, far = near_far(pair, s)
    return reconstruct_targets(frames, K_px, rel[1 : n + 1], pair.K_px[1:-1], rel[n + 1 :], near, far, s,
                               context)


def path_views(pair: SparsePair, count: int | None) -> np.ndarray:
    """Positions (into ``pair.info["path"]``) of ``count`` evenly spaced in-between views (all if None).
    Exactly ``count``: a pair with fewer non-target frames between its context views is refused."""
    n = len(pair.info["path"]["indices"])
    if count is None:
        return np.arange(n)
    if count > n:
        raise ValueError(f"pair {pair.pair_id}: {n} non-target frames between the context views, "
                         f"{count} generated views wanted (needs gap >= targets + {count} + 1)")
    # distinct: n - 1 >= count - 1 makes consecutive linspace points >= 1 apart, so rounding keeps them apart
    return np.round(np.linspace(0, n - 1, count)).astype(int)


def context_only_method(s: ReconSettings) -> Callable[[SparsePair], np.ndarray]:
    def run(pair: SparsePair) -> np.ndarray:
        ends = [0, -1]
        return _fit_and_render(pair, pair.frames[ends], pair.K_px[ends], pair.c2w[ends], s)

    return run


def all_gt_method(s: ReconSettings) -> Callable[[SparsePair], np.ndarray]:
    def run(pair: SparsePair) -> np.ndarray:
        path = pair.info["path"]
        frames = np.concatenate([pair.frames[[0, -1]], path["frames"]])
        K = np.concatenate([pair.K_px[[0, -1]], path["K_px"]])
        c2w = np.concatenate([pair.c2w[[0, -1]], path["c2w"]])
        return _fit_and_render(pair, frames, K, c2w, s)

    return run


def generated_method(
    generate: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str], np.ndarray], s: ReconSettings
) -> Callable[[SparsePair], np.ndarray]:
    """``generate(first, last, K_px (n, 3, 3), c2w (n, 4, 4) relative to the first, item id) -> (n, H, W, 3)``
    uint8: the model's video from the first context view to the last along n cameras."""

    def run(pair: SparsePair) -> np.ndarray:
        path = pair.info["path"]
        sel = path_views(pair, s.generated_views)
        K = np.concatenate([pair.K_px[:1], path["K_px"][sel], pair.K_px[-1:]])
        c2w = np.concatenate([pair.c2w[:1], path["c2w"][sel], pair.c2w[-1:]])
        video = generate(pair.frames[0], pair.frames[-1], K, np.asarray(relative_to_first(c2w)), pair.pair_id)
        frames = np.concatenate([pair.frames[:1], video[1:-1], pair.frames[-1:]])  # true context views
        return _fit_and_render(pair, frames, K, c2w, s, (0, len(frames) - 1))

    return run


# what a reference row's fit depends on besides its settings: the code that fits and renders
_FIT_SOURCES = ("fit.py", "gaussians.py", "render_torch.py", "render_gsplat.py", "triangulate.py")
# settings that do not change a reference row's fit
_NOT_IN_KEY = ("generated_views", "reference_cache")


def reference_key(pair: SparsePair, row: str, s: ReconSettings) -> str:
    """sha256 of everything a reference row's render of ``pair`` depends on: the row, the pair's frames,
    intrinsics, poses, in-between views and depth range, the settings (all but ``_NOT_IN_KEY``), the
    renderer it resolves to, and the source of vid3d/reconstruction's fitting and rendering code."""
    import hashlib
    import json
    from dataclasses import asdict
    from pathlib import Path

    from vid3d.reconstruction.fit import resolve_renderer

    h = hashlib.sha256()
    settings = {k: v for k, v in asdict(s).items() if k not in _NOT_IN_KEY}
    meta = {"row": row, "settings": settings, "renderer": resolve_renderer(s.renderer),
            "target": list(pair.target), "context": list(pair.context),
            "depth_range": pair.info.get("depth_range")}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    arrays = [pair.frames, pair.K_px, pair.c2w]
    path = pair.info.get("path")
    if path is not None:
        arrays += [path["frames"], path["K_px"], path["c2w"], path["indices"]]
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    code = Path(__file__).resolve().parents[1] / "reconstruction"
    for name in _FIT_SOURCES:
        f = code / name
        h.update(f.read_bytes() if f.is_file() else b"")
    return h.hexdigest()


def cached_reference(method: Callable[[SparsePair], np.ndarray], row: str, s: ReconSettings
                     ) -> Callable[[SparsePair], np.ndarray]:
    """``method`` (a reference row) with its renders kept in ``s.reference_cache``/<row>/<key>.npy, keyed by
    ``reference_key``: the same pair with the same settings and code is fitted once, whatever model is
    evaluated beside it (another checkpoint, another run of the bucket). The fit is deterministic (seeded,
    one thread), so a kept render is the render a new fit gives. A kept file that does not load as the
    targets' uint8 frames is refitted and replaced. ``s.reference_cache`` None: ``method`` unchanged."""
    if not s.reference_cache:
        return method
    from pathlib import Path

    from vid3d.atomic import atomic_write_bytes

    def run(pair: SparsePair) -> np.ndarray:
        path = Path(s.reference_cache) / row / f"{reference_key(pair, row, s)}.npy"
        want = pair.gt_targets.shape
        if path.is_file():
            try:
                kept = np.load(path, allow_pickle=False)
                if kept.shape == want and kept.dtype == np.uint8:
                    return kept
            except (OSError, ValueError):
                pass
        pred = method(pair)
        import io

        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(pred), allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
        return pred

    return run
