"""Build the embedded synthetic dataset in the RealEstate10K layout (+ depth) via ``write_clip``.

``build_synthetic_dataset(root)`` writes ``{root}/train`` and ``{root}/test`` (clip ids such as
``room_0003``; ids are unique across splits: train holds indices 0..num_train-1, test the next
num_test, or num_test from ``test_start``) and ``{root}/manifest.json`` (parameters + format version).
It is deterministic from the seed and idempotent: when the manifest matches, it returns at once. A build
happens in a temporary sibling folder renamed into place at the end, so an interrupted build never leaves a
half dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from vid3d.atomic import atomic_write_bytes
from vid3d.data.formats.re10k import Re10kCameras, write_clip
from vid3d.geometry import K_norm_to_px

from .render import render_views
from .scenes import ClipSpec, make_clip

__all__ = ["FORMAT_VERSION", "MANIFEST", "build_synthetic_dataset", "clip_cameras", "render_clip"]

FORMAT_VERSION = 2  # 2: turntable studios get props (a better COLMAP noise floor)
MANIFEST = "manifest.json"
FRAME_INTERVAL_US = 33_333  # 30 fps
DEPTH_STEP = 2.0**-10  # depth is stored rounded to ~1 mm (exact in float32, compresses well)


def clip_cameras(spec: ClipSpec, height: int, width: int, seed: int) -> Re10kCameras:
    """Cameras of a clip: square-pixel pinhole with the spec's horizontal FOV, principal point at the
    image centre (K_norm), c2w -> w2c, timestamps 33333 us apart."""
    fx_px = width / (2.0 * np.tan(np.deg2rad(spec.hfov_deg) / 2.0))
    K_norm = np.array([[fx_px / width, 0.0, 0.5], [0.0, fx_px / height, 0.5], [0.0, 0.0, 1.0]])
    ts = np.arange(len(spec.c2w), dtype=np.int64) * FRAME_INTERVAL_US
    url = f"synthetic://vid3d/{spec.kind}/{spec.trajectory}/seed{seed}/{spec.clip_id}"
    return Re10kCameras.from_c2w(spec.c2w, K_norm, ts, url=url)


def render_clip(
    spec: ClipSpec, cams: Re10kCameras, height: int, width: int, supersample: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Render every camera of ``cams``: frames (N, H, W, 3) uint8, depth (N, H, W) float32.

    Rendering uses the poses and intrinsics exactly as written to the camera file (c2w from w2c,
    K_px from K_norm), so the files describe the pixels."""
    K_px = K_norm_to_px(cams.K_norm, height, width)
    return render_views(spec.scene, K_px, cams.c2w(), height, width, supersample)


def _params(
    num_train,
    num_test,
    num_frames,
    height,
    width,
    seed,
    image_ext,
    supersample,
    texture_scale=1.0,
    test_start=None,
) -> dict:
    params = {
        "num_train": int(num_train),
        "num_test": int(num_test),
        "num_frames": int(num_frames),
        "height": int(height),
        "width": int(width),
        "seed": int(seed),
        "image_ext": str(image_ext),
        "supersample": int(supersample),
    }
    if float(texture_scale) != 1.0:  # absent at the default, so datasets built before it still match
        params["texture_scale"] = float(texture_scale)
    if test_start is not None and int(test_start) != int(num_train):  # absent at the default, likewise
        params["test_start"] = int(test_start)
    return params


def _read_manifest(root: Path) -> dict | None:
    try:
        return json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _matches(manifest: dict | None, params: dict) -> bool:
    return (
        bool(manifest)
        and manifest.get("format_version") == FORMAT_VERSION
        and manifest.get("params") == params
    )


def _build_one(out_root: str, split: str, index: int, params: dict) -> str:
    spec = make_clip(index, params["seed"], params["num_frames"], params.get("texture_scale", 1.0))
    cams = clip_cameras(spec, params["height"], params["width"], params["seed"])
    frames, depth = render_clip(spec, cams, params["height"], params["width"], params["supersample"])
    depth = (np.round(depth / DEPTH_STEP) * DEPTH_STEP).astype(np.float32)
    write_clip(out_root, split, spec.clip_id, cams, frames, depth=depth, image_ext=params["image_ext"])
    return spec.clip_id


