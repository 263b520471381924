"""Clip-id lists (vid3d.data.test_lists): list files, the shipped presets, ``data.test_list=``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vid3d.config import CONFIG_DIR
from vid3d.data.clips import Re10kClipDataset
from vid3d.data.synthetic import build_synthetic_dataset
from vid3d.data.test_lists import PRESET_DIR, preset_names, read_clip_list, resolve_clip_list
from vid3d.errors import InputError

TRAJECTORIES = Path(__file__).resolve().parents[2] / "vid3d" / "data" / "assets" / "re10k_trajectories"


def test_list_file_comments_duplicates_and_errors(tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text("# header\n\nabc  # trailing comment\nabc\ndef.txt\n  g-h_1.x \n")
    assert read_clip_list(f) == ["abc", "def", "g-h_1.x"]
    f.write_text("abc\nnot an id\n")
    with pytest.raises(InputError, match=rf"{f}:2: 'not an id' is not a clip id"):
        read_clip_list(f)
    f.write_text("# only comments\n")
    with pytest.raises(InputError, match="holds no clip id"):
        read_clip_list(f)
    f.write_bytes(b"\xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_clip_list(f)
    with pytest.raises(InputError, match="not a preset .*pixelsplat_acid, pixelsplat_re10k"):
        resolve_clip_list("pixelsplat")


def test_presets_cite_their_source_and_hold_the_published_counts():
    assert preset_names() == ["pixelsplat_acid", "pixelsplat_re10k"]
    for name, n in (("pixelsplat_re10k", 6474), ("pixelsplat_acid", 1595)):
        header = [ln for ln in (PRESET_DIR / f"{name}.txt").read_text().splitlines() if ln.startswith("#")]
        assert any("github.com/dcharatan/pixelsplat @" in ln for ln in header)
        ids, source = resolve_clip_list(name)
        assert len(ids) == n and source.startswith(f"preset {name}")
        assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)  # RealEstate10K/ACID ids: 16 hex digits
    # CameraCtrl's ten example trajectories (assets/pose_files) are RealEstate10K test clips of that list
    re10k = set(resolve_clip_list("pixelsplat_re10k")[0])
    examples = {p.stem for p in TRAJECTORIES.glob("*.txt")}
    assert len(examples) == 10 and examples <= re10k
    assert not re10k & set(resolve_clip_list("pixelsplat_acid")[0])


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    return build_synthetic_dataset(tmp_path_factory.mktemp("tl") / "s", num_train=1, num_test=4, num_frames=4,
                                   height=16, width=16)


def test_data_test_list_restricts_the_test_split(small_root, tmp_path, caplog):
    all_ids = sorted(c.clip_id for c in Re10kClipDataset(small_root, "test", num_frames=2).clips)
    assert len(all_ids) == 4
    lst = tmp_path / "mine.txt"
    lst.write_text(f"{all_ids[2]}\n{all_ids[0]}\nabsent_clip\n")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=["data=re10k", f"data.root={small_root}", f"data.test_list={lst}",
                                         "ckpt=unused"])
        default = compose("eval", overrides=["data=acid", f"data.root={small_root}", "ckpt=unused"])
    with caplog.at_level(logging.WARNING):
        ds = instantiate(cfg.data.test_dataset)
    assert [c.clip_id for c in ds.clips] == [all_ids[0], all_ids[2]]
    assert "1 of the 3 clips of the clip list" in caplog.text
    assert default.data.test_list is None
    assert len(instantiate(default.data.test_dataset).clips) == 4
    lst.write_text("absent_clip\n")
    with pytest.raises(InputError, match="none of the 1 clips of the clip list"):
        Re10kClipDataset(small_root, "test", num_frames=2, clip_list=str(lst))
