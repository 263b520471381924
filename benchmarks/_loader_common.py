"""What the data-loading benchmarks (``loader_throughput``, ``shuffle_loads``) share: the sample's command
line arguments and the settings every loader is built from (``LoaderSettings``), the one-thread setup, and
the JSON writer (the machine and the command line added, written atomically by
``vid3d.atomic.atomic_write_json``)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from vid3d.atomic import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


def add_sample_arguments(p: argparse.ArgumentParser, root_help: str, quick_help: str) -> None:
    """--root (None: synthetic clips), --split, --quick, and the sample: --frames, --height, --width
    (25 x 320 x 512, a training sample) and --interval (a fixed frame stride)."""
    p.add_argument("--root", type=Path, default=None, help=root_help)
    p.add_argument("--split", default="train")
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--height", type=int, default=320)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--interval", type=int, default=1, help="frame stride (fixed)")


@dataclass(frozen=True)
class LoaderSettings:
    """Which clips a benchmarked loader reads and the sample it makes of each: ``frames`` frames
    ``interval`` lines apart (a fixed stride), centre-cropped and resized to ``height`` x ``width``, from
    split ``split`` of ``root``; ``clips``: only the first that many clips (None: all; the image-folder
    loaders of ``clip_loaders``)."""

    root: Path
    split: str
    frames: int
    height: int
    width: int
    interval: int = 1
    clips: int | None = None

    @classmethod
    def from_args(cls, a: argparse.Namespace, root: Path, clips: int | None = None) -> LoaderSettings:
        """The settings of ``add_sample_arguments``' options, with the dataset ``root`` (--root or the
        synthetic set the benchmark made) and ``clips``."""
        return cls(root, a.split, a.frames, a.height, a.width, a.interval, clips)


def one_thread() -> None:
    """torch and OpenCV on one thread each (the loaders' workers are the parallelism measured)."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def default_out(name: str) -> Path:
    """``benchmarks/results/<name>.json``."""
    return ROOT / "benchmarks" / "results" / f"{name}.json"


def write_result(out: Path, result: dict, module: str, argv: list[str] | None) -> None:
    """``result`` with ``machine`` (platform, CPUs, torch version) and ``command`` (``python -m
    benchmarks.<module>`` and ``argv``, default the process' arguments) added last, written atomically."""
    words = argv if argv is not None else sys.argv[1:]
    result = {
        **result,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "command": " ".join([f"python -m benchmarks.{module}", *words]),
    }
    atomic_write_json(out, result)
