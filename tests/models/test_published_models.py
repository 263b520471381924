"""The published camera models (CameraCtrl-SVD, MotionCtrl-SVD): outputs against the figures recorded from the
peers' own code, key maps, and the released-file reader.

The reference figures were produced by running CameraCtrl's (``svd`` branch, diffusers 0.24 as it pins) and
MotionCtrl's (``svd`` branch, sgm) own modules on the seeded weights and inputs of ``_published_cases.py``
written in their layouts (benchmarks/README.md, "Published camera models"): vid3d must reproduce them.
"""

from __future__ import annotations

import argparse

import pytest
import torch
from _published_cases import cameractrl_case, cameras, motionctrl_case, transformer_inputs

from vid3d.errors import InputError
from vid3d.models.backbone import build_tiny_backbone
from vid3d.models.published.cameractrl import CameraCtrlEncoder, sinusoid_table
from vid3d.models.published.cameractrl_keys import cameractrl_to_vid3d, frame_positions, vid3d_to_cameractrl
from vid3d.models.published.motionctrl import MotionCtrlEncoder
from vid3d.models.published.motionctrl_keys import (
    motionctrl_to_vid3d,
    sgm_transformer_paths,
    vid3d_to_motionctrl,
)
from vid3d.models.published.release import load_released
from vid3d.models.video_diffusion import CameraVideoDiffusion

# CameraCtrl's UNetSpatioTemporalConditionModelPoseCond + CameraPoseEncoder on the case: out (2, 5, 4, 8, 12)
CC_OUT = {
    "mean": -0.05227537,
    "std": 0.14020066,
    "first": [-0.13466603, -0.11979561, -0.11368091, -0.12735474],
}
CC_CAMERA_EFFECT = 0.02871162  # max |out - out with zero pose features|
CC_FEATURES = [  # CameraPoseEncoder levels, (b, c, f, h, w): mean, std
    ((2, 32, 5, 8, 12), 3.26398849, 12.59911823),
    ((2, 64, 5, 4, 6), 4.47159815, 199.14459229),
    ((2, 64, 5, 2, 3), 167.20582581, 1052.10778809),
]
# MotionCtrl's patched sgm SpatialVideoTransformer per transformer: mean, std, out.flatten()[123], RT effect
MC_OUT = {
    "input_blocks.1.1": (-0.03734028, 0.99898195, -1.46010959, 0.095921),
    "input_blocks.2.1": (-0.04684676, 0.99559695, -1.33429456, 0.084053),
    "input_blocks.4.1": (0.00751067, 0.99525732, -2.10406494, 0.087024),
    "input_blocks.5.1": (0.00166453, 0.99499077, -2.11131120, 0.108655),
    "middle_block.1": (-0.01387953, 0.99682862, -2.04981518, 0.096118),
    "output_blocks.3.1": (-0.00069099, 0.99610019, -2.17197466, 0.112078),
    "output_blocks.4.1": (-0.01258345, 0.99718654, -2.25910711, 0.114093),
    "output_blocks.5.1": (0.02495544, 0.99386781, -2.03218913, 0.104107),
    "output_blocks.6.1": (-0.07967503, 0.99628764, -1.38216293, 0.073590),
    "output_blocks.7.1": (-0.02334855, 0.99432623, -1.31813848, 0.079047),
    "output_blocks.8.1": (-0.02255653, 0.99791950, -1.53722537, 0.078673),
}


def test_cameractrl_reproduces_the_peer_outputs() -> None:
    unet, enc, inp, K_lat, c2w = cameractrl_case()
    plucker = enc.prepare(K_lat, c2w, 8, 12)
    with torch.no_grad():
        feats = enc(plucker)
        with enc.active(plucker):
            out = unet(inp["sample"], inp["t"], inp["ehs"], added_time_ids=inp["ids"]).sample
        with enc.active(plucker):  # the peers' reference: the same UNet with all-zero pose features
            levels, frames = enc._stash
            enc._stash = ([torch.zeros_like(x) for x in levels], frames)
            zero = unet(inp["sample"], inp["t"], inp["ehs"], added_time_ids=inp["ids"]).sample
    for x, (shape, mean, std) in zip(feats, CC_FEATURES, strict=True):
        b, c, f, h, w = shape
        assert tuple(x.shape) == (b * f, c, h, w)
        assert float(x.mean()) == pytest.approx(mean, rel=2e-5, abs=2e-5)
        assert float(x.std()) == pytest.approx(std, rel=2e-6)
    assert tuple(out.shape) == (2, 5, 4, 8, 12)
    assert float(out.mean()) == pytest.approx(CC_OUT["mean"], abs=1e-6)
    assert float(out.std()) == pytest.approx(CC_OUT["std"], abs=1e-6)
    torch.testing.assert_close(out[0, 0, 0, 0, :4], torch.tensor(CC_OUT["first"]), rtol=0, atol=1e-6)
    # the camera path carries a visible effect, 4 orders of magnitude above the tolerance used
    assert float((out - zero).abs().max()) == pytest.approx(CC_CAMERA_EFFECT, abs=1e-6)


