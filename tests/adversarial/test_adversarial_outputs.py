"""What vid3d writes (issue 32, points 9 and 10): a sample folder is complete or absent, a killed eval's
temporary video is cleaned when the shard resumes, videos and plots are 0644, and a second eval of a busy
shard is refused before the model loads."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vid3d.atomic import STALE_AFTER_S, atomic_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if ".tmp" in p.name or ".old-" in p.name)


# ------------------------------------------------------------------------------------ atomic folders
def test_atomic_dir_is_complete_or_absent(tmp_path):
    final = tmp_path / "samples" / "s0"
    with pytest.raises(RuntimeError, match="half-way"), atomic_dir(final) as d:
        (d / "video.mp4").write_bytes(b"v")
        raise RuntimeError("crashed half-way")
    assert not final.exists() and _leftovers(tmp_path) == []
    with atomic_dir(final) as d:
        (d / "video.mp4").write_bytes(b"first")
        assert not final.exists()  # nothing visible until the block ends
    assert (final / "video.mp4").read_bytes() == b"first" and _mode(final) == 0o755
    with pytest.raises(RuntimeError), atomic_dir(final) as d:  # a failed rewrite keeps the old folder
        (d / "video.mp4").write_bytes(b"second")
        raise RuntimeError
    assert (final / "video.mp4").read_bytes() == b"first"
    with atomic_dir(final) as d:
        (d / "cameras.json").write_text("{}")
    assert sorted(p.name for p in final.iterdir()) == ["cameras.json"] and _leftovers(tmp_path) == []


def test_atomic_dir_removes_a_killed_writers_stale_folder_only(tmp_path):
    stale = tmp_path / ".s0.abc123.tmp"
    stale.mkdir()
    (stale / "half.png").write_bytes(b"x")
    old = time.time() - STALE_AFTER_S - 10
    os.utime(stale, (old, old))
    fresh = tmp_path / ".s0.def456.tmp"  # a live writer's folder (recent): kept
    fresh.mkdir()
    other = tmp_path / ".s1.abc123.tmp"  # another sample's: kept
    other.mkdir()
    os.utime(other, (old, old))
    with atomic_dir(tmp_path / "s0"):
        pass
    assert not stale.exists() and fresh.is_dir() and other.is_dir()


# -------------------------------------------------------------------------------- modes of outputs
def test_videos_frames_and_plots_are_0644(tmp_path):
    from vid3d.viz import plot_trajectory, write_frames, write_video

    old = os.umask(0o022)
    try:
        frames = np.zeros((3, 16, 16, 3), np.uint8)
        paths = [write_video(tmp_path / "v.mp4", frames), write_video(tmp_path / "v.gif", frames)]
        paths += write_frames(tmp_path / "frames", frames)
        plot_trajectory({"t": np.tile(np.eye(4), (3, 1, 1))}, path=tmp_path / "trajectory.png")
        paths.append(tmp_path / "trajectory.png")
    finally:
        os.umask(old)
    assert {p.name: _mode(p) for p in paths} == {p.name: 0o644 for p in paths}
    assert _leftovers(tmp_path) == []


def test_a_failed_video_write_leaves_nothing(tmp_path):
    from vid3d.viz import write_video

    (tmp_path / "v.mp4").write_bytes(b"previous")
    with pytest.raises(ValueError):
        write_video(tmp_path / "v.mp4", np.zeros((3, 16, 16, 3), np.uint8), fps=-1)
    with pytest.raises(Exception):  # noqa: B017 (whatever the encoder raises for an unknown container)
        write_video(tmp_path / "v.notavideoformat", np.zeros((3, 16, 16, 3), np.uint8))
    assert (tmp_path / "v.mp4").read_bytes() == b"previous" and _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------ eval
@pytest.mark.timeout(120)
def test_a_killed_evals_temporary_video_is_removed_when_the_shard_resumes(tmp_path, eval_clips):
    from vid3d.evaluation.camera_runner import gt_video_method, run_camera_eval, video_relpath
    from vid3d.evaluation.pose.gt import GTPoseEstimator

    out = tmp_path / "eval"
    video = out / video_relpath("gt_video", "c1", 0)
    killed = subprocess.run(  # a writer killed inside the encoder: what kill -9 of an eval leaves
        [sys.executable, "-c",
         "import os, signal\nfrom vid3d.atomic import atomic_target\n"
         f"with atomic_target({str(video)!r}) as t:\n"
         "    t.write_bytes(b'half a video'); os.kill(os.getpid(), signal.SIGKILL)"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert killed.returncode == -signal.SIGKILL
    temps = [p for p in video.parent.iterdir() if p.name.startswith(f".{video.name}.")]
    assert len(temps) == 1 and temps[0].name.endswith(".tmp.mp4")  # fresh: a plain rewrite would keep it
    run = run_camera_eval(eval_clips(size=16), {"gt_video": gt_video_method}, GTPoseEstimator(), out,
                          save_videos=True, progress=False)
    assert run["n_new"] == 3
    assert sorted(p.name for p in video.parent.iterdir()) == ["c0_t0.mp4", "c1_t0.mp4", "c2_t0.mp4"]
    assert _mode(video) == 0o644 and _leftovers(out) == []


LOCK_HOLDER = (
    "import sys, time\nfrom vid3d.evaluation.runner import shard_lock\n"
    "with shard_lock(sys.argv[1], 0, 1):\n    print('locked', flush=True); time.sleep(60)"
)


def _eval_cfg(tmp_path: Path, *extra: str):
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR

    (tmp_path / "model.ckpt").write_bytes(b"")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("eval", overrides=[
            f"ckpt={tmp_path / 'model.ckpt'}", f"paths.run_dir={tmp_path / 'eval'}", "pose=gt", *extra,
        ])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bucket", [None, "small"])
def test_a_busy_shard_is_refused_before_the_model_loads(tmp_path, monkeypatch, capsys, bucket):
    import vid3d.models.checkpoint as checkpoint
    from vid3d.errors import user_errors
    from vid3d.tasks.camera_benchmark import evaluate_camera
    from vid3d.tasks.sparse_benchmark import evaluate_sparse

    loads = []
    monkeypatch.setattr(checkpoint, "load_model", lambda *a, **k: loads.append(a) or time.sleep(60))
    cfg = _eval_cfg(tmp_path, *([f"overlap={bucket}"] if bucket else []))
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "eval")], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        with pytest.raises(SystemExit) as e, user_errors():
            (evaluate_sparse if bucket else evaluate_camera)(cfg)
        assert time.perf_counter() - t0 < 5.0 and loads == []
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "another process is evaluating this shard" in err and "\n" not in err


def test_the_shard_lock_is_reentrant_in_one_process_only(tmp_path):
    from vid3d.evaluation.records import RecordWriter
    from vid3d.evaluation.runner import shard_file, shard_lock

    with shard_lock(tmp_path, 0, 2):
        with RecordWriter(shard_file(tmp_path, 0, 2)).exclusive():  # what run_shard does inside
            pass
        holder = subprocess.run(
            [sys.executable, "-c", LOCK_HOLDER.replace("0, 1", "0, 2"), str(tmp_path)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        assert holder.returncode == 1 and "ShardBusy" in holder.stderr  # still held after the inner block
    proc = subprocess.Popen(  # released at the end: another process takes it
        [sys.executable, "-c", LOCK_HOLDER.replace("0, 1", "0, 2"), str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------------- sample folder
SMALL = ["data=re10k", "data.num_frames=4", "data.height=64", "data.width=96",
         "data.datamodule.num_workers=0", "torch_threads=1"]


def _cfg(name: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> tuple[Path, Path]:
    from vid3d.data.synthetic import build_synthetic_dataset
    from vid3d.tasks.train import train

    tmp = tmp_path_factory.mktemp("sample_atomic")
    root = build_synthetic_dataset(tmp / "set", num_train=2, num_test=1, num_frames=8, height=72, width=128)
    out = train(_cfg("train", ["model=epipolar", f"data.root={root}", "trainer.max_steps=1", "logger=csv",
                               "module.warmup_steps=1", f"paths.output_dir={tmp}", *SMALL]))
    return root, Path(out["last_checkpoint"])


def test_a_sample_that_fails_half_way_leaves_no_folder_and_keeps_the_previous_one(
    tiny_ckpt, tmp_path, monkeypatch
):
    import vid3d.viz
    from vid3d.tasks.sample import sample

    root, ckpt = tiny_ckpt
    image = tmp_path / "in.png"
    import imageio.v3 as iio

    iio.imwrite(image, np.full((64, 96, 3), 90, np.uint8))
    cfg = _cfg("sample", [f"ckpt={ckpt}", f"data.root={root}", "sampler.num_steps=1", f"image={image}",
                          f"paths.run_dir={tmp_path / 'run'}", "trajectory=zoom_in", *SMALL])
    samples = tmp_path / "run" / "samples"

    def crash(*args, **kwargs):  # after video.mp4 and frames/ are written, before cameras / plot
        raise RuntimeError("crashed half-way through the sample folder")

    real = vid3d.viz.plot_trajectory
    monkeypatch.setattr(vid3d.viz, "plot_trajectory", crash)
    with pytest.raises(RuntimeError, match="half-way"):
        sample(cfg)
    assert not samples.exists() or list(samples.iterdir()) == []  # no half-written folder, no temporary
    monkeypatch.setattr(vid3d.viz, "plot_trajectory", real)
    written = [Path(p) for p in sample(cfg)["samples"]]
    assert len(written) == 1 and written[0].parent == samples
    files = sorted(p.relative_to(written[0]).as_posix() for p in written[0].rglob("*") if p.is_file())
    assert {"video.mp4", "cameras.json", "trajectory.png", "frames/00000.png"} <= set(files)
    before = {f: (written[0] / f).read_bytes() for f in files}
    monkeypatch.setattr(vid3d.viz, "plot_trajectory", crash)
    with pytest.raises(RuntimeError, match="half-way"):
        sample(cfg)
    after = sorted(p.relative_to(written[0]).as_posix() for p in written[0].rglob("*") if p.is_file())
    assert after == files and all((written[0] / f).read_bytes() == before[f] for f in files)
    assert sorted(p.name for p in samples.iterdir()) == [written[0].name]  # no temporary left beside it
