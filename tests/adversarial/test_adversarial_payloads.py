"""A checkpoint or exported folder is data: no stored config may run code, on any entry point.

Each payload below would create ``marker`` if anything built it (with Hydra's ``instantiate`` as before
the schema, every one of them did). Each is planted in a real checkpoint (its ``vid3d.model_config``)
and in a real exported pipeline folder (``vid3d_model.json``), and loaded through every entry point that
reads one: ``load_model`` (sample.py, eval.py, export), ``CameraVideoPipeline.from_checkpoint`` /
``from_pretrained``, the export CLI, ``init_from`` and ``resume``. Each must be refused with a one-line
error naming the file, and the marker must never exist.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vid3d.config import CONFIG_DIR
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.models import schema
from vid3d.models.checkpoint import load_checkpoint_file, save_checkpoint_file
from vid3d.models.schema import TARGETS, ConfigRefused, validate_model_config

MARKER_NAME = "PWNED"


class _Touch:
    """Unpickling this runs ``touch <path>`` (the bytes a ``torch.load(weights_only=False)`` would run)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def payloads(marker: Path) -> dict[str, dict]:
    """Name -> a ``_target_`` tree that creates ``marker`` if built by Hydra."""
    m = str(marker)
    pickled = pickle.dumps(_Touch(m)).hex()
    torch_load = {
        "_target_": "torch.load",
        "f": {
            "_target_": "io.BytesIO",
            "_args_": [{"_target_": "builtins.bytes.fromhex", "_args_": [pickled]}],
        },
        "weights_only": False,
    }
    return {
        "torch_load_from_hex": torch_load,
        "builtins_open": {"_target_": "builtins.open", "_args_": [m, "w"]},
        "shutil_copyfile": {"_target_": "shutil.copyfile", "src": __file__, "dst": m},
        "pathlib_write_text": {
            "_target_": "pathlib.Path.write_text",
            "_args_": [{"_target_": "pathlib.Path", "_args_": [m]}, "x"],
        },
        "os_system": {"_target_": "os.system", "_args_": [f"touch {m}"]},
        "subprocess": {"_target_": "subprocess.run", "_args_": [["touch", m]]},
        "importlib": {"_target_": "importlib.import_module", "name": "os"},
        # a dotted path that starts inside vid3d but walks out to os.system through a module attribute
        "getattr_chain": {"_target_": "vid3d.models.backbone.os.system", "_args_": [f"touch {m}"]},
        "partial": {"_target_": "os.system", "_partial_": True, "command": f"touch {m}"},
    }


def planted(model_config: dict, name: str, payload: dict) -> dict:
    """The payload at one of several places of an otherwise valid model config."""
    cfg = copy.deepcopy(model_config)
    where = name.split("@")[1]
    if where == "top":
        return payload
    if where == "backbone":
        cfg["backbone"] = payload
    elif where == "camera_encoder":
        cfg["camera_encoder"] = payload
    elif where == "nested_value":
        cfg["attention"]["band_width"] = payload
    elif where == "in_list":
        cfg["attention"]["levels"] = [0, payload]
    elif where == "in_dict":
        cfg["camera_encoder_kwargs"] = {"hidden_channels": payload}
    elif where == "args_of_allowed":
        cfg["_args_"] = [payload]
    elif where == "recursive_flag":
        cfg["_recursive_"] = True
        cfg["attention"] = payload
    return cfg


