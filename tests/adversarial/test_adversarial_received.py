"""Received files and messy data, round 2 (issue 32): a broken test clip is skipped and reported, never
replaced; an exported pipeline folder is loaded without running its code; every stored number is bounded;
image headers are checked against a pixel limit before any decoding."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from vid3d.evaluation.records import read_records

_VOLATILE = ("timings_s",)  # wall-clock times: the only fields that differ between two identical runs


def _eval(root, out, tmp_path):
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.tasks.evaluate import evaluate

    overrides = [
        "data=re10k", f"data.root={root}", "data.num_frames=3", "data.height=32", "data.width=48",
        "pose=gt", f"paths.output_dir={out}", "torch_threads=1", "eval.save_videos=false",
        "wandb.media=false",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=overrides)
    res = evaluate(cfg)
    recs = read_records(out / "eval" / "records.shard0of1.jsonl")
    recs = [{k: v for k, v in r.items() if k not in _VOLATILE} for r in recs]
    payload = json.loads((out / "eval" / "results.json").read_text())
    return res, sorted(recs, key=lambda r: (r["method"], r["clip_id"], r["trial"])), payload


@pytest.mark.parametrize("damage", ["frames_folder_gone", "one_frame_gone", "camera_file_garbage"])
def test_a_broken_test_clip_is_skipped_counted_and_never_replaced(tmp_path, offline_wandb, damage, capsys):
    """Three synthetic test clips, the middle one broken: evaluation finishes, reports the broken clip
    with its reason beside the table (not as any method's failure), and the two good clips give exactly
    the records of a test set that never had the broken clip."""
    from vid3d.data.synthetic import build_synthetic_dataset

    full = build_synthetic_dataset(tmp_path / "full", num_train=0, num_test=3, num_frames=6, height=40,
                                   width=56)
    test = full / "test"
    broken = sorted(p.stem for p in test.glob("*.txt"))[1]
    without = tmp_path / "without"
    shutil.copytree(full, without)
    shutil.rmtree(without / "test" / broken)
    for p in (without / "test").glob(f"{broken}.*"):
        p.unlink()
    if damage == "frames_folder_gone":
        shutil.rmtree(test / broken)
        reason = "missing_frames"
    elif damage == "one_frame_gone":
        sorted((test / broken).iterdir())[0].unlink()
        reason = "count_mismatch"
    else:
        (test / f"{broken}.txt").write_text("https://youtu.be/x\n0 not numbers at all\n")
        reason = "camera_file"

    res, recs, payload = _eval(full, tmp_path / "out_full", tmp_path)
    line = f"1 broken test clip(s) skipped, not scored (results.json: skipped_test_clips): {broken} " \
        f"({reason})"
    assert line in capsys.readouterr().out
    _, recs_without, payload_without = _eval(without, tmp_path / "out_without", tmp_path)

    assert {r["clip_id"] for r in recs} == {p.stem for p in test.glob("*.txt")} - {broken}
    assert len(recs) == 2 * 2  # 2 good clips x 2 reference rows, each clip once
    assert recs == recs_without
    assert payload["results"] == payload_without["results"]
    skipped = payload["protocol"]["skipped_test_clips"]
    assert [(s["clip_id"], s["reason"]) for s in skipped] == [(broken, reason)]
    assert broken in skipped[0]["message"]
    assert "skipped_test_clips" not in payload_without["protocol"]
    md = (tmp_path / "out_full" / "eval" / "results.md").read_text()
    assert "skipped_test_clips" in md and broken in md
    for row in res["results"].values():
        assert row["failures"] == 0 and row["n_total"] == 2


# ---------------------------------------------------------------------------------------------------------
# 5. An exported pipeline folder is loaded without running code from it
@pytest.fixture(scope="module")
def model_tree() -> dict:
    """The stored model config train.py writes for model=epipolar (tiny backbone)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from vid3d.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=epipolar"])
    return OmegaConf.to_container(cfg.model, resolve=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, model_tree) -> Path:
    """A pipeline folder as ``python -m vid3d.sampling.pipeline`` writes it (untrained weights)."""
    from vid3d.models.schema import build_model
    from vid3d.sampling.pipeline import CameraVideoPipeline

    model = build_model(model_tree, "test")
    pipe = CameraVideoPipeline(model, model_tree, {"num_steps": 2}, [64, 96])
    return pipe.save_pretrained(tmp_path_factory.mktemp("export") / "pipe")


def _copy(exported: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "pipe"
    shutil.copytree(exported, folder, symlinks=True)
    return folder


def _one_line(excinfo, *names: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for name in names:
        assert str(name) in msg, (name, msg)
    return msg


def test_an_unchanged_export_loads(exported):
    from vid3d.sampling.pipeline import CameraVideoPipeline

    pipe = CameraVideoPipeline.from_pretrained(exported)
    assert pipe.sampler["num_steps"] == 2 and pipe.image_size == [64, 96]


PAYLOAD = "\nimport pathlib\npathlib.Path({marker!r}).write_text('ran')\n"


@pytest.mark.parametrize(
    "change",
    ["appended_payload", "payload_in_class", "one_space_added", "emptied", "replaced_by_payload", "fifo",
     "huge", "directory"],
)
def test_a_changed_entry_file_is_refused_and_never_run(exported, tmp_path, change):
    """vid3d's loader compares vid3d_pipeline.py byte for byte with what vid3d writes; nothing in the
    folder is executed (the payload's marker is never written)."""
    from vid3d.sampling.pipeline import DIFFUSERS_ENTRY, CameraVideoPipeline
    from vid3d.sampling.pipeline_folder import FolderRefused

    folder = _copy(exported, tmp_path)
    entry = folder / "vid3d_pipeline.py"
    marker = tmp_path / "marker"
    payload = PAYLOAD.format(marker=str(marker))
    entry.unlink()
    if change == "appended_payload":
        entry.write_text(DIFFUSERS_ENTRY + payload)
    elif change == "payload_in_class":
        init = "        super().__init__()\n"
        entry.write_text(DIFFUSERS_ENTRY.replace(init, init + payload.replace("\n", "\n        ")))
    elif change == "one_space_added":
        entry.write_text(DIFFUSERS_ENTRY + " ")
    elif change == "emptied":
        entry.write_text("")
    elif change == "replaced_by_payload":
        entry.write_text(payload)
    elif change == "fifo":
        os.mkfifo(entry)
    elif change == "huge":
        entry.write_bytes(b"#" * (1 << 20))
    else:
        entry.mkdir()
    t0 = time.perf_counter()
    with pytest.raises(FolderRefused) as e:
        CameraVideoPipeline.from_pretrained(folder)
    assert time.perf_counter() - t0 < 5.0
    _one_line(e, entry)
    assert not marker.exists()


@pytest.mark.parametrize(
    "where", ["unet/evil.py", "vae/__pycache__/evil.cpython-311.pyc", "helpers.py", "image_encoder/x.so"]
)
def test_any_other_code_file_in_the_folder_is_refused(exported, tmp_path, where):
    from vid3d.sampling.pipeline import CameraVideoPipeline
    from vid3d.sampling.pipeline_folder import FolderRefused

    folder = _copy(exported, tmp_path)
    (folder / where).parent.mkdir(parents=True, exist_ok=True)
    (folder / where).write_text("import os\n")
    with pytest.raises(FolderRefused) as e:
        CameraVideoPipeline.from_pretrained(folder)
    _one_line(e, folder / where)


@pytest.mark.parametrize(
    "edit",
    [
        {"scheduler": ["evil_module", "EvilScheduler"]},  # a component diffusers would import from the folder
        {"unet": ["diffusers", "UNetSpatioTemporalConditionModel"]},
        {"_class_name": ["other_pipeline", "Vid3dCameraVideoPipeline"]},
        {"_class_name": ["vid3d_pipeline", "SomethingElse"]},
    ],
)
def test_model_index_naming_components_or_another_class_is_refused(exported, tmp_path, edit):
    from vid3d.sampling.pipeline import CameraVideoPipeline
    from vid3d.sampling.pipeline_folder import FolderRefused

    folder = _copy(exported, tmp_path)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, **edit}))
    with pytest.raises(FolderRefused) as e:
        CameraVideoPipeline.from_pretrained(folder)
    _one_line(e, folder / "model_index.json")


