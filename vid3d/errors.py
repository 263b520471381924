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

__all__ = ["InputError", "user_errors"]


class InputError(ValueError):
    """A file or option given by the user is missing, unreadable or inconsistent (message names it)."""


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """In an entry point: a user's wrong input (``vid3d.errors.InputError``: a refused checkpoint, a bad
    trajectory or image file), a missing file or a busy shard is one line on stderr and exit code 2, not a
    traceback (``HYDRA_FULL_ERROR=1`` shows the traceback). Hydra wraps errors raised while it builds a
    config node (``InstantiationException``); the user error inside is what is printed."""
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
        raise SystemExit(2) from None
