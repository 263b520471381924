"""The one exception type for a user's wrong input.

``InputError`` says what is wrong with which file or option and how to fix it, in one line. Entry points
(``vid3d.tasks.common.user_errors``) print it as ``error: <message>`` and exit with code 2 instead of a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """A file or option given by the user is missing, unreadable or inconsistent (message names it)."""
