"""A user's mistakes answer in one line naming the thing, exit code 2, in seconds, leaving nothing behind
(issue 34, point 6): the checks of vid3d/tasks/preflight.py on composed configs, the "did you mean" of
vid3d/config_errors.py on Hydra's own errors, and the entry points end to end (slow)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException

from vid3d.config import CONFIG_DIR
from vid3d.config_errors import explain, suggest
from vid3d.errors import InputError
from vid3d.tasks.preflight import check_inputs, missing_values

ROOT = Path(__file__).resolve().parents[2]
ASSET = ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big.safetensors"  # trained at 32x48


def cfg(name: str, overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


def composition_error(name: str, overrides: list[str]) -> str | None:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        try:
            compose(name, overrides=overrides)
        except HydraException as e:
            return explain(e)
    raise AssertionError(f"{overrides} composed")


def test_did_you_mean_for_options_keys_and_groups():
    msg = composition_error("sample", ["ckpt=x", "trajectory=tilt_upp"])
    assert msg.startswith("trajectory=tilt_upp: no such option in conf/trajectory/; did you mean tilt_up?")
    assert "move_backward" in msg and "static" in msg  # the available options are listed
    assert "did you mean edm_euler?" in composition_error("sample", ["ckpt=x", "sampler=eulr"])
    msg = composition_error("sample", ["ckpt=x", "trajectory=zoom_in", "trajectory.amplitud=3"])
    assert msg.startswith(
        "trajectory.amplitud: no such key in this config; did you mean trajectory.amplitude?"
    )
    assert "+trajectory.amplitud=" in msg
    # a top-level typo of a group that is not selected by default (trajectory: null)
    assert "did you mean trajectory?" in composition_error("sample", ["ckpt=x", "trajectori=zoom_in"])
    assert "did you mean trainer.max_steps?" in composition_error("train", ["trainer.max_stepz=3"])
    assert "another's" in composition_error("sample", ["ckpt=x", "trainer.max_steps=3"])  # train's group
    assert composition_error("train", ["a=b=c"]).startswith("cannot parse the override 'a=b=c'")
    assert suggest("qqqq", ["zoom_in", "pan_left"]) == ""  # nothing close: no suggestion
    assert explain(ValueError("not a Hydra error")) is None


def test_unset_mandatory_values_are_named():
    assert missing_values(cfg("train", [])) == []
    assert missing_values(cfg("train", ["data=re10k"])) == ["data.root"]
    with pytest.raises(InputError, match=r"^data\.root is not set: .*data\.root=<folder"):
        check_inputs(cfg("train", ["data=re10k"]), "train")
    with pytest.raises(InputError, match=r"^trajectory\.path is not set"):
        check_inputs(cfg("sample", [f"ckpt={ASSET}", "trajectory=file"]), "sample")


def test_checkpoint_mistakes(tmp_path, caplog):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(InputError, match=r"notes\.ckpt is not a safetensors file"):
        check_inputs(cfg("sample", [f"ckpt={text}"]), "sample")
    import numpy as np
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"  # a safetensors file some other program wrote
    save_file({"w": np.zeros(3, np.float32)}, str(other))
    with pytest.raises(InputError, match=r"other\.safetensors is a safetensors .* not a vid3d checkpoint"):
        check_inputs(cfg("eval", [f"ckpt={other}"]), "eval")
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        check_inputs(cfg("sample", [f"ckpt={tmp_path / 'none.ckpt'}"]), "sample")
    # the training size recorded in the checkpoint (32x48) against the sampling size
    with pytest.raises(InputError, match=r"trained at 32x48 .* would sample at 64x96 .*data\.height=32 "
                       r"data\.width=48, or allow_resize=true"):
        check_inputs(cfg("sample", [f"ckpt={ASSET}", "data.height=64", "data.width=96"]), "sample")
    with caplog.at_level(logging.WARNING, logger="vid3d"):
        check_inputs(cfg("sample", [f"ckpt={ASSET}", "data.height=64", "data.width=96", "allow_resize=true"]),
                     "sample")
    assert any("trained at 32x48" in r.getMessage() for r in caplog.records)
    check_inputs(cfg("eval", [f"ckpt={ASSET}", "data.height=32", "data.width=48"]), "eval")  # no error


def test_a_foreign_target_in_a_stored_config_is_refused_before_the_size_check():
    """The torch-free screen: a ``_target_`` outside vid3d's model classes at any depth, or a reserved
    key, is refused (what a hostile checkpoint's user is told first); the committed model's config passes."""
    from vid3d.models.checkpoint import read_checkpoint_info
    from vid3d.models.schema import ConfigRefused
    from vid3d.tasks.preflight import screen_model_config

    own = read_checkpoint_info(ASSET)["model_config"]
    screen_model_config(own, "asset")
    hostile = {**own, "backbone": {**own["backbone"], "seed": [{"_target_": "os.system", "command": "x"}]}}
    with pytest.raises(ConfigRefused, match=r"^f: model config entry 'model\.backbone\.seed\[0\]\._target_' "
                       r"refused: 'os.system' is not a vid3d model class"):
        screen_model_config(hostile, "f")
    with pytest.raises(ConfigRefused, match=r"'model\._args_' refused: reserved key"):
        screen_model_config({**own, "_args_": []}, "f")


def test_mode_and_weights_mistakes(tmp_path):
    base = [f"ckpt={ASSET}", "data.height=32", "data.width=48", f"image={tmp_path / 'a.png'}"]
    with pytest.raises(InputError, match=r"mode=interpolate with image=.*a\.png needs its last frame: pass "
                       r"image_end="):
        check_inputs(cfg("sample", [*base, "mode=interpolate", "trajectory=zoom_in"]), "sample")
    with pytest.raises(InputError, match=r"user images need a camera path: add trajectory="):
        check_inputs(cfg("sample", base), "sample")
    check_inputs(cfg("sample", [*base, "mode=explore"]), "sample")  # explore chains its segments
    with pytest.raises(InputError, match=r"metrics\.fvd\.i3d=.*no_i3d\.pt: no such file"):
        check_inputs(cfg("eval", [f"metrics.fvd.i3d={tmp_path / 'no_i3d.pt'}"]), "eval")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DUST3R_CHECKPOINT", raising=False)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_HOME", str(tmp_path / "hf"))
        with pytest.raises(InputError, match=r"naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt.*model.safetensors"):
            check_inputs(cfg("eval", ["pose=dust3r"]), "eval")  # offline: the released model is not cached
    with pytest.raises(InputError, match=r"pose\.checkpoint=.*nope\.pth: no such file"):
        check_inputs(cfg("eval", ["pose=dust3r", f"pose.checkpoint={tmp_path / 'nope.pth'}"]), "eval")


def test_eval_batch_size_below_one_is_refused_before_anything_loads():
    for bad in (0, -3):
        with pytest.raises(InputError, match=rf"^eval\.batch_size={bad}: videos per forward must be >= 1"):
            check_inputs(cfg("eval", [f"eval.batch_size={bad}"]), "eval")
    check_inputs(cfg("eval", ["eval.batch_size=1"]), "eval")  # no error
    assert "batch_size" in (composition_error("eval", ["eval.batch_size=two"]) or "")  # the schema's type


def test_resume_mistakes(tmp_path):
    with pytest.raises(InputError, match=r"resume=.*nothere: no such file or run folder"):
        check_inputs(cfg("train", [f"resume={tmp_path / 'nothere'}"]), "train")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"\x00" * 20)  # a torn write
    with pytest.raises(InputError, match=r"no complete checkpoint \(\*\.ckpt\) in .*checkpoints"):
        check_inputs(cfg("train", [f"resume={run}"]), "train")
    (run / "checkpoints" / "step_1.ckpt").write_bytes(ASSET.read_bytes())
    check_inputs(cfg("train", [f"resume={run}"]), "train")  # the complete one is found


# ------------------------------------------------------------------------------------------ end to end
CLI_CASES = {
    "data_root": (["train.py", "data=re10k"], "error: data.root is not set"),
    "not_a_ckpt": (["sample.py", "ckpt={notes}"], "notes.ckpt is not a safetensors file"),
    "size": (["sample.py", f"ckpt={ASSET}"], "was trained at 32x48"),
    "interpolate": (
        ["sample.py", f"ckpt={ASSET}", "data.height=32", "data.width=48", "mode=interpolate", "image={notes}",
         "trajectory=zoom_in"],
        "needs its last frame",
    ),
    "i3d": (["eval.py", "metrics.fvd.i3d={tmp}/i3d.pt"], "metrics.fvd.i3d="),
    "dust3r": (["eval.py", "pose=dust3r"], "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt"),
    "resume": (["train.py", "resume={tmp}/no_run"], "no_run: no such file or run folder"),
    "batch_size": (["eval.py", "eval.batch_size=0"], "eval.batch_size=0: videos per forward must be >= 1"),
    "typo": (["sample.py", "ckpt=x", "trajectory=tilt_upp"], "did you mean tilt_up?"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_entry_point_mistakes_are_one_line_exit_2_fast_and_leave_nothing(case, tmp_path):
    argv, expected = CLI_CASES[case]
    notes = tmp_path / "notes.ckpt"
    notes.write_text("text\n")
    argv = [a.format(notes=notes, tmp=tmp_path) for a in argv]
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("DUST3R_CHECKPOINT", "HYDRA_FULL_ERROR")}
    env["WANDB_MODE"] = "offline"
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))  # the released DUSt3R is not cached
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, *argv, f"paths.output_dir={out}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr[-2000:]
    assert elapsed < 10, f"{case}: {elapsed:.1f} s (the checks run before the heavy imports: ~1-2 s idle)"
    left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert left == [], left  # no run folder, no W&B run
