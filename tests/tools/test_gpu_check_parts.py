"""benchmarks/gpu_check.py's part runner: a part past its limit is recorded "timed out" (and the parts
before it stay on disk), a part that would start after the deadline is "skipped", a failure is recorded."""

import time

from benchmarks import gpu_check


def test_parts_time_out_fail_and_skip_and_each_is_written():
    results, written = [], []

    def write(rs):
        written.append([r["status"] for r in rs])

    deadline = time.monotonic() + 2.0
    gpu_check.run_part("quick", lambda: {"x": 1}, results, deadline, 10, write)
    gpu_check.run_part("broken", lambda: 1 / 0, results, deadline, 10, write)
    t0 = time.monotonic()
    gpu_check.run_part("slow", lambda: time.sleep(30), results, deadline, 0.5, write)
    assert time.monotonic() - t0 < 2.0  # cut at its own 0.5 s limit, not at the sleep's end
    gpu_check.run_part("late", lambda: time.sleep(30), results, deadline, 10, write)  # cut by the deadline
    gpu_check.run_part("after", lambda: {"x": 2}, results, deadline, 10, write)
    assert [r["status"] for r in results] == ["ok", "failed", "timed out", "timed out", "skipped"]
    assert results[0]["x"] == 1 and "ZeroDivisionError" in results[1]["error"]
    assert results[2]["reason"] == "ran out of its 0.5 s limit"
    assert results[4]["reason"] == "time budget spent"
    assert written == [["ok"], ["ok", "failed"], ["ok", "failed", "timed out"],
                       ["ok", "failed", "timed out", "timed out"],
                       ["ok", "failed", "timed out", "timed out", "skipped"]]
    assert gpu_check._PART_END[0] == float("inf")  # no limit left armed for what runs next


def test_table_rows_for_each_kind_of_part():
    rows = [{"part": "a", "status": "timed out", "seconds": 3.0, "reason": "ran out of its 3.0 s limit"},
            {"part": "b", "status": "ok", "seconds": 1.0, "summary": "12 rows"}]
    md = gpu_check.table(rows).splitlines()
    assert md[2] == "| a | timed out | 3.0 | ran out of its 3.0 s limit |"
    assert md[3] == "| b | ok | 1.0 | 12 rows |"


def test_memory_model_reads_a_run_sh_report(tmp_path):
    """The memory model's measured column comes from the report run.sh writes (16-mixed parts only, GiB)."""
    import json

    from benchmarks import memory_model

    part = {"part": "train", "status": "ok", "frames_hw": [25, 320, 512], "batch": 2, "precision": "16-mixed",
            "grad_ckpt": True, "peak_mem_mb": 30720.0}
    other = {**part, "precision": "bf16-mixed", "peak_mem_mb": 1.0}
    failed = {**part, "batch": 1, "status": "timed out"}
    path = tmp_path / "gpu_check.json"
    path.write_text(json.dumps({"dry": False, "results": [part, other, failed]}))
    assert memory_model.measured(path) == {("stage1", 2, True): 30.0}
    path.write_text(json.dumps({"dry": True, "results": [part]}))
    assert memory_model.measured(path) == {}
