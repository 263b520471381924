"""python -m vid3d.convert: released CameraCtrl / MotionCtrl files -> vid3d checkpoints (in process, tiny
backbone; the "released" files come from _published_fakes.py)."""

from __future__ import annotations

import argparse

import pytest
import torch
from _published_fakes import fake_cameractrl, fake_motionctrl

from vid3d.convert import compose_model_config, convert
from vid3d.errors import InputError
from vid3d.models.checkpoint import load_checkpoint_file, load_model
from vid3d.models.published.cameractrl import CameraCtrlEncoder
from vid3d.models.published.motionctrl import MotionCtrlEncoder
from vid3d.models.schema import stored_model_config, validate_model_config

TINY = ["model/backbone=tiny"]


def test_cameractrl_converts_to_a_loadable_checkpoint(tmp_path) -> None:
    state = fake_cameractrl(tmp_path / "CameraCtrl_svd.ckpt")
    out = convert("cameractrl", tmp_path / "CameraCtrl_svd.ckpt", tmp_path / "cc.ckpt", TINY)
    meta = load_checkpoint_file(out)["vid3d"]
    assert meta["model_config"]["name"] == "cameractrl_svd" and meta["num_frames"] == 14
    assert meta["published_model"] == "cameractrl" and meta["converted_from"] == "CameraCtrl_svd.ckpt"
    model = load_model(out)
    assert isinstance(model.camera_encoder, CameraCtrlEncoder)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())


def test_cameractrl_variant_follows_the_frame_table(tmp_path) -> None:
    fake_cameractrl(tmp_path / "CameraCtrl_svdxt.ckpt", frames=25)
    out = convert("cameractrl", tmp_path / "CameraCtrl_svdxt.ckpt", tmp_path / "xt.ckpt", TINY)
    meta = load_checkpoint_file(out)["vid3d"]
    assert meta["model_config"]["name"] == "cameractrl_svdxt" and meta["num_frames"] == 25
    assert meta["model_config"]["camera_encoder"]["max_frames"] == 25
    assert load_model(out).camera_encoder.levels[0][0].temporal.pe.shape == (25, 32)


def test_motionctrl_converts_taking_only_its_trained_weights(tmp_path) -> None:
    state = fake_motionctrl(tmp_path / "motionctrl_svd.ckpt")
    out = convert("motionctrl", tmp_path / "motionctrl_svd.ckpt", tmp_path / "mc.ckpt", TINY)
    ckpt = load_checkpoint_file(out)
    assert set(ckpt["state_dict"]) == {f"model.{k}" for k in state}
    model = load_model(out)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())
    assert isinstance(model.camera_encoder, MotionCtrlEncoder)


def test_convert_refuses_a_file_of_another_size_and_never_writes(tmp_path) -> None:
    fake_cameractrl(tmp_path / "c.ckpt")
    with pytest.raises(InputError, match=r"c\.ckpt: weight camera_encoder\.\S+ has shape"):
        convert(
            "cameractrl",
            tmp_path / "c.ckpt",
            tmp_path / "o.ckpt",
            [*TINY, "model.backbone.unet_channels=[32,96]"],
        )
    assert not (tmp_path / "o.ckpt").exists()
    with pytest.raises(InputError, match="would replace the released file"):
        convert("cameractrl", tmp_path / "c.ckpt", tmp_path / "c.ckpt", TINY)


def test_convert_refuses_pickle(tmp_path) -> None:
    torch.save({"pose_encoder_state_dict": {}, "cfg": argparse.Namespace()}, tmp_path / "p.ckpt")
    with pytest.raises(InputError, match=r"p\.ckpt: refused: loading it needs pickle"):
        convert("cameractrl", tmp_path / "p.ckpt", tmp_path / "o.ckpt", TINY)
    assert not (tmp_path / "o.ckpt").exists()


@pytest.mark.parametrize(
    ("option", "weights", "frames"),
    [
        ("cameractrl_svd", "svd", 14),  # stabilityai/stable-video-diffusion-img2vid
        ("cameractrl_svdxt", "svd_xt", 25),  # stabilityai/stable-video-diffusion-img2vid-xt
        ("motionctrl_svd", "svd", None),
    ],
)
def test_published_options_are_the_released_setups(option, weights, frames, monkeypatch) -> None:
    monkeypatch.delenv("SVD_PATH", raising=False)
    cfg = stored_model_config(compose_model_config(option, []))
    validate_model_config(cfg, f"model={option}")  # what a converted checkpoint stores is accepted on load
    for backbone in ("tiny", "tiny_kl"):
        validate_model_config(compose_model_config(option, [f"model/backbone={backbone}"]), backbone)
    assert cfg["backbone"]["weights"] == weights and "source" not in cfg["backbone"]
    assert cfg["attention"]["_target_"].endswith("no_attention")
    if frames:
        enc = cfg["camera_encoder"]
        assert (
            enc["max_frames"],
            enc["downscale_factor"],
            enc["num_res_blocks"],
            enc["kernel"],
            enc["heads"],
        ) == (frames, 8, 2, 1, 8)
