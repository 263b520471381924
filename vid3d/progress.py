"""Progress a log can show: one reporter for training steps, denoising steps, evaluated items and stages.

On a terminal a ``Progress`` draws a tqdm bar (``train  12%|##  | 240/2000 [00:30<03:40, 8.0step/s]``).
Where stdout is not a terminal (SLURM, nohup, ``make demo > log``) it prints plain, flushed lines instead:

    train 240/2000 (12.0%) | 8.00 step/s | elapsed 0:00:30 | ETA 0:03:40 | epoch 0, loss 0.1234

one every ``every_n`` items (counts that are multiples of it), at least every ``every_s`` seconds while
items finish, and always for the first and the last item. Rates below 1/s read ``16.2 s/step``. ETA is
(total - count) / rate with the rate averaged since the reporter started; durations are ``H:MM:SS``.
``stage(...)`` prints a start and a done line around a step of unknown length (COLMAP's matching).

The settings (``ProgressSettings``) are process-wide: the entry points set them from the ``progress``
config group (``progress.mode=auto|bar|lines|off``, ``progress.every_n=``, ``progress.every_s=``,
``progress.stages=``) through ``configure``; a caller passes its own default ``every_n`` for when
``progress.every_n`` is null (training 50 steps, sampling 5 denoising steps, evaluation every item).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TextIO

from vid3d.errors import InputError

__all__ = [
    "MODES",
    "Progress",
    "ProgressSettings",
    "configure",
    "format_duration",
    "format_rate",
    "resolved_mode",
    "say",
    "settings",
    "stage",
]

MODES = ("auto", "bar", "lines", "off")


@dataclass(frozen=True)
class ProgressSettings:
    """``mode``: auto (a bar on a terminal, lines otherwise), bar, lines or off. ``every_n``: a line every
    N items (None: the caller's default). ``every_s``: a line at least this often while items finish
    (0: no time rule). ``stages``: print the start/done lines of ``stage``."""

    mode: str = "auto"
    every_n: int | None = None
    every_s: float = 30.0
    stages: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"progress.mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.every_n is not None and int(self.every_n) < 1:
            raise InputError(f"progress.every_n must be >= 1 (or null), got {self.every_n}")
        if not float(self.every_s) >= 0:
            raise InputError(f"progress.every_s must be >= 0, got {self.every_s}")


_SETTINGS = ProgressSettings()


def settings() -> ProgressSettings:
    """The process-wide settings (``configure`` changes them)."""
    return _SETTINGS


def configure(
    options: Mapping[str, Any] | ProgressSettings | None = None, **overrides: Any
) -> ProgressSettings:
    """Set the process-wide settings from a mapping (the ``progress`` config node; missing keys keep the
    defaults) and/or keyword overrides; returns them. Unknown keys or bad values raise InputError."""
    global _SETTINGS
    if isinstance(options, ProgressSettings):
        base = options
    else:
        values = dict(options or {})
        known = {f.name for f in fields(ProgressSettings)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"progress: unknown key(s) {unknown}; known: {sorted(known)}")
        base = ProgressSettings(**values)
    _SETTINGS = replace(base, **overrides)
    return _SETTINGS


def resolved_mode(stream: TextIO | None = None, opts: ProgressSettings | None = None) -> str:
    """``bar``, ``lines`` or ``off``: ``auto`` is a bar when ``stream`` (stdout) is a terminal with a width
    (a pseudo-terminal of 0 columns, as some containers give, would show an empty bar: lines there)."""
    mode = (opts or _SETTINGS).mode
    if mode != "auto":
        return mode
    stream = sys.stdout if stream is None else stream
    try:
        if not stream.isatty():
            return "lines"
    except (AttributeError, ValueError):  # a closed or unusual stream
        return "lines"
    try:
        return "lines" if os.get_terminal_size(stream.fileno()).columns == 0 else "bar"
    except (AttributeError, ValueError, OSError):  # a terminal without a file descriptor: its size unknown
        return "bar"


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (hours unbounded); ``?`` for None, NaN or infinity."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_rate(per_s: float, unit: str) -> str:
    """``8.00 step/s`` at or above one per second, ``16.2 s/step`` below; ``? step/s`` when unknown."""
    if not math.isfinite(per_s) or per_s <= 0:
        return f"? {unit}/s"
    return f"{per_s:.2f} {unit}/s" if per_s >= 1 else f"{1 / per_s:.1f} s/{unit}"


def say(text: str, stream: TextIO | None = None) -> None:
    """Print one line, flushed; above the bars when bars are drawn. Nothing with ``mode=off``."""
    stream = sys.stdout if stream is None else stream
    mode = resolved_mode(stream)
    if mode == "off":
        return
    if mode == "bar":
        from tqdm import tqdm

        tqdm.write(text, file=stream)
    else:
        stream.write(text + "\n")
    stream.flush()


@contextlib.contextmanager
def stage(label: str, what: str, stream: TextIO | None = None,
          clock: Callable[[], float] = time.perf_counter) -> Iterator[None]:
    """``{label}: {what} ...`` before the block, ``{label}: {what} done in H:MM:SS`` after it (``failed
    after`` when it raises). Silent with ``progress.stages=false`` or ``mode=off``."""
    if not _SETTINGS.stages:
        yield
        return
    say(f"{label}: {what} ...", stream)
    t0 = clock()
    try:
        yield
    except BaseException:
        say(f"{label}: {what} failed after {format_duration(clock() - t0)}", stream)
        raise
    say(f"{label}: {what} done in {format_duration(clock() - t0)}", stream)


class Progress:
    """Count items toward ``total`` and report them (a bar on a terminal, lines otherwise).

    Args:
        label: what is counted, first word of every line (``train``, ``sampling``, ``camera eval``).
        total: the count at the end (None: unknown; no percentage or ETA).
        unit: one item's name in the rate (``step``, ``item``).
        start: the count already done (a resumed run); the rate counts only what this reporter saw.
        default_every_n: the caller's line interval when ``progress.every_n`` is null.
        stream: where to write (stdout).
        opts: settings (the process-wide ones).
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "it",
        start: int = 0,
        default_every_n: int = 1,
        stream: TextIO | None = None,
        opts: ProgressSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.opts = opts or _SETTINGS
        self.stream = sys.stdout if stream is None else stream
        self.mode = resolved_mode(self.stream, self.opts)
        self.label, self.unit = label, unit
        self.total = None if total is None or not math.isfinite(total) else int(total)
        self.start = self.count = int(start)
        self.every_n = int(self.opts.every_n or default_every_n)
        self.every_s = float(self.opts.every_s)
        self.clock = clock
        self.t0 = self._t_line = clock()
        self.note = ""
        self.last_line: str | None = None  # the latest line printed (lines mode)
        self.n_lines = 0
        self._bar = None
        self._lock = threading.Lock()
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self.start, desc=label, unit=unit, file=self.stream,
                             dynamic_ncols=True, mininterval=0.5)

    # ------------------------------------------------------------------ numbers
    def elapsed(self) -> float:
        return self.clock() - self.t0

    def rate(self) -> float:
        """Items per second since the reporter started (NaN before the first item)."""
        done, dt = self.count - self.start, self.elapsed()
        return done / dt if done > 0 and dt > 0 else math.nan

    def eta(self) -> float | None:
        """Seconds left at the average rate; None when the total or the rate is unknown."""
        rate = self.rate()
        if self.total is None or not math.isfinite(rate):
            return None
        return max(self.total - self.count, 0) / rate

    def line(self) -> str:
        """The status line as it would be printed now."""
        if self.total is not None:
            pct = 100.0 * self.count / self.total if self.total else 100.0
            head = f"{self.label} {self.count}/{self.total} ({pct:.1f}%)"
        else:
            head = f"{self.label} {self.count}"
        parts = [head, format_rate(self.rate(), self.unit), f"elapsed {format_duration(self.elapsed())}"]
        if self.total is not None:
            parts.append(f"ETA {format_duration(self.eta())}")
        if self.note:
            parts.append(self.note)
        return " | ".join(parts)

    # ------------------------------------------------------------------ updates
    def update(self, n: int = 1, note: str | None = None, force: bool = False) -> str | None:
        """``n`` more items done; returns the line printed (lines mode), else None."""
        with self._lock:
            return self._set(self.count + n, note, force)

    def set(self, count: int, note: str | None = None, force: bool = False) -> str | None:
        """The count is now ``count``; returns the line printed (lines mode), else None. Thread-safe (a
        pool's done-callbacks may update from their threads)."""
        with self._lock:
            return self._set(count, note, force)

    def _set(self, count: int, note: str | None, force: bool) -> str | None:
        previous, self.count = self.count, int(count)
        if note is not None:
            self.note = note
        if self.mode == "bar":
            if note is not None:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(self.count - previous)
            return None
        if self.mode == "off" or self.count == previous and not force:
            return None
        now = self.clock()
        due = (
            force
            or previous == self.start  # the first item: the run is alive, and its first rate
            or (self.total is not None and self.count >= self.total)
            or self.count // self.every_n != previous // self.every_n  # crossed a multiple of every_n
            or (self.every_s > 0 and now - self._t_line >= self.every_s)
        )
        if not due:
            return None
        self._t_line = now
        text = self.line()
        self.last_line, self.n_lines = text, self.n_lines + 1
        self.stream.write(text + "\n")
        self.stream.flush()
        return text

    def write(self, text: str) -> None:
        """A line of the caller's (a sample written): above the bar, or in the log; nothing when off."""
        if self.mode == "bar":
            from tqdm import tqdm

            tqdm.write(text, file=self.stream)
        elif self.mode == "lines":
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
