"""Convert a RealEstate10K-layout folder to the DL3DV (nerfstudio) layout or to pixelSplat chunks.

    python -m vid3d.data.formats.convert --from re10k --to dl3dv  SRC DST [--downscales 4]
    python -m vid3d.data.formats.convert --from re10k --to chunks SRC DST [--chunk-size 16]

Every split folder of SRC (default: those of ``train``/``test`` that exist) becomes the same split in DST:

- ``dl3dv``: ``{DST}/{split}/{clip_id}/transforms.json`` + ``images/frame_00001.png`` ... (+ ``images_{d}/``
  reduced copies). Cameras are carried over exactly (per-frame pixel intrinsics at the frame size,
  OpenCV c2w written as OpenGL transform_matrix).
- ``chunks``: ``{DST}/{split}/NNNNNN.torch`` + ``index.json`` (key = clip id, JPEG-encoded frames; the
  camera rows are float32 as in pixelSplat's files). ``--eval-index`` also writes
  ``{DST}/evaluation_index_{split}.json`` for the test split (context = first and last frame, target =
  the frames between, up to 3).

Bad source clips (unreadable camera file or frames) are reported and left out; the converter never
stops on one clip. Used by the tests to build tiny folders of each format from the synthetic set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import dl3dv, pixelsplat, re10k

__all__ = ["main", "re10k_to_chunks", "re10k_to_dl3dv", "source_splits"]


def source_splits(src: str | Path, splits: Sequence[str] | None = None) -> list[str]:
    """The requested splits (each must exist), or the standard ``train``/``test`` folders that exist."""
    src = Path(src)
    if splits:
        missing = [s for s in splits if not (src / s).is_dir()]
        if missing:
            raise FileNotFoundError(f"{src}: split folder(s) {missing} do not exist")
        return list(splits)
    found = [s for s in ("train", "test") if (src / s).is_dir()]
    if not found:
        raise FileNotFoundError(f"{src}: no train/ or test/ split folder (is this a RealEstate10K layout?)")
    return found


def _iter_clips(src: Path, split: str, errors: list[str]):
    """(clip, cameras, all frames uint8 (N, H, W, 3)) of every readable clip; failures go to ``errors``."""
    for clip in re10k.list_clips(src, split, missing="skip"):
        try:
            cams = re10k.read_camera_file(clip.camera_path)
            frames = re10k.read_frames(clip, cams, np.arange(len(cams)))
        except Exception as e:  # noqa: BLE001 - one bad clip must not stop a conversion
            errors.append(f"{clip.camera_path}: {type(e).__name__}: {e}")
            continue
        yield clip, cams, frames


def re10k_to_dl3dv(
    src: str | Path,
    dst: str | Path,
    splits: Sequence[str] | None = None,
    downscales: Sequence[int] = (4,),
    image_ext: str = "png",
) -> dict[str, list[str]]:
    """Write every clip of SRC's splits as a DL3DV scene ``{dst}/{split}/{clip_id}``; returns
    ``{split: [scene ids]}`` plus ``"errors"`` (messages of skipped source clips)."""
    src, dst = Path(src), Path(dst)
    out: dict[str, list[str]] = {"errors": []}
    for split in source_splits(src, splits):
        out[split] = []
        for clip, cams, frames in _iter_clips(src, split, out["errors"]):
            H, W = frames.shape[1:3]
            dl3dv.write_scene(
                dst / split,
                clip.clip_id,
                cams.K_px(H, W),
                cams.c2w(),
                frames,
                downscales=tuple(int(d) for d in downscales),
                image_ext=image_ext,
            )
            out[split].append(clip.clip_id)
    return out


def re10k_to_chunks(
    src: str | Path,
    dst: str | Path,
    splits: Sequence[str] | None = None,
    chunk_size: int = 16,
    quality: int = 95,
    eval_index: bool = False,
) -> dict[str, list[str]]:
    """Write SRC's splits as pixelSplat chunks under ``{dst}/{split}``; returns ``{split: [keys]}`` plus
    ``"errors"``. With ``eval_index`` also writes ``{dst}/evaluation_index_test.json`` (see module doc)."""
    src, dst = Path(src), Path(dst)
    out: dict[str, list[str]] = {"errors": []}
    for split in source_splits(src, splits):
        examples = [
            pixelsplat.make_example(
                clip.clip_id, cams.url, cams.timestamps, cams.K_norm, cams.w2c, frames, quality=quality
            )
            for clip, cams, frames in _iter_clips(src, split, out["errors"])
        ]
        if not examples:
            raise ValueError(f"{src / split}: no readable clips to convert")
        pixelsplat.write_split(dst, split, examples, chunk_size=chunk_size)
        out[split] = [ex["key"] for ex in examples]
        if eval_index and split == "test":
            entries = {}
            for ex in examples:
                n = len(ex["images"])
                entries[ex["key"]] = (
                    {
                        "context": [0, n - 1],
                        "target": np.linspace(1, n - 2, min(3, n - 2)).astype(int).tolist(),
                    }
                    if n >= 3
                    else None
                )
            path = dst / f"evaluation_index_{split}.json"
            re10k.atomic_write_bytes(path, (json.dumps(entries, indent=1, sort_keys=True) + "\n").encode())
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vid3d.data.formats.convert", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--from", dest="src_format", choices=["re10k"], default="re10k")
    p.add_argument("--to", dest="dst_format", choices=["dl3dv", "chunks"], required=True)
    p.add_argument("src", type=Path, help="RealEstate10K-layout root ({src}/{split}/{clip}.txt)")
    p.add_argument("dst", type=Path, help="output root")
    p.add_argument("--splits", nargs="+", default=None, help="default: train and test (those present)")
    p.add_argument("--downscales", type=int, nargs="*", default=[4], help="dl3dv: images_{d} copies")
    p.add_argument("--chunk-size", type=int, default=16, help="chunks: examples per .torch file")
    p.add_argument("--quality", type=int, default=95, help="chunks: JPEG quality")
    p.add_argument("--eval-index", action="store_true", help="chunks: also write evaluation_index_test.json")
    a = p.parse_args(argv)
    try:
        if a.dst_format == "dl3dv":
            out = re10k_to_dl3dv(a.src, a.dst, a.splits, a.downscales)
        else:
            out = re10k_to_chunks(a.src, a.dst, a.splits, a.chunk_size, a.quality, a.eval_index)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    errors = out.pop("errors")
    for msg in errors:
        print(f"skipped: {msg}", file=sys.stderr)
    for split, ids in out.items():
        print(f"{split}: {len(ids)} clips -> {a.dst / split}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
