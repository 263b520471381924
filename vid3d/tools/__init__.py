"""Command-line tools (``python -m vid3d.tools.<name>``)."""
