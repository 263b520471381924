"""EMA, gradient checkpointing, accumulation/clipping, init_from and W&B media during training (offline)."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.models.checkpoint import (
    EMA_KEY,
    load_checkpoint_file,
    load_model,
    load_trained_weights,
    save_checkpoint_file,
)
from vid3d.tasks.train import train
from vid3d.training.ema import EMACallback
from vid3d.training.module import CameraDiffusionModule

SMALL = [
    "model=plucker",
    "data=re10k",
    "data.num_frames=4",
    "data.height=64",
    "data.width=96",
    "data.datamodule.num_workers=0",
    "module.warmup_steps=1",
    "torch_threads=1",
    "trainer.enable_progress_bar=false",
]


def cfg_for(overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("feat") / "set"
    return build_synthetic_dataset(r, num_train=3, num_test=1, num_frames=12, height=72, width=128)


class _Trainer:
    global_step = 0


def test_ema_matches_formula_and_round_trips(tmp_path):
    module = torch.nn.Linear(3, 2)
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    holder = torch.nn.ModuleDict({"a": module, "f": frozen})
    ema = EMACallback(decay=0.9, warmup=False)
    ema.on_fit_start(_Trainer(), holder)
    assert set(ema.shadow) == {"a.weight", "a.bias"}  # trainable weights only
    expected = module.weight.detach().clone()
    trainer = _Trainer()
    for step in range(1, 4):
        with torch.no_grad():
            module.weight.add_(1.0)
        trainer.global_step = step
        ema.on_train_batch_end(trainer, holder)
        ema.on_train_batch_end(trainer, holder)  # same step again (accumulation): no second update
        expected = 0.9 * expected + 0.1 * module.weight.detach()
    torch.testing.assert_close(ema.shadow["a.weight"], expected)
    ckpt = {"global_step": 3, "callbacks": {"EMA": ema.state_dict()}}
    ema.on_save_checkpoint(trainer, holder, ckpt)
    save_checkpoint_file(ckpt, tmp_path / "c.ckpt")
    restored = EMACallback(decay=0.9, warmup=False)
    loaded = load_checkpoint_file(tmp_path / "c.ckpt")
    restored.load_state_dict(loaded["callbacks"]["EMA"])
    restored.on_load_checkpoint(trainer, holder, loaded)
    torch.testing.assert_close(restored.shadow["a.weight"], expected)
    assert restored.num_updates == 3


def _gc_batch():
    batch = {
        "frames": torch.rand(1, 4, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1,
        "K_px": torch.tensor([[80.0, 0, 48], [0, 80.0, 32], [0, 0, 1]]).expand(1, 4, 3, 3).clone(),
        "c2w": torch.eye(4).expand(1, 4, 4, 4).clone(),
    }
    batch["c2w"][0, :, 0, 3] = torch.linspace(0, 0.3, 4)
    batch["c2w"][0, :, 2, 3] = torch.linspace(0, 0.2, 4)
    return batch


def _gc_model(model: str):
    torch.manual_seed(0)
    m = instantiate(cfg_for([*SMALL, f"model={model}"]).model)
    # The camera encoder's and added attention's outputs are zero-initialised; give them small weights so
    # that every trained parameter gets a non-zero gradient to compare.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if ("camera_encoder" in name or "attention_adapter" in name) and not p.any():
                p.normal_(0, 0.02, generator=torch.Generator().manual_seed(len(name)))
    return m


@pytest.mark.parametrize("model", ["svd", "plucker", "rt", "epipolar"])
def test_gradient_checkpointing_gives_the_same_loss_and_grads(model):
    trainable = ["all"] if model == "svd" else ["camera_encoder", "epipolar", "temporal"]
    results = []
    for gc in (False, True):
        module = CameraDiffusionModule(
            _gc_model(model), optimizer=torch.optim.Adam, trainable=trainable, gradient_checkpointing=gc
        )
        assert module.model.unet.is_gradient_checkpointing is gc
        module.train()
        loss, _ = module.model.training_loss(_gc_batch(), generator=torch.Generator().manual_seed(0))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
        results.append((loss.detach(), grads))
    torch.testing.assert_close(results[0][0], results[1][0])
    assert results[0][1].keys() == results[1][1].keys()
    if model != "svd":
        assert any("camera_encoder" in n for n in results[0][1])
        assert all(results[0][1][n].any() for n in results[0][1] if "camera_encoder" in n)
    for n in results[0][1]:
        torch.testing.assert_close(results[0][1][n], results[1][1][n], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("restore", [True, False])
def test_checkpointed_recomputation_sees_the_cameras(restore):
    """A hook inside a checkpointed block (here a ResNet of the first down block) runs twice per step:
    in forward and when backward recomputes the block. Only with vid3d's checkpoint function does the
    recomputation still see the camera features and attention cameras (diffusers' plain one does not)."""
    model = _gc_model("epipolar")
    CameraDiffusionModule(model, optimizer=torch.optim.Adam)  # freeze policy
    if restore:
        model.enable_gradient_checkpointing()
    else:
        model.unet.enable_gradient_checkpointing()
    seen = []
    resnet = model.unet.down_blocks[0].resnets[0]
    resnet.register_forward_pre_hook(
        lambda mod, args: seen.append(
            (model.camera_encoder._stash is not None, model.attention_adapter._K is not None)
        )
    )
    model.train()
    loss, _ = model.training_loss(_gc_batch(), generator=torch.Generator().manual_seed(0))
    assert seen == [(True, True)]
    loss.backward()
    assert seen == [(True, True), (True, True) if restore else (False, False)]
    # and the state is put back afterwards: nothing leaks past the step
    assert model.camera_encoder._stash is None and model.attention_adapter._K is None


def test_training_run_logs_media_offline_with_ema_accumulation_and_init_from(root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = train(
        cfg_for(
            [
                *SMALL,
                f"data.root={root}",
                "logger=wandb",
                "trainer.max_steps=2",
                "trainer.accumulate_grad_batches=2",
                "trainer.gradient_clip_val=0.5",
                "trainer.log_every_n_steps=1",
                "callbacks.ema.enabled=true",
                "callbacks.ema.decay=0.5",
                "callbacks.media.every_n_steps=2",
                "callbacks.media.num_steps=2",
                f"paths.output_dir={tmp_path}/a",
            ]
        )
    )
    run = Path(out["run_dir"])
    ckpt = load_checkpoint_file(out["last_checkpoint"])
    assert ckpt["global_step"] == 2  # 4 batches, 2 per optimiser step
    assert set(ckpt[EMA_KEY]) == set(ckpt["state_dict"])
    assert "train/grad_norm" in out
    # media: a side-by-side mp4 + trajectory PNG under the run dir, and the same in the offline W&B run
    assert (run / "media" / "step_0000002.mp4").stat().st_size > 0
    assert (run / "media" / "step_0000002_trajectory.png").is_file()
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    videos = list(offline[0].rglob("media/videos/**/*.mp4"))
    images = list(offline[0].rglob("media/images/**/*.png"))
    assert videos and images, sorted(str(p) for p in offline[0].rglob("*"))
    assert list(offline[0].glob("*.wandb"))  # what `wandb sync` uploads

    # sampling prefers EMA weights; raw weights on request
    name = next(k for k in ckpt["state_dict"] if "camera_encoder" in k)
    sub = name.removeprefix("model.")
    ema_model, raw_model = (
        load_model(out["last_checkpoint"]),
        load_model(out["last_checkpoint"], use_ema=False),
    )
    torch.testing.assert_close(ema_model.state_dict()[sub], ckpt[EMA_KEY][name])
    torch.testing.assert_close(raw_model.state_dict()[sub], ckpt["state_dict"][name])
    assert not torch.equal(ckpt[EMA_KEY][name], ckpt["state_dict"][name])

    # init_from: weights only, a new run (step counting restarts)
    fresh = instantiate(cfg_for(SMALL).model)
    names = load_trained_weights(fresh, run)
    assert f"{sub}" in names
    torch.testing.assert_close(fresh.state_dict()[sub], ckpt["state_dict"][name])
    out2 = train(
        cfg_for(
            [
                *SMALL,
                f"data.root={root}",
                "logger=csv",
                "trainer.max_steps=1",
                "callbacks.media.every_n_steps=0",
                f"init_from={out['last_checkpoint']}",
                f"paths.output_dir={tmp_path}/b",
            ]
        )
    )
    assert load_checkpoint_file(out2["last_checkpoint"])["global_step"] == 1
    assert not list(Path(out2["run_dir"]).glob("media/*.mp4"))


def test_init_from_rejects_another_model(root, tmp_path):
    out = train(
        cfg_for(
            [*SMALL, f"data.root={root}", "logger=csv", "trainer.max_steps=1", f"paths.output_dir={tmp_path}"]
        )
    )
    other = instantiate(cfg_for([*SMALL, "model=rt"]).model)
    with pytest.raises(ValueError, match="init_from"):
        load_trained_weights(other, out["last_checkpoint"])


def test_weights_only_copy_loads_the_same_model(root, tmp_path):
    """save_trained_weights: no optimiser / loop state, today's config layout, the same model on load."""
    from vid3d.models.checkpoint import save_trained_weights

    out = train(
        cfg_for(
            [*SMALL, f"data.root={root}", "logger=csv", "trainer.max_steps=1", f"paths.output_dir={tmp_path}"]
        )
    )
    slim = save_trained_weights(out["last_checkpoint"], tmp_path / "assets" / "model.safetensors")
    ckpt, full = load_checkpoint_file(slim), load_checkpoint_file(out["last_checkpoint"])
    assert set(ckpt) == {"epoch", "global_step", "state_dict", "vid3d"} and ckpt["global_step"] == 1
    assert "optimizer_states" in full and slim.stat().st_size < Path(out["last_checkpoint"]).stat().st_size
    assert set(ckpt["state_dict"]) == set(full["state_dict"])
    a, b = load_model(slim).state_dict(), load_model(out["last_checkpoint"]).state_dict()
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