def test_entry_files_of_earlier_exports_still_load(exported, tmp_path):
    """The entry written before the module moved (it imported vid3d.sampling.export), and no entry at all
    (exports before the diffusers entry), are accepted; today's entry is in the accepted list."""
    from vid3d.sampling.pipeline import DIFFUSERS_ENTRY, CameraVideoPipeline
    from vid3d.sampling.pipeline_folder import ENTRY_SHA256

    assert hashlib.sha256(DIFFUSERS_ENTRY.encode()).hexdigest() in ENTRY_SHA256
    folder = _copy(exported, tmp_path)
    former = DIFFUSERS_ENTRY.replace("vid3d.sampling.pipeline", "vid3d.sampling.export")
    (folder / "vid3d_pipeline.py").write_text(former)
    assert CameraVideoPipeline.from_pretrained(folder).sampler["num_steps"] == 2
    (folder / "vid3d_pipeline.py").unlink()
    assert CameraVideoPipeline.from_pretrained(folder).sampler["num_steps"] == 2


def test_readme_offers_the_vid3d_loader_first_and_explains_trust_remote_code():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    first_vid3d = readme.index("CameraVideoPipeline.from_pretrained(")
    first_diffusers = readme.index("trust_remote_code=True")
    assert first_vid3d < first_diffusers
    near = readme[first_diffusers - 600: first_diffusers + 600]
    assert "executes" in near and "vid3d_pipeline.py" in near


