"""DL3DV / nerfstudio scenes.

Layout::

    {root}/{scene_id}/transforms.json     nerfstudio: w, h, fl_x, fl_y, cx, cy (pixels at w x h), optional
                                          per-frame overrides of those keys, frames[].file_path (relative,
                                          e.g. "images/frame_00001.png"), frames[].transform_matrix
                                          (4x4 OpenGL camera-to-world: x right, y up, z backward)
    {root}/{scene_id}/images/...          full resolution frames
    {root}/{scene_id}/images_4/...        optional reduced copies (same file names), images_8/, ...

Poses are converted to OpenCV with ``vid3d.geometry.opengl_to_opencv_c2w``. Intrinsics of reduced images are
the full-resolution ones scaled by (actual image width / w, actual image height / h), which is exact under
the pixel-centre convention. Lens distortion coefficients (k1, k2, p1, p2) are ignored. Frames are ordered
by file name (DL3DV names them frame_00001, ... in capture order).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from vid3d.atomic import atomic_write_json
from vid3d.data.clips import BadClip, ClipSamplingDataset, OpenedClip, stack_same_size
from vid3d.data.files import ImageTooLarge, UnsafePath, confined, load_json
from vid3d.data.holdout import select
from vid3d.data.interval import UniformInterval
from vid3d.geometry import c2w_to_w2c, opencv_to_opengl_c2w, opengl_to_opencv_c2w

__all__ = [
    "Dl3dvClipDataset",
    "Dl3dvScene",
    "TransformsError",
    "list_scenes",
    "read_id_list",
    "read_image",
    "read_transforms",
    "resolve_image_path",
    "scene_id",
    "split_scenes",
    "write_scene",
]

_INTR_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


class TransformsError(ValueError):
    """str(e) = '<path>: <field>: <what is wrong>'."""


@dataclass
class Dl3dvScene:
    """One scene. K_px are pixel intrinsics at (height, width) = (h, w) of transforms.json."""

    path: Path  # transforms.json
    width: int
    height: int
    K_px: np.ndarray  # (N, 3, 3) float64
    c2w: np.ndarray  # (N, 4, 4) float64, OpenCV camera-to-world
    file_paths: list[str]  # as written in transforms.json (relative to the scene folder)

    @property
    def scene_dir(self) -> Path:
        return self.path.parent

    def K_norm(self) -> np.ndarray:
        """(N, 3, 3) intrinsics normalised by (w, h)."""
        K = self.K_px.copy()
        K[:, 0] /= self.width
        K[:, 1] /= self.height
        return K


def _num(value, path: Path, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise TransformsError(f"{path}: {field}: expected a finite number, got {value!r}")
    return float(value)


def read_transforms(path: str | Path) -> Dl3dvScene:
    """Parse a nerfstudio transforms.json (see module docstring); errors name the file and field."""
    path = Path(path)
    try:  # a regular file only (a FIFO never blocks), size- and depth-limited
        data = load_json(path)
    except ValueError as e:
        raise TransformsError(str(e)) from None
    frames = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(frames, list) or not frames:
        raise TransformsError(f"{path}: frames: missing or empty list")
    order = sorted(
        range(len(frames)),
        key=lambda k: str(frames[k].get("file_path", "")) if isinstance(frames[k], dict) else "",
    )
    Ks, poses, files = [], [], []
    W = H = None
    for k in order:
        fr = frames[k]
        where = f"frames[{k}]"
        if not isinstance(fr, dict) or not isinstance(fr.get("file_path"), str):
            raise TransformsError(f"{path}: {where}.file_path: missing or not a string")
        vals = {}
        for key in _INTR_KEYS:
            v = fr.get(key, data.get(key))
            if v is None:
                raise TransformsError(f"{path}: {key}: missing (neither global nor in {where})")
            vals[key] = _num(v, path, f"{where}.{key}" if key in fr else key)
        w, h = int(vals["w"]), int(vals["h"])
        if W is None:
            W, H = w, h
        elif (w, h) != (W, H):
            raise TransformsError(f"{path}: {where}: size {w}x{h} differs from {W}x{H}")
        K = np.array(
            [[vals["fl_x"], 0, vals["cx"]], [0, vals["fl_y"], vals["cy"]], [0, 0, 1]], dtype=np.float64
        )
        try:
            M = np.asarray(fr["transform_matrix"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise TransformsError(f"{path}: {where}.transform_matrix: missing or not numeric") from e
        if M.shape not in ((4, 4), (3, 4)):
            raise TransformsError(f"{path}: {where}.transform_matrix: shape {M.shape}, expected 4x4")
        Ks.append(K)
        poses.append(M[:3])
        files.append(fr["file_path"])
    c2w_gl = np.concatenate([np.stack(poses), np.tile([[[0.0, 0, 0, 1]]], (len(poses), 1, 1))], axis=1)
    return Dl3dvScene(path, int(W), int(H), np.stack(Ks), opengl_to_opencv_c2w(c2w_gl), files)


def resolve_image_path(scene_dir: str | Path, file_path: str, image_dir: str | None = None) -> Path:
    """scene_dir / file_path, with the leading folder replaced by ``image_dir`` (e.g. images -> images_4)."""
    rel = PurePosixPath(file_path)
    if image_dir is not None:
        rel = PurePosixPath(image_dir) / rel.name
    return Path(scene_dir) / rel


def read_image(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) RGB; FileNotFoundError if absent, ValueError if undecodable."""
    from vid3d.data.files import decode_image

    if not path.exists():
        raise FileNotFoundError(str(path))
    return decode_image(path)  # regular files only: a FIFO or a directory is refused, never opened


