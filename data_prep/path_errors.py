"""Why a path cannot be opened, in words: a symlink loop or a broken link is not "no such file".

Kept free of heavy imports: the CLI root uses it to word typer's "does not exist" refusals.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def stat_failure(path: Path | str, exc: OSError) -> str:
    """What ``os.stat(path)`` raising ``exc`` means for the user."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f"broken symbolic link (points to {os.readlink(path)})"
    if exc.errno == errno.ENOENT:
        return "no such file"
    return f"cannot read ({exc.strerror})"


def missing_path_reason(path: Path | str) -> str | None:
    """The precise reason a path that "does not exist" cannot be used (None if it now exists)."""
    try:
        os.stat(path)
    except OSError as exc:
        return stat_failure(path, exc)
    return None
