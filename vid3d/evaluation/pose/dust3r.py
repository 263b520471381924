"""DUSt3R pose estimator (naver's model and global aligner, packaged on PyPI as ``mini-dust3r``).

Pipeline: frames -> DUSt3R input images (long side 512, sides multiples of 16, or a 224 centre
square) -> the model on every ordered pair of frames (all-pairs graph, symmetrised) -> global
alignment (``PointCloudOptimizer``, minimum-spanning-tree init, Adam with a cosine/linear schedule)
-> per-frame camera-to-world poses and focal lengths.

Conventions. DUSt3R's pointmaps live in OpenCV camera axes (x right, y down, z forward: depth is +z)
and ``get_im_poses`` returns camera-to-world matrices, so its poses are vid3d's ``c2w`` unchanged. Its
pixel grid puts pixel (u, v) at (u, v) and the principal point at (W/2, H/2); vid3d puts pixel
centres at (u + 0.5, v + 0.5), so 0.5 is added to the principal point before the intrinsics are
mapped back through the resize/crop to the input frames' resolution.

Weights. The model is built from a known configuration (``RELEASED_512_CONFIG``: the released
``DUSt3R_ViTLarge_BaseDecoder_512_dpt``) and its state dict is read from ``checkpoint`` with
``torch.load(weights_only=True)`` (or safetensors). DUSt3R's own ``load_model`` is never used: it
``eval``s a string stored in the checkpoint. ``random_init=True`` builds a tiny random-weight model of
the same class for plumbing tests; its results are labelled ``random-init (not DUSt3R)`` everywhere
(estimator name, ``describe()["weights"]``, every ``PoseResult.reason``).

Failures are results: fewer than 2 frames, non-finite poses/focals/loss, or an exception inside the
model or the aligner give ``success=False`` with the reason.
"""

from __future__ import annotations

import argparse
import math
import re
import time
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from vid3d.progress import stage

from .base import PoseEstimator, PoseResult, check_frames

__all__ = [
    "RANDOM_INIT_LABEL",
    "RELEASED_512_CONFIG",
    "TINY_CONFIG",
    "Dust3rPoseEstimator",
    "build_dust3r_model",
    "load_dust3r_state_dict",
    "preprocess_frames",
]

RANDOM_INIT_LABEL = "random-init (not DUSt3R)"

# The released DUSt3R_ViTLarge_BaseDecoder_512_dpt checkpoint's model configuration. DUSt3R's
# inference swaps ManyAR_PatchEmbed (a training-time aspect-ratio helper) for PatchEmbedDust3R with
# landscape_only=False; both hold the same parameters (patch_embed.proj.*).
RELEASED_512_CONFIG: dict[str, Any] = {
    "pos_embed": "RoPE100",
    "patch_embed_cls": "PatchEmbedDust3R",
    "img_size": (512, 512),
    "head_type": "dpt",
    "output_mode": "pts3d",
    "depth_mode": ("exp", -math.inf, math.inf),
    "conf_mode": ("exp", 1, math.inf),
    "enc_embed_dim": 1024,
    "enc_depth": 24,
    "enc_num_heads": 16,
    "dec_embed_dim": 768,
    "dec_depth": 12,
    "dec_num_heads": 12,
    "landscape_only": False,
}

# A tiny model of the same class for plumbing tests (linear head: the DPT head needs dec_depth > 9;
# even head dimensions for RoPE). Random weights: never a DUSt3R number.
TINY_CONFIG: dict[str, Any] = {
    **RELEASED_512_CONFIG,
    "head_type": "linear",
    "enc_embed_dim": 32,
    "enc_depth": 2,
    "enc_num_heads": 2,
    "dec_embed_dim": 32,
    "dec_depth": 2,
    "dec_num_heads": 2,
}

IMAGE_SIZES = (224, 512)
SCHEDULES = ("cosine", "linear")


