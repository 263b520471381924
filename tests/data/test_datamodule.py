import csv

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import Dataset

from vid3d.data.clips import SKIP_REASONS
from vid3d.data.datamodule import SkippedClipsLogger, VideoDataModule, collate_samples, skipped_counts
from vid3d.data.interval import FixedInterval, IntervalStepCallback, LinearInterval, find_shared_progress
from vid3d.data.mixture import MixtureDataset

R = len(SKIP_REASONS)


class _Fake(Dataset):
    """Sample dicts shaped like the clip datasets; item i reports one skip of reason i % 3 when i % 4 == 0."""

    def __init__(self, n, interval, tag):
        self.n, self.interval, self.tag = n, interval, tag
        self.strides = []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        s = self.interval.sample(np.random.default_rng(i))
        self.strides.append((self.interval.global_step, s))
        skipped = torch.zeros(R, dtype=torch.int64)
        if i % 4 == 0:
            skipped[i % 3] = 1
        return {
            "frames": torch.full((2, 3, 4, 4), float(i)),
            "K_px": torch.eye(3).expand(2, 3, 3).clone(),
            "c2w": torch.eye(4).expand(2, 4, 4).clone(),
            "clip_id": f"{self.tag}{i}",
            "frame_indices": torch.tensor([0, s]),
            "skipped": skipped,
        }


def test_collate_stacks_tensors_and_lists_strings():
    ds = _Fake(4, FixedInterval(2), "c")
    b = collate_samples([ds[0], ds[1], ds[4 - 1]])
    assert b["frames"].shape == (3, 2, 3, 4, 4) and b["skipped"].shape == (3, R)
    assert b["clip_id"] == ["c0", "c1", "c3"]
    assert b["frame_indices"].dtype == torch.int64 and b["frame_indices"][:, 1].tolist() == [2, 2, 2]
    assert skipped_counts(b) == {SKIP_REASONS[0]: 1}
    with pytest.raises(ValueError, match="different shapes"):
        collate_samples([ds[0], {**ds[1], "frames": torch.zeros(1)}])


def test_mixture_weights_determinism_and_per_dataset_intervals():
    a = _Fake(10, FixedInterval(3), "a")
    b = _Fake(7, LinearInterval(1, 9, 100), "b")
    mix = MixtureDataset({"a": a, "b": b}, {"a": 3.0, "b": 1.0}, length=2000, seed=0)
    picks = [mix.choose(i) for i in range(len(mix))]
    frac_a = np.mean([n == "a" for n, _ in picks])
    assert abs(frac_a - 0.75) < 0.04  # binomial std ~0.01
    assert all(0 <= j < (10 if n == "a" else 7) for n, j in picks)
    assert picks == [
        MixtureDataset({"a": a, "b": b}, {"a": 3.0, "b": 1.0}, 2000, 0).choose(i) for i in range(2000)
    ]
    mix.set_epoch(1)
    assert [mix.choose(i) for i in range(50)] != picks[:50]
    # one callback update reaches every sub-dataset's schedule
    assert len(find_shared_progress(mix)) == 3
    IntervalStepCallback([mix])._publish(type("T", (), {"global_step": 50, "current_epoch": 1})())
    ia = next(i for i, (n, _) in enumerate(picks) if n == "a")
    ib = next(i for i, (n, _) in enumerate(picks) if n == "b")
    mix.set_epoch(0)
    sa, sb = mix[ia], mix[ib]
    assert sa["dataset"] == "a" and sa["frame_indices"][1] == 3
    assert sb["dataset"] == "b" and sb["frame_indices"][1] == 5  # 1 + 8 * 0.5
    with pytest.raises(ValueError, match="unknown"):
        MixtureDataset({"a": a}, {"zz": 1.0})


class _Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        assert isinstance(batch["clip_id"], list)
        return (batch["frames"].mean() * self.w).sum() + self.w.square().sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_datamodule_fit_logs_skips_and_publishes_step(tmp_path):
    interval = LinearInterval(1, 9, 4)
    ds = _Fake(16, interval, "t")
    dm = VideoDataModule(ds, batch_size=4, num_workers=0, shuffle=False)
    assert dm.persistent_workers is False and dm.val_dataloader() == []
    skip_logger = SkippedClipsLogger(log_every_n_steps=2)
    trainer = pl.Trainer(
        max_steps=4,
        logger=CSVLogger(tmp_path, name="csv"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[IntervalStepCallback(), skip_logger],
        default_root_dir=tmp_path,
        accelerator="cpu",
        limit_val_batches=0,
    )
    trainer.fit(_Tiny(), datamodule=dm)
    # items 0, 4, 8, 12 each report one skip of reason i % 3 -> reasons 0, 1, 2, 0
    assert skip_logger.totals[SKIP_REASONS[0]] == 2 and skip_logger.totals[SKIP_REASONS[1]] == 1
    assert skip_logger.totals[SKIP_REASONS[2]] == 1
    # logged at steps 0 and 2 (3 skips so far), and the final totals (4) once training ends
    rows = [
        r
        for r in csv.DictReader(open(tmp_path / "csv" / "version_0" / "metrics.csv"))
        if r.get("data/skipped/total")
    ]
    assert (
        float(rows[-1]["data/skipped/total"]) == 4 and float(rows[-1][f"data/skipped/{SKIP_REASONS[0]}"]) == 2
    )
    assert skip_logger.final["data/skipped/total"] == 4
    # the dataset saw the trainer's global step through the shared schedule
    steps_seen = [s for s, _ in ds.strides]
    assert steps_seen[0] == 0 and max(steps_seen) >= 2
    assert all(stride == interval.value_at(step) for step, stride in ds.strides)