def test_motionctrl_reproduces_the_peer_outputs() -> None:
    unet, enc, rt = motionctrl_case()
    for sgm_path, path in sgm_transformer_paths(unet).items():
        tf = unet.get_submodule(path)
        inp = transformer_inputs(tf.in_channels)
        with torch.no_grad():
            with enc.active(rt):
                out = tf(inp["x"], encoder_hidden_states=inp["ctx"], image_only_indicator=inp["ioi"])[0]
            base = tf(inp["x"], encoder_hidden_states=inp["ctx"], image_only_indicator=inp["ioi"])[0]
        mean, std, value, effect = MC_OUT[sgm_path]
        assert float(out.mean()) == pytest.approx(mean, abs=1e-6), sgm_path
        assert float(out.std()) == pytest.approx(std, abs=1e-6), sgm_path
        assert float(out.flatten()[123]) == pytest.approx(value, abs=2e-6), sgm_path
        assert float((out - base).abs().max()) == pytest.approx(effect, abs=2e-6), sgm_path


def test_motionctrl_pose_is_the_relative_world_to_camera_matrix() -> None:
    # MotionCtrl's to_relative_RT2 on world-to-camera [R|t]: R_i R_0^T, t_i - R_i R_0^T t_0 (float64 here)
    _, c2w = cameras()
    world = torch.tensor([[0.0, 0, 1, 0.3], [0, 1, 0, 0.1], [-1, 0, 0, 2], [0, 0, 0, 1]], dtype=torch.float64)
    c2w_abs = world @ c2w.double()  # the same trajectory in another world frame
    w2c = torch.linalg.inv(c2w_abs)
    R, t = w2c[..., :3, :3], w2c[..., :3, 3:]
    R_rel = R @ R[:, :1].transpose(-1, -2)
    expected = torch.cat([R_rel, t - R_rel @ t[:, :1]], dim=-1).reshape(*c2w.shape[:2], 12)
    rel = torch.linalg.inv(c2w_abs[:, :1]) @ c2w_abs  # vid3d's c2w relative to frame 0
    got = MotionCtrlEncoder((32,)).prepare(None, rel, 1, 1)
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("factory", [CameraCtrlEncoder.from_unet, MotionCtrlEncoder.from_unet])
def test_published_modules_start_as_the_base_unet(factory) -> None:
    model = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder=factory)
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 3, 96, 8, 12, generator=g)
    cond = {
        "encoder_hidden_states": torch.randn(1, 1, 32, generator=g),
        "added_time_ids": torch.tensor([[6.0, 127.0, 0.02]]),
    }
    K = torch.tensor([[40.0, 0, 24], [0, 40, 16], [0, 0, 1]]).expand(1, 3, 3, 3)
    c2w = torch.eye(4).repeat(1, 3, 1, 1)
    c2w[0, :, 0, 3] = torch.tensor([0.0, 0.2, 0.4])
    cams = model.prepare_cameras(K, c2w, (8, 12))
    with torch.no_grad():
        base = model.unet(sample, torch.full((1,), 0.3), return_dict=False, **cond)[0]
        out = model.unet_forward(sample, torch.full((1,), 0.3), {**cond, **cams})
    torch.testing.assert_close(out, base, rtol=0, atol=1e-5)  # zero merges / identity projections


def _random_state(module, prefix: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"{prefix}{k}": torch.randn(v.shape, generator=g) for k, v in module.state_dict().items()}


def test_cameractrl_key_map_round_trip_and_released_names() -> None:
    model = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder=CameraCtrlEncoder.from_unet)
    enc = model.camera_encoder
    state = _random_state(enc, "camera_encoder.")
    released = vid3d_to_cameractrl(state, enc.block_paths, 14)
    pose, attn = released["pose_encoder_state_dict"], released["attention_processor_state_dict"]
    # names of CameraCtrl's CameraPoseEncoder / attention processors (as in its checkpoints)
    for name in (
        "encoder_conv_in.weight",
        "encoder_down_conv_blocks.1.0.in_conv.weight",
        "encoder_down_conv_blocks.0.1.block2.bias",
        "encoder_down_attention_blocks.1.1.attention_blocks.0.to_out.0.weight",
        "encoder_down_attention_blocks.0.0.attention_blocks.0.to_v.weight",
        "encoder_down_attention_blocks.0.0.ff.net.0.proj.weight",
        "encoder_down_attention_blocks.1.0.ff_norm.bias",
    ):
        assert name in pose, name
    assert pose["encoder_conv_in.weight"].shape == (32, 384, 3, 3)  # 6 Plücker channels x 8 x 8
    assert pose["encoder_down_attention_blocks.1.1.attention_blocks.0.pos_encoder.pe"].shape == (1, 14, 64)
    assert set(attn) == {
        f"{p}.attn1.processor.qkv_merge.{w}" for p in enc.block_paths for w in ("weight", "bias")
    }
    assert frame_positions(released) == 14
    back = cameractrl_to_vid3d(released, enc.block_paths, "f.ckpt")
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    assert set(state) == {f"camera_encoder.{k}" for k, _ in enc.named_parameters()}  # every weight is mapped


