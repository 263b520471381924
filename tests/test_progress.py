"""vid3d/progress.py: the lines a log shows (counts, rate, ETA, throttle), bars on a terminal, stages."""

import io
import re

import pytest

from vid3d.progress import (
    Progress,
    ProgressSettings,
    configure,
    format_duration,
    format_rate,
    resolved_mode,
    say,
    stage,
)


class Clock:
    """A fake monotonic clock: advanced by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_durations_and_rates():
    assert format_duration(0) == "0:00:00"
    assert format_duration(59.4) == "0:00:59"
    assert format_duration(3 * 3600 + 25 * 60 + 7) == "3:25:07"
    assert format_duration(30 * 3600) == "30:00:00"
    assert format_duration(None) == format_duration(float("inf")) == format_duration(float("nan")) == "?"
    assert format_rate(8.0, "step") == "8.00 step/s"
    assert format_rate(1 / 16.2, "step") == "16.2 s/step"
    assert format_rate(float("nan"), "item") == "? item/s"


def test_lines_rate_and_eta_against_the_formula():
    """10 items of 2 s each: after item k the rate is 0.5/s and the ETA (10 - k) * 2 s."""
    clock, out = Clock(), io.StringIO()
    p = Progress("train", 10, unit="step", default_every_n=1, stream=out, clock=clock,
                 opts=ProgressSettings(every_s=0))
    for k in range(1, 11):
        clock.t += 2.0
        p.update(note=f"loss {1 / k:.3f}")
    lines = out.getvalue().splitlines()
    assert len(lines) == p.n_lines == 10 and lines[-1] == p.last_line
    assert lines[2] == "train 3/10 (30.0%) | 2.0 s/step | elapsed 0:00:06 | ETA 0:00:14 | loss 0.333"
    assert lines[-1] == "train 10/10 (100.0%) | 2.0 s/step | elapsed 0:00:20 | ETA 0:00:00 | loss 0.100"


def test_every_n_first_last_and_the_time_rule():
    clock, out = Clock(), io.StringIO()
    p = Progress("x", 23, default_every_n=5, stream=out, clock=clock, opts=ProgressSettings(every_s=60.0))
    printed = []
    for k in range(1, 24):
        clock.t += 1.0 if k != 12 else 100.0  # item 12 takes 100 s: the time rule prints it
        if p.update():
            printed.append(k)
    assert printed == [1, 5, 10, 12, 15, 20, 23]
    # progress.every_n wins over the caller's default; a resumed count starts at `start`
    out2 = io.StringIO()
    q = Progress("x", 10, start=4, default_every_n=5, stream=out2, clock=clock,
                 opts=ProgressSettings(every_n=3, every_s=0))
    printed = []
    for k in range(5, 11):
        clock.t += 1.0
        if q.set(k):
            printed.append(k)
    assert printed == [5, 6, 9, 10]
    # the rate counts only what this reporter saw (6 items in 6 s), not the 4 done before
    assert q.last_line.startswith("x 10/10 (100.0%) | 1.00 it/s | elapsed 0:00:06 | ETA 0:00:00")


def test_unknown_total_has_no_eta():
    clock, out = Clock(), io.StringIO()
    p = Progress("gen", None, stream=out, clock=clock)
    clock.t += 4.0
    assert p.update(8) == "gen 8 | 2.00 it/s | elapsed 0:00:04"


def test_modes():
    assert resolved_mode(io.StringIO()) == "lines" and resolved_mode(Tty()) == "bar"
    off = io.StringIO()
    with Progress("x", 3, stream=off, opts=ProgressSettings(mode="off")) as p:
        p.update(3)
        p.write("a sample written")
    assert off.getvalue() == ""
    tty = Tty()
    with Progress("train", 4, unit="step", stream=tty) as p:  # a tqdm bar: step/total, not epochs
        p.update(note="loss 0.5")
    assert re.search(r"train:\s+25%.*\| 1/4 \[", tty.getvalue()) and "loss 0.5" in tty.getvalue()
    with pytest.raises(ValueError, match="progress.mode must be one of"):
        configure({"mode": "line"})
    with pytest.raises(ValueError, match="unknown key"):
        configure({"evry_n": 3})


def test_stage_lines_with_timings():
    clock, out = Clock(), io.StringIO()
    with stage("colmap", "feature matching (sequential)", stream=out, clock=clock):
        clock.t += 75.0
    with pytest.raises(RuntimeError):
        with stage("colmap", "mapping", stream=out, clock=clock):
            clock.t += 3.0
            raise RuntimeError("boom")
    assert out.getvalue().splitlines() == [
        "colmap: feature matching (sequential) ...",
        "colmap: feature matching (sequential) done in 0:01:15",
        "colmap: mapping ...",
        "colmap: mapping failed after 0:00:03",
    ]
    configure(stages=False)
    quiet = io.StringIO()
    with stage("colmap", "mapping", stream=quiet):
        pass
    say("still said", quiet)
    assert quiet.getvalue() == "still said\n"
