"""Resume with received, copied, moved and half-written run folders: no file outside the run's checkpoint
folder is ever removed, no unrelated temporary file is removed, and ``last.ckpt`` (what ``ckpt=<run dir>``
loads) is always the newest step, whatever the checkpoint interval (issue 32, points 1-3 and 10a).

Trainings are real (``vid3d.tasks.train.train`` in process, model=plucker, 64x96, 4 frames, CPU); each
takes ~1.5 s. A kill is simulated at a checkpoint write (the only moments the disk changes): either after
the write completed or in the middle of it (the writer's 0-byte temporary file is left, nothing replaced).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vid3d.training.checkpoint_io as checkpoint_io
from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.models.checkpoint import (
    load_checkpoint_file,
    newest_complete_checkpoint,
    resolve_checkpoint,
    save_checkpoint_file,
)
from vid3d.tasks.train import resume_path, train
from vid3d.training.checkpoint_io import SafetensorsCheckpointIO
from vid3d.training.checkpoint_state import CheckpointStateRefused, check_resumed_state, removable


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("resume_adv")
    return build_synthetic_dataset(tmp / "set", num_train=2, num_test=1, num_frames=12, height=72, width=128)


def overrides(root: Path, out: Path, steps: int, every: int, resume: Path | None = None) -> list[str]:
    return [
        "model=plucker",
        "data=re10k",
        f"data.root={root}",
        "data.num_frames=4",
        "data.height=64",
        "data.width=96",
        "data.datamodule.num_workers=0",
        "data.datamodule.batch_size=1",
        f"trainer.max_steps={steps}",
        "trainer.enable_progress_bar=false",
        "logger=csv",
        "module.warmup_steps=1",
        "torch_threads=1",
        f"callbacks.checkpoint.every_n_train_steps={every}",
        "callbacks.media.every_n_steps=0",
        "callbacks.camera_gap.every_n_steps=0",
        f"paths.output_dir={out}",
        "paths.run_dir=${paths.output_dir}/run",
        *([f"resume={resume}"] if resume is not None else []),
    ]


def run(root: Path, out: Path, steps: int, every: int, resume: Path | None = None) -> dict:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return train(compose("train", overrides=overrides(root, out, steps, every, resume)))


def step_of(path: Path) -> int:
    return int(load_checkpoint_file(path)["global_step"])


def ckpt_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir())


def digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file (links by their target text) under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = "->" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def model_checkpoint_key(ckpt: dict) -> str:
    (key,) = [k for k in ckpt["callbacks"] if k.startswith("ModelCheckpoint{")]
    return key


@pytest.fixture(scope="module")
def base_run(root, tmp_path_factory) -> Path:
    """A finished 4-step run (checkpoints every 2 steps), copied by each test that changes it."""
    out = tmp_path_factory.mktemp("base") / "out"
    run(root, out, steps=4, every=2)
    return out / "run"


def fresh_copy(base: Path, dst: Path) -> Path:
    shutil.copytree(base, dst, symlinks=True)
    return dst


# --------------------------------------------------------------------- 1. planted callback state
def plant(last: Path, **fields) -> None:
    """Rewrite the ModelCheckpoint state inside ``last`` (a received or tampered checkpoint)."""
    ckpt = load_checkpoint_file(last)
    ckpt["callbacks"][model_checkpoint_key(ckpt)].update(fields)
    save_checkpoint_file(ckpt, last)


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlinked_dir", "symlinked_file"])
def test_planted_callback_paths_never_delete_a_victim(root, base_run, tmp_path, kind, caplog):
    run_dir = fresh_copy(base_run, tmp_path / "out" / "run")
    ckpts = run_dir / "checkpoints"
    real_ckpts = os.path.realpath(ckpts)
    victims = {
        "traversal": tmp_path / "out" / "victim.txt",
        "absolute": tmp_path / "elsewhere" / "victim.ckpt",
        "symlinked_dir": tmp_path / "elsewhere" / "victim.ckpt",
        "symlinked_file": tmp_path / "elsewhere" / "linked.ckpt",
    }
    victim = victims[kind]
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("precious")
    named = {
        "traversal": f"{real_ckpts}/../../victim.txt",
        "absolute": str(victim),
        "symlinked_dir": f"{real_ckpts}/sub/victim.ckpt",
        "symlinked_file": f"{real_ckpts}/evil.ckpt",
    }[kind]
    if kind == "symlinked_dir":
        (ckpts / "sub").symlink_to(victim.parent, target_is_directory=True)
    if kind == "symlinked_file":
        (ckpts / "evil.ckpt").symlink_to(victim)
    # the dirpath matches the run's own, so Lightning would restore and later remove what the state names
    plant(ckpts / "last.ckpt", dirpath=real_ckpts, last_model_path=named, best_model_path=named,
          kth_best_model_path=named, best_k_models={named: 0.5})  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    before = digest(elsewhere)

    with caplog.at_level(logging.WARNING, logger="vid3d.training.checkpoint_state"):
        r = run(root, tmp_path / "ignored", steps=8, every=2, resume=run_dir)  # resumed in place, saves twice

    assert victim.read_text() == "precious" and digest(elsewhere) == before
    assert "dropped" in caplog.text and named[:40] in caplog.text
    assert Path(r["run_dir"]) == run_dir and step_of(ckpts / "last.ckpt") == 8
    assert not [n for n in ckpt_files(run_dir) if "-v" in n]
    assert step_of(resolve_checkpoint(run_dir)) == 8


def test_checkpoint_io_removes_only_ckpt_files_inside_the_run_folder(tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [outside / "v.ckpt", tmp_path / "run" / "config.ckpt", ckpts / "notes.txt"]
    for v in victims:
        v.write_text("keep")
    (ckpts / "sub").symlink_to(outside, target_is_directory=True)
    (ckpts / "link.ckpt").symlink_to(outside / "v.ckpt")
    (ckpts / "folder.ckpt").mkdir()
    (ckpts / "folder.ckpt" / "inner").write_text("keep")
    io = SafetensorsCheckpointIO(ckpts)
    for p in [
        outside / "v.ckpt",  # absolute, outside
        f"{ckpts}/../../outside/v.ckpt",  # traversal that passes a lexical parent check
        f"{ckpts}/../config.ckpt",
        ckpts / "sub" / "v.ckpt",  # a symlinked folder inside the run folder
        ckpts / "notes.txt",  # inside, not a checkpoint
        ckpts / "folder.ckpt",  # a folder
        ckpts,
    ]:
        io.remove_checkpoint(p)
    assert all(v.read_text() == "keep" for v in victims) and (ckpts / "folder.ckpt" / "inner").exists()
    io.remove_checkpoint(ckpts / "link.ckpt")  # the link goes, its target stays
    assert not (ckpts / "link.ckpt").is_symlink() and (outside / "v.ckpt").read_text() == "keep"
    save_checkpoint_file({"global_step": 1}, ckpts / "step_0000001.ckpt")
    io.remove_checkpoint(ckpts / "step_0000001.ckpt")  # its own checkpoints: removed
    assert not (ckpts / "step_0000001.ckpt").exists()
    SafetensorsCheckpointIO(None).remove_checkpoint(outside / "v.ckpt")  # unbound: removes nothing
    assert (outside / "v.ckpt").exists()
    assert removable(ckpts / "a.ckpt", ckpts) and not removable(ckpts / "a.ckpt", None)


def _state(dirpath: str, **fields) -> dict:
    state = {"monitor": None, "best_model_score": None, "best_model_path": "", "current_score": None,
             "dirpath": dirpath, "best_k_models": {}, "kth_best_model_path": "", "kth_value": None,
             "last_model_path": ""}  # fmt: skip
    return {**state, **fields}


def _callback(dirpath: Path, every: int = 2):
    from lightning.pytorch.callbacks import ModelCheckpoint

    return ModelCheckpoint(dirpath=dirpath, every_n_train_steps=every, save_last=True, save_top_k=-1)


def test_callback_state_paths_are_rebased_confined_or_dropped(tmp_path):
    new = tmp_path / "moved" / "checkpoints"
    new.mkdir(parents=True)
    (new / "escape").symlink_to(tmp_path, target_is_directory=True)
    (new / "step_0000004.ckpt").write_bytes(b"")
    (new / "last.ckpt").symlink_to("step_0000004.ckpt")  # save_last="link": a link inside keeps its name
    cb = _callback(new)
    old = "/somewhere/else/run/checkpoints"
    ckpt = {"global_step": 4, "callbacks": {"ModelCheckpoint{'monitor': None, 'old': 1}": _state(
        old,
        last_model_path=f"{old}/last.ckpt",  # the moved run's own: rebased
        best_model_path=f"{old}/../../../victim.ckpt",  # walks out: dropped
        kth_best_model_path=f"{old}/escape/victim.ckpt",  # through a link out of the folder: dropped
        best_k_models={f"{old}/step_0000004.ckpt": torch.tensor(0.5), "/etc/passwd": 1.0, f"{old}/x.txt": 2},
        best_model_score=torch.tensor(0.5),
    )}}  # fmt: skip
    check_resumed_state(ckpt, [cb], "planted.ckpt")
    (key,) = ckpt["callbacks"]
    assert key == cb.state_key  # filed under the running callback (another interval, same files)
    s = ckpt["callbacks"][key]
    real = os.path.realpath(new)
    assert s["dirpath"] == cb.dirpath == real
    assert s["last_model_path"] == f"{real}/last.ckpt"
    assert s["best_model_path"] == "" and s["best_model_score"] is None
    assert s["kth_best_model_path"] == ""
    assert list(s["best_k_models"]) == [f"{real}/step_0000004.ckpt"]
    cb.load_state_dict(s)  # what Lightning does next: the confined state is restored
    assert cb.last_model_path == f"{real}/last.ckpt"


@pytest.mark.parametrize(
    "field,value,named",
    [
        ("global_step", -3, "global_step"),
        ("global_step", "7", "global_step"),
        ("callbacks", [1], "callbacks"),
        ("lr_schedulers", [{"optimizer": {}, "last_epoch": 3}], "lr_schedulers[0].optimizer"),
        ("vid3d", "x", "vid3d"),
        ("cb:last_model_path", 7, "last_model_path"),
        ("cb:best_k_models", ["a.ckpt"], "best_k_models"),
        ("cb:best_model_score", "high", "best_model_score"),
        ("cb:monitor", {"k": 1}, "monitor"),
    ],
)
def test_wrong_types_in_trainer_state_are_refused_in_one_line(tmp_path, field, value, named):
    cb = _callback(tmp_path)
    ckpt = {"global_step": 2, "callbacks": {cb.state_key: _state(str(tmp_path))}}
    if field.startswith("cb:"):
        ckpt["callbacks"][cb.state_key][field[3:]] = value
    else:
        ckpt[field] = value
    with pytest.raises(CheckpointStateRefused) as e:
        check_resumed_state(ckpt, [cb], "/r/received.ckpt")
    msg = str(e.value)
    assert "\n" not in msg and "/r/received.ckpt" in msg and named in msg


# ------------------------------------------------------------------- 2. unrelated temporary files
def test_resume_from_a_file_removes_no_unrelated_tmp_file(root, base_run, tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    shutil.copy(base_run / "checkpoints" / "last.ckpt", folder / "model.ckpt")
    others = [".notes.txt.tmp", "data.tmp", ".report.json.abcd1234.tmp", ".model.ckpt.abcd1234.tmp"]
    others.append("a.ckpt.tmp")
    old = time.time() - 2 * 3600
    for name in others:
        (folder / name).write_bytes(b"someone else's")
        os.utime(folder / name, (old, old))
    r = run(root, tmp_path / "new", steps=6, every=2, resume=folder / "model.ckpt")
    assert sorted(p.name for p in folder.iterdir()) == sorted([*others, "model.ckpt"])
    assert Path(r["run_dir"]) == tmp_path / "new" / "run" and step_of(Path(r["last_checkpoint"])) == 6


# ---------------------------------------------------- 3. copied / moved runs, another interval
@pytest.mark.parametrize("how", ["copy", "move", "interval"])
def test_resumed_copy_move_or_new_interval_keeps_last_ckpt_newest(root, base_run, tmp_path, how):
    src = fresh_copy(base_run, tmp_path / "a" / "run")
    if how == "copy":
        run_dir = tmp_path / "b" / "run"
        shutil.copytree(src, run_dir, copy_function=shutil.copy)  # file times: those of the copy
        # copy order must not matter: make the stale step file look newer than last.ckpt
        later = time.time() + 60
        os.utime(run_dir / "checkpoints" / "step_0000002.ckpt", (later, later))
    elif how == "move":
        run_dir = tmp_path / "c" / "run"
        run_dir.parent.mkdir()
        os.rename(src, run_dir)
    else:
        run_dir = src
    src_digest = digest(src) if how == "copy" else None
    every = 3 if how == "interval" else 2

    assert step_of(resolve_checkpoint(run_dir)) == 4  # before: the newest step, not the touched file
    r = run(root, tmp_path / "ignored", steps=9, every=every, resume=run_dir)

    names = ckpt_files(run_dir)
    assert not [n for n in names if "-v" in n], names  # no last-v1.ckpt beside a stale last.ckpt
    assert step_of(run_dir / "checkpoints" / "last.ckpt") == 9
    assert Path(r["last_checkpoint"]) == run_dir / "checkpoints" / "last.ckpt"  # the log's latest
    assert resolve_checkpoint(run_dir) == run_dir / "checkpoints" / "last.ckpt"  # ckpt=<run dir>
    assert newest_complete_checkpoint(run_dir) == run_dir / "checkpoints" / "last.ckpt"  # resume=<run dir>
    new_steps = {2: [6, 8], 3: [6]}[every]  # every_n_train_steps: saved at multiples of the interval
    assert {f"step_{s:07d}.ckpt" for s in new_steps} <= set(names)
    if how == "copy":
        assert digest(src) == src_digest  # the original run is untouched by its copy's resume


# --------------------------------------------------------------- 10a. a killed writer's temp file
def test_a_killed_writers_temp_goes_at_once_on_resume_and_on_save(tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    save_checkpoint_file({"global_step": 2}, ckpts / "last.ckpt")
    # what a writer killed just now leaves: mkstemp's 0-byte file under the writer's own name pattern
    fd, killed = tempfile.mkstemp(prefix=".last.ckpt.", suffix=".tmp", dir=ckpts)
    os.close(fd)
    keep = [ckpts / ".notes.txt.tmp", ckpts / "other.tmp", ckpts / ".metrics.csv.abcd1234.tmp"]
    for p in keep:
        p.write_bytes(b"x")
    assert resume_path(str(tmp_path / "run"), ckpts) == str(ckpts / "last.ckpt")
    assert not os.path.exists(killed) and all(p.exists() for p in keep)

    fd, killed = tempfile.mkstemp(prefix=".step_0000004.ckpt.", suffix=".tmp", dir=ckpts)
    os.close(fd)
    SafetensorsCheckpointIO(ckpts).save_checkpoint({"global_step": 6}, ckpts / "step_0000006.ckpt")
    assert not os.path.exists(killed) and all(p.exists() for p in keep)
    assert sorted(p.name for p in ckpts.glob("*.ckpt")) == ["last.ckpt", "step_0000006.ckpt"]


# ------------------------------------------------------------------------------ property test
class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (raised from inside a checkpoint write)."""


