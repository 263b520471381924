"""A trained vid3d model as a self-contained, diffusers-style pipeline folder.

``CameraVideoPipeline.save_pretrained(folder)`` writes

    {folder}/model_index.json            {"_class_name": ["vid3d_pipeline", "Vid3dCameraVideoPipeline"],
                                         "_vid3d_format", "_vid3d_format_version", ...}
    {folder}/vid3d_pipeline.py           the diffusers entry point (below): a DiffusionPipeline subclass
                                         that hands every call to this module's pipeline
    {folder}/vid3d_model.json            the model config (a ``_target_`` tree read against
                                         vid3d.models.schema, never passed to Hydra) without its backbone,
                                         the default sampler settings and, when known, the image size
    {folder}/unet/ vae/ image_encoder/   the backbone, trained UNet weights included, in the diffusers SVD
                                         layout (vid3d.models.save_backbone; safetensors)
    {folder}/vid3d_modules.safetensors   every weight outside the backbone (camera encoder, cross-frame
                                         attention)

and ``CameraVideoPipeline.from_pretrained(folder)`` rebuilds the model from those files: the backbone with
``vid3d.models.load_svd_backbone(folder)``, the camera encoder / attention from the config, then their
weights. Nothing is pickled or unpickled (a folder with pickle weight files is refused).

vid3d's loader runs no code from the folder: it refuses a folder whose ``vid3d_pipeline.py`` is not
byte for byte a file vid3d wrote, that holds any other code file or names components in
``model_index.json``, whose sampler settings or component configs are out of bounds
(``pipeline_folder``, ``sampler_settings``). diffusers can load the same folder through its
custom-pipeline mechanism (vid3d must be installed):

    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
    frames = pipe(image, K_px, "orbit_left", amplitude="large").frames[0]   # PIL images, as SVD's pipeline

``trust_remote_code=True`` *executes* the folder's ``vid3d_pipeline.py`` before anything is checked:
for a folder you received, load it with ``CameraVideoPipeline.from_pretrained`` first (which refuses a
changed file), or only with diffusers after that.

CLI: ``python -m vid3d.sampling.pipeline ckpt=<checkpoint or training run dir> out=<folder>``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vid3d.atomic import atomic_dir
from vid3d.errors import InputError

from .sampler_settings import check_image_size, check_num_frames, check_sampler_settings, sampler_options
from .samplers import SOLVERS
from .video_sampler import VideoSampler, from_uint8, to_uint8

__all__ = ["CameraVideoPipeline", "CameraVideoPipelineOutput", "main"]

log = logging.getLogger("vid3d")

FORMAT = "vid3d-camera-video-pipeline"
VERSION = 1
MODEL_FILE = "vid3d_model.json"
WEIGHTS_FILE = "vid3d_modules.safetensors"
INDEX_FILE = "model_index.json"
DIFFUSERS_FILE = "vid3d_pipeline.py"
DIFFUSERS_CLASS = "Vid3dCameraVideoPipeline"
# the diffusers entry point written into every export: a pipeline without components of its own that builds
# vid3d's pipeline from its folder on first use (diffusers sets ``config._name_or_path`` to the folder)
DIFFUSERS_ENTRY = f'''"""diffusers entry point to a vid3d camera-controlled video pipeline (vid3d's export).

    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
    frames = pipe(image, K_px, c2w)  # arguments and output: vid3d.sampling.pipeline.CameraVideoPipeline

The weights are read by vid3d (safetensors only; vid3d must be installed): this file defines no model.
"""

from diffusers import DiffusionPipeline


class {DIFFUSERS_CLASS}(DiffusionPipeline):
    def __init__(self):
        super().__init__()
        self._vid3d = None
        self._vid3d_device = "cpu"

    @property
    def vid3d(self):
        """The vid3d pipeline (``CameraVideoPipeline``), loaded from this folder on first use."""
        if self._vid3d is None:
            from vid3d.sampling.pipeline import CameraVideoPipeline

            folder = self.config._name_or_path
            self._vid3d = CameraVideoPipeline.from_pretrained(folder, device=self._vid3d_device)
        return self._vid3d

    def to(self, device=None, *args, **kwargs):
        if device is not None:
            self._vid3d_device = device
            if self._vid3d is not None:
                self._vid3d.to(device)
        return self

    def __call__(self, *args, **kwargs):
        return self.vid3d(*args, **kwargs)
'''
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def _version(package: str) -> str:
    try:
        from importlib.metadata import version

        return version(package)
    except Exception:  # not installed as a distribution
        return "unknown"


def _to_tensor(x, dtype=torch.float32) -> torch.Tensor:
    return x.to(dtype) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype)


def _image_tensor(image) -> torch.Tensor:
    """PIL image, uint8 array (H, W, 3) / (B, H, W, 3), or a float tensor (3, H, W) / (B, 3, H, W) in
    [-1, 1] -> (B, 3, H, W) float32 in [-1, 1]."""
    if isinstance(image, torch.Tensor):
        x = image.float()
        return x[None] if x.ndim == 3 else x
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.shape[-1] != 3 or arr.ndim not in (3, 4):
        raise ValueError(
            f"image must be a uint8 (H, W, 3) array / PIL image or a float tensor in [-1, 1], got "
            f"{arr.dtype} {arr.shape}"
        )
    x = from_uint8(arr)
    return x[None] if x.ndim == 3 else x


@dataclass
class CameraVideoPipelineOutput:
    """What a call returns, as diffusers' ``StableVideoDiffusionPipelineOutput``: ``frames`` is, by
    ``output_type``, a list (one per batch entry) of lists of F ``PIL.Image`` ("pil"), a float32 array
    (B, F, H, W, 3) in [0, 1] ("np") or a float tensor (B, F, 3, H, W) in [0, 1] ("pt"); ``frames[0]`` is
    the first video (``diffusers.utils.export_to_video(out.frames[0], path)`` writes it). Like diffusers'
    outputs, ``out[0]`` and ``out["frames"]`` are the frames too (no diffusers import needed here)."""

    frames: Any

    def __getitem__(self, key: int | str):
        if key in (0, "frames"):
            return self.frames
        raise KeyError(key)

    def to_tuple(self) -> tuple:
        return (self.frames,)


class CameraVideoPipeline:
    """Camera-controlled image-to-video: ``pipe(image, K_px, c2w).frames[0]``.

    Args:
        model: a ``CameraVideoDiffusion``.
        model_config: its config (the Hydra ``_target_`` tree); the ``backbone`` entry is not needed.
        sampler: default sampler settings (keys of ``vid3d.config_schema.SamplerOptions``; absent keys take
            its defaults).
        image_size: (H, W) the model was trained at, when known: a call at another size is refused unless
            ``allow_resize=True`` (then a warning).
        num_frames: the number of frames it was trained with, when known (the length of a preset path).
    """

    def __init__(
        self,
        model: nn.Module,
        model_config: Mapping[str, Any] | None = None,
        sampler: Mapping[str, Any] | None = None,
        image_size: Sequence[int] | None = None,
        num_frames: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.model_config = {k: v for k, v in dict(model_config or {}).items() if k != "backbone"}
        self.sampler = dataclasses.asdict(sampler_options(dict(sampler or {}), "sampler"))
        self.image_size = check_image_size(
            list(image_size) if image_size is not None else None, "CameraVideoPipeline"
        )
        self.num_frames = check_num_frames(num_frames, "CameraVideoPipeline")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(cls, ckpt: str | os.PathLike, **kw) -> CameraVideoPipeline:
        """From a vid3d training checkpoint (file or training run dir; EMA weights when it has them). The
        image size and frame count default to the ones the model was trained at (recorded in the
        checkpoint)."""
        from vid3d.models.checkpoint import load_model, read_trained_state

        _, meta, path = read_trained_state(ckpt)
        if kw.get("image_size") is None:
            kw["image_size"] = meta.get("image_size")
        if kw.get("num_frames") is None:
            kw["num_frames"] = meta.get("num_frames")
        return cls(load_model(path), meta.get("model_config"), **kw)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write the pipeline folder (see the module docstring) atomically: built in a temporary sibling,
        then moved into place (an existing folder is replaced)."""
        from safetensors.torch import save_file

        from vid3d.models.backbone import save_backbone

        if not self.model_config.get("_target_"):
            raise ValueError(
                "save_pretrained needs the model config (a '_target_' tree) to rebuild the model"
            )
        folder = Path(folder)
        with atomic_dir(folder) as pipe:
            save_backbone(self.model.backbone, pipe)  # fills the (empty) temporary folder
            state = {
                k: v.detach().cpu().contiguous().clone()
                for k, v in self.model.state_dict().items()
                if not k.startswith("backbone.")
            }
            save_file(state, str(pipe / WEIGHTS_FILE), metadata={"format": FORMAT})
            spec = {"model": self.model_config, "sampler": self.sampler, "image_size": self.image_size,
                    "num_frames": self.num_frames}
            (pipe / MODEL_FILE).write_text(json.dumps(spec, indent=1))
            index = {  # keys diffusers reads, and vid3d's own (underscored: diffusers passes those over)
                "_class_name": [Path(DIFFUSERS_FILE).stem, DIFFUSERS_CLASS],
                "_diffusers_version": _version("diffusers"),
                "_vid3d_format": FORMAT,
                "_vid3d_format_version": VERSION,
                "_vid3d_class": f"vid3d.sampling.pipeline.{type(self).__name__}",
                "_vid3d_version": _version("vid3d"),
            }
            (pipe / INDEX_FILE).write_text(json.dumps(index, indent=1))
            (pipe / DIFFUSERS_FILE).write_text(DIFFUSERS_ENTRY)
        return folder

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike,
        device: str | torch.device = "cpu",
        torch_dtype: torch.dtype | None = None,
    ) -> CameraVideoPipeline:
        """Load a folder written by :meth:`save_pretrained` (safetensors only; never unpickles)."""
        from safetensors.torch import load_file

        from vid3d.models.backbone import PIXEL_VAE_FILE, load_svd_backbone
        from vid3d.models.schema import build_model, validate_model_config

        from .pipeline_folder import (
            check_component_configs,
            check_entry_file,
            check_index,
            check_no_other_code,
            read_json,
        )

        folder = Path(folder)
        for name in (INDEX_FILE, MODEL_FILE, WEIGHTS_FILE):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name} does not exist (not a vid3d pipeline folder)")
        index = read_json(folder / INDEX_FILE)
        if not isinstance(index, dict):
            raise ValueError(f"{folder / INDEX_FILE}: expected a JSON object, got {type(index).__name__}")
        fmt = index.get("_vid3d_format", index.get("format"))  # "format"/"version": exports before 2026-12
        version = index.get("_vid3d_format_version", index.get("version", -1))
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"{folder / INDEX_FILE}: the format version {version!r:.40} is not an integer")
        if fmt != FORMAT:
            raise ValueError(f"{folder / INDEX_FILE}: the vid3d format is {fmt!r}, expected {FORMAT!r}")
        if version > VERSION:
            raise ValueError(
                f"{folder / INDEX_FILE}: format version {version} is newer than this vid3d ({VERSION})"
            )
        # no code from the folder is ever run by vid3d; one that would make diffusers run code vid3d did
        # not write (trust_remote_code) is refused here
        check_index(index, folder / INDEX_FILE, [Path(DIFFUSERS_FILE).stem, DIFFUSERS_CLASS])
        check_entry_file(folder, DIFFUSERS_FILE)
        check_no_other_code(folder, DIFFUSERS_FILE)
        pickled = [p for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES]
        if pickled:
            raise ValueError(f"{pickled[0]}: pickle weight files are refused (safetensors only)")
        spec = read_json(folder / MODEL_FILE)
        if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
            raise ValueError(f"{folder / MODEL_FILE}: 'model' must be a model config mapping")
        sampler = check_sampler_settings(spec.get("sampler") or {}, str(folder / MODEL_FILE), SOLVERS)
        image_size = check_image_size(spec.get("image_size"), str(folder / MODEL_FILE))
        # checked before the backbone is read, so a refused file costs nothing and loads nothing
        no_backbone = {k: v for k, v in spec["model"].items() if k != "backbone"}
        validate_model_config(no_backbone, str(folder / MODEL_FILE))
        check_component_configs(folder, PIXEL_VAE_FILE)
        backbone = load_svd_backbone(folder, torch_dtype=torch_dtype)
        model = build_model(spec["model"], str(folder / MODEL_FILE), backbone=backbone)
        state = load_file(str(folder / WEIGHTS_FILE))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected:
            raise ValueError(f"{folder / WEIGHTS_FILE}: weights {unexpected[:5]} do not exist in the model")
        not_loaded = [k for k in missing if not k.startswith("backbone.")]
        if not_loaded:
            raise ValueError(f"{folder / WEIGHTS_FILE}: weights {not_loaded[:5]} are missing")
        model = model.to(device)
        if torch_dtype is not None:
            model = model.to(torch_dtype)
        num_frames = check_num_frames(spec.get("num_frames"), str(folder / MODEL_FILE))
        return cls(model, spec["model"], sampler, image_size, num_frames)

    def to(self, device: str | torch.device) -> CameraVideoPipeline:
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ generation
    def camera_path(
        self, c2w, num_frames: int | None = None, amplitude: str | float = "medium", **preset
    ) -> torch.Tensor:
        """``c2w`` as poses: an (F, 4, 4) / (B, F, 4, 4) array or tensor as given, or a preset name
        (``vid3d.sampling.trajectories.PRESETS``: "orbit_left", "zoom_in", ...) built with ``amplitude``
        ("small" | "medium" | "large" | a float in the preset's unit) over ``num_frames`` frames (default:
        the training frame count). Returns float32 (F, 4, 4) or (B, F, 4, 4)."""
        if not isinstance(c2w, str):
            return _to_tensor(c2w)
        from vid3d.sampling.trajectories import PRESETS, make_trajectory

        if c2w not in PRESETS:
            import difflib

            close = difflib.get_close_matches(c2w, PRESETS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise InputError(f"unknown camera preset {c2w!r}{hint} (presets: {', '.join(PRESETS)})")
        f = num_frames or self.num_frames
        if not f:
            raise InputError(f"preset {c2w!r}: pass num_frames= (this pipeline does not record its training "
                             "frame count)")
        return _to_tensor(make_trajectory(c2w, int(f), amplitude=amplitude, **preset).c2w)

    def _check_size(self, height: int, width: int, allow_resize: bool) -> None:
        if not self.image_size or [height, width] == list(self.image_size):
            return
        what = (f"the image is {height}x{width} (H x W) but the model was trained at "
                f"{self.image_size[0]}x{self.image_size[1]}")
        if not allow_resize:
            raise InputError(f"{what}: resize the image to the training size, or pass allow_resize=True")
        log.warning("%s (allow_resize=True): results off the training size may be worse", what)

    @torch.no_grad()
    def __call__(
        self,
        image,
        K_px,
        c2w,
        num_steps: int | None = None,
        guidance_min: float | None = None,
        guidance_max: float | None = None,
        solver: str | None = None,
        last_image=None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        amplitude: str | float = "medium",
        num_frames: int | None = None,
        allow_resize: bool = False,
    ):
        """Generate frames along a camera path.

        Args:
            image: the first frame: uint8 (H, W, 3) array / PIL image, or float (3, H, W) in [-1, 1];
                a leading batch dim B is allowed. H and W must be divisible by the model's downscale and,
                when the pipeline knows its training size, equal to it (else refused unless
                ``allow_resize=True``, then a warning).
            K_px: pixel intrinsics at (H, W): (3, 3) for every frame, (F, 3, 3) or (B, F, 3, 3).
            c2w: OpenCV camera-to-world poses (F, 4, 4) or (B, F, 4, 4) (made relative to frame 0), or a
                preset name ("orbit_left", "zoom_in", ...; ``amplitude`` and ``num_frames`` apply).
            num_steps, guidance_min, guidance_max, solver: override the saved sampler settings
                (guidance rises linearly from min at frame 0 to max at the last frame).
            last_image: optional known last frame (interpolation; pinned by replacement, training-free).
            generator / seed: the randomness (a seed makes a CPU generator); same seed -> same frames.
            output_type: as diffusers' SVD pipeline: "pil" (lists of PIL images), "np" (float32
                (B, F, H, W, 3) in [0, 1]) or "pt" (float (B, F, 3, H, W) in [0, 1]).
            return_dict: False returns the tuple ``(frames,)`` instead of the output object.
        Returns:
            ``CameraVideoPipelineOutput`` with ``.frames`` (batched: ``frames[0]`` is the first video).
        """
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
        dev = self.device
        first = _image_tensor(image).to(dev)
        self._check_size(int(first.shape[-2]), int(first.shape[-1]), allow_resize)
        b = first.shape[0]
        c2w_t = self.camera_path(c2w, num_frames, amplitude)
        if c2w_t.ndim == 3:
            c2w_t = c2w_t[None]
        if c2w_t.ndim != 4 or c2w_t.shape[-2:] != (4, 4):
            raise ValueError(f"c2w must be (F, 4, 4) or (B, F, 4, 4), got {tuple(c2w_t.shape)}")
        c2w_t = c2w_t.expand(b, *c2w_t.shape[1:])
        f = c2w_t.shape[1]
        K_t = _to_tensor(K_px)
        if K_t.shape[-2:] != (3, 3) or K_t.ndim not in (2, 3, 4):
            raise ValueError(f"K_px must be (3, 3), (F, 3, 3) or (B, F, 3, 3), got {tuple(K_t.shape)}")
        K_t = K_t.reshape(*([1] * (4 - K_t.ndim)), *K_t.shape).expand(b, f, 3, 3)
        cfg = dict(self.sampler)
        for k, v in (
            ("num_steps", num_steps),
            ("guidance_min", guidance_min),
            ("guidance_max", guidance_max),
            ("solver", solver),
        ):
            if v is not None:
                cfg[k] = v
        sampler = VideoSampler.from_options(sampler_options(cfg, "CameraVideoPipeline call"))
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        known = (
            None if last_image is None else {f - 1: _image_tensor(last_image).to(dev).expand(b, -1, -1, -1)}
        )
        video = sampler(  # (B, F, 3, H, W) in [-1, 1]
            self.model, first, K_t.to(dev), c2w_t.to(dev), generator=generator, known_frames=known
        )
        if output_type == "pt":
            frames = ((video.float() + 1.0) / 2.0).clamp(0.0, 1.0)
        else:
            u8 = to_uint8(video)  # (B, F, H, W, 3) uint8
            if output_type == "np":
                frames = u8.astype(np.float32) / 255.0
            else:
                from PIL import Image

                frames = [[Image.fromarray(fr) for fr in v] for v in u8]
        return CameraVideoPipelineOutput(frames=frames) if return_dict else (frames,)


def _parse(argv: Sequence[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for a in argv:
        key, sep, value = a.lstrip("-").partition("=")
        if not sep:
            raise SystemExit(f"argument {a!r}: expected key=value (ckpt=..., out=..., num_steps=...)")
        args[key] = value
    return args


def main(argv: Sequence[str] | None = None) -> Path:
    """``python -m vid3d.sampling.pipeline ckpt=<checkpoint or run dir> out=<folder> [num_steps=12]
    [solver=edm_euler] [guidance_min=1.0] [guidance_max=3.0] [height=... width=...]``."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    if "ckpt" not in args or "out" not in args:
        raise SystemExit("usage: python -m vid3d.sampling.pipeline ckpt=<checkpoint or run dir> out=<folder>")
    sampler: dict[str, Any] = {}
    for key, conv in (
        ("num_steps", int),
        ("guidance_min", float),
        ("guidance_max", float),
        ("solver", str),
        ("sigma_min", float),
        ("sigma_max", float),
        ("rho", float),
    ):
        if key in args:
            value = args.pop(key)
            try:
                sampler[key] = conv(value)
            except ValueError:
                raise SystemExit(f"argument {key}={value}: expected {conv.__name__}") from None
    size = None
    if "height" in args and "width" in args:
        height, width = args.pop("height"), args.pop("width")
        if not (height.isdigit() and width.isdigit()):
            raise SystemExit(f"arguments height={height} width={width}: expected integers")
        size = [int(height), int(width)]
    ckpt, out = args.pop("ckpt"), args.pop("out")
    if args:
        raise SystemExit(f"unknown arguments: {sorted(args)}")
    from vid3d.errors import user_errors

    with user_errors():
        pipe = CameraVideoPipeline.from_checkpoint(ckpt, sampler=sampler, image_size=size)
        folder = pipe.save_pretrained(out)
    print(f"wrote {folder}")
    return folder


if __name__ == "__main__":
    main()
