"""Strange files where data and results are read (issue 32, points 7 and 8): a FIFO, a link to /dev/zero, an
oversized file, a YAML alias bomb or a link out of the dataset answers at once with one line naming the
file. Every test that could hang on a regression has a timeout, so it fails instead."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from vid3d.data.files import UnsafePath, load_json, load_yaml, read_regular_bytes, read_regular_text
from vid3d.data.interval import FixedInterval

QUICK_S = 2.0  # every refusal below is a stat and a few bytes; far under this even on a busy machine


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        assert time.perf_counter() - t0 < QUICK_S


# ---------------------------------------------------------------------------------------- files.py
@pytest.mark.timeout(30)
def test_only_regular_files_within_the_limit_are_read(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")
    to_fifo = tmp_path / "to_fifo.json"
    to_fifo.symlink_to(fifo)
    for path in (fifo, zero, to_fifo, tmp_path):
        with pytest.raises(UnsafePath, match="not a regular file") as e:
            _timed(read_regular_bytes, path)
        assert e.value.reason == "not_regular" and str(path) in str(e.value)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(UnsafePath, match="1001 bytes, more than the limit of 1000") as e:
        read_regular_bytes(big, max_bytes=1000)
    assert e.value.reason == "too_large"
    assert read_regular_bytes(big, max_bytes=1001) == b"x" * 1001  # the limit itself is allowed
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(ValueError, match="latin1.txt: not UTF-8 text"):
        read_regular_text(tmp_path / "latin1.txt")
    with pytest.raises(FileNotFoundError):
        read_regular_bytes(tmp_path / "absent")


def test_yaml_aliases_and_deep_nesting_are_refused_plain_yaml_is_read(tmp_path):
    bomb = tmp_path / "bomb.yaml"  # 9 levels of 9 aliases: 9^9 = 387M strings if expanded
    lines = ['a0: &a0 ["lol"]'] + [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]" for k in range(1, 10)]
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bomb.yaml:2: YAML aliases \(\*name\) are not accepted"):
        _timed(load_yaml, bomb)
    merge = tmp_path / "merge.yaml"  # the merge key is an alias too
    merge.write_text("base: &b {x: 1}\nother:\n  <<: *b\n")
    with pytest.raises(ValueError, match="aliases"):
        load_yaml(merge)
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000 + "]" * 5000)  # the composer recurses: without the limit a RecursionError
    with pytest.raises(ValueError, match="deep.yaml: YAML nested more than 64 levels deep"):
        _timed(load_yaml, deep)
    block = tmp_path / "block.yaml"
    block.write_text("".join("  " * k + f"k{k}:\n" for k in range(100)))
    with pytest.raises(ValueError, match="nested more than 64"):
        load_yaml(block)
    ok = tmp_path / "overrides.yaml"  # as Hydra writes it, with an anchor that nothing refers to
    ok.write_text("- model=plucker\n- 'trainer.max_steps=2'\n- x: &unused 3\n")
    assert load_yaml(ok) == ["model=plucker", "trainer.max_steps=2", {"x": 3}]
    (tmp_path / "tag.yaml").write_text("!!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ValueError, match="tag.yaml: invalid YAML"):
        load_yaml(tmp_path / "tag.yaml")


def test_json_nesting_is_bounded_without_recursion_errors(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ValueError, match="deep.json: JSON nested more than 64 levels deep"):
        _timed(load_json, tmp_path / "deep.json")
    (tmp_path / "d65.json").write_text("[" * 65 + "]" * 65)
    with pytest.raises(ValueError, match="more than 64"):
        load_json(tmp_path / "d65.json")
    (tmp_path / "d64.json").write_text('{"a": ' * 63 + "[]" + "}" * 63)
    assert isinstance(load_json(tmp_path / "d64.json"), dict)  # exactly the limit
    (tmp_path / "bad.json").write_text('{\n "a": 1,\n}')
    with pytest.raises(ValueError, match=r"bad.json:3: invalid JSON"):
        load_json(tmp_path / "bad.json")


# ------------------------------------------------------------------------------- dataset camera files
@pytest.fixture
def dataset(tmp_path) -> Path:
    from vid3d.data.synthetic import build_synthetic_dataset

    return build_synthetic_dataset(
        tmp_path / "set", num_train=4, num_test=1, num_frames=6, height=72, width=128
    )


def _skips(root: Path) -> tuple[dict[int, str], set[str], list[str]]:
    """Every index drawn once: {clip index: skip reason}, the clip ids served, and the clip ids listed."""
    from vid3d.data.clips import Re10kClipDataset

    ds = Re10kClipDataset(root, "train", num_frames=2, height=32, width=48, interval=FixedInterval(1))
    served = {ds[i]["clip_id"] for i in range(len(ds))}
    return ds.known_bad(), served, [c.clip_id for c in ds.clips]


@pytest.mark.timeout(60)
def test_camera_files_that_are_fifos_or_devices_are_skipped_not_read(dataset, tmp_path):
    cams = sorted((dataset / "train").glob("*.txt"))
    os.unlink(cams[1])
    os.mkfifo(cams[1])  # training used to block here forever
    fifo = tmp_path / "elsewhere_fifo"
    os.mkfifo(fifo)
    store = dataset / "store"
    store.mkdir()
    os.mkfifo(store / "inside_fifo")
    os.unlink(cams[2])
    cams[2].symlink_to(store / "inside_fifo")  # a link inside the root, to a FIFO
    os.unlink(cams[3])
    cams[3].symlink_to("/dev/zero")  # used to read until memory ran out
    bad, served, ids = _timed(_skips, dataset)
    assert bad == {1: "camera_file", 2: "camera_file", 3: "outside_root"}
    assert served == {ids[0]}


def test_oversized_camera_files_and_bad_principal_points_are_refused(tmp_path):
    from vid3d.data.clips import _classify_camera_error
    from vid3d.data.formats.re10k import CameraFileError, read_camera_file

    line = "{} 0.5 0.9 {} 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"
    many = tmp_path / "many.txt"
    many.write_text("url\n" + "".join(line.format(i, 0.5) for i in range(50_001)))
    with pytest.raises(CameraFileError, match=r"many.txt:50001: more than 50000 lines") as e:
        _timed(read_camera_file, many)
    assert _classify_camera_error(e.value.what) == "camera_file"
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:  # sparse: 9 MiB of zeros costs no disk
        f.truncate(9 << 20)
    with pytest.raises(UnsafePath, match="more than the limit") as e:
        _timed(read_camera_file, huge)
    assert e.value.reason == "too_large"
    for cx in (-0.25, 1.5, 320.0):  # negative, or in pixels instead of fractions of the width
        bad = tmp_path / "cx.txt"
        bad.write_text("url\n" + line.format(0, 0.5) + line.format(1, cx))
        with pytest.raises(CameraFileError, match=r"cx.txt:3: principal point cx=") as e:
            read_camera_file(bad)
        assert _classify_camera_error(e.value.what) == "bad_intrinsics"
    edge = tmp_path / "edge.txt"
    edge.write_text("url\n" + line.format(0, 0.0) + line.format(1, 1.0))  # on the border: allowed
    np.testing.assert_allclose(read_camera_file(edge).K_norm[:, 0, 2], [0.0, 1.0])


def test_a_camera_file_or_frames_folder_linked_out_of_the_dataset_is_skipped(dataset, tmp_path):
    ids = sorted(p.stem for p in (dataset / "train").glob("*.txt"))
    train = dataset / "train"
    outside = tmp_path / "outside"
    outside.mkdir()
    # clip 1: its camera file moved out of the dataset and linked back (a valid file: only the place is wrong)
    (train / f"{ids[1]}.txt").rename(outside / "cams.txt")
    (train / f"{ids[1]}.txt").symlink_to(outside / "cams.txt")
    # clip 2: its frames folder moved out and linked back
    (train / ids[2]).rename(outside / "frames")
    (train / ids[2]).symlink_to(outside / "frames", target_is_directory=True)
    # clip 3: frames folder and camera file moved elsewhere *inside* the root and linked: still allowed
    store = dataset / "store"
    store.mkdir()
    (train / ids[3]).rename(store / "frames3")
    (train / ids[3]).symlink_to(store / "frames3", target_is_directory=True)
    (train / f"{ids[3]}.txt").rename(store / "cams3.txt")
    (train / f"{ids[3]}.txt").symlink_to(store / "cams3.txt")
    bad, served, listed = _skips(dataset)
    assert listed == ids
    assert bad == {1: "outside_root", 2: "outside_root"}
    assert served == {ids[0], ids[3]}


def test_read_frames_refuses_a_frames_folder_linked_out_of_the_root(dataset, tmp_path):
    from vid3d.data.formats.re10k import list_clips, read_camera_file, read_frames

    clip = list_clips(dataset, "train")[0]
    (clip.frames_dir).rename(tmp_path / "frames")
    clip.frames_dir.symlink_to(tmp_path / "frames", target_is_directory=True)
    cams = read_camera_file(clip.camera_path)
    with pytest.raises(UnsafePath, match="outside the dataset root") as e:
        read_frames(clip, cams, [0, 1], root=dataset)
    assert e.value.reason == "outside_root"
    assert read_frames(clip, cams, [0, 1]).shape[0] == 2  # without a root (a user's own clip): read


# -------------------------------------------------------------------------------- sweep report / merge
def _job(root: Path, name: str, overrides_text: str = "- model=plucker\n") -> Path:
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(overrides_text)
    row = {"n": 1, "n_total": 1, "failures": 0, "metrics": {"rot_err_deg": {"mean": 1.0, "ci_low": 1.0,
                                                                           "ci_high": 1.0, "n": 1}}}
    (job / "results.json").write_text(json.dumps({"protocol": {}, "results": {"m": row}}))
    return job


def _report(sweep: Path, capsys) -> tuple[int, str]:
    from vid3d.report import main

    code = _timed(main, [str(sweep), "--no-wandb", "--out", str(sweep.parent / "rep")])
    return code, capsys.readouterr().err.strip()


@pytest.mark.timeout(30)
def test_report_answers_a_fifo_results_file_at_once_in_one_line(tmp_path, capsys):
    sweep = tmp_path / "multirun"
    _job(sweep, "0")
    assert _report(sweep, capsys)[0] == 0  # the control: a normal sweep reports
    job = _job(sweep, "1")
    (job / "results.json").unlink()
    os.mkfifo(job / "results.json")
    code, err = _report(sweep, capsys)
    want = f"error: {job / 'results.json'}: not a benchmark results file (not a regular file)"
    assert (code, err) == (2, want)
    os.unlink(job / "results.json")
    (job / "results.json").symlink_to("/dev/zero")
    code, err = _report(sweep, capsys)
    assert code == 2 and "results.json: not a benchmark results file (not a regular file)" in err


@pytest.mark.timeout(30)
def test_report_refuses_a_yaml_bomb_and_a_fifo_camera_gap_file(tmp_path, capsys):
    sweep = tmp_path / "multirun"
    _job(sweep, "0")
    levels = ['- &a0 "lol"'] + [f"- &a{k} [{', '.join([f'*a{k - 1}'] * 10)}]" for k in range(1, 8)]
    job = _job(sweep, "1", "\n".join(levels) + "\n")  # 7 levels: 10^7 strings once expanded
    code, err = _report(sweep, capsys)
    want = f"error: {job / '.hydra' / 'overrides.yaml'}:2: YAML aliases (*name) are not accepted"
    assert (code, err) == (2, want)
    (job / ".hydra" / "overrides.yaml").write_text("model: plucker\n")  # a mapping is not Hydra's list
    code, err = _report(sweep, capsys)
    assert code == 2 and err.endswith("overrides.yaml: expected a list of overrides, got dict")
    (job / ".hydra" / "overrides.yaml").write_text("- " + "x" * (1 << 20) + "\n")
    code, err = _report(sweep, capsys)
    assert code == 2 and "overrides.yaml" in err and "more than the limit of 1048576" in err
    (job / ".hydra" / "overrides.yaml").write_text("- model=rt\n")
    os.mkfifo(job / "camera_gap.json")
    code, err = _report(sweep, capsys)
    want = f"error: {job / 'camera_gap.json'}: not a camera-gap file (not a regular file)"
    assert (code, err) == (2, want)


@pytest.mark.timeout(60)
def test_merge_answers_fifo_records_and_results_at_once(tmp_path, capsys, eval_clips):
    from vid3d.evaluation.camera_runner import gt_video_method, run_camera_eval
    from vid3d.report import main as report_main

    def merge_main(argv):  # python -m vid3d.report DIRS --kind shards --out OUT
        return report_main([*argv, "--kind", "shards"])
    from vid3d.evaluation.pose.gt import GTPoseEstimator
    from vid3d.evaluation.records import RecordWriter, read_records

    shard = tmp_path / "shard0"
    run_camera_eval(eval_clips(), {"gt_video": gt_video_method}, GTPoseEstimator(), shard, progress=False)
    out = str(tmp_path / "out")
    assert merge_main([str(shard), "--out", out]) == 0  # the control
    capsys.readouterr()
    fifo = shard / "records.shard1of2.jsonl"
    os.mkfifo(fifo)
    code = _timed(merge_main, [str(shard), "--out", out])
    assert (code, capsys.readouterr().err.strip()) == (2, f"error: {fifo}: not a regular file")
    with pytest.raises(UnsafePath):
        _timed(read_records, fifo)
    with pytest.raises(UnsafePath):
        _timed(RecordWriter(fifo).repair)
    os.unlink(fifo)
    results = shard / "results.json"
    kept = results.read_bytes()
    results.unlink()
    os.mkfifo(results)
    code = _timed(merge_main, [str(shard), "--out", out])
    assert (code, capsys.readouterr().err.strip()) == (2, f"error: {results}: not a regular file")
    os.unlink(results)
    results.write_bytes(kept)
    assert merge_main([str(shard), "--out", out]) == 0
    assert sorted(r["clip_id"] for r in read_records(shard / "records.shard0of1.jsonl")) == ["c0", "c1", "c2"]