# ---------------------------------------------------------------------------------------------------------
# 6. Bounds for every stored number; sampler settings; component configs; image headers
def _set(tree: dict, path: str, value) -> dict:
    tree = json.loads(json.dumps(tree))
    node = tree
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return tree


NAN = float("nan")
CONFIG_CASES = {
    # the issue's own
    "backbone.layers_per_block": 1_000_000,
    "backbone.unet_channels": [1_000_000, 2_000_000],
    # ours
    "backbone.cross_attention_dim": 10**9,
    "backbone.heads": 10**7,
    "backbone.seed": -1,
    "backbone.clip_hidden": 2**40,
    "backbone.addition_time_embed_dim": 10**8,
    "backbone.vae.factor": 10_000,
    "attention.heads": 1_000_000,
    "attention.registers": 10**7,
    "attention.levels": [0] * 40,
    "attention.dense_mask_max_elements": 2**62,
    "attention.band_width": NAN,
    "cond_dropout": float("inf"),
    "P_std": -1.0,
    "fps_id": 1e300,
    "camera_encoder_kwargs": {"hidden_channels": [10**7]},
    "attention_kwargs": {"whatever": 1e12},
}


@pytest.mark.parametrize("field", list(CONFIG_CASES))
def test_a_stored_number_out_of_bounds_is_refused_at_once(model_tree, field):
    """Each refused in one line naming the file and the field, before anything is built."""
    from vid3d.models.schema import ConfigRefused, build_model

    bad = _set(model_tree, field, CONFIG_CASES[field])
    t0 = time.perf_counter()
    with pytest.raises(ConfigRefused) as e:
        build_model(bad, "/some/received.ckpt")
    assert time.perf_counter() - t0 < 2.0
    _one_line(e, "/some/received.ckpt", f"model.{field}")


