"""The overlap index CLI (``python -m vid3d.evaluation.overlap.index``): a wrong input is one line
``error: <file>: <what is wrong>`` on stderr, exit code 2, no traceback, and ``--out`` left as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vid3d.data.formats.re10k import Re10kCameras, write_clip
from vid3d.errors import InputError
from vid3d.evaluation.overlap.index import build_index, main
from vid3d.evaluation.overlap.roma import RomaOverlap, _load_state

REPO = Path(__file__).resolve().parents[2]
N, H, W = 12, 16, 24
OLD = b'{"kept": "the earlier index"}\n'


def _dataset(root: Path) -> Path:
    """One clip of N frames sliding sideways over a plane (depth 4), frames + depth written."""
    c2w = np.repeat(np.eye(4)[None], N, axis=0)
    c2w[:, 0, 3] = np.arange(N) * 0.1
    K = np.array([[1.0, 0, 0.5], [0, 1.5, 0.5], [0, 0, 1]])
    cams = Re10kCameras.from_c2w(c2w, K, np.arange(N, dtype=np.int64) * 1000, url="plane")
    frames = np.random.default_rng(0).integers(0, 256, (N, H, W, 3), dtype=np.uint8)
    write_clip(root, "test", "clip_a", cams, frames, depth=np.full((N, H, W), 4.0, np.float32))
    return root


@pytest.fixture
def root(tmp_path) -> Path:
    return _dataset(tmp_path / "data")


def _run(argv: list[str], out: Path, capsys) -> str:
    """main(argv + --out) must exit with 2; returns the single stderr line, after checking --out is kept."""
    out.write_bytes(OLD)
    with pytest.raises(SystemExit) as e:
        main([*argv, "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert out.read_bytes() == OLD  # the earlier index is untouched
    return lines[0]


def test_good_input_still_writes_the_index(root, tmp_path, capsys):
    out = tmp_path / "idx.json"
    assert main(["--root", str(root), "--gaps", "8", "--num-targets", "3", "--out", str(out)]) == 0
    pairs = json.loads(out.read_text())["pairs"]
    assert [p["pair_id"] for p in pairs] == ["clip_a:0-8"]


def test_missing_split_folder(root, tmp_path, capsys):
    line = _run(["--root", str(root), "--split", "train"], tmp_path / "idx.json", capsys)
    assert line == f"error: {root / 'train'}: split folder does not exist"


def test_corrupt_eval_index(root, tmp_path, capsys):
    ev = tmp_path / "evaluation_index.json"
    ev.write_text('{"clip_a": {"context": [0, 8],')
    line = _run(["--root", str(root), "--eval-index", str(ev)], tmp_path / "idx.json", capsys)
    assert line.startswith(f"error: {ev}:1: invalid JSON")


def test_eval_index_with_a_wrong_entry(root, tmp_path, capsys):
    ev = tmp_path / "evaluation_index.json"
    ev.write_text(json.dumps({"clip_a": {"context": [0, 8], "target": [-1]}}))
    line = _run(["--root", str(root), "--eval-index", str(ev)], tmp_path / "idx.json", capsys)
    assert line == f"error: {ev}: key 'clip_a': 'target' must be a list of non-negative integers, got [-1]"


def test_missing_eval_index(root, tmp_path, capsys):
    ev = tmp_path / "nowhere.json"
    line = _run(["--root", str(root), "--eval-index", str(ev)], tmp_path / "idx.json", capsys)
    assert line == f"error: {ev}: no such file (an evaluation index JSON was expected)"


def test_corrupt_camera_file(root, tmp_path, capsys):
    cam = root / "test" / "clip_a.txt"
    lines = cam.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split()[1], "nan-ish", 1)
    cam.write_text("\n".join(lines) + "\n")
    line = _run(["--root", str(root), "--gaps", "8"], tmp_path / "idx.json", capsys)
    assert line.startswith(f"error: {cam}:4: ") and "'nan-ish' is not a number" in line


def test_corrupt_depth_file(root, tmp_path, capsys):
    depth = root / "test" / "clip_a.depth.npz"
    depth.write_bytes(b"PK\x03\x04 not really a zip archive")
    line = _run(["--root", str(root), "--gaps", "8"], tmp_path / "idx.json", capsys)
    assert line.startswith(f"error: {depth}: cannot read depth (")


def test_depth_file_linking_out_of_the_dataset(root, tmp_path, capsys):
    depth = root / "test" / "clip_a.depth.npz"
    outside = tmp_path / "elsewhere.depth.npz"
    os.replace(depth, outside)
    depth.symlink_to(outside)
    line = _run(["--root", str(root), "--gaps", "8"], tmp_path / "idx.json", capsys)
    assert line.startswith(f"error: {depth}: resolves to {outside}, outside the dataset root")


def test_missing_roma_weights(root, tmp_path, capsys):
    line = _run(["--root", str(root), "--gaps", "8", "--estimator", "roma",
                 "--roma-weights", str(tmp_path / "r.pth"), "--dinov2-weights", str(tmp_path / "d.pth")],
                tmp_path / "idx.json", capsys)
    weights = tmp_path / "r.pth"
    assert line == (f"error: overlap.roma.weights={weights}: file does not exist "
                    "(a given path is never downloaded to)")


class _Matcher:
    """romatch's match() interface: a certainty map (H, 2W) of ones."""

    def match(self, im_A, im_B, device=None):
        return None, torch.ones(8, 16)