def build_dust3r_model(config: dict[str, Any]) -> torch.nn.Module:
    """An ``AsymmetricCroCo3DStereo`` with random weights from a configuration dict (no eval, no hub)."""
    from mini_dust3r.model import AsymmetricCroCo3DStereo

    cfg = dict(config)
    cfg["img_size"] = tuple(cfg["img_size"])
    for key in ("depth_mode", "conf_mode"):
        if cfg.get(key) is not None:
            cfg[key] = tuple(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                             for v in cfg[key])
    return AsymmetricCroCo3DStereo(**cfg)


def _resolve_hub_id(path: str | Path) -> Path:
    """``path`` itself if it exists or is not a hub id; else the Hugging Face cache's snapshot folder of that
    hub id (e.g. "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt"), downloaded there on first use
    (``vid3d.weights``: one line naming the repository and the fetch command when that is not possible)."""
    p = Path(path)
    if p.exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)):
        return p
    from vid3d.weights import fetch_hub_files

    return fetch_hub_files(str(path), ("model.safetensors",), what=f"pose.checkpoint={path}")


def load_dust3r_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The model state dict of a DUSt3R checkpoint, read without executing code from the file.

    Accepts a ``.safetensors`` file, a folder holding ``model.safetensors`` (a Hugging Face snapshot), a
    hub id found in the local Hugging Face cache,
    or a torch file read with ``torch.load(weights_only=True)``: either a plain state dict or DUSt3R's
    training checkpoint ``{"model": state_dict, "args": argparse.Namespace, ...}`` (the Namespace is
    allow-listed as data; its ``model`` string is never evaluated). Anything else raises ValueError.
    """
    path = _resolve_hub_id(path)
    if path.is_dir():
        if not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"pose.checkpoint={path}: folder without model.safetensors")
        path = path / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"pose.checkpoint={path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle with code/globals outside the allow-list
        raise ValueError(
            f"pose.checkpoint={path}: refused to load with torch.load(weights_only=True) "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Save the model's "
            "state_dict (torch.save(model.state_dict(), ...)) or use a .safetensors file."
        ) from e
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"pose.checkpoint={path}: expected a state dict (name -> tensor) or a dict with a 'model' "
            f"state dict, got {type(obj).__name__}"
        )
    return obj


def _target_size(h: int, w: int, size: int) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """DUSt3R's input geometry for an (h, w) frame: resized (h, w) and the crop box (x0, y0, x1, y1).

    512: the long side becomes 512, then a centre crop to multiples of 16 (a square result is cropped to
    4:3 as DUSt3R does). 224 (or another multiple of 16, test models only): the short side becomes
    ``size``, then a centre ``size`` x ``size`` crop.
    """
    if size != 512:
        scale = size / min(h, w)
    else:
        scale = 512 / max(h, w)
    rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
    cx, cy = rw // 2, rh // 2
    if size != 512:
        half = min(cx, cy)
        return (rh, rw), (cx - half, cy - half, cx + half, cy + half)
    halfw, halfh = ((2 * cx) // 16) * 8, ((2 * cy) // 16) * 8
    if rw == rh:
        halfh = (3 * halfw // 4) // 8 * 8
    return (rh, rw), (cx - halfw, cy - halfh, cx + halfw, cy + halfh)


def preprocess_frames(frames: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """(n, H, W, 3) uint8 -> DUSt3R images (n, 3, h, w) float32 in [-1, 1] and the 3x3 affine map
    ``A`` taking continuous pixel coordinates of the frames to those of the DUSt3R images (both with
    pixel centres at +0.5): x_dust3r = A @ x_frame."""
    if size % 16 or not 16 <= size <= 512:
        raise ValueError(f"image size must be a multiple of 16 in [16, 512], got {size}")
    n, h, w = frames.shape[:3]
    (rh, rw), (x0, y0, x1, y1) = _target_size(h, w, size)
    interp = cv2.INTER_AREA if rh < h else cv2.INTER_CUBIC
    out = []
    for f in frames:
        r = cv2.resize(f, (rw, rh), interpolation=interp) if (rh, rw) != (h, w) else f
        out.append(r[y0:y1, x0:x1])
    imgs = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    A = np.array([[rw / w, 0.0, -x0], [0.0, rh / h, -y0], [0.0, 0.0, 1.0]])
    return imgs.contiguous(), A


class Dust3rPoseEstimator(PoseEstimator):
    """Estimate per-frame camera-to-world poses (and focal lengths) with DUSt3R + global alignment.

    Args:
        checkpoint: DUSt3R weights (see ``load_dust3r_state_dict``); required unless ``random_init``.
        random_init: build ``TINY_CONFIG`` with random weights instead (plumbing tests only; labelled).
        model_config: overrides of the model configuration (default ``RELEASED_512_CONFIG``).
        image_size: 512 (the released 512 model) or 224 (a 224 model); test models (``random_init`` or
            ``model``) may use any multiple of 16 (short side resized to it, centre square crop).
        device: "auto" (CUDA if available), "cpu", "cuda", "cuda:1", ...
        batch_size: image pairs per forward pass.
        niter: global-alignment iterations; schedule: "cosine" or "linear"; lr: Adam learning rate.
        min_conf_thr: confidence threshold of the minimum-spanning-tree initialisation.
        known_focal: fix the focal length to the given intrinsics (else it is estimated per frame).
        seed: seed of the aligner's random initial parameters (the result is deterministic on the CPU).
        model: an already built model (tests; bypasses ``checkpoint``/``random_init``).
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        random_init: bool = False,
        model_config: dict[str, Any] | None = None,
        image_size: int = 512,
        device: str = "auto",
        batch_size: int = 8,
        niter: int = 300,
        schedule: str = "cosine",
        lr: float = 0.01,
        min_conf_thr: float = 3.0,
        known_focal: bool = False,
        seed: int = 0,
        model: torch.nn.Module | None = None,
    ) -> None:
        if image_size not in IMAGE_SIZES and not (random_init or model is not None):
            raise ValueError(f"pose.image_size must be one of {IMAGE_SIZES} (DUSt3R's), got {image_size}")
        if schedule not in SCHEDULES:
            raise ValueError(f"pose.schedule must be one of {SCHEDULES}, got {schedule!r}")
        if niter < 0:
            raise ValueError(f"pose.niter must be >= 0, got {niter}")
        self.random_init = bool(random_init) and model is None
        if checkpoint in (None, "") and model is None and not self.random_init:
            from vid3d.weights import get

            checkpoint = get("dust3r_512").repo  # the released model, fetched on first use
        self.checkpoint = None if checkpoint in (None, "") else Path(checkpoint)
        base = TINY_CONFIG if self.random_init else RELEASED_512_CONFIG
        self.model_config = {**base, **dict(model_config or {})}
        self.image_size = int(image_size)
        self.device_spec = device
        self.batch_size = int(batch_size)
        self.niter = int(niter)
        self.schedule = schedule
        self.lr = float(lr)
        self.min_conf_thr = float(min_conf_thr)
        self.known_focal = bool(known_focal)
        self.seed = int(seed)
        self.device = self._resolve_device(device)
        self.weights = "custom model" if model is not None else (RANDOM_INIT_LABEL if self.random_init else
                                                                 str(self.checkpoint))
        self.name = "dust3r[random-init]" if self.random_init else "dust3r"
        self.model = (model if model is not None else self._build()).to(self.device).eval()

    @staticmethod
    def _resolve_device(device: str) -> torch.device:
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(device)

    def _build(self) -> torch.nn.Module:
        if self.random_init:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                return build_dust3r_model(self.model_config)
        state = load_dust3r_state_dict(self.checkpoint)
        model = build_dust3r_model(self.model_config)
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise ValueError(
                f"pose.checkpoint={self.checkpoint}: does not match the model configuration "
                f"({str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e}). "
                "Check pose.model_config."
            ) from e
        if missing:
            # safetensors files written by save_model / huggingface_hub (e.g. the hub's model.safetensors)
            # keep one name per shared tensor: the DPT heads' tied ``scratch.layer_rn`` weights come
            # without their aliases. Those are loaded through the name that is there.
            own = model.state_dict()
            loaded = {own[k].data_ptr() for k in state if k in own}
            missing = [k for k in missing if own[k].data_ptr() not in loaded]
        if missing or unexpected:
            raise ValueError(
                f"pose.checkpoint={self.checkpoint}: does not match the model configuration "
                f"({len(missing)} missing, {len(unexpected)} unexpected keys; e.g. missing "
                f"{list(missing)[:3]}, unexpected {list(unexpected)[:3]}). Check pose.model_config."
            )
        return model

    def describe(self) -> dict[str, Any]:
        import importlib.metadata

        try:
            version = importlib.metadata.version("mini-dust3r")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.model_config.items()}
        return {
            "name": self.name,
            "weights": self.weights,
            "mini_dust3r_version": version,
            "model_config": cfg,
            "image_size": self.image_size,
            "graph": "complete (all ordered pairs, symmetrised)",
            "global_alignment": {
                "optimizer": "PointCloudOptimizer", "init": "mst", "niter": self.niter,
                "schedule": self.schedule, "lr": self.lr, "min_conf_thr": self.min_conf_thr,
            },
            "known_focal": self.known_focal,
            "seed": self.seed,
            "device": str(self.device),
        }

    # ------------------------------------------------------------------ pipeline
    @torch.no_grad()
    def _pairwise(self, imgs: torch.Tensor) -> dict[str, Any]:
        """The network on every ordered pair (i, j), i != j, in the layout the global aligner reads:
        {"view1": {"idx", "img", "true_shape", "instance"}, "view2": ..., "pred1": {"pts3d", "conf"},
        "pred2": {"pts3d_in_other_view", "conf"}}. Pairs come as (i, j), (j, i) neighbours so the model
        encodes each image pair once (DUSt3R's symmetrised batches; keep ``batch_size`` even)."""
        n = len(imgs)
        pairs = [p for i in range(n) for j in range(i) for p in ((i, j), (j, i))]
        shape = torch.tensor([list(imgs.shape[-2:])], dtype=torch.int32)
        bs = max(2, self.batch_size - self.batch_size % 2)
        out = {"view1": {"idx": [], "instance": []}, "view2": {"idx": [], "instance": []},
               "pred1": {"pts3d": [], "conf": []}, "pred2": {"pts3d_in_other_view": [], "conf": []}}
        for start in range(0, len(pairs), bs):
            chunk = pairs[start : start + bs]
            views = []
            for side in (0, 1):
                idx = [p[side] for p in chunk]
                views.append({
                    "img": imgs[idx].to(self.device), "true_shape": shape.repeat(len(idx), 1),
                    "idx": idx, "instance": [str(i) for i in idx],
                })
            res1, res2 = self.model(views[0], views[1])
            for side, view in zip(("view1", "view2"), views):
                out[side]["idx"] += view["idx"]
                out[side]["instance"] += view["instance"]
            out["pred1"]["pts3d"].append(res1["pts3d"].float().cpu())
            out["pred1"]["conf"].append(res1["conf"].float().cpu())
            out["pred2"]["pts3d_in_other_view"].append(res2["pts3d_in_other_view"].float().cpu())
            out["pred2"]["conf"].append(res2["conf"].float().cpu())
        for key in ("pred1", "pred2"):
            out[key] = {k: torch.cat(v) for k, v in out[key].items()}
        for side in ("view1", "view2"):
            out[side]["img"] = imgs[out[side]["idx"]]
            out[side]["true_shape"] = shape.repeat(len(out[side]["idx"]), 1)
        return out

    def _align(self, output: dict[str, Any], focal_px: float | None):
        from mini_dust3r.cloud_opt import GlobalAlignerMode, global_aligner

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            scene = global_aligner(
                output, device=str(self.device), mode=GlobalAlignerMode.PointCloudOptimizer, verbose=False
            )
            if focal_px is not None:
                scene.preset_focal([focal_px] * scene.n_imgs)
            with torch.enable_grad():
                loss = scene.compute_global_alignment(
                    init="mst", niter=self.niter, schedule=self.schedule, lr=self.lr
                )
        with torch.no_grad():
            c2w = scene.get_im_poses().detach().double().cpu().numpy()
            K = scene.get_intrinsics().detach().double().cpu().numpy()
        return c2w, K, float(loss) if loss is not None else math.nan

    def estimate(
        self, frames: np.ndarray, K_px: np.ndarray | None, gt_c2w: np.ndarray | None = None
    ) -> PoseResult:
        """DUSt3R poses of (n, H, W, 3) uint8 frames. ``K_px`` (3, 3) at (H, W) is used only with
        ``known_focal``; the returned ``K_px`` is at (H, W) with the median estimated focal length.
        ``gt_c2w`` is ignored."""
        start = time.perf_counter()
        frames = check_frames(frames)
        n = len(frames)
        note = RANDOM_INIT_LABEL if self.random_init else None

        def result(c2w, K, success, reason, n_reg):
            if note is not None:
                reason = note if reason is None else f"{note}; {reason}"
            return PoseResult(c2w, K, success, reason, time.perf_counter() - start, n_reg)

        if n < 2:
            return result(None, None, False, f"DUSt3R needs at least 2 frames, got {n}", 0)
        if self.known_focal and K_px is None:
            raise ValueError("pose.known_focal=true needs the clip's intrinsics (K_px)")
        imgs, A = preprocess_frames(frames, self.image_size)
        focal = None
        if self.known_focal:
            K = np.asarray(K_px, dtype=np.float64)
            focal = float(0.5 * (K[0, 0] * A[0, 0] + K[1, 1] * A[1, 1]))
        try:
            with warnings.catch_warnings():  # mini-dust3r's deprecated autocast / tensor-to-float notes
                warnings.filterwarnings("ignore", category=FutureWarning)
                warnings.filterwarnings("ignore", category=UserWarning)
                with stage("dust3r", f"pairwise inference ({n * (n - 1)} ordered pairs)"):
                    output = self._pairwise(imgs)
                with stage("dust3r", f"global alignment ({self.niter} iterations)"):
                    c2w, K_d, loss = self._align(output, focal)
        except Exception as e:  # model/aligner errors are failures of this sample, reported not raised
            return result(None, None, False, f"DUSt3R error: {type(e).__name__}: {e}", 0)

        finite = np.all(np.isfinite(c2w.reshape(n, -1)), axis=1)
        if not np.all(np.isfinite(K_d)) or not math.isfinite(loss) or not finite.all():
            c2w[~finite] = np.nan
            return result(
                None, None, False,
                f"global alignment diverged (non-finite poses in {int((~finite).sum())}/{n} frames, "
                f"loss {loss:.4g})", 0,
            )
        # Intrinsics back to the input frames: DUSt3R's principal point is in pixel-index coordinates
        # (+0.5 for vid3d's pixel centres); then undo resize/crop: x_frame = A^-1 x_dust3r.
        K_med = np.eye(3)
        K_med[0, 0] = K_med[1, 1] = float(np.median(K_d[:, 0, 0]))
        K_med[:2, 2] = np.median(K_d[:, :2, 2], axis=0) + 0.5
        K_frames = np.linalg.inv(A) @ K_med
        return result(c2w, K_frames, True, None, n)
