"""The committed CPU-trained camera models (assets/cpu_camera_control/, issues 14 and 37): intact, loaded
without pickle from their safetensors files, and they use WHICH WAY their camera moves on 16 held-out clips
they never saw (scenes 600-615 of the 600-scene set they trained on, rendered alone with ``test_start``).

The bounds sit below the readings measured when the asset was made (assets/cpu_camera_control/README.md,
one-step error at σ 5 with the same noise for every camera variant) with room for float differences
between machines; a change that cuts the camera out of the model (the Plücker rays, the epipolar mask, the
relative poses) brings every ratio to ~1 and fails them.
"""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vid3d.config import CONFIG_DIR
from vid3d.evaluation.camera_gap import LABELS, measure_direction_gap
from vid3d.models.checkpoint import load_checkpoint_file, load_model
from vid3d.tasks.common import prepare_data

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big"


STAGE2 = ROOT / "assets" / "cpu_camera_control" / "epipolar_64x96_stage2"


def check_intact(asset: Path) -> dict:
    """The asset's file matches its manifest (sha256, size ≤ 10 MB) and holds weights only; the manifest."""
    manifest = json.loads(asset.with_suffix(".json").read_text())
    path = asset.with_suffix(".safetensors")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["sha256"]
    assert path.stat().st_size == manifest["bytes"] <= 10 * 1024 * 1024
    ckpt = load_checkpoint_file(path)
    assert set(ckpt) == {"epoch", "global_step", "state_dict", "vid3d"}  # weights only
    assert ckpt["global_step"] == manifest["global_step"]
    return manifest


def test_asset_is_intact_and_small():
    check_intact(ASSET)


def test_stage2_asset_is_intact_small_and_from_stage2():
    manifest = check_intact(STAGE2)
    assert manifest["global_step"] == 2000 and "- experiment=cpu/stage2" in manifest["overrides"]
    assert manifest["sampler"] == {"guidance_max": 1.5}


def render_held_out(tmp_path_factory, data: str) -> list[dict]:
    """The 16 held-out clips of eval config ``data=<data>``, rendered into a temp folder."""
    root = tmp_path_factory.mktemp("asset") / "held_out"
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[f"data={data}", f"data.root={root}", "ckpt=unused"])
    prepare_data(cfg)
    test_set = instantiate(cfg.data.test_dataset)
    return [test_set[i] for i in range(len(test_set))]


def direction_gap(asset: Path, clips: list[dict]) -> tuple[dict, dict]:
    """One-step error ratio (other cameras / own) at σ 5 and the clips where own is lower, by variant."""
    model = load_model(asset.with_suffix(".safetensors"))
    record = measure_direction_gap(model, clips, [5.0], seed=0)["sigmas"]["5"]
    ratio = {LABELS.get(v, v): r["ratio"] for v, r in record.items()}
    wins = {LABELS.get(v, v): r["own_lower"] for v, r in record.items()}
    return ratio, wins


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """The 16 held-out clips (data=synthetic_heldout600, as check_asset.sh) at 32x48."""
    return render_held_out(tmp_path_factory, "synthetic_heldout600")


def test_asset_uses_its_camera_on_held_out_clips(held_out):
    torch.set_num_threads(1)
    assert len(held_out) == 16 and tuple(held_out[0]["frames"].shape[-3:]) == (3, 32, 48)
    assert sorted(int(c["clip_id"].split("_")[-1]) for c in held_out) == list(range(600, 616))
    # the reading `make demo` prints (python -m vid3d.tasks.direction_gap)
    ratio, wins = direction_gap(ASSET, held_out)
    # measured 2026-12-04 (step 15000): static 1.380 (16/16 clips), mirrored 1.451 (15/16), reversed 1.459
    # (16/16), another clip's 1.318 (16/16)
    assert ratio["static"] > 1.25 and wins["static"] >= 15, (ratio, wins)
    assert ratio["mirrored"] > 1.3 and wins["mirrored"] >= 14, (ratio, wins)
    assert ratio["reversed"] > 1.3 and wins["reversed"] >= 14, (ratio, wins)
    assert ratio["another clip's"] > 1.2 and wins["another clip's"] >= 14, (ratio, wins)


def test_stage2_asset_uses_its_camera_at_64x96(tmp_path_factory):
    """The stage-2 model (issue 37 item 2) on the same 16 held-out scenes at 64x96."""
    torch.set_num_threads(1)
    clips = render_held_out(tmp_path_factory, "synthetic_heldout600_64x96")
    assert len(clips) == 16 and tuple(clips[0]["frames"].shape[-3:]) == (3, 64, 96)
    ratio, wins = direction_gap(STAGE2, clips)
    # measured 2026-12-08 (step 2000): static 1.591, mirrored 1.496, reversed 1.505, another clip's 1.371, own
    # lower on 16/16 clips for each (the 32x48 model above: 1.380 / 1.451 / 1.459 / 1.318)
    assert ratio["static"] > 1.45 and wins["static"] >= 15, (ratio, wins)
    assert ratio["mirrored"] > 1.35 and wins["mirrored"] >= 15, (ratio, wins)
    assert ratio["reversed"] > 1.35 and wins["reversed"] >= 15, (ratio, wins)
    assert ratio["another clip's"] > 1.25 and wins["another clip's"] >= 15, (ratio, wins)
