"""The one rule for every result kws writes: never over an existing one without ``--force``,
and with it replace only what kws itself wrote.

A folder is recognised as kws's own by its manifest (``marks``: ``cascade.toml`` for a bundle,
``truth.json`` for a stream folder, ``train_config.json`` for a training run, ...); an empty
folder holds nothing to lose. A single result file may be replaced with ``--force``, but never
a folder standing where the file should go. OS errors on a destination become one line naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from data_prep.errors import KwsError


class DestinationError(KwsError):
    """A result cannot be written where it was asked to go (read-only, a file in the way, disk full)."""


def destination_error(path: Path, exc: OSError) -> DestinationError:
    """One line naming the destination and the problem, for an ``OSError`` met while writing it."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return DestinationError(f"{path}: cannot write ({reason})")


def make_dirs(path: Path) -> Path:
    """``mkdir -p`` whose failure (a file in the way, no permission) is one clear line."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DestinationError(f"{path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise destination_error(path, exc) from None
    return path


def check_writable(path: Path) -> None:
    """Fail before any costly work when ``path`` could not be created: its nearest existing
    ancestor is a file or read-only (``os.access`` also sees a read-only mount, even as root)."""
    path = Path(path)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DestinationError(f"{path}: cannot write ({ancestor} is not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DestinationError(f"{path}: cannot write ({ancestor} is not writable)")


def is_kws_output(folder: Path, marks: Sequence[str]) -> bool:
    """True for a folder holding one of kws's manifests, or nothing at all."""
    folder = Path(folder)
    return any((folder / mark).is_file() for mark in marks) or not any(folder.iterdir())


def already_exists(path: Path, hint: str = "overwrite") -> KwsError:
    """The one wording of the refusal: ``PATH: already exists (use --force to HINT)``."""
    return KwsError(f"{path}: already exists (use --force to {hint})")


def refuse_existing(path: Path | None, force: bool, *, marks: Sequence[str] = (), hint: str = "overwrite",
                    error: type[KwsError] = KwsError) -> None:
    """Raise unless ``path`` may be written: it does not exist, or ``force`` is given and what is
    there is kws's own. ``marks`` empty means ``path`` is a single file; otherwise a folder
    recognised by any of the manifests ``marks``. ``hint`` completes "use --force to ...".
    ``None`` (an optional output not asked for) passes."""
    if path is None:
        return
    path = Path(path)
    check_writable(path)
    if not (path.exists() or path.is_symlink()):
        return
    if marks and not path.is_dir():
        raise DestinationError(f"{path}: exists and is not a folder")
    if not marks and path.is_dir():
        raise DestinationError(f"{path}: is a folder; give a file name")
    if marks and not any(path.iterdir()):
        return  # an empty folder holds nothing to lose
    if not force:
        raise error(str(already_exists(path, hint)))
    if marks and not is_kws_output(path, marks):
        raise error(f"{path}: not written by kws (no {' or '.join(marks)}); "
                       "refusing to replace it even with --force")


def refuse_result_files(files: Mapping[str, Path | None], force: bool) -> None:
    """``refuse_existing`` for each result file of one command (option name -> path, None when
    not asked for), and one path given to two options: the second write would replace the first."""
    named: dict[Path, str] = {}
    for option, path in files.items():
        refuse_existing(path, force)
        key = Path(path).resolve() if path is not None else None
        if key in named:
            raise DestinationError(f"{path}: given to both {named[key]} and {option}; give each its own file")
        if key is not None:
            named[key] = option


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (a reaped one does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