def _run_jobs(
    tmp: Path, jobs: list[tuple[str, int]], params: dict, workers: int, verbose: bool = False
) -> list[str]:
    """Render every (split, index) job into ``tmp``; clip ids in job order. ``verbose``: progress (one tick
    per finished clip): a bar on a terminal, a line every 10 clips / progress.every_s seconds in a log."""
    from vid3d.progress import Progress, ProgressSettings, settings

    opts = settings() if verbose else ProgressSettings(mode="off")
    bar = Progress("rendering clips", len(jobs), unit="clip", default_every_n=10, opts=opts)
    try:
        if workers <= 1 or len(jobs) <= 1:
            ids = []
            for split, i in jobs:
                ids.append(_build_one(str(tmp), split, i, params))
                bar.update()
            return ids
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_build_one, str(tmp), split, i, params) for split, i in jobs]
            for f in futures:
                f.add_done_callback(lambda _: bar.update())
            return [f.result() for f in futures]
    finally:
        bar.close()


def build_synthetic_dataset(
    root: str | os.PathLike,
    *,
    num_train: int = 12,
    num_test: int = 4,
    num_frames: int = 48,
    height: int = 144,
    width: int = 256,
    seed: int = 0,
    image_ext: str = "jpg",
    supersample: int = 1,
    texture_scale: float = 1.0,
    test_start: int | None = None,
    workers: int | None = None,
    verbose: bool = False,
) -> Path:
    """Build (or reuse) the synthetic dataset at ``root``; returns ``root`` as a Path.

    Raises FileExistsError if ``root`` is a non-empty folder that is not a synthetic dataset (it is
    never deleted). A synthetic dataset with other parameters is replaced (after the new one is built).
    ``workers`` > 1 renders clips in that many processes (output identical to workers=1); None picks
    min(2, CPUs) for builds of 200+ frames (the demo set) and 1 for small ones. ``texture_scale`` > 1
    renders the same scenes and cameras with larger texture features (smoother frames). ``test_start``: the
    scene index of the first test clip (default ``num_train``), so the held-out clips of a large training set
    can be rendered alone: ``num_train=0, num_test=16, test_start=600`` gives the very test clips of a
    600-scene build (a scene depends only on its index and the seed). ``verbose``:
    say what is built and where, with its progress (the configs set it; a reused dataset prints nothing).
    """
    root = Path(root).absolute()
    params = _params(
        num_train, num_test, num_frames, height, width, seed, image_ext, supersample, texture_scale,
        test_start,
    )
    first_test = num_train if test_start is None else int(test_start)
    if first_test < num_train:
        raise ValueError(
            f"synthetic dataset: test_start={first_test} would reuse training scenes 0..{num_train - 1}"
        )
    if num_train < 0 or num_test < 0 or num_frames < 2 or height < 8 or width < 8 or not texture_scale > 0:
        raise ValueError(f"invalid synthetic dataset parameters: {params}")
    if _matches(_read_manifest(root), params):
        return root
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and _read_manifest(root) is None)):
        raise FileExistsError(
            f"{root}: exists and is not a vid3d synthetic dataset (no {MANIFEST}); refusing to overwrite it"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.building-{os.getpid()}-{os.urandom(3).hex()}"
    start = time.perf_counter()
    try:
        tmp.mkdir()
        for split in ("train", "test"):
            (tmp / split).mkdir()
        jobs = [("train", i) for i in range(num_train)] + [("test", first_test + i) for i in range(num_test)]
        if workers is None:
            workers = min(2, os.cpu_count() or 1) if len(jobs) * num_frames >= 200 else 1
        if verbose:
            print(
                f"building the synthetic dataset (first use; cached): {num_train} train + {num_test} test "
                f"clips of {num_frames} frames at {height}x{width}, {workers} process(es) -> {root}",
                flush=True,
            )
        ids = _run_jobs(tmp, jobs, params, workers, verbose)
        manifest = {
            "format": "vid3d-synthetic-re10k",
            "format_version": FORMAT_VERSION,
            "params": params,
            "clips": {"train": ids[:num_train], "test": ids[num_train:]},
            "depth": "z-depth in metres, 0 = sky, rounded to 2^-10 m",
            "build_seconds": round(time.perf_counter() - start, 2),
        }
        atomic_write_bytes(tmp / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        _swap_into_place(tmp, root, params)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if verbose:
        print(f"built {len(ids)} clips in {time.perf_counter() - start:.1f}s -> {root}")
    return root


def _swap_into_place(tmp: Path, root: Path, params: dict) -> None:
    """Rename the finished build ``tmp`` to ``root``; an older dataset there is moved aside first and
    deleted afterwards (restored if the rename fails)."""
    old = None
    if root.exists() and any(root.iterdir()):
        old = root.parent / f".{root.name}.old-{os.getpid()}-{os.urandom(3).hex()}"
        os.rename(root, old)
    try:
        os.rename(tmp, root)  # replaces an empty folder; fails if another build just finished
    except OSError:
        if _matches(_read_manifest(root), params):  # a concurrent build of the same dataset won
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            if old is not None and not root.exists():
                os.rename(old, root)
            raise
    if old is not None and old.exists():
        shutil.rmtree(old, ignore_errors=True)