def test_a_tiny_backbone_within_field_bounds_but_too_large_is_refused_before_it_is_built(model_tree):
    """Each number allowed, together 6 levels of 2560 channels, 8 layers each: counted on the meta device
    (no memory) and refused; the default tiny model stays far below the limit."""
    from vid3d.models.bounds import MAX_BACKBONE_PARAMETERS, tiny_backbone_parameters
    from vid3d.models.schema import ConfigRefused, build_model

    big = _set(_set(model_tree, "backbone.unet_channels", [2560] * 6), "backbone.layers_per_block", 8)
    t0 = time.perf_counter()
    with pytest.raises(ConfigRefused) as e:
        build_model(big, "/some/received.ckpt")
    assert time.perf_counter() - t0 < 30.0
    assert "parameters" in _one_line(e, "/some/received.ckpt", "model.backbone")
    small = tiny_backbone_parameters(model_tree["backbone"])
    assert 10_000 < small < MAX_BACKBONE_PARAMETERS / 1000
    # an inconsistent one (channels GroupNorm cannot divide) is one line too, not a traceback
    with pytest.raises(ConfigRefused) as e:
        build_model(_set(model_tree, "backbone.unet_channels", [33, 65]), "/some/received.ckpt")
    _one_line(e, "/some/received.ckpt", "model.backbone")


def test_every_numeric_parameter_of_every_allowed_target_has_a_bound():
    import typing

    from vid3d.models.bounds import bound_for
    from vid3d.models.schema import TARGETS, _fields

    def numeric(hint) -> bool:
        if hint in (int, float):
            return True
        return any(numeric(a) for a in typing.get_args(hint) if a is not bool)

    missing = [
        (t, k) for t in TARGETS for k, _ in _fields(t)[0].items()
        if numeric(_fields(t)[1].get(k)) and bound_for(t, k) is None
    ]
    assert not missing, missing


def test_every_model_option_passes_the_bounds():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from vid3d.config import CONFIG_DIR
    from vid3d.models.schema import stored_model_config, validate_model_config

    options = sorted(p.stem for p in (Path(CONFIG_DIR) / "model").glob("*.yaml") if p.stem[0] != "_")
    assert len(options) >= 3
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for name in options:
            tree = OmegaConf.to_container(compose("train", overrides=[f"model={name}"]).model, resolve=True)
            validate_model_config(stored_model_config(tree), name)  # as train.py stores it


SAMPLER_CASES = {
    "num_steps": [1e9, 10**9, 0, "25", True, 25.0],
    "sigma_max": [NAN, float("inf"), 1e30, 0.001],  # 0.001 < sigma_min
    "sigma_min": [0.0, -1.0, NAN],
    "guidance_max": [NAN, -1.0, 1e9],
    "guidance_min": [float("-inf")],
    "rho": [0.0, NAN],
    "solver": ["os.system", None],
    "eta": [NAN, -0.1, 2.0, 0.5],  # 0.5: the stored solver is not ddim
    "steps": [25],  # an unknown key
}


@pytest.mark.parametrize(
    "field,value", [(k, v) for k, vs in SAMPLER_CASES.items() for v in vs], ids=lambda x: repr(x)[:20]
)
def test_an_exported_folders_sampler_settings_are_refused_out_of_range(exported, tmp_path, field, value):
    from vid3d.sampling.pipeline import CameraVideoPipeline
    from vid3d.sampling.sampler_settings import SamplerSettingsRefused

    folder = _copy(exported, tmp_path)
    spec = json.loads((folder / "vid3d_model.json").read_text())
    spec["sampler"][field] = value
    (folder / "vid3d_model.json").write_text(json.dumps(spec))  # NaN / Infinity as Python's json writes them
    t0 = time.perf_counter()
    with pytest.raises(SamplerSettingsRefused) as e:
        CameraVideoPipeline.from_pretrained(folder)
    assert time.perf_counter() - t0 < 2.0  # before any weight is read
    _one_line(e, folder / "vid3d_model.json", f"'{field}'")