def test_cameractrl_key_map_refuses_unknown_keys_and_wrong_tables() -> None:
    model = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder=CameraCtrlEncoder.from_unet)
    enc = model.camera_encoder
    released = vid3d_to_cameractrl(_random_state(enc, "camera_encoder."), enc.block_paths, 14)
    bad = {
        **released,
        "pose_encoder_state_dict": {**released["pose_encoder_state_dict"], "extra.weight": torch.zeros(1)},
    }
    with pytest.raises(InputError, match=r"f\.ckpt: pose_encoder_state_dict\.extra\.weight is not"):
        cameractrl_to_vid3d(bad, enc.block_paths, "f.ckpt")
    pe = "encoder_down_attention_blocks.0.0.attention_blocks.0.pos_encoder.pe"
    bad = {
        **released,
        "pose_encoder_state_dict": {**released["pose_encoder_state_dict"], pe: torch.zeros(1, 14, 32)},
    }
    with pytest.raises(InputError, match="sinusoid"):
        cameractrl_to_vid3d(bad, enc.block_paths, "f.ckpt")
    other = ["down_blocks.9.attentions.0.temporal_transformer_blocks.0"] * len(enc.block_paths)
    with pytest.raises(InputError, match="wrong variant or model config"):
        cameractrl_to_vid3d(released, other, "f.ckpt")
    with pytest.raises(InputError, match="not a CameraCtrl-SVD checkpoint"):
        cameractrl_to_vid3d({"state_dict": {}}, enc.block_paths, "f.ckpt")


def test_sinusoid_table_is_the_transformer_encoding() -> None:
    table = sinusoid_table(25, 8)
    p, k = 7, 3  # channel 2k = sin(p / 10000^(2k/d)), 2k + 1 = cos(...)
    assert float(table[p, 2 * k]) == pytest.approx(
        torch.sin(torch.tensor(p / 10000 ** (2 * k / 8))).item(), abs=1e-7
    )
    assert float(table[p, 2 * k + 1]) == pytest.approx(
        torch.cos(torch.tensor(p / 10000 ** (2 * k / 8))).item(), abs=1e-7
    )


def test_sgm_paths_of_the_svd_unet() -> None:
    # SVD's own UNet (diffusers' defaults are its config), on the meta device: no memory
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel()
    paths = sgm_transformer_paths(unet)
    assert paths["input_blocks.1.1"] == "down_blocks.0.attentions.0"
    assert paths["input_blocks.8.1"] == "down_blocks.2.attentions.1"
    assert paths["middle_block.1"] == "mid_block.attentions.0"
    assert paths["output_blocks.3.1"] == "up_blocks.1.attentions.0"
    assert paths["output_blocks.11.1"] == "up_blocks.3.attentions.2"
    assert sorted(paths) == sorted(
        [f"input_blocks.{n}.1" for n in (1, 2, 4, 5, 7, 8)]
        + ["middle_block.1"]
        + [f"output_blocks.{n}.1" for n in range(3, 12)]
    )


