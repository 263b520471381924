"""One line, with "did you mean", for a mistyped config group, option or key on an entry point's command line.

Hydra reports composition errors itself (``run_and_report``: several lines, exit code 1, a list of options
without a suggestion). ``install()`` (called by train.py, sample.py and eval.py before ``main()``) wraps
that reporter: a composition or override error becomes ``error: <what>; did you mean <closest>?`` on
stderr and exit code 2, like every other user error (``vid3d.errors.user_errors``); any other exception
goes to Hydra's reporter as before. ``HYDRA_FULL_ERROR=1`` keeps Hydra's full traceback.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable

__all__ = ["explain", "install", "suggest"]


def suggest(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean a?"`` for the choice closest to ``word`` (difflib ratio >= 0.5), else ""."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.5)
    return f"; did you mean {close[0]}?" if close else ""


def _groups(config_dir) -> list[str]:
    """Config group paths under the config dir (``data``, ``data/interval``, ``trajectory``, ...)."""
    from pathlib import Path

    root = Path(config_dir)
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir() and any(p.glob("*.yaml"))
    )


def explain(ex: BaseException, config_dir=None) -> str | None:
    """The one-line message for a Hydra composition / override error, or None for any other exception.

    Handles: an unknown option of a group (``MissingConfigException``: lists the options), an override of
    a key that does not exist (``ConfigCompositionException`` caused by an OmegaConf key error: the keys
    beside it, and the groups when the key is at the top level), and unparsable override syntax.
    """
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    if config_dir is None:
        from vid3d.config import CONFIG_DIR as config_dir
    if isinstance(ex, MissingConfigException) and ex.missing_cfg_file and ex.options is not None:
        group, _, option = str(ex.missing_cfg_file).rpartition("/")
        if group:
            options = [o for o in ex.options if not o.startswith("_")]  # _base.yaml & co: shared parts
            return (
                f"{group}={option}: no such option in conf/{group}/{suggest(option, options)} "
                f"(available: {', '.join(options)})"
            )
    if isinstance(ex, OverrideParseException):
        return f"cannot parse the override {ex.override!r}: {str(ex.message).splitlines()[0]}"
    if isinstance(ex, ConfigCompositionException):
        cause = ex.__cause__
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.key is not None:
            full = str(cause.full_key or cause.key)
            parent = cause.parent_node
            keys = [str(k) for k in parent.keys()] if parent is not None and hasattr(parent, "keys") else []
            where = full.rpartition(".")[0]
            if where:
                keys = [f"{where}.{k}" for k in keys]
            else:  # a top-level key: also the groups that are not selected (trajectory: null)
                groups = [g for g in _groups(config_dir) if "/" not in g]
                if full in groups:
                    return (
                        f"{full}: this entry point's config has no {full} group (conf/{full}/ is another's)"
                    )
                keys += groups
            keys = [k for k in keys if k != full]  # 'trainer' in sample.py: a group of another entry point
            return (
                f"{full}: no such key in this config{suggest(full, keys)} (a new key is added with a "
                f"leading '+': +{full}=...)"
            )
        return " ".join(str(ex).split())
    return None


def install() -> None:
    """Make Hydra's error reporter print composition errors as one ``error:`` line (exit 2)."""
    import hydra._internal.utils as hydra_utils

    original = hydra_utils.run_and_report
    if getattr(original, "_vid3d", False):
        return

    def run_and_report(func):
        def checked():
            try:
                return func()
            except Exception as ex:
                message = None if os.environ.get("HYDRA_FULL_ERROR") == "1" else explain(ex)
                if message is None:
                    raise
                print(f"error: {message}", file=sys.stderr)
                raise SystemExit(2) from None

        return original(checked)

    run_and_report._vid3d = True
    hydra_utils.run_and_report = run_and_report
