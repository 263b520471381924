"""A partly broken RealEstate10K-layout corpus for the adversarial tests.

``break_corpus(root)`` damages clips of a synthetic set in place, one way per clip, each in a single
frame somewhere in the middle (so a draw of a few frames often misses it): a 0-byte frame, a corrupt
image, a looping symlink, a FIFO, and one clip whose frames are all 4x4 pixels. Returns {clip id: how}.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

DAMAGE = ("empty_file", "corrupt_image", "symlink_loop", "fifo", "tiny_frames")


def break_corpus(root: str | Path, split: str = "train", fifo: bool = True) -> dict[str, str]:
    clips = sorted(p for p in (Path(root) / split).iterdir() if p.is_dir())
    kinds = [k for k in DAMAGE if fifo or k != "fifo"]
    if len(clips) <= len(kinds):
        raise ValueError(f"{root}: need more than {len(kinds)} clips to keep some intact")
    out = {}
    for clip, kind in zip(clips[1:], kinds, strict=False):  # clip 0 stays intact
        frames = sorted(p for p in clip.iterdir() if p.suffix in (".jpg", ".png"))
        victim = frames[len(frames) // 2 + 1]
        if kind == "tiny_frames":
            for f in frames:
                cv2.imwrite(str(f), cv2.resize(cv2.imread(str(f)), (4, 4), interpolation=cv2.INTER_AREA))
        else:
            victim.unlink()
            if kind == "empty_file":
                victim.write_bytes(b"")
            elif kind == "corrupt_image":
                victim.write_bytes(b"\xff\xd8\xff\xe0" + np.random.default_rng(0).bytes(200))
            elif kind == "symlink_loop":
                os.symlink(victim.name, victim)
            elif kind == "fifo":
                os.mkfifo(victim)
        out[clip.name] = kind
    return out