def test_motionctrl_key_map_round_trip_ignores_svd_weights() -> None:
    model = CameraVideoDiffusion(build_tiny_backbone(seed=0), camera_encoder=MotionCtrlEncoder.from_unet)
    enc = model.camera_encoder
    sd = model.state_dict()
    trained = [
        k
        for k in sd
        if k.startswith("camera_encoder.")
        or (".temporal_transformer_blocks." in k and (".attn2." in k or ".norm2." in k))
    ]
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(sd[k].shape, generator=g) for k in trained}
    released = vid3d_to_motionctrl(state, model.unet, enc.block_paths)
    names = set(released["state_dict"])
    assert "model.diffusion_model.input_blocks.3.1.time_stack.0.cc_projection.weight" in names
    assert "model.diffusion_model.middle_block.1.time_stack.0.attn2.to_out.0.bias" in names
    released["state_dict"]["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(2)  # SVD's own
    released["state_dict"]["conditioner.embedders.0.x"] = torch.zeros(2)
    back = motionctrl_to_vid3d(released, model.unet, enc.block_paths, "m.ckpt")
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    with pytest.raises(InputError, match="m.ckpt: no MotionCtrl camera-motion weight"):
        motionctrl_to_vid3d(
            {"state_dict": {"model.diffusion_model.out.0.weight": torch.zeros(1)}},
            model.unet,
            enc.block_paths,
            "m.ckpt",
        )


def test_released_file_needing_pickle_is_refused_in_one_line(tmp_path) -> None:
    path = tmp_path / "CameraCtrl_svd.ckpt"
    torch.save({"pose_encoder_state_dict": {}, "args": argparse.Namespace(lr=1e-4)}, path)
    before = path.read_bytes()
    with pytest.raises(InputError) as e:
        load_released(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "pickle" in msg and "weights_only=True" in msg
    assert "argparse.Namespace" in msg
    assert path.read_bytes() == before
    torch.save({"a": {"w": torch.ones(2)}}, path)
    assert torch.equal(load_released(path)["a"]["w"], torch.ones(2))
    torch.save({"a": {"w": torch.ones(2)}}, path, _use_new_zipfile_serialization=False)  # pre-zip format
    assert torch.equal(load_released(path)["a"]["w"], torch.ones(2))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.ckpt: not a readable torch checkpoint"):
        load_released(tmp_path / "junk.ckpt")
    with pytest.raises(InputError, match="no such file"):
        load_released(tmp_path / "missing.ckpt")


def test_cameractrl_svdxt_layout_at_full_size() -> None:
    # CameraCtrl's own CameraPoseEncoder + PoseCond UNet built with svdxt_320_576_cameractrl.yaml list 150
    # encoder tensors (8 of them frame tables) and 32 merge tensors; vid3d's full-size encoder maps to exactly
    # those names and shapes (checked name by name side by side; a few recorded here). Meta device: no memory.
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel()  # diffusers' defaults are SVD's UNet config
        enc = CameraCtrlEncoder.from_unet(unet, max_frames=25)
    enc.attach(unet)
    assert sum(p.numel() for p in enc.parameters()) == 211_665_280
    released = vid3d_to_cameractrl(
        {f"camera_encoder.{k}": v for k, v in enc.state_dict().items()}, enc.block_paths, 25
    )
    pose, attn = released["pose_encoder_state_dict"], released["attention_processor_state_dict"]
    assert len(pose) == 150 and sum(k.endswith(".pe") for k in pose) == 8 and len(attn) == 32
    shapes = {
        "encoder_conv_in.weight": (320, 384, 3, 3),
        "encoder_down_conv_blocks.1.0.in_conv.weight": (640, 320, 1, 1),
        "encoder_down_conv_blocks.3.1.block1.weight": (1280, 1280, 3, 3),
        "encoder_down_attention_blocks.3.1.attention_blocks.0.pos_encoder.pe": (1, 25, 1280),
        "encoder_down_attention_blocks.2.0.ff.net.0.proj.weight": (10240, 1280),
    }
    assert {k: tuple(pose[k].shape) for k in shapes} == shapes
    merge = "temporal_transformer_blocks.0.attn1.processor.qkv_merge.weight"
    assert tuple(attn[f"mid_block.attentions.0.{merge}"].shape) == (1280, 1280)
    assert tuple(attn[f"up_blocks.3.attentions.2.{merge}"].shape) == (320, 320)


def test_motionctrl_svd_layout_at_full_size() -> None:
    # sgm's VideoUNet built with MotionCtrl's config_motionctrl_cmcm.yaml, patched as CameraMotionControl
    # does, has 16 temporal blocks whose cc_projection / attn2 / norm2 make 144 tensors; vid3d's names for
    # SVD's UNet map to exactly those names and shapes (checked side by side; some recorded here). Meta.
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel()
        enc = MotionCtrlEncoder.from_unet(unet)
    enc.attach(unet)
    trained = {f"camera_encoder.{k}": v for k, v in enc.state_dict().items()}
    trained |= {
        f"backbone.unet.{k}": v
        for k, v in unet.state_dict().items()
        if ".temporal_transformer_blocks." in k and (".attn2." in k or ".norm2." in k)
    }
    released = vid3d_to_motionctrl(trained, unet, enc.block_paths)["state_dict"]
    assert len(enc.block_paths) == 16 and len(released) == 144
    m = "model.diffusion_model."
    shapes = {
        f"{m}input_blocks.1.1.time_stack.0.cc_projection.weight": (320, 332),
        f"{m}middle_block.1.time_stack.0.cc_projection.weight": (1280, 1292),
        f"{m}output_blocks.11.1.time_stack.0.attn2.to_k.weight": (320, 1024),
        f"{m}input_blocks.7.1.time_stack.0.norm2.bias": (1280,),
    }
    assert {k: tuple(released[k].shape) for k in shapes} == shapes