def test_undecodable_frame_is_an_input_error_naming_it(root):
    frame = sorted((root / "test" / "clip_a").iterdir())[0]
    frame.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(InputError, match=rf"^{frame}: cannot decode image \(header: Truncated File Read\)$"):
        build_index(root, "test", RomaOverlap(matcher=_Matcher(), device="cpu"), gaps=[8], num_targets=3)


GAPS = "expected context gaps in frames, whole numbers >= 1: 6,12,18"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--gaps", "6,x"], f"error: --gaps '6,x': {GAPS}"),
        (["--gaps", "0"], f"error: --gaps '0': {GAPS}"),
        (["--num-targets", "0"], "error: --num-targets 0: need 1 or more targets between the two views"),
    ],
)
def test_bad_numbers(root, tmp_path, capsys, args, expected):
    assert _run(["--root", str(root), *args], tmp_path / "idx.json", capsys) == expected


def test_roma_weights_that_are_not_torch_files(tmp_path):
    bad = tmp_path / "roma_outdoor.pth"
    bad.write_bytes(b"<html>404 Not Found</html>")
    why = rf"^overlap.roma.weights={bad}: not a readable PyTorch weights file \("
    with pytest.raises(InputError, match=why):
        _load_state(bad, "overlap.roma.weights")
    good = tmp_path / "good.pth"
    torch.save({"model": {"w": torch.ones(2)}}, good)
    assert torch.equal(_load_state(good, "overlap.roma.weights")["w"], torch.ones(2))


def test_roma_without_romatch_is_one_line(tmp_path, monkeypatch):
    for name in ("r.pth", "d.pth"):
        torch.save({}, tmp_path / name)
    est = RomaOverlap(weights=str(tmp_path / "r.pth"), dinov2_weights=str(tmp_path / "d.pth"), device="cpu")
    monkeypatch.setitem(sys.modules, "romatch", None)  # import romatch -> ImportError
    with pytest.raises(InputError, match=r"romatch package is not installed \(make install"):
        est.matcher  # noqa: B018 (the property loads the matcher)


@pytest.mark.slow
def test_module_entry_point_prints_one_line(root, tmp_path):
    ev = tmp_path / "evaluation_index.json"
    ev.write_text("[1, 2")
    out = tmp_path / "idx.json"
    out.write_bytes(OLD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-m", "vid3d.evaluation.overlap.index", "--root", str(root), "--eval-index", str(ev),
         "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert r.returncode == 2, r.stderr
    expected = f"error: {ev}:1: invalid JSON: Expecting ',' delimiter"
    assert r.stderr.strip().splitlines() == [expected], r.stderr
    assert out.read_bytes() == OLD
