"""vid3d.demo's two lanes (issue 34): the shown and the background commands run, each one's seconds are
recorded under its name, a failure in either lane stops the step with the failing command named."""

import subprocess
import sys
import time

import pytest

from vid3d.demo import run_lanes


def sleep(seconds: float) -> list[str]:
    return ["-c", f"import time; time.sleep({seconds})"]


def test_lanes_run_side_by_side_and_time_each_command(tmp_path, capsys):
    times: dict[str, float] = {}
    t = time.perf_counter()
    wall = run_lanes(
        "step", [("a", sleep(0.6)), ("b", sleep(0.6))], [("c", sleep(1.0))], tmp_path / "lane.log", {}, times
    )
    elapsed = time.perf_counter() - t
    assert set(times) == {"a", "b", "c"}
    assert all(times[k] >= 0.6 for k in "ab") and times["c"] >= 1.0
    # the lanes overlap: the step takes about the longer lane (1.2 s), not the sum (2.2 s)
    assert 1.2 <= wall <= elapsed < 2.2 + 1.0, (wall, elapsed, times)
    assert "=== c: python -c" in (tmp_path / "lane.log").read_text()
    assert "=== a: python -c" in capsys.readouterr().out


def test_a_failing_background_command_fails_the_step_and_skips_the_rest(tmp_path):
    times: dict[str, float] = {}
    fail = ["-c", "import sys; print('broken'); sys.exit(3)"]
    with pytest.raises(subprocess.CalledProcessError) as e:
        run_lanes("step", [("a", sleep(0))], [("c", fail), ("d", sleep(0))], tmp_path / "lane.log", {}, times)
    assert e.value.cmd == [sys.executable, *fail]
    assert "c" not in times and "d" not in times and "a" in times


def test_a_failing_shown_command_stops_the_background_lane(tmp_path):
    times: dict[str, float] = {}
    t = time.perf_counter()
    with pytest.raises(subprocess.CalledProcessError):
        shown = [("a", ["-c", "raise SystemExit(1)"])]
        run_lanes("step", shown, [("c", sleep(30))], tmp_path / "lane.log", {}, times)
    assert time.perf_counter() - t < 20 and "c" not in times  # terminated, not waited for
