"""conf/experiment/cpu/stage2.yaml (issue 37 item 2): HX3big at 64x96 from the committed
32x48 model's weights.

Checked: the training size, the crop of the 72x128 renders (the same field of view as stage 1), the latent
size at pixel factor 2, ``init_from`` resolving to the committed asset (and the asset loading into the
stage-2 model), the learning rate and warm-up against HX3big's, the checkpoint interval, the held-out clips
at 64x96 (camera gap during training and ``data=synthetic_heldout600_64x96``), and the launcher's refusal of
a run folder inside the repository."""

import subprocess
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vid3d.config import CONFIG_DIR
from vid3d.data.transforms import center_crop_box

ROOT = CONFIG_DIR.parent
ASSET = ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big.safetensors"


def composed(overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


@pytest.fixture(scope="module")
def stage2():
    return composed(["experiment=cpu/stage2"])


@pytest.fixture(scope="module")
def stage1() -> dict:
    return OmegaConf.to_container(composed(["experiment=cpu/hx3big"]), resolve=True)


def test_stage2_is_hx3big_at_64x96(stage2, stage1):
    cfg = OmegaConf.to_container(stage2, resolve=True)
    data, build = cfg["data"], cfg["data"]["build"]
    assert (data["height"], data["width"]) == (64, 96)
    assert data["num_frames"] == stage1["data"]["num_frames"] == 8
    # the same 600 renders at 72x128 as stage 1 (one data cache)
    assert data["root"] == stage1["data"]["root"] and build == stage1["data"]["build"]
    assert (build["height"], build["width"], build["num_train"]) == (72, 128, 600)
    # centre crop to 3:2 (72x108, x0 = 10), then a resize: the field of view of stage 1's 32x48
    assert center_crop_box(72, 128, 64, 96) == center_crop_box(72, 128, 32, 48) == (10, 0, 108, 72)
    # pixel factor 2 as HX3big: latents 32x48 (stage 1: 16x24)
    f = cfg["model"]["backbone"]["vae"]["factor"]
    assert f == stage1["model"]["backbone"]["vae"]["factor"] == 2
    assert (data["height"] // f, data["width"] // f) == (32, 48)
    assert data["height"] % f == data["width"] % f == 0
    # the model is HX3big's: the committed weights fit it
    assert cfg["model"] == stage1["model"]
    # the seed keeps its lr from stage 1 to stage 2 (1e-5 both); here HX3big's 1e-3, warm-up 10% of the run
    assert cfg["module"]["optimizer"]["lr"] == stage1["module"]["optimizer"]["lr"] == 1e-3
    assert cfg["module"]["warmup_steps"] == cfg["trainer"]["max_steps"] // 10
    # the stride stage 1 ended with (HX3big's schedule 2 -> 4), constant
    assert data["interval"]["start"] == data["interval"]["end"] == stage1["data"]["interval"]["end"] == 4
    assert cfg["callbacks"]["checkpoint"]["every_n_train_steps"] == 100
    assert cfg["callbacks"]["checkpoint"]["save_last"] is True
    assert cfg["init_from_required"] is True and cfg["logger"]["_target_"].endswith("CSVLogger")


def test_init_from_is_the_committed_asset_and_loads(stage2):
    from vid3d.models.checkpoint import load_trained_weights, read_trained_state

    init = Path(stage2.init_from)
    assert init.is_absolute() and init.resolve() == ASSET.resolve() and init.is_file()
    model = instantiate(stage2.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = load_trained_weights(model, init)
    assert len(names) == 488  # the asset's trained tensors: every weight of the tiny model (trainable [all])
    state, meta, _ = read_trained_state(init, use_ema=False)
    assert meta["model_config"]["name"] == "epipolar"
    own = model.state_dict()
    assert all(torch.equal(own[k], state[k]) for k in names)
    # the random init really was replaced (init_from is not a no-op)
    assert sum(not torch.equal(before[k], own[k]) for k in names) > 400


def test_held_out_clips_at_64x96(stage2):
    cfg = OmegaConf.to_container(stage2, resolve=True)
    gap = cfg["callbacks"]["camera_gap"]
    assert gap["num_clips"] == 16 and gap["dataset"]["split"] == "test" and gap["at_start"] is True
    assert (gap["dataset"]["height"], gap["dataset"]["width"]) == (64, 96)
    # scenes 600-615
    assert cfg["data"]["build"]["num_test"] == 16 and cfg["data"]["build"]["num_train"] == 600
    held = OmegaConf.to_container(composed(["data=synthetic_heldout600_64x96"]).data, resolve=True)
    small = OmegaConf.to_container(composed(["data=synthetic_heldout600"]).data, resolve=True)
    assert (held["height"], held["width"]) == (64, 96)
    assert held["root"] == small["root"] and held["build"] == small["build"]
    assert held["build"]["test_start"] == 600 and held["build"]["num_test"] == 16


def test_launcher_refuses_a_run_dir_inside_the_repository(tmp_path):
    proc = subprocess.run(
        ["bash", "experiments/cpu_camera_control/stage2.sh"], cwd=ROOT, capture_output=True, text=True,
        env={"RUN_DIR": "outputs/stage2", "PATH": "/usr/bin:/bin"}, timeout=30,
    )
    assert proc.returncode == 2 and "inside the repository" in proc.stderr
    assert not (ROOT / "outputs" / "stage2").exists()
