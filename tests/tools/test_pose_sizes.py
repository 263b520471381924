"""vid3d.tools.pose_sizes: per-clip records, the summary, upscaling and the command line's input errors."""

from __future__ import annotations

import numpy as np
import pytest

from vid3d.evaluation.camera_runner import EvalClip
from vid3d.evaluation.pose import GTPoseEstimator
from vid3d.evaluation.pose.base import PoseEstimator, PoseResult
from vid3d.tools.pose_sizes import Upscaled, main, measure_clip, parse_size, summarise, table


def _clip(n: int = 4) -> EvalClip:
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.arange(n) * 0.5
    K = np.array([[20.0, 0, 8.0], [0, 20.0, 6.0], [0, 0, 1]])
    frames = np.random.default_rng(0).integers(0, 256, (n, 12, 16, 3), dtype=np.uint8)
    return EvalClip("c0", frames, K, c2w, np.arange(n))


class _Partial(PoseEstimator):
    """Registers every frame but the last one, at the truth shifted by 1 along x."""

    name = "partial"

    def estimate(self, frames, K_px, gt_c2w=None):
        self.seen = (frames.shape, None if K_px is None else np.array(K_px))
        c2w = np.tile(np.eye(4), (len(frames), 1, 1))
        c2w[:, 0, 3] = np.arange(len(frames))
        c2w[-1] = np.nan
        return PoseResult(c2w, K_px, False, "registered 3/4", 0.5, len(frames) - 1)


def test_records_and_summary():
    clip = _clip()
    gt = GTPoseEstimator()
    gt.estimate = lambda frames, K, gt_c2w=None: GTPoseEstimator.estimate(gt, frames, K, clip.gt_c2w)
    recs = measure_clip(clip, {"gt": gt, "partial": _Partial()})
    by = {r["estimator"]: r for r in recs}
    assert by["gt"]["fully_registered"] and by["gt"]["rot_err_deg"] == 0.0 and by["gt"]["trans_err"] == 0.0
    # a partial registration counts its frames but has no errors (the benchmark scores only full ones)
    assert not by["partial"]["fully_registered"] and by["partial"]["n_registered"] == 3
    assert by["partial"]["rot_err_deg"] is None
    s = summarise([by["gt"], by["partial"], dict(by["gt"], rot_err_deg=4.0, trans_err=0.5)])
    assert s["clips"] == 3 and s["fully_registered"] == 2 and s["registered_frames"] == 4 + 3 + 4
    assert s["median_rot_err_deg"] == 2.0 and s["median_trans_err"] == 0.25
    assert "| 32x48 | gt | 2/3 (67%) | 11/12 | 2.00 | 0.250 |" in table({"32x48": {"gt": s}})


def test_upscaled_resizes_frames_and_intrinsics():
    spy = _Partial()
    clip = _clip()
    Upscaled(spy, 3).estimate(clip.frames, clip.K_px)
    shape, K = spy.seen
    assert shape == (4, 36, 48, 3)
    # pixel centres at +0.5: continuous coordinates scale by the factor, so fx, cx (= W / 2) triple
    np.testing.assert_allclose(K, np.diag([3.0, 3.0, 1.0]) @ clip.K_px)
    assert Upscaled(spy, 1).name == "partial" and Upscaled(spy, 4).name == "partial x4"


def test_bad_sizes_one_line(capsys):
    assert parse_size("64x96") == (64, 96)
    with pytest.raises(ValueError, match="not HEIGHTxWIDTH"):
        parse_size("64by96")
    assert main(["--sizes", "64-96"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'64-96' is not HEIGHTxWIDTH" in err[0]