PLACES = [
    "top",
    "backbone",
    "camera_encoder",
    "nested_value",
    "in_list",
    "in_dict",
    "args_of_allowed",
    "recursive_flag",
]
KINDS = list(payloads(Path("m")))
CASES = (
    [f"{k}@top" for k in KINDS]
    + [f"torch_load_from_hex@{p}" for p in PLACES[1:]]
    + [f"os_system@{p}" for p in PLACES[1:]]
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real 1-step epipolar checkpoint, its exported folder, and the train overrides that made it."""
    from vid3d.sampling.pipeline import CameraVideoPipeline
    from vid3d.tasks.train import train

    tmp = tmp_path_factory.mktemp("payloads")
    root = build_synthetic_dataset(tmp / "set", num_train=2, num_test=1, num_frames=12, height=72, width=128)
    overrides = [
        "model=epipolar",
        "model/backbone=tiny",  # real-data layout: train.py would otherwise pick the pretrained SVD
        "data=re10k",
        f"data.root={root}",
        "data.num_frames=4",
        "data.height=64",
        "data.width=96",
        "data.datamodule.num_workers=0",
        "trainer.max_steps=1",
        "logger=csv",
        "module.warmup_steps=1",
        "torch_threads=1",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={tmp / 'run'}"])
    ckpt = Path(train(cfg)["last_checkpoint"])
    folder = CameraVideoPipeline.from_checkpoint(ckpt, sampler={"num_steps": 1}).save_pretrained(tmp / "pipe")
    return {"ckpt": ckpt, "folder": folder, "overrides": overrides, "tmp": tmp}


def _hostile_ckpt(trained, tmp_path, case) -> tuple[Path, Path]:
    marker = tmp_path / MARKER_NAME
    ckpt = load_checkpoint_file(trained["ckpt"])
    ckpt["vid3d"]["model_config"] = planted(
        ckpt["vid3d"]["model_config"], case, payloads(marker)[case.split("@")[0]]
    )
    path = tmp_path / "hostile.ckpt"
    save_checkpoint_file(ckpt, path)
    return path, marker


def _hostile_folder(trained, tmp_path, case) -> tuple[Path, Path]:
    marker = tmp_path / MARKER_NAME
    folder = tmp_path / "pipe"
    shutil.copytree(trained["folder"], folder)
    spec = json.loads((folder / "vid3d_model.json").read_text())
    spec["model"] = planted(spec["model"], case, payloads(marker)[case.split("@")[0]])
    (folder / "vid3d_model.json").write_text(json.dumps(spec))
    return folder, marker


def _refused(excinfo, path: Path) -> None:
    msg = str(excinfo.value)
    assert "\n" not in msg and str(path) in msg and "refused" in msg, msg


@pytest.mark.parametrize("case", CASES)
def test_checkpoint_payload_refused_by_load_model_export_and_init_from(
    trained, tmp_path, case, capsys, monkeypatch
):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    from vid3d.models.checkpoint import load_model, load_trained_weights
    from vid3d.sampling.pipeline import CameraVideoPipeline, main

    path, marker = _hostile_ckpt(trained, tmp_path, case)
    for load in (
        load_model,
        CameraVideoPipeline.from_checkpoint,
        lambda p: load_trained_weights(load_model(trained["ckpt"]), p),  # init_from
    ):
        with pytest.raises(ConfigRefused) as e:
            load(path)
        _refused(e, path)
        assert not marker.exists()
    # the export CLI: one line on stderr, exit code 2, nothing written
    with pytest.raises(SystemExit) as e:
        main([f"ckpt={path}", f"out={tmp_path / 'export'}", "height=64", "width=96"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error: ") and "refused" in err and "\n" not in err, err
    assert not marker.exists() and not (tmp_path / "export").exists()


@pytest.mark.parametrize("case", CASES)
def test_pipeline_folder_payload_refused(trained, tmp_path, case):
    from vid3d.sampling.pipeline import CameraVideoPipeline

    folder, marker = _hostile_folder(trained, tmp_path, case)
    with pytest.raises(ConfigRefused) as e:
        CameraVideoPipeline.from_pretrained(folder)
    _refused(e, folder / "vid3d_model.json")
    assert not marker.exists()


@pytest.mark.parametrize("task", ["sample", "evaluate", "resume", "init_from"])
def test_hydra_entry_points_refuse_a_hostile_checkpoint(trained, tmp_path, task):
    """The tasks behind sample.py, eval.py and train.py (resume=..., init_from=...)."""
    from vid3d.tasks.evaluate import evaluate
    from vid3d.tasks.sample import sample
    from vid3d.tasks.train import train

    path, marker = _hostile_ckpt(trained, tmp_path, "torch_load_from_hex@nested_value")
    out = f"paths.output_dir={tmp_path / 'out'}"
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        if task == "sample":
            cfg, fn = compose("sample", overrides=[f"ckpt={path}", out]), sample
        elif task == "evaluate":
            cfg, fn = compose("eval", overrides=[f"ckpt={path}", out]), evaluate
        else:
            cfg = compose(
                "train", overrides=[*trained["overrides"], f"{task}={path}", "trainer.max_steps=2", out]
            )
            fn = train
    with pytest.raises(ConfigRefused) as e:
        fn(cfg)
    assert "refused" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


def test_a_valid_stored_config_still_loads(trained):
    """The schema accepts what train.py writes, for every model option (and rebuilds the same model)."""
    from vid3d.models.checkpoint import load_model
    from vid3d.models.schema import stored_model_config

    model = load_model(trained["ckpt"])
    assert model.attention == "epipolar"
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        from omegaconf import OmegaConf

        for name in ("svd", "rt", "plucker", "epipolar"):
            for backbone in ("tiny", "tiny_kl", "svd"):
                cfg = compose("train", overrides=[f"model={name}", f"model/backbone={backbone}"])
                stored = stored_model_config(OmegaConf.to_container(cfg.model, resolve=True))
                validate_model_config(stored, name)
            cfg = compose("train", overrides=[f"model={name}", "model/attention=full"])
            validate_model_config(OmegaConf.to_container(cfg.model, resolve=True), name)


def test_a_checkpoint_of_the_earlier_layouts_loads_unchanged(trained, tmp_path):
    """Checkpoints written before attention and the VAE were chosen by ``_target_`` stored
    ``attach_attention`` with a ``kind`` string and ``vae: pixel`` + ``pixel_factor``: they load as the
    same model (same weights), nothing refused."""
    import torch

    from vid3d.models.checkpoint import load_model
    from vid3d.models.schema import LEGACY_ATTENTION, migrate_model_config

    ckpt = load_checkpoint_file(trained["ckpt"])
    stored = ckpt["vid3d"]["model_config"]
    assert stored["attention"]["_target_"] == "vid3d.models.attention.attach_epipolar_attention"
    legacy = copy.deepcopy(stored)
    legacy["attention"] = {**stored["attention"], "_target_": LEGACY_ATTENTION, "kind": "epipolar"}
    ckpt["vid3d"]["model_config"] = legacy
    save_checkpoint_file(ckpt, tmp_path / "old.ckpt")
    old, new = load_model(tmp_path / "old.ckpt"), load_model(trained["ckpt"])
    assert old.attention == new.attention == "epipolar"
    sd_old, sd_new = old.state_dict(), new.state_dict()
    assert sd_old.keys() == sd_new.keys() and all(torch.equal(sd_old[k], sd_new[k]) for k in sd_new)
    assert legacy["attention"]["kind"] == "epipolar"  # the migration made a new tree
    # the tiny backbone's VAE chosen by a string: the same backbone
    bb = stored["backbone"]
    pixel = {"_target_": "vid3d.models.vae.PixelUnshuffleAutoencoder", "_partial_": True, "factor": 4}
    assert bb["vae"] == pixel
    legacy_bb = {**{k: v for k, v in bb.items() if k != "vae"}, "vae": "pixel", "pixel_factor": 4}
    ckpt["vid3d"]["model_config"] = {**stored, "backbone": legacy_bb}
    save_checkpoint_file(ckpt, tmp_path / "old_vae.ckpt")
    sd_old = load_model(tmp_path / "old_vae.ckpt").state_dict()
    assert sd_old.keys() == sd_new.keys() and all(torch.equal(sd_old[k], sd_new[k]) for k in sd_new)
    legacy_kl = {**legacy_bb, "vae": "tiny_kl", "kl_latent_channels": 8}
    kl = migrate_model_config({**stored, "backbone": legacy_kl})
    assert kl["backbone"]["vae"] == {"_target_": "vid3d.models.vae.tiny_kl_autoencoder", "_partial_": True,
                                     "channels": [32, 32, 32], "latent_channels": 8}
    assert "pixel_factor" not in kl["backbone"] and "kl_latent_channels" not in kl["backbone"]
    with pytest.raises(ConfigRefused, match="vae"):
        validate_model_config({**stored, "backbone": {**legacy_bb, "vae": "sdxl"}}, "f")
    # the other kinds: their own targets, fields they never used dropped
    for kind, target in (("full", "attach_full_attention"), ("none", "no_attention")):
        node = {"_target_": LEGACY_ATTENTION, "_partial_": True, "kind": kind, "heads": 2, "band_width": 2.0}
        got = migrate_model_config({**stored, "attention": node})["attention"]
        kept = {"heads": 2} if kind == "full" else {}
        assert got == {"_target_": f"vid3d.models.attention.{target}", "_partial_": True, **kept}
        validate_model_config({**stored, "attention": node}, "f")


ATT = "vid3d.models.attention"


def test_wrong_types_and_unknown_fields_are_refused():
    good = {
        "_target_": "vid3d.models.video_diffusion.CameraVideoDiffusion",
        "backbone": {"_target_": "vid3d.models.backbone.build_tiny_backbone", "seed": 0},
        "camera_encoder": "plucker",
        "P_mean": 0.7,
    }
    validate_model_config(good, "f")
    for bad, what in [
        ({**good, "P_mean": "0.7"}, "P_mean"),
        ({**good, "P_mean": True}, "P_mean"),
        ({**good, "not_a_param": 1}, "not_a_param"),
        ({**good, "backbone": {**good["backbone"], "seed": 0.5}}, "seed"),
        ({**good, "backbone": {**good["backbone"], "unet_channels": [[32]]}}, "unet_channels"),
        (
            {**good, "camera_encoder": {"_target_": "vid3d.models.backbone.build_tiny_backbone"}},
            "backbone, not",
        ),
        ({**good, "attention": {"_target_": f"{ATT}.attach_epipolar_attention"}}, "_partial_"),
        ({**good, "attention": {"_target_": f"{ATT}.attach_attention"}}, "_partial_"),  # the earlier layout
        (
            {**good, "attention": {"_target_": f"{ATT}.attach_attention", "_partial_": True,
                                   "kind": "sparse"}},
            "attach_attention",
        ),
        ({**good, "camera_encoder_kwargs": {"_target_": "os.system"}}, "camera_encoder_kwargs"),
        (["not", "a", "mapping"], "got list"),
    ]:
        with pytest.raises(ConfigRefused, match=what):
            validate_model_config(bad, "f")


def test_every_allowed_target_is_a_vid3d_model_class():
    for target in TARGETS:
        fn = schema._resolve(target)
        assert target.startswith("vid3d.models.") and fn.__module__.startswith("vid3d.models."), target


DANGEROUS = [
    "os.system",
    "builtins.open",
    "torch.load",
    "subprocess.run",
    "shutil.copyfile",
    "builtins.eval",
    "importlib.import_module",
    "vid3d.models.backbone.os.system",
    "pathlib.Path",
    "posix.system",
    "vid3d.models.schema._resolve",
    "hydra.utils.instantiate",
    "builtins.exec",
]
_keys = st.sampled_from(
    [
        "_target_",
        "_partial_",
        "_args_",
        "_recursive_",
        "_convert_",
        "backbone",
        "camera_encoder",
        "attention",
        "seed",
        "levels",
        "kind",
        "name",
        "source",
        "P_mean",
        "camera_encoder_kwargs",
        "hidden",
    ]
)
_targets = st.sampled_from([*TARGETS, *DANGEROUS])
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 100), st.floats(allow_nan=False), st.text(max_size=8), _targets
)
_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(_keys, inner, max_size=5),
        st.builds(lambda d, t: {**d, "_target_": t}, st.dictionaries(_keys, inner, max_size=4), _targets),
    ),
    max_leaves=12,
)


def _keys_in(tree) -> list:
    if isinstance(tree, dict):
        return [*tree, *(k for v in tree.values() for k in _keys_in(v))]
    if isinstance(tree, list):
        return [k for v in tree for k in _keys_in(v)]
    return []


def _targets_in(tree) -> list:
    if isinstance(tree, dict):
        return [tree.get("_target_")] * ("_target_" in tree) + [
            t for v in tree.values() for t in _targets_in(v)
        ]
    if isinstance(tree, list):
        return [t for v in tree for t in _targets_in(v)]
    return []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_fuzz_validation_never_imports_or_accepts_a_foreign_target(tree):
    """Whatever the tree: validation imports nothing outside vid3d.models, and what passes holds only
    allowed ``_target_``s and no reserved key other than ``_target_``/``_partial_``."""
    for t in TARGETS:  # vid3d's own model modules, imported once
        schema._fields(t)
    before = set(sys.modules)
    try:
        validate_model_config(tree, "fuzz")
    except ConfigRefused:
        pass
    else:
        assert all(t in TARGETS for t in _targets_in(tree))
        assert {k for k in _keys_in(tree) if str(k).startswith("_")} <= {"_target_", "_partial_"}
    assert set(sys.modules) == before


@pytest.mark.slow
@pytest.mark.parametrize("script", ["eval.py", "sample.py", "train.py", "export"])
def test_cli_refuses_a_hostile_checkpoint_in_one_line(trained, tmp_path, script):
    """The commands a user runs: exit code 2, one `error:` line naming the file, no traceback, no marker."""
    import subprocess

    path, marker = _hostile_ckpt(trained, tmp_path, "torch_load_from_hex@nested_value")
    repo = Path(__file__).resolve().parents[2]
    out = f"hydra.run.dir={tmp_path / 'run'}"
    args = {
        "eval.py": ["eval.py", f"ckpt={path}", out],
        "sample.py": ["sample.py", f"ckpt={path}", out],
        "train.py": ["train.py", *trained["overrides"], f"init_from={path}", out],
        "export": ["-m", "vid3d.sampling.pipeline", f"ckpt={path}", f"out={tmp_path / 'pipe'}"],
    }[script]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=repo,
        env={**env, "WANDB_MODE": "offline"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    err_lines = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(err_lines) == 1 and str(path) in err_lines[0] and "refused" in err_lines[0]
    assert "Traceback" not in proc.stderr and not marker.exists()
