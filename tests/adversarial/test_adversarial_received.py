"""Received files and messy data, round 2 (issue 32): a broken test clip is skipped and reported, never
replaced; an exported pipeline folder is loaded without running its code; every stored number is bounded;
image headers are checked against a pixel limit before any decoding."""

from __future__ import annotations

import json
import shutil

import pytest

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
def test_a_broken_test_clip_is_skipped_counted_and_never_replaced(tmp_path, offline_wandb, damage):
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