def write_scene(
    root: str | Path,
    scene_id: str,
    K_px: np.ndarray,
    c2w: np.ndarray,
    frames_uint8: np.ndarray,
    downscales: tuple[int, ...] = (),
    image_ext: str = "png",
) -> Path:
    """Write a scene: frames (N, H, W, 3) RGB to images/frame_{k:05d}.{ext} (k from 1), reduced copies
    images_{d}/ of size (H // d, W // d) for each d in ``downscales`` (INTER_AREA), and transforms.json
    with ``K_px`` ((3, 3) shared, or (N, 3, 3) written per frame) at (H, W) and OpenCV ``c2w`` (N, 4, 4)
    stored as OpenGL transform_matrix. Returns the transforms.json path (written atomically)."""
    frames_uint8 = np.asarray(frames_uint8)
    n, H, W = frames_uint8.shape[:3]
    scene_dir = Path(root) / scene_id
    K_px = np.asarray(K_px, dtype=np.float64)
    per_frame = K_px.ndim == 3
    c2w_gl = np.asarray(opencv_to_opengl_c2w(np.asarray(c2w, dtype=np.float64)))
    names = [f"frame_{k + 1:05d}.{image_ext}" for k in range(n)]
    for folder, d in [("images", 1)] + [(f"images_{d}", d) for d in downscales]:
        (scene_dir / folder).mkdir(parents=True, exist_ok=True)
        for name, img in zip(names, frames_uint8):
            if d > 1:
                img = cv2.resize(img, (W // d, H // d), interpolation=cv2.INTER_AREA)
            if not cv2.imwrite(str(scene_dir / folder / name), np.ascontiguousarray(img[..., ::-1])):
                raise OSError(f"{scene_dir / folder / name}: cannot write image")

    def intr(K: np.ndarray) -> dict[str, float]:
        return {"fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])}

    data: dict = {"w": int(W), "h": int(H), "camera_model": "PINHOLE"}
    if not per_frame:
        data.update(intr(K_px))
    data["frames"] = [
        {
            "file_path": f"images/{name}",
            "transform_matrix": c2w_gl[k].tolist(),
            **(intr(K_px[k]) if per_frame else {}),
        }
        for k, name in enumerate(names)
    ]
    out = scene_dir / "transforms.json"
    atomic_write_json(out, data, indent=1)
    return out


def list_scenes(root: str | Path, max_depth: int = 3) -> list[Path]:
    """Sorted scene folders under root that contain a transforms.json, found up to ``max_depth`` levels
    down: ``{root}/{scene}``, ``{root}/1K/{scene}`` (DL3DV-10K subsets), ``{root}/{scene}/nerfstudio``
    (DL3DV benchmark). Folders below a scene are not searched."""
    root = Path(root)
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        if (d / "transforms.json").is_file():
            found.append(d)
            return
        if depth >= max_depth:
            return
        for child in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not child.name.startswith("images"):
                walk(child, depth + 1)

    if root.is_dir():
        for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            walk(child, 1)
    return sorted(found)


def scene_id(scene_dir: Path) -> str:
    """A scene's id: its folder name, or the parent's for ``{hash}/nerfstudio`` (DL3DV benchmark)."""
    return scene_dir.parent.name if scene_dir.name == "nerfstudio" else scene_dir.name


def read_id_list(path: str | Path) -> list[str]:
    """Scene ids, one per line (blank lines and ``#`` comments ignored; a path keeps its last part)."""
    ids = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(PurePosixPath(line.rstrip("/")).name)
    return ids


def split_scenes(
    root: str | Path,
    split: str | None,
    split_file: str | Path | None = None,
    exclude_file: str | Path | None = None,
) -> list[Path]:
    """Scene folders of one split (DL3DV has no official train/test folders; this follows whichever of
    these conventions the data uses, first match wins):

    1. ``split_file``: ids listed there, searched anywhere under ``root``;
    2. ``{root}/{split}/``: every scene under that folder (what the converter writes);
    3. ``{root}/{split}.txt``: ids listed there, searched anywhere under ``root``;
    4. ``split`` None: every scene under ``root``.

    ``exclude_file`` drops the listed ids (e.g. the DL3DV-140 benchmark hashes from training).
    Raises FileNotFoundError naming the places looked at when the split cannot be found.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: DL3DV root folder does not exist")
    listed: list[str] | None = None
    if split_file is not None:
        listed = read_id_list(split_file)
        scenes = list_scenes(root)
    elif split and (root / split).is_dir():
        scenes = list_scenes(root / split)
    elif split and (root / f"{split}.txt").is_file():
        listed = read_id_list(root / f"{split}.txt")
        scenes = list_scenes(root)
    elif not split:
        scenes = list_scenes(root)
    else:
        raise FileNotFoundError(
            f"{root}: no DL3DV split '{split}': expected a folder {root / split} or a scene-id list "
            f"{root / (split + '.txt')} (or pass split_file / split=null)"
        )
    if listed is not None:
        wanted = set(listed)
        scenes = [s for s in scenes if scene_id(s) in wanted]
    if exclude_file is not None:
        drop = set(read_id_list(exclude_file))
        scenes = [s for s in scenes if scene_id(s) not in drop]
    return scenes


class Dl3dvClipDataset(ClipSamplingDataset):
    """DL3DV clips: one item per scene; frames from ``image_dir`` (e.g. "images_4"; None = as in the file).

    Splits: see :func:`split_scenes` (``split`` folder, ``{split}.txt`` id list, ``split_file``,
    ``exclude_file``). Default interval UniformInterval(2, 10). Sample dict as in vid3d.data.clips.
    Further arguments (num_frames, height, width, interval, ...): see ``ClipSamplingDataset``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *args,
        image_dir: str | None = "images_4",
        split_file: str | Path | None = None,
        exclude_file: str | Path | None = None,
        **sampling,
    ) -> None:
        if len(args) < 4 and sampling.get("interval") is None:  # interval is the 4th sampling argument
            sampling["interval"] = UniformInterval(2, 10)
        super().__init__(*args, **sampling)
        self.root, self.split = Path(root), split
        self.image_dir = image_dir
        self.scenes = select(split_scenes(self.root, split, split_file, exclude_file), lambda p: p.name,
                             self.holdout, str(self.root if split is None else self.root / split),
                             self.clip_list)

    def num_clips(self) -> int:
        return len(self.scenes)

    def describe_clip(self, i: int) -> str:
        return str(self.scenes[i] / "transforms.json")

    def clip_name(self, i: int) -> str:
        return scene_id(self.scenes[i])

    def open_clip(self, i: int) -> OpenedClip:
        tpath = self.scenes[i] / "transforms.json"
        try:
            scene = read_transforms(tpath)
        except (TransformsError, OSError, UnicodeDecodeError) as e:
            raise BadClip("camera_file", str(e)) from e
        K_norm = scene.K_norm()
        w2c = np.asarray(c2w_to_w2c(scene.c2w))

        def read(idx: np.ndarray) -> np.ndarray:
            frames = []
            for k in idx:
                p = resolve_image_path(scene.scene_dir, scene.file_paths[int(k)], self.image_dir)
                try:
                    confined(p, self.root)
                    frames.append(read_image(p))
                except UnsafePath as e:
                    reason = "outside_root" if e.reason == "outside_root" else "unreadable_frames"
                    raise BadClip(reason, str(e)) from e
                except FileNotFoundError as e:
                    raise BadClip("missing_frames", f"{p}: missing frame") from e
                except ImageTooLarge as e:
                    raise BadClip("image_size", str(e)) from e
                except ValueError as e:
                    raise BadClip("unreadable_frames", str(e)) from e
            return stack_same_size(frames, str(tpath))

        return OpenedClip(scene_id(self.scenes[i]), K_norm, w2c, read, str(tpath))
