"""vid3d.evaluation.positive_control: toy clips whose motion only the camera explains."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vid3d.evaluation.positive_control import FOCAL_PX, H, W, toy_clip

ROOT = Path(__file__).resolve().parents[2]


def test_toy_clip_moves_its_content_by_the_camera_alone():
    """Frame k is frame 0 shifted by round(p v k) pixels, v the camera's x step per frame, against the
    camera's motion (camera +x: the content moves left); intrinsics as stated."""
    clip = toy_clip(np.random.default_rng(5), pixels_per_unit=6.0)
    v = float(clip["c2w"][1, 0, 3])
    frames = clip["frames"]
    for k in range(1, frames.shape[0]):
        s = int(round(6.0 * v * k))
        # a content point at column x in frame 0 sits at x - s in frame k
        a, b = (
            (frames[k][..., : W - s], frames[0][..., s:])
            if s >= 0
            else (frames[k][..., -s:], frames[0][..., : W + s])
        )
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(clip["c2w"][k, 0, 3], torch.tensor(k * v, dtype=torch.float32))
    assert clip["K_px"][0, 0, 0] == FOCAL_PX and clip["K_px"][0, 1, 2] == H / 2
    with pytest.raises(ValueError, match="pixels_per_unit"):
        toy_clip(np.random.default_rng(0), pixels_per_unit=7.0)


@pytest.mark.slow
def test_positive_control_writes_its_rows_and_camera_effect_image(tmp_path):
    """The positive control `make demo` runs (``python -m vid3d.evaluation.positive_control``, at 2 steps):
    gap rows at steps 0 and 2 in toy_shift.json, and
    camera_effect.png, a 1300x520 figure (title, two labelled image panels of 2 clips x 5 rows, a per-frame
    error plot with its legend; layout checked by eye, issue 34)."""
    import json

    import imageio.v3 as iio

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vid3d.evaluation.positive_control",
            "--steps",
            "2",
            "--every",
            "2",
            "--p-mean",
            "1.6",
            "--p-std",
            "0.3",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "toy_shift.json").read_text())["rows"]
    assert [r["step"] for r in rows] == [0, 2]
    assert rows[0]["camera_gap@5"] == pytest.approx(1.0, abs=1e-9)  # zero-initialised camera path
    img = iio.imread(tmp_path / "camera_effect.png")
    assert img.shape[:2] == (520, 1300) and img[..., :3].std() > 10  # a drawn figure, not a blank canvas