def expected_writes(start: int, target: int, every: int) -> list[tuple[str, int]]:
    """The checkpoint writes of a run from ``start`` to ``target`` steps: step file then last.ckpt at every
    multiple of ``every``, and last.ckpt at ``target`` when that is not one (the final save)."""
    out = []
    for s in range(start + 1, target + 1):
        if s % every == 0:
            out += [(f"step_{s:07d}.ckpt", s), ("last.ckpt", s)]
    if target % every != 0:
        out.append(("last.ckpt", target))
    return out


segment = st.tuples(
    st.sampled_from([1, 2, 3]),  # checkpoint interval
    st.integers(1, 3),  # steps added by this run
    st.one_of(st.none(), st.tuples(st.integers(0, 4), st.sampled_from(["after", "mid"]))),  # the kill
    st.sampled_from(["stay", "copy", "move"]),  # what happens to the run folder before this run
)


def check_kill_resume_sequence(root: Path, base: Path, segments: list) -> None:
    """Run ``segments`` (interval, steps added, kill or None, folder move before it) one after the other,
    each resuming the previous run's folder in place (``resume=<run dir>``), and check after each: the
    writes are those of an uninterrupted run up to the kill, the resume started at the newest step written
    (no step lost), ``ckpt=<run dir>`` and ``resume=<run dir>`` name that step (none stale), no
    ``last-v1.ckpt``, a finished run's ``last.ckpt`` is its last step and no killed writer's temporary file
    is left; folders copied away from are never touched again."""
    run_dir: Path | None = None
    last_written = 0  # the step of the newest complete checkpoint write
    originals: list[tuple[Path, dict]] = []  # run folders copied away from: never touched again
    real_save, real_load = checkpoint_io.save_checkpoint_file, checkpoint_io.load_checkpoint_file
    for i, (every, add, kill, folder_op) in enumerate(segments):
        if i == 0 and kill is not None and kill == (0, "mid"):
            kill = (0, "after")  # the first run must leave one checkpoint to resume from
        if run_dir is not None and folder_op != "stay":
            new = base / f"seg{i}" / "run"
            new.parent.mkdir()
            if folder_op == "copy":
                shutil.copytree(run_dir, new, copy_function=shutil.copy)  # new file times
                originals.append((run_dir, digest(run_dir)))
                # in any order: here the oldest step file looks the newest
                steps = sorted((new / "checkpoints").glob("step_*.ckpt"), reverse=True)
                for k, f in enumerate([*(new / "checkpoints").glob("last.ckpt"), *steps]):
                    os.utime(f, (time.time() + k, time.time() + k))
            else:
                os.rename(run_dir, new)
            run_dir = new
        target = last_written + add
        planned = expected_writes(last_written, target, every)
        done: list[tuple[str, int]] = []
        resumed_from: list[int] = []

        def save(checkpoint, path, _kill=kill, _done=done):
            if _kill is not None and len(_done) == _kill[0]:
                if _kill[1] == "mid":  # the writer's first act, then the kill
                    p = Path(path)
                    os.close(tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)[0])
                    raise Killed
                real_save(checkpoint, path)
                _done.append((Path(path).name, int(checkpoint["global_step"])))
                raise Killed
            real_save(checkpoint, path)
            _done.append((Path(path).name, int(checkpoint["global_step"])))

        def load(path, map_location=None, _seen=resumed_from):
            ckpt = real_load(path, map_location)
            _seen.append(int(ckpt["global_step"]))
            return ckpt

        checkpoint_io.save_checkpoint_file, checkpoint_io.load_checkpoint_file = save, load
        try:
            run(root, base / f"out{i}", target, every, resume=run_dir)
            killed = False
        except Killed:
            killed = True
        finally:
            checkpoint_io.save_checkpoint_file, checkpoint_io.load_checkpoint_file = real_save, real_load
        if run_dir is None:
            run_dir = base / "out0" / "run"
        else:
            assert resumed_from == [last_written], (resumed_from, last_written)  # no step lost
        assert done == planned[: len(done)], (done, planned)  # the writes an uninterrupted run makes
        assert killed == (kill is not None and kill[0] < len(planned)), (kill, planned)
        last_written = done[-1][1] if done else last_written
        names = ckpt_files(run_dir)
        assert not [n for n in names if "-v" in n], names
        # what ckpt=<run dir> serves and resume=<run dir> takes: the newest step written
        assert step_of(resolve_checkpoint(run_dir)) == last_written
        assert step_of(newest_complete_checkpoint(run_dir)) == last_written
        if not killed:
            assert step_of(run_dir / "checkpoints" / "last.ckpt") == target == last_written
            if done:  # a run that saved also cleared every temporary file a killed writer left
                assert not list((run_dir / "checkpoints").glob(".*.tmp")), names
    for folder, before in originals:
        assert digest(folder) == before


# a default-suite case through every path: a kill between step file and last.ckpt, a copy with shuffled
# file times, a kill in the middle of a write, another interval, a move
HARD_CASE = [(2, 3, (0, "after")), (3, 4, (1, "mid")), (1, 2, None)]


def test_a_hard_kill_and_resume_sequence(root, tmp_path):
    check_kill_resume_sequence(
        root, tmp_path, [(e, a, k, op) for (e, a, k), op in zip(HARD_CASE, ["stay", "copy", "move"])]
    )


@pytest.mark.slow  # ~15 s per example on 2 shared cores
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(segments=st.lists(segment, min_size=2, max_size=4))
def test_no_kill_and_resume_sequence_loses_a_step_or_serves_a_stale_one(root, tmp_path_factory, segments):
    check_kill_resume_sequence(root, tmp_path_factory.mktemp("prop"), segments)
