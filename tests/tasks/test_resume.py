"""Exact resume: a run SIGKILLed after writing a checkpoint and resumed from it continues the loss sequence
of an uninterrupted run (CPU, fixed seed), including the frame-interval curriculum and the data order (the
full shuffle, and the chunk-grouped one of data=re10k_chunks)."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.data.formats.convert import re10k_to_chunks
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.models.checkpoint import load_checkpoint_file
from vid3d.tasks.train import train

REPO = Path(__file__).resolve().parents[2]
STEPS = 14
KILL_AFTER = 5  # checkpoint interval: the killed run is stopped once it wrote last.ckpt at step >= 5


def overrides(root: Path, out: Path, workers: int, data: str = "re10k") -> list[str]:
    return [
        "model=plucker",
        "model/backbone=tiny",  # real-data layout: train.py would otherwise pick the pretrained SVD
        f"data={data}",
        f"data.root={root}",
        "data.num_frames=4",
        "data.height=64",
        "data.width=96",
        f"data.datamodule.num_workers={workers}",
        "data.datamodule.batch_size=2",
        # the curriculum moves during the run (stride 2 -> 4 over 10 steps): the step each sample sees matters
        "data.interval.start=2",
        "data.interval.end=4",
        "data.interval.steps=10",
        "logger=csv",
        "module.warmup_steps=3",
        "module.optimizer.lr=1e-3",
        "torch_threads=1",
        f"trainer.max_steps={STEPS}",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        f"callbacks.checkpoint.every_n_train_steps={KILL_AFTER}",
        f"paths.output_dir={out}",
        "paths.run_dir=${paths.output_dir}/run",
        "seed=3",
    ]


def losses(run_dir: Path) -> dict[int, float]:
    """{global step (0-based: the step count before the optimiser step): train/loss} from the CSV logger."""
    files = list(Path(run_dir).rglob("metrics.csv"))
    assert files, f"no metrics.csv under {run_dir}"
    out: dict[int, float] = {}
    for f in files:
        with open(f) as fh:
            for row in csv.DictReader(fh):
                if row.get("train/loss"):
                    out[int(row["step"])] = float(row["train/loss"])
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    # 7 clips, batch 2, drop_last: 3 batches per epoch, so 14 steps span several epochs
    r = tmp_path_factory.mktemp("resume") / "set"
    return build_synthetic_dataset(r, num_train=7, num_test=1, num_frames=24, height=72, width=128)


@pytest.fixture(scope="module")
def chunks_root(root, tmp_path_factory) -> Path:
    # the same 7 clips in 4 pixelSplat chunks: data=re10k_chunks trains with shuffle=grouped
    out = tmp_path_factory.mktemp("resume_chunks") / "set"
    re10k_to_chunks(root, out, chunk_size=2)
    return out


@pytest.fixture(scope="module")
def broken_root(tmp_path_factory) -> Path:
    """The same 7-clip set with 5 clips damaged in one frame each (tests/adversarial/corpus.py)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "adversarial"))
    from corpus import break_corpus

    r = tmp_path_factory.mktemp("resume_broken") / "set"
    root = build_synthetic_dataset(r, num_train=7, num_test=1, num_frames=24, height=72, width=128)
    assert len(break_corpus(root)) == 5
    return root


def final_skips(run_dir: Path) -> float:
    """data/skipped/total of the last row that has it (logged at the end of training)."""
    rows = [r for f in Path(run_dir).rglob("metrics.csv") for r in csv.DictReader(open(f))]
    return [float(r["data/skipped/total"]) for r in rows if r.get("data/skipped/total")][-1]


def cfg_for(o: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=o)


# ~55 s each on 2 shared cores: the loader-worker case (process-local step per item) runs by default,
# the in-process loader case and the chunk-grouped order (2 workers) with the slow tests.
@pytest.mark.parametrize(
    "workers,data",
    [
        pytest.param(0, "re10k", marks=pytest.mark.slow),
        (1, "re10k"),
        pytest.param(2, "re10k_chunks", marks=pytest.mark.slow),
        # a partly broken corpus (issue 20): the same clips skipped, the same losses, the same skip totals
        pytest.param(0, "broken", marks=pytest.mark.slow),
        pytest.param(2, "broken", marks=pytest.mark.slow),
    ],
)
def test_sigkill_resume_matches_uninterrupted(request, root, tmp_path, workers, data):
    if data == "re10k_chunks":
        root = request.getfixturevalue("chunks_root")
    if data == "broken":
        root, data = request.getfixturevalue("broken_root"), "re10k"
    ref = train(cfg_for(overrides(root, tmp_path / "ref", workers, data)))
    ref_loss = losses(Path(ref["run_dir"]))
    assert len(ref_loss) >= STEPS - 1

    killed_out = tmp_path / "killed"
    ckpt = killed_out / "run" / "checkpoints" / "last.ckpt"
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "train.py", *overrides(root, killed_out, workers, data)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not ckpt.exists():
            assert proc.poll() is None, f"training exited early: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its dataloader workers, mid-training
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    k = load_checkpoint_file(ckpt)["global_step"]
    assert KILL_AFTER <= k < STEPS, k

    resumed = train(cfg_for([*overrides(root, tmp_path / "resumed", workers, data), f"resume={ckpt}"]))
    # the resumed run continues in the killed run's own directory; its CSV rows are a new logger version
    assert Path(resumed["run_dir"]) == ckpt.parents[1] and not (tmp_path / "resumed" / "checkpoints").exists()
    assert (ckpt.parents[1] / "config.yaml").is_file() and (ckpt.parents[1] / "config.resume1.yaml").is_file()
    newest = max((ckpt.parents[1] / "csv").glob("version_*"), key=lambda d: int(d.name.split("_")[1]))
    res_loss = losses(newest)
    assert sorted(res_loss) == [s for s in sorted(ref_loss) if s >= k], (sorted(res_loss), k)
    for s, v in res_loss.items():
        assert v == pytest.approx(ref_loss[s], rel=1e-6, abs=1e-7), (s, v, ref_loss[s])
    assert load_checkpoint_file(resumed["last_checkpoint"])["global_step"] == STEPS
    assert final_skips(newest) == final_skips(Path(ref["run_dir"]))
