"""The one evaluation engine (vid3d/evaluation/runner.py): sharding, resume, hooks, record keys."""

from __future__ import annotations

import pytest

from vid3d.evaluation.records import read_records
from vid3d.evaluation.runner import run_shard, shard_file, shard_items, trial_seed

ITEMS = [f"item{i:02d}" for i in (7, 3, 0, 12, 5)]  # deliberately unsorted


def _ident(x: str) -> str:
    return x


def _evaluate(calls: list):
    def evaluate(item: str, method: str, trial: int) -> dict:
        calls.append((item, method, trial))
        return {"method": method, "clip_id": item, "trial": trial, "value": len(item) + trial}

    return evaluate


def test_shards_partition_the_sorted_items():
    for k in (1, 2, 3, 5, 7):
        shards = [shard_items(ITEMS, _ident, s, k) for s in range(k)]
        assert sorted(x for sh in shards for x in sh) == sorted(ITEMS)  # each item exactly once
    # sorted: item00 item03 item05 item07 item12 -> shard 1 of 2 takes positions 1, 3
    assert shard_items(ITEMS, _ident, 1, 2) == ["item03", "item07"]
    with pytest.raises(ValueError, match="0 <= shard < num_shards"):
        shard_items(ITEMS, _ident, 2, 2)
    with pytest.raises(ValueError, match="unique.*item03"):
        shard_items([*ITEMS, "item03"], _ident, 0, 1)


def test_trial_seed_is_stable_and_distinct():
    assert trial_seed("m", "c", 0) == trial_seed("m", "c", 0)
    assert len({trial_seed("m", "c", t) for t in range(50)}) == 50
    assert trial_seed("m", "c", 0) != trial_seed("c", "m", 0)
    assert 0 <= trial_seed("model", "clip", 3) < 2**31


def test_run_resumes_and_skips_what_is_written(tmp_path):
    calls: list = []
    methods = {"a": None, "b": None}
    run = run_shard(ITEMS, _ident, methods, _evaluate(calls), tmp_path, trials=2, progress=False)
    assert run.n_new == 5 * 2 * 2 and run.n_skipped == 0
    assert calls[:4] == [("item00", "a", 0), ("item00", "a", 1), ("item00", "b", 0), ("item00", "b", 1)]
    records = read_records(shard_file(tmp_path, 0, 1))
    assert len(records) == 20 and {r["value"] for r in records} == {6, 7}

    calls.clear()  # rerun: nothing to do
    again = run_shard(ITEMS, _ident, ["a", "b"], _evaluate(calls), tmp_path, trials=2, progress=False)
    assert calls == [] and again.n_new == 0 and again.n_skipped == 20

    # a new method and a third trial: only those are evaluated
    more = run_shard(ITEMS, _ident, ["a", "b", "c"], _evaluate(calls), tmp_path, trials=3, progress=False)
    assert more.n_new == 5 * 3 * 3 - 20 and more.n_skipped == 20
    assert all(m == "c" or t == 2 for _, m, t in calls)
    assert len(read_records(shard_file(tmp_path, 0, 1))) == 45


def test_shards_write_their_own_files_and_cover_everything(tmp_path):
    calls: list = []
    for s in range(3):
        run_shard(ITEMS, _ident, ["a"], _evaluate(calls), tmp_path, shard=s, num_shards=3, progress=False)
    per_shard = [read_records(shard_file(tmp_path, s, 3)) for s in range(3)]
    assert sorted(r["clip_id"] for recs in per_shard for r in recs) == sorted(ITEMS)
    assert [len(r) for r in per_shard] == [2, 2, 1]


def test_empty_shard_still_leaves_its_file(tmp_path):
    run = run_shard(ITEMS[:1], _ident, ["a"], _evaluate([]), tmp_path, shard=1, num_shards=2, progress=False)
    assert run.n_new == 0 and shard_file(tmp_path, 1, 2).exists()


def test_hooks_see_todo_and_each_written_record(tmp_path):
    seen_todo, seen_after = [], []

    def after(item, method, trial, record):
        # the record is on disk before the hook runs
        on_disk = read_records(shard_file(tmp_path, 0, 1))
        seen_after.append((item, method, trial, record["value"], len(on_disk)))

    run_shard(ITEMS[:2], _ident, ["a"], _evaluate([]), tmp_path, progress=False,
              before=seen_todo.append, after=after)
    assert seen_todo == [[("item03", "a", 0), ("item07", "a", 0)]]
    assert seen_after == [("item03", "a", 0, 6, 1), ("item07", "a", 0, 6, 2)]


def test_a_record_with_the_wrong_key_is_refused_and_not_written(tmp_path):
    def evaluate(item, method, trial):
        return {"method": method, "clip_id": "someone_else", "trial": trial}

    with pytest.raises(ValueError, match="someone_else"):
        run_shard(ITEMS, _ident, ["a"], evaluate, tmp_path, progress=False)
    assert read_records(shard_file(tmp_path, 0, 1)) == []


def test_a_failing_item_keeps_the_records_before_it(tmp_path):
    def evaluate(item, method, trial):
        if item == "item05":
            raise RuntimeError("boom")
        return {"method": method, "clip_id": item, "trial": trial}

    with pytest.raises(RuntimeError, match="boom"):
        run_shard(ITEMS, _ident, ["a"], evaluate, tmp_path, progress=False)
    assert [r["clip_id"] for r in read_records(shard_file(tmp_path, 0, 1))] == ["item00", "item03"]
    calls: list = []
    run = run_shard(ITEMS, _ident, ["a"], _evaluate(calls), tmp_path, progress=False)  # resume
    assert [c[0] for c in calls] == ["item05", "item07", "item12"] and run.n_skipped == 2


def test_progress_lines_per_item_in_a_log(tmp_path, capsys):
    """stdout captured (not a terminal): one line per evaluated (item, method, trial) with k/N and ETA;
    a resumed shard counts only what is left."""
    import re

    from vid3d.progress import configure, settings

    before = settings()
    configure()
    try:
        run_shard(ITEMS[:2], _ident, ["a", "b"], _evaluate([]), tmp_path, label="camera eval")
        run_shard(ITEMS[:3], _ident, ["a", "b"], _evaluate([]), tmp_path, label="camera eval")
    finally:
        configure(before)
    line = re.compile(r"^camera eval (\d)/(\d) \(\d+\.\d%\) \| [\d.?]+ (?:item/s|s/item) \| "
                      r"elapsed \d:\d\d:\d\d \| ETA \d:\d\d:\d\d \| (\w) (item\d\d) trial 0 in \d:\d\d:\d\d$")
    got = [m.groups() for m in map(line.match, capsys.readouterr().out.splitlines()) if m]
    assert got == [("1", "4", "a", "item03"), ("2", "4", "b", "item03"), ("3", "4", "a", "item07"),
                   ("4", "4", "b", "item07"), ("1", "2", "a", "item00"), ("2", "2", "b", "item00")]