def test_image_size_and_call_overrides_are_checked_too(exported, tmp_path):
    from vid3d.sampling.pipeline import CameraVideoPipeline
    from vid3d.sampling.sampler_settings import SamplerSettingsRefused

    folder = _copy(exported, tmp_path)
    spec = json.loads((folder / "vid3d_model.json").read_text())
    (folder / "vid3d_model.json").write_text(json.dumps({**spec, "image_size": [10**9, 10**9]}))
    with pytest.raises(SamplerSettingsRefused) as e:
        CameraVideoPipeline.from_pretrained(folder)
    _one_line(e, folder / "vid3d_model.json", "image_size")
    pipe = CameraVideoPipeline.from_pretrained(exported)
    with pytest.raises(SamplerSettingsRefused):  # the export CLI's settings (num_steps=...) go here
        CameraVideoPipeline(pipe.model, pipe.model_config, {"num_steps": 10**9})
    image = np.zeros((64, 96, 3), np.uint8)
    K = np.array([[80.0, 0, 48], [0, 80.0, 32], [0, 0, 1]])
    c2w = np.tile(np.eye(4), (4, 1, 1))
    for kw in ({"num_steps": 10**9}, {"guidance_max": NAN}, {"solver": "nope"}):
        t0 = time.perf_counter()
        with pytest.raises(SamplerSettingsRefused) as e:
            pipe(image, K, c2w, **kw)
        assert time.perf_counter() - t0 < 1.0
        _one_line(e, next(iter(kw)))


COMPONENT_CASES = [
    ("unet/config.json", "layers_per_block", 1_000_000),
    ("unet/config.json", "block_out_channels", [1_000_000, 2_000_000]),
    ("unet/config.json", "num_attention_heads", [2, 10**8]),
    ("unet/config.json", "down_block_types", ["DownBlockSpatioTemporal"] * 1000),
    ("unet/config.json", "num_frames", NAN),
    ("image_encoder/config.json", "num_hidden_layers", 10**6),
    ("image_encoder/config.json", "hidden_size", 2**31),
    ("image_encoder/config.json", "layer_norm_eps", float("inf")),
    ("vae/vid3d_pixel_vae.json", "factor", 10**6),
]


@pytest.mark.parametrize("file,field,value", COMPONENT_CASES, ids=lambda x: str(x)[:24])
def test_an_exported_folders_component_configs_are_bounded(exported, tmp_path, file, field, value):
    """The backbone's config.json files are received data too: a huge size is refused before diffusers
    allocates the model it describes."""
    from vid3d.sampling.pipeline import CameraVideoPipeline
    from vid3d.sampling.pipeline_folder import FolderRefused

    folder = _copy(exported, tmp_path)
    path = folder / file
    config = json.loads(path.read_text())
    config[field] = value
    path.write_text(json.dumps(config))
    t0 = time.perf_counter()
    with pytest.raises(FolderRefused) as e:
        CameraVideoPipeline.from_pretrained(folder)
    assert time.perf_counter() - t0 < 5.0
    _one_line(e, path, field)


def test_component_configs_too_large_together_or_too_long_are_refused(exported, tmp_path):
    from vid3d.sampling.pipeline import CameraVideoPipeline
    from vid3d.sampling.pipeline_folder import FolderRefused

    folder = _copy(exported, tmp_path)
    path = folder / "unet" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "block_out_channels": [2560, 2560], "layers_per_block": 8,
                                "cross_attention_dim": 4096}))
    img = json.loads((folder / "image_encoder" / "config.json").read_text())
    big = {"hidden_size": 4096, "intermediate_size": 16384, "num_hidden_layers": 64, "projection_dim": 4096}
    (folder / "image_encoder" / "config.json").write_text(json.dumps({**img, **big}))
    with pytest.raises(FolderRefused) as e:
        CameraVideoPipeline.from_pretrained(folder)
    assert "parameters" in _one_line(e, folder)
    path.write_text(json.dumps({**config, "pad": "x" * (2 << 20)}))
    with pytest.raises(FolderRefused) as e:
        CameraVideoPipeline.from_pretrained(folder)
    _one_line(e, path, "bytes")


