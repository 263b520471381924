"""conf/experiment/cpu/*.yaml (issue 36): the CPU camera-control recipes compose, each changes what its
comment says over its parent, and ``hx3big`` is the recipe the committed CPU model was trained with (the run's
own overrides, stored in the asset's manifest, compose to the same config)."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vid3d.config import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted(p.stem for p in (CONFIG_DIR / "experiment" / "cpu").glob("*.yaml"))


def compose_train(overrides: list[str]) -> dict:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("train", overrides=overrides))
    cfg.pop("task_name", None)
    return cfg


@pytest.fixture(scope="module")
def recipes() -> dict[str, dict]:
    return {r: compose_train([f"experiment=cpu/{r}"]) for r in RECIPES}


def test_recipes_compose_and_differ_from_their_parent_as_stated(recipes):
    assert len(RECIPES) == 23 and "base" in RECIPES
    base, smooth = recipes["base"], recipes["smooth"]
    assert base["model"]["name"] == "plucker" and base["data"]["height"] == 32 and base["data"]["width"] == 48
    assert (base["model"]["P_mean"], base["model"]["P_std"]) == (-0.4, 1.6)
    assert base["data"]["datamodule"]["batch_size"] == 4 and base["module"]["optimizer"]["lr"] == 1e-3
    assert recipes["r1"] == base
    assert recipes["r3"]["model"]["name"] == "epipolar" and recipes["r1svd"]["model"]["name"] == "svd"
    assert smooth["data"]["build"]["texture_scale"] == 4.0
    assert smooth["callbacks"]["camera_gap"]["num_clips"] == 16
    assert recipes["p1"]["model"]["backbone"]["vae"]["factor"] == 2
    assert (recipes["h1"]["model"]["P_mean"], recipes["h1"]["model"]["P_std"]) == (1.6, 0.3)
    hx3 = recipes["hx3"]
    assert hx3["model"]["name"] == "epipolar" and hx3["model"]["sigma_high_fraction"] == 0.7
    assert hx3["model"]["backbone"]["vae"]["factor"] == 2 and hx3["trainer"]["max_steps"] == 8000
    big = recipes["hx3big"]
    assert big["data"]["build"]["num_train"] == 600
    assert big["data"]["root"].endswith("smooth4_600x48_72x128_t16_s0")
    assert recipes["hx3bigl"]["model"]["sigma_high_fraction"] == 0.3
    assert recipes["hx3big0"]["model"]["backbone"]["cross_attn_levels"] == [True, True]
    assert recipes["hx3bigw"]["data"]["eval_interval"] == 6


def test_hx3big_is_the_committed_models_recipe(recipes):
    """The asset's manifest keeps the overrides its run was started with (the old explore.sh's list, the
    duplicates included); composed, they give experiment=cpu/hx3big's config, apart from the settings of
    that run (CSV logger, gap every 250 steps, time box, the raised step limit and checkpoint interval of the
    resumed piece) and the
    data root, written there as a literal path."""
    manifest = json.loads((ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big.json").read_text())
    run_only = ("resume=", "+trainer.max_time=", "trainer.max_steps=", "callbacks.camera_gap.every_n_steps=",
                "callbacks.checkpoint.every_n_train_steps=")
    stored = [o.removeprefix("- ") for o in manifest["overrides"]]
    stored = [o for o in stored if not o.startswith(run_only)]
    assert "model=epipolar" in stored and "data.build.num_train=600" in stored
    old = compose_train(stored)
    new = compose_train(["experiment=cpu/hx3big", "logger=csv"])
    assert Path(old["data"].pop("root")).name == Path(new["data"].pop("root")).name
    for cfg in (old, new):
        cfg["trainer"].pop("max_steps")
        cfg["callbacks"]["camera_gap"].pop("every_n_steps")
        cfg["callbacks"]["checkpoint"].pop("every_n_train_steps")
    assert old == new
