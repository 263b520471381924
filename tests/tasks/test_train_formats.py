"""Every dataset format trains through train(cfg): data=acid, dl3dv, re10k_chunks, the re10k_acid_dl3dv
mixture and the paper_mix phase schedule, on tiny folders converted from one synthetic set; each option's
test_dataset also loads."""

from collections import Counter
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback

import vid3d.tasks.train as train_mod
from vid3d.config import CONFIG_DIR
from vid3d.data.datamodule import DataSourceLogger
from vid3d.data.formats.convert import re10k_to_chunks, re10k_to_dl3dv
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.models.checkpoint import load_checkpoint_file

SMALL = [
    "model=plucker",
    "data.num_frames=4",
    "data.height=32",
    "data.width=48",
    "data.datamodule.num_workers=0",
    "logger=csv",
    "module.warmup_steps=1",
    "torch_threads=1",
]


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("formats")
    re10k = build_synthetic_dataset(
        base / "re10k", num_train=2, num_test=1, num_frames=10, height=48, width=64
    )
    re10k_to_dl3dv(re10k, base / "dl3dv", downscales=(2,))
    re10k_to_chunks(re10k, base / "chunks", chunk_size=2, eval_index=True)
    return {"re10k": re10k, "dl3dv": base / "dl3dv", "chunks": base / "chunks"}


def cfg_for(overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def data_overrides(option: str, roots: dict[str, Path]) -> list[str]:
    mixture = [
        f"data.re10k_root={roots['re10k']}",
        f"data.acid_root={roots['re10k']}",
        f"data.dl3dv_root={roots['dl3dv']}",
        "data.dl3dv_image_dir=images_2",
    ]
    return {
        "acid": [f"data.root={roots['re10k']}"],
        "dl3dv": [f"data.root={roots['dl3dv']}", "data.image_dir=images_2"],
        "re10k_chunks": [f"data.root={roots['chunks']}"],
        "re10k_acid_dl3dv": mixture,
        "paper_mix": mixture,
    }[option]


@pytest.mark.parametrize("option", ["acid", "dl3dv", "re10k_chunks", "re10k_acid_dl3dv", "paper_mix"])
def test_option_trains_two_steps_and_has_test_dataset(option, roots, tmp_path):
    data = [f"data={option}", *data_overrides(option, roots)]
    cfg = cfg_for([*data, "trainer.max_steps=2", f"paths.output_dir={tmp_path}", *SMALL])
    out = train_mod.train(cfg)
    assert load_checkpoint_file(out["last_checkpoint"])["global_step"] == 2
    test = instantiate(cfg.data.test_dataset)
    assert len(test) == 1
    s = test[0]
    assert s["frames"].shape == (4, 3, 32, 48) and s["skipped"].sum() == 0
    # from the first frame at data.eval_interval, shrunk (stated rule) when the clip is too short for it
    idx = s["frame_indices"].tolist()
    n_src = 10  # frames per clip of the tiny sets built above
    stride = min(cfg.data.eval_interval, (n_src - 1) // (len(idx) - 1))
    assert idx == [i * stride for i in range(len(idx))]


def test_chunks_eval_index_config(roots):
    cfg = cfg_for(
        [
            "data=re10k_chunks",
            *data_overrides("re10k_chunks", roots),
            f"data.eval_index={roots['chunks'] / 'evaluation_index_test.json'}",
            *SMALL,
        ]
    )
    s = instantiate(cfg.data.test_dataset)[0]
    assert s["frame_indices"].tolist() == [0, 9, 1, 4, 8]  # context (first, last) + 3 targets


class _Probe(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, str]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        for phase, name in zip(batch["phase"].tolist(), batch["dataset"]):
            self.seen.append((trainer.global_step, int(phase), name))


def test_paper_mix_switches_phase_at_the_configured_step(roots, tmp_path, monkeypatch):
    probe = _Probe()
    original = train_mod.instantiate_callbacks
    made = []

    def callbacks(cfg):
        made.extend(original(cfg))
        return [*made, probe]

    monkeypatch.setattr(train_mod, "instantiate_callbacks", callbacks)
    cfg = cfg_for(
        [
            "data=paper_mix",
            *data_overrides("paper_mix", roots),
            "data.phase2_start_step=2",
            "data.phase2_weights={re10k: 0, acid: 0, dl3dv: 1}",
            "trainer.max_steps=6",
            "callbacks.data_sources.log_every_n_steps=1",
            f"paths.output_dir={tmp_path}",
            *SMALL,
        ]
    )
    out = train_mod.train(cfg)
    assert [s for s, _, _ in probe.seen] == list(range(6))
    # the data-source logger counted the same samples the batches carried, and logged them and the phase
    (sources,) = [c for c in made if isinstance(c, DataSourceLogger)]
    assert sources.totals == dict(Counter(name for _, _, name in probe.seen))
    assert out["data/samples/dl3dv"] == sources.totals["dl3dv"] and out["data/phase"] == 1
    # VideoDataModule's resumable sampler hands each item the step that trains on it: the switch is exact
    assert [(step, phase) for step, phase, _ in probe.seen] == [(k, int(k >= 2)) for k in range(6)]
    assert all((name == "dl3dv") == (phase == 1) for _, phase, name in probe.seen)


def test_paper_mix_phase_follows_the_restored_step_after_resume(roots, tmp_path, monkeypatch):
    base = [
        "data=paper_mix",
        *data_overrides("paper_mix", roots),
        "data.phase2_start_step=3",
        "data.phase2_weights={re10k: 0, acid: 0, dl3dv: 1}",
        *SMALL,
    ]
    first = train_mod.train(cfg_for([*base, "trainer.max_steps=2", f"paths.output_dir={tmp_path}/a"]))
    probe = _Probe()
    original = train_mod.instantiate_callbacks
    monkeypatch.setattr(train_mod, "instantiate_callbacks", lambda cfg: [*original(cfg), probe])
    resumed = [f"resume={first['last_checkpoint']}", "trainer.max_steps=4", f"paths.output_dir={tmp_path}/b"]
    train_mod.train(cfg_for([*base, *resumed]))
    assert [(step, phase) for step, phase, _ in probe.seen] == [(2, 0), (3, 1)]
