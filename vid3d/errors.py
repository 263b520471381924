"""The one exception type for a user's wrong input.

``InputError`` says what is wrong with which file or option and how to fix it, in one line. Entry points
(``user_errors`` below) print it as ``error: <message>`` and exit with code 2 instead of a traceback;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["InputError", "check_names", "remove_unused_run_dir", "user_errors"]


class InputError(ValueError):
    """A file or option given by the user is missing, unreadable or inconsistent (message names it)."""


def check_names(names, choices, where: str, what: str) -> list[str]:
    """``names`` (an option's list) as a list of str when each is one of ``choices`` and none repeats; else
    an ``InputError`` in one line naming ``where`` (the option), the bad ``what`` and the choices."""
    names = [str(n) for n in names]
    for n in names:
        if n not in choices:
            raise InputError(f"{where}: unknown {what} {n!r}; choose from {list(choices)}")
    if len(set(names)) != len(names):
        raise InputError(f"{where}: a {what} is named twice: {names}")
    return names


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """In an entry point: a user's wrong input (``vid3d.errors.InputError``: a refused checkpoint, a bad
    trajectory or image file), a missing file or a busy shard is one line on stderr and exit code 2, not a
    traceback (``HYDRA_FULL_ERROR=1`` shows the traceback). Hydra wraps errors raised while it builds a
    config node (``InstantiationException``); the user error inside is what is printed. The run folder
    Hydra created for this job is removed when it holds nothing but Hydra's own files
    (``remove_unused_run_dir``): a refused start leaves nothing behind."""
    from hydra.errors import InstantiationException

    try:
        yield
    except (InputError, FileNotFoundError, RuntimeError, InstantiationException) as e:
        records = sys.modules.get("vid3d.evaluation.records")  # only a loaded module can have raised it
        known = (InputError, FileNotFoundError, *((records.ShardBusy,) if records else ()))
        cause = e
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if not isinstance(cause, known) or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {cause}", file=sys.stderr)
        remove_unused_run_dir()
        raise SystemExit(2) from None


def remove_unused_run_dir() -> bool:
    """Remove this Hydra job's output folder if it holds only what Hydra wrote when the job started
    (``.hydra/`` and the job's ``.log``), written by this process (not older than ``vid3d.config``'s
    import): a folder with anything else in it, the working directory, or a folder from an earlier run
    is kept. Returns whether it was removed."""
    import shutil
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    config = sys.modules.get("vid3d.config")
    if config is None or not HydraConfig.initialized():
        return False
    out = Path(HydraConfig.get().runtime.output_dir).absolute()
    try:
        names = {p.name for p in out.iterdir()}
        fresh = (out / ".hydra" / "config.yaml").stat().st_mtime >= config.STARTED_AT - 1.0
    except OSError:
        return False
    own = names <= {".hydra", f"{HydraConfig.get().job.name}.log"}
    if not (own and fresh) or out == Path.cwd().absolute():
        return False
    shutil.rmtree(out, ignore_errors=True)
    return not out.exists()