def _png(w: int, h: int) -> bytes:
    """A valid PNG header declaring w x h RGB pixels, with a few bytes of image data (a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b"")


def _jpeg(w: int, h: int) -> bytes:
    """A real 8x8 JPEG whose SOF0 header is rewritten to declare w x h."""
    import cv2

    data = bytearray(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    i = data.find(b"\xff\xc0")
    data[i + 5: i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _gif(w: int, h: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HH", w, h) + b"\0\0\0," + struct.pack("<HHHH", 0, 0, w, h)
            + b"\0\x02\x02D\x01\0;")


BOMBS = {
    "png_20000x20000": lambda: _png(20000, 20000),  # the issue's
    "png_65535x65535": lambda: _png(65535, 65535),
    "png_1x100000000": lambda: _png(1, 100_000_000),
    "jpeg_60000x60000": lambda: _jpeg(60000, 60000),
    "gif_65535x2000": lambda: _gif(65535, 2000),
    "png_8193x8192": lambda: _png(8193, 8192),  # one column over the limit
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_an_image_declaring_too_many_pixels_is_refused_from_its_header(tmp_path, bomb):
    """Every reader of frames and images refuses it in well under a second, before decoding."""
    from vid3d.data.files import ImageTooLarge, decode_image
    from vid3d.data.formats import dl3dv
    from vid3d.data.formats import pixelsplat as ps
    from vid3d.data.formats.re10k import _read_image
    from vid3d.errors import InputError
    from vid3d.sampling.io import load_image

    path = tmp_path / ("frame." + bomb.split("_")[0])
    data = BOMBS[bomb]()
    path.write_bytes(data)
    for read in (decode_image, _read_image, dl3dv.read_image):
        t0 = time.perf_counter()
        with pytest.raises(ImageTooLarge) as e:
            read(path)
        assert time.perf_counter() - t0 < 0.5
        _one_line(e, path, "size limit")
    with pytest.raises(ImageTooLarge):
        ps.decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    with pytest.raises(InputError) as e:
        load_image(path, 32, 48)
    _one_line(e, path, "size limit")


def test_the_pixel_limit_boundary_and_ordinary_frames():
    from vid3d.data.files import MAX_IMAGE_PIXELS, check_image_pixels, image_header_size

    assert MAX_IMAGE_PIXELS == 8192 * 8192
    check_image_pixels(_png(8192, 8192))  # exactly at the limit: accepted (header only, nothing decoded)
    check_image_pixels(_jpeg(3840, 2160))
    assert image_header_size(_gif(640, 360)) == (640, 360)


def test_a_clip_with_a_bomb_frame_is_skipped_as_image_size(tmp_path):
    """In a dataset the bomb frame makes its clip a counted skip (reason image_size), in a fraction of a
    second, and the frames folder's other clips are used."""
    from vid3d.data.clips import BadClip, Re10kClipDataset
    from vid3d.data.synthetic import build_synthetic_dataset

    root = build_synthetic_dataset(tmp_path / "set", num_train=0, num_test=2, num_frames=6, height=40,
                                   width=56)
    clip = sorted(p for p in (root / "test").iterdir() if p.is_dir())[0]
    victim = sorted(clip.iterdir())[3]
    victim.write_bytes(_png(20000, 20000))
    ds = Re10kClipDataset(root, "test", num_frames=3, height=32, width=48, window_start="first")
    t0 = time.perf_counter()
    with pytest.raises(BadClip) as e:
        ds.exact_item(ds.clips.index(next(c for c in ds.clips if c.clip_id == clip.name)))
    assert time.perf_counter() - t0 < 2.0
    assert e.value.reason == "image_size" and str(victim) in str(e.value)
    assert ds.skipped["image_size"] == 1


def test_a_video_whose_stream_declares_too_many_pixels_is_refused_before_decoding(tmp_path, monkeypatch):
    """The stream header's size is checked before any frame is decoded (shown with the limit lowered:
    a real 20000x20000 video cannot be encoded cheaply for a test)."""
    import imageio.v3 as iio

    import vid3d.data.files as files
    from vid3d.data.formats.re10k import _read_video_frames

    video = tmp_path / "clip.mp4"
    iio.imwrite(video, np.zeros((4, 48, 64, 3), np.uint8), fps=8)
    assert len(_read_video_frames(video, np.arange(2))) == 2
    monkeypatch.setattr(files, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    with pytest.raises(ValueError, match=r"64x48 pixels exceed the size limit") as e:
        _read_video_frames(video, np.arange(2))
    _one_line(e, video)
    from vid3d.tools.video_to_poses import VideoToPosesError, decode_video

    with pytest.raises(VideoToPosesError, match=r"64x48 pixels exceed the size limit") as e:
        decode_video(video)
    _one_line(e, video)
