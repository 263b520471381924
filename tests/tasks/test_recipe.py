"""No silent toy training (vid3d/tasks/recipe.py): real data with no backbone chosen gets the seed recipe's
pretrained SVD; a random-init backbone under the freeze policy trains its UNet (one warning) unless init_from
supplies the frozen weights."""

from __future__ import annotations

import logging

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from vid3d.config import CONFIG_DIR
from vid3d.models.freeze import apply_freeze_policy
from vid3d.tasks.recipe import choose_backbone, train_random_unet

POLICY = ["camera_encoder", "epipolar", "temporal"]


@pytest.fixture(autouse=True)
def _restore_hydra_config():
    """HydraConfig is a process-wide singleton: leave it as found."""
    before = HydraConfig.instance().cfg
    yield
    HydraConfig.instance().cfg = before


def hydra_run(*overrides: str):
    """The composed config with HydraConfig set, as inside ``@hydra.main`` (choices and overrides known)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.mark.parametrize(
    ("overrides", "svd"),
    [
        (["data=re10k", "data.root=/r"], True),  # real data, backbone left at the default: the seed recipe
        (["data=paper_mix", "data.re10k_root=/a", "data.acid_root=/b", "data.dl3dv_root=/c"], True),
        (["data=re10k", "data.root=/r", "model/backbone=tiny"], False),  # chosen on the command line
        (["data=re10k", "data.root=/r", "model.backbone.seed=3"], False),
        (["data=re10k", "data.root=/r", "module.trainable=[all]"], False),  # no freeze policy: nothing frozen
        (["experiment=demo"], False),  # synthetic data
        ([], False),
    ],
)
def test_real_data_without_a_chosen_backbone_gets_the_pretrained_svd(overrides, svd):
    cfg = hydra_run(*overrides)
    before = cfg.model.backbone._target_
    assert choose_backbone(cfg) is svd
    target = cfg.model.backbone._target_
    if svd:
        assert target == "vid3d.models.backbone.load_svd_backbone" and cfg.model.backbone.weights == "svd_xt"
        assert list(cfg.module.trainable) == POLICY
    else:
        assert target == before


def test_outside_a_hydra_run_the_config_is_taken_as_chosen():
    HydraConfig.instance().cfg = None
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["data=re10k", "data.root=/r"])
    assert not choose_backbone(cfg)


def _model(cfg):
    return instantiate(cfg.model)


def test_a_random_backbone_under_the_freeze_policy_trains_its_unet(caplog):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=plucker"])
    model = _model(cfg)
    # independent count: UNet parameters minus those in the policy's groups
    unet = {n for n in apply_freeze_policy(model, ["unet"])["unet"]}
    in_policy = {n for v in apply_freeze_policy(model, POLICY).values() for n in v}
    expected = sorted(unet - in_policy)
    assert expected and any("attentions" in n or "resnets" in n for n in expected)
    with caplog.at_level(logging.WARNING, logger="vid3d"):
        names = train_random_unet(cfg, model, loaded=set())
    assert sorted(names) == expected
    assert list(cfg.module.trainable) == [*POLICY, "unet"]
    [rec] = [r for r in caplog.records if "random-init" in r.getMessage()]
    assert "\n" not in rec.getMessage() and f"{len(expected)} UNet tensors" in rec.getMessage()
    # the trained set now covers every UNet weight, and the VAE / image encoder stay frozen
    trained = {n for v in apply_freeze_policy(model, list(cfg.module.trainable)).values() for n in v}
    aux = ("backbone.vae", "backbone.image_encoder")
    assert unet <= trained and not any(n.startswith(aux) for n in trained)


def test_weights_from_init_from_or_a_whole_unet_policy_change_nothing():
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=plucker"])
        whole = compose("train", overrides=["model=plucker", "module.trainable=[all]"])
    model = _model(cfg)
    every = {n for n, _ in model.named_parameters()}
    assert train_random_unet(cfg, model, loaded=every) == [] and list(cfg.module.trainable) == POLICY
    assert train_random_unet(whole, model, loaded=set()) == [] and list(whole.module.trainable) == ["all"]
