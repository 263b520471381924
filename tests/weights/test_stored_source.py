"""Issue 32 (5): a stored model config (a checkpoint, an exported folder) cannot say where pretrained weights
come from: no hub repository, revision or local_files_only. It may name a registered backbone
(``weights: svd_xt``); the user's config (``model.backbone.*`` in train.py, ``pretrained.*`` in sample.py /
eval.py) chooses the source."""

from __future__ import annotations

import pytest
from _hub_server import Hub, Repo  # tests/weights/_hub_server.py
from huggingface_hub import constants
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vid3d.config import CONFIG_DIR
from vid3d.errors import InputError
from vid3d.models.backbone import build_tiny_backbone, save_backbone
from vid3d.models.schema import (
    ConfigRefused,
    build_model,
    migrate_model_config,
    stored_model_config,
    validate_model_config,
)

SVD = "vid3d.models.backbone.load_svd_backbone"


def composed(*overrides: str) -> dict:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    return OmegaConf.to_container(cfg.model, resolve=True)


def test_train_stores_which_backbone_but_not_where_it_comes_from(monkeypatch):
    monkeypatch.setenv("SVD_PATH", "/some/user/folder")
    raw = composed("model=plucker", "model/backbone=svd", "model.backbone.revision=v1")
    assert raw["backbone"]["source"] == "/some/user/folder" and raw["backbone"]["revision"] == "v1"
    stored = stored_model_config(raw)
    # trained from the user's own folder: which weights those are is not guessed, loading asks for them
    assert stored["backbone"] == {"_target_": SVD, "weights": None, "variant": None}
    validate_model_config(stored, "ckpt")
    assert raw["backbone"]["source"] == "/some/user/folder", "a new tree: the composed config is unchanged"
    monkeypatch.setenv("SVD_PATH", "stabilityai/stable-video-diffusion-img2vid")  # a registered repository
    stored = stored_model_config(composed("model=plucker", "model/backbone=svd"))
    assert stored["backbone"] == {"_target_": SVD, "weights": "svd", "variant": None}
    monkeypatch.delenv("SVD_PATH")
    stored = stored_model_config(composed("model=plucker", "model/backbone=svd"))
    assert stored["backbone"] == {"_target_": SVD, "weights": "svd_xt", "variant": None}


@pytest.mark.parametrize(
    ("key", "value"),
    [("source", "attacker/any-repo"), ("source", "/etc"), ("revision", "refs/pr/1"),
     ("local_files_only", False)],
)
def test_a_stored_config_naming_a_source_is_refused(key, value):
    stored = stored_model_config(composed("model=plucker", "model/backbone=svd"))
    stored["backbone"][key] = value
    where = r"^ckpt\.safetensors: model config entry"
    with pytest.raises(ConfigRefused, match=rf"{where} 'model\.backbone\.{key}' refused: .*your own config"):
        validate_model_config(stored, "ckpt.safetensors")


def test_earlier_checkpoints_keep_the_registered_name_and_drop_the_rest():
    old = {"_target_": SVD, "source": "stabilityai/stable-video-diffusion-img2vid", "revision": "abc",
           "local_files_only": False, "variant": None}
    assert migrate_model_config({"backbone": old})["backbone"] == {"_target_": SVD, "variant": None,
                                                                    "weights": "svd"}
    other = {**old, "source": "attacker/any-repo"}
    assert migrate_model_config({"backbone": other})["backbone"] == {"_target_": SVD, "variant": None}


def test_a_received_checkpoint_never_contacts_the_repository_it_names(tmp_path, monkeypatch):
    """An earlier-layout config naming another repository with local_files_only false: nothing is requested;
    the backbone is the user's choice (here: none given -> one line saying how to give it)."""
    hub = Hub(repos={"attacker/any-repo": Repo({"model_index.json": b"{}"})}).start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    stored = stored_model_config(composed("model=plucker", "model/backbone=svd"))
    stored["backbone"] = {"_target_": SVD, "source": "attacker/any-repo", "revision": "main",
                          "local_files_only": False}
    try:
        with pytest.raises(InputError, match="no pretrained backbone named: set model.backbone.weights"):
            build_model(stored, "received.ckpt")
    finally:
        hub.stop()
    assert hub.log == []


def test_the_users_pretrained_source_builds_the_backbone(tmp_path):
    folder = save_backbone(build_tiny_backbone(seed=3), tmp_path / "my_svd")
    stored = stored_model_config(composed("model=plucker", "model/backbone=svd"))
    model = build_model(stored, "ckpt", pretrained={"source": str(folder), "revision": None})
    want = build_tiny_backbone(seed=3).unet.state_dict()
    got = model.backbone.unet.state_dict()
    assert all((got[k] == v).all() for k, v in want.items())


@pytest.mark.parametrize("config", ["eval", "sample"])
def test_eval_and_sample_take_the_source_from_their_pretrained_block(config, monkeypatch):
    from vid3d.tasks.common import pretrained_choice

    monkeypatch.delenv("SVD_PATH", raising=False)
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config, overrides=["ckpt=x"])
        assert pretrained_choice(cfg) == {"source": None, "revision": None, "local_files_only": False}
        monkeypatch.setenv("SVD_PATH", "/my/svd")
        more = ["pretrained.revision=v2", "pretrained.local_files_only=true"]
        cfg = compose(config, overrides=["ckpt=x", *more])
        assert pretrained_choice(cfg) == {"source": "/my/svd", "revision": "v2", "local_files_only": True}
