"""pixelSplat / MVSplat chunked RealEstate10K/ACID format.

Layout::

    {root}/{split}/index.json        {"<key>": "000000.torch", ...}
    {root}/{split}/000000.torch      torch.save'd list of examples (dicts):
        url         str
        timestamps  int64 tensor (N,)        microseconds
        cameras     float32 tensor (N, 18)   fx fy cx cy (normalised: fx, cx / width; fy, cy / height)
                                             0 0, then the row-major 3x4 OpenCV world-to-camera
        images      list of N uint8 tensors  each the raw bytes of one JPEG (RGB content)
        key         str
    evaluation index JSON (separate file): {"<key>": {"context": [i, j], "target": [k, ...]} | null}

Chunks are read with ``torch.load(weights_only=True)`` (lists/dicts of tensors, str and int are allowed by
the safe unpickler), never with full pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from vid3d.atomic import atomic_target
from vid3d.data.clips import BadClip, ClipSamplingDataset, OpenedClip, stack_same_size
from vid3d.data.files import ImageTooLarge, UnsafePath, check_image_pixels, confined, load_json
from vid3d.data.holdout import select
from vid3d.errors import InputError

__all__ = [
    "ChunkClipDataset",
    "ChunkFormatError",
    "EvalEntry",
    "cameras_to_tensor",
    "decode_image",
    "encode_image",
    "example_cameras",
    "load_chunk",
    "make_example",
    "read_eval_index",
    "read_index",
    "save_chunk",
    "write_index",
    "write_split",
]


class ChunkFormatError(InputError):
    """str(e) = '<path>: <where>: <what is wrong>'."""


def _atomic_write(path: Path, write) -> None:
    """``write(f)`` into a binary file that replaces ``path`` whole when done (``vid3d.atomic``, 0644)."""
    with atomic_target(path, keep_suffix=False, fsync=True) as tmp, open(tmp, "wb") as f:
        write(f)


# -- cameras & images -------------------------------------------------------------------------
def cameras_to_tensor(K_norm: np.ndarray, w2c: np.ndarray) -> torch.Tensor:
    """(N, 3, 3) normalised intrinsics + (N, 3|4, 4) world-to-camera -> float32 (N, 18)."""
    K_norm, w2c = np.asarray(K_norm, dtype=np.float64), np.asarray(w2c, dtype=np.float64)
    n = len(K_norm)
    out = np.zeros((n, 18), dtype=np.float64)
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = (
        K_norm[:, 0, 0],
        K_norm[:, 1, 1],
        K_norm[:, 0, 2],
        K_norm[:, 1, 2],
    )
    out[:, 6:] = w2c[:, :3, :4].reshape(n, 12)
    return torch.from_numpy(out.astype(np.float32))


def example_cameras(cameras: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """float (N, 18) -> (K_norm (N, 3, 3), w2c (N, 4, 4)), both float64."""
    c = cameras.detach().cpu().numpy().astype(np.float64)
    n = len(c)
    K = np.zeros((n, 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = c[:, 0], c[:, 1], c[:, 2], c[:, 3], 1.0
    w2c = np.tile(np.eye(4), (n, 1, 1))
    w2c[:, :3, :4] = c[:, 6:].reshape(n, 3, 4)
    return K, w2c


def encode_image(rgb_uint8: np.ndarray, quality: int = 95) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> uint8 tensor of JPEG bytes."""
    ok, buf = cv2.imencode(
        ".jpg", np.ascontiguousarray(rgb_uint8[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return torch.from_numpy(buf.reshape(-1).copy())


def decode_image(data: torch.Tensor) -> np.ndarray:
    """uint8 tensor of encoded image bytes -> uint8 (H, W, 3) RGB; ValueError if undecodable or if the
    header declares more than ``vid3d.data.files.MAX_IMAGE_PIXELS`` pixels."""
    buf = np.ascontiguousarray(data.detach().cpu().numpy().astype(np.uint8, copy=False).reshape(-1))
    if buf.size:
        check_image_pixels(buf.tobytes(), "image bytes")  # header only, before decoding
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise ValueError("cannot decode image bytes")
    return img[..., ::-1].copy()


def make_example(
    key: str, url: str, timestamps, K_norm: np.ndarray, w2c: np.ndarray, frames: Any, quality: int = 95
) -> dict[str, Any]:
    """Build one example dict. ``frames``: uint8 (N, H, W, 3) RGB (JPEG-encoded here) or a list of
    already-encoded uint8 byte tensors (kept as is)."""
    if isinstance(frames, np.ndarray):
        images = [encode_image(f, quality) for f in frames]
    else:
        images = [torch.as_tensor(b, dtype=torch.uint8) for b in frames]
    return {
        "url": str(url),
        "timestamps": torch.as_tensor(np.asarray(timestamps, dtype=np.int64)),
        "cameras": cameras_to_tensor(K_norm, w2c),
        "images": images,
        "key": str(key),
    }


# -- chunks & index ---------------------------------------------------------------------------
def _check_example(ex: Any, path: Path, k: int) -> None:
    where = f"{path}: example {k}"
    if not isinstance(ex, dict):
        raise ChunkFormatError(f"{where}: expected a dict, got {type(ex).__name__}")
    for field, typ in (
        ("url", str),
        ("key", str),
        ("timestamps", torch.Tensor),
        ("cameras", torch.Tensor),
        ("images", list),
    ):
        if not isinstance(ex.get(field), typ):
            raise ChunkFormatError(f"{where}: field '{field}' missing or not {typ.__name__}")
    cams = ex["cameras"]
    if cams.ndim != 2 or cams.shape[1] != 18:
        raise ChunkFormatError(
            f"{where} ({ex['key']}): 'cameras' has shape {tuple(cams.shape)}, expected (N, 18)"
        )
    if ex["timestamps"].shape != (cams.shape[0],):
        raise ChunkFormatError(
            f"{where} ({ex['key']}): {ex['timestamps'].numel()} timestamps for {cams.shape[0]} cameras"
        )


def load_chunk(path: str | Path) -> list[dict[str, Any]]:
    """Load a chunk safely (weights_only=True) and check the structure of every example."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ChunkFormatError(f"{path}: cannot load chunk: {type(e).__name__}: {e}") from e
    if not isinstance(data, list):
        raise ChunkFormatError(f"{path}: expected a list of examples, got {type(data).__name__}")
    for k, ex in enumerate(data):
        _check_example(ex, path, k)
    return data


def save_chunk(path: str | Path, examples: list[dict[str, Any]]) -> None:
    """Atomically torch.save a list of example dicts (as written by ``make_example``)."""
    path = Path(path)
    for k, ex in enumerate(examples):
        _check_example(ex, path, k)
    _atomic_write(path, lambda f: torch.save(list(examples), f))


def read_index(split_dir: str | Path) -> dict[str, str]:
    """{split_dir}/index.json -> {key: chunk file name}."""
    path = Path(split_dir) / "index.json"
    try:  # a regular file only (a FIFO never blocks), size- and depth-limited
        data = load_json(path)
    except ValueError as e:
        raise ChunkFormatError(str(e)) from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ChunkFormatError(f"{path}: expected an object mapping key -> chunk file name")
    return data


def write_index(split_dir: str | Path, index: dict[str, str]) -> None:
    path = Path(split_dir) / "index.json"
    _atomic_write(path, lambda f: f.write(json.dumps(index, indent=1, sort_keys=True).encode()))


def write_split(
    root: str | Path, split: str, examples: list[dict[str, Any]], chunk_size: int = 16
) -> dict[str, str]:
    """Write examples into {root}/{split}/NNNNNN.torch chunks of ``chunk_size`` plus index.json."""
    split_dir = Path(root) / split
    index: dict[str, str] = {}
    for c in range(0, len(examples), chunk_size):
        name = f"{c // chunk_size:06d}.torch"
        save_chunk(split_dir / name, examples[c : c + chunk_size])
        index.update({ex["key"]: name for ex in examples[c : c + chunk_size]})
    write_index(split_dir, index)
    return index


@dataclass(frozen=True)
class EvalEntry:
    context: tuple[int, ...]
    target: tuple[int, ...]


def read_eval_index(path: str | Path) -> dict[str, EvalEntry | None]:
    """Evaluation index JSON -> {key: EvalEntry or None (scene excluded from evaluation)}."""
    path = Path(path)
    try:
        data = load_json(path)
    except FileNotFoundError:
        raise ChunkFormatError(f"{path}: no such file (an evaluation index JSON was expected)") from None
    except ValueError as e:
        raise ChunkFormatError(str(e)) from None
    if not isinstance(data, dict):
        raise ChunkFormatError(f"{path}: expected an object mapping key -> entry")
    out: dict[str, EvalEntry | None] = {}
    for key, entry in data.items():
        if entry is None:
            out[key] = None
            continue
        if not isinstance(entry, dict) or set(entry) != {"context", "target"}:
            raise ChunkFormatError(
                f"{path}: key '{key}': expected {{'context': [...], 'target': [...]}} or null"
            )
        lists = []
        for field in ("context", "target"):
            v = entry[field]
            if not isinstance(v, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v
            ):
                raise ChunkFormatError(
                    f"{path}: key '{key}': '{field}' must be a list of non-negative integers, got {v!r}"
                )
            lists.append(tuple(v))
        out[key] = EvalEntry(*lists)
    return out


# -- dataset ----------------------------------------------------------------------------------
class ChunkClipDataset(ClipSamplingDataset):
    """Clips from a chunked split; one item per key in index.json (ordered by chunk file, then key), or
    per non-null key of an evaluation index that is also in index.json (ordered by key; then
    frame_indices = context + target and ``num_frames``/``interval`` are unused).

    The last loaded chunk is cached per process (``chunk_loads`` counts the loads), so access chunk by
    chunk loads each chunk once while a uniformly shuffled order reloads a chunk for almost every sample.
    ``groups()`` gives each item's chunk, which ``data.datamodule.shuffle=grouped`` (the default of
    ``data=re10k_chunks``) uses to shuffle chunk by chunk (vid3d.data.order). Sample dict as in
    vid3d.data.clips. Further arguments (num_frames, height, width, interval, ...): see
    ``ClipSamplingDataset``.
    """

    def __init__(
        self, root: str | Path, split: str = "train", *args, eval_index: str | Path | None = None, **sampling
    ) -> None:
        super().__init__(*args, **sampling)
        self.split_dir = Path(root) / split
        self.index = read_index(self.split_dir)
        self.eval_entries: dict[str, EvalEntry] | None = None
        if eval_index is not None:
            entries = read_eval_index(eval_index)
            self.eval_entries = {k: e for k, e in entries.items() if e is not None and k in self.index}
            self.keys = sorted(self.eval_entries)
        else:
            self.keys = sorted(self.index, key=lambda k: (self.index[k], k))  # chunk by chunk
        self.keys = select(self.keys, str, self.holdout, str(self.split_dir), self.clip_list)
        self._chunk_name: str | None = None
        self._chunk: dict[str, dict[str, Any]] = {}
        self.chunk_loads = 0  # chunk files this process loaded (or tried to)

    def num_clips(self) -> int:
        return len(self.keys)

    def groups(self) -> list[int]:
        """Item i's chunk: the rank of its chunk file's name among this split's chunk files."""
        chunk_id = {name: k for k, name in enumerate(sorted(set(self.index.values())))}
        return [chunk_id[self.index[key]] for key in self.keys]

    def _example(self, key: str) -> dict[str, Any]:
        name = self.index[key]
        path = self.split_dir / name
        try:
            confined(path, self.split_dir)  # index.json entries must name a file of this split
        except UnsafePath as e:
            raise BadClip("outside_root", f"{self.split_dir / 'index.json'}: key {key!r}: {e}") from e
        if name != self._chunk_name:
            try:
                examples = load_chunk(path)
            except FileNotFoundError as e:
                raise BadClip("missing_frames", f"{path}: chunk file missing") from e
            except ChunkFormatError as e:
                raise BadClip("camera_file", str(e)) from e
            finally:
                self.chunk_loads += 1
            self._chunk_name, self._chunk = name, {ex["key"]: ex for ex in examples}
        if key not in self._chunk:
            raise BadClip("missing_frames", f"{path}: key '{key}' listed in index.json but not in the chunk")
        return self._chunk[key]

    def describe_clip(self, i: int) -> str:
        return f"{self.split_dir / self.index[self.keys[i]]}[{self.keys[i]}]"

    def clip_name(self, i: int) -> str:
        return self.keys[i]

    def open_clip(self, i: int) -> OpenedClip:
        key = self.keys[i]
        ex = self._example(key)
        src = f"{self.split_dir / self.index[key]}[{key}]"
        K_norm, w2c = example_cameras(ex["cameras"])
        images = ex["images"]
        if len(images) != len(K_norm):
            raise BadClip("count_mismatch", f"{src}: {len(images)} images but {len(K_norm)} cameras")

        def read(idx: np.ndarray) -> np.ndarray:
            frames = []
            for k in idx:
                try:
                    frames.append(decode_image(images[int(k)]))
                except ImageTooLarge as e:
                    raise BadClip("image_size", f"{src}: image {int(k)}: {e}") from e
                except ValueError as e:
                    raise BadClip("unreadable_frames", f"{src}: image {int(k)}: {e}") from e
            return stack_same_size(frames, src)

        return OpenedClip(key, K_norm, w2c, read, src)

    def choose_indices(self, i: int, clip: OpenedClip, rng: np.random.Generator) -> np.ndarray:
        if self.eval_entries is None:
            return super().choose_indices(i, clip, rng)
        e = self.eval_entries[self.keys[i]]
        idx = np.asarray(e.context + e.target, dtype=np.int64)
        if idx.size and idx.max() >= clip.num_frames:
            raise BadClip(
                "too_short", f"{clip.source}: evaluation index {int(idx.max())} >= {clip.num_frames} frames"
            )
        return idx
