"""Atomic writes: a reader never sees a half-written artefact, a crash never leaves one.

Everything is built in a hidden sibling named ``.NAME.KIND-PID[-TOKEN]`` (KIND: tmp, old,
extracting) and renamed into place. The pid makes a killed run's leftovers recognisable: the
next write of the same destination removes those whose process is gone (and puts back a
previous result a kill caught between its two renames). Files and folders are created with
the modes the umask gives (0666/0777 & ~umask) by the kernel itself; the process umask is
never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from data_prep.errors import KwsError
from data_prep.outputs import destination_error, make_dirs, pid_alive, refuse_existing

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old|extracting)-(?P<pid>\d+)(?:-[0-9a-f]+)?$")


def temp_sibling(path: Path, kind: str = "tmp", token: bool = False) -> Path:
    """The hidden sibling this process builds ``path`` in (``kind``: tmp, old or extracting)."""
    path = Path(path)
    suffix = f"-{secrets.token_hex(4)}" if token else ""
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}{suffix}")


def remove_stale(path: Path) -> list[Path]:
    """Remove the temp siblings of ``path`` left by killed kws runs; a previous result moved
    aside (``old``) is put back if ``path`` itself is missing. Returns what was removed."""
    path = Path(path)
    removed: list[Path] = []
    try:
        entries = sorted(path.parent.glob(f".{glob_escape(path.name)}.*-*"))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match or match["name"] != path.name or pid_alive(int(match["pid"])):
            continue
        if match["kind"] == "old" and not (path.exists() or path.is_symlink()):
            entry.rename(path)
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write through ``write(fileobj)`` into a temporary sibling, fsync, then rename. An OS
    error on the destination (a file in the way, read-only, disk full) is one ``KwsError``."""
    path = Path(path)
    make_dirs(path.parent)
    if path.is_dir():
        raise KwsError(f"{path}: is a folder; give a file name")
    tmp = temp_sibling(path, token=True)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise destination_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise destination_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    return write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def save_npy_atomic(path: Path, array: np.ndarray) -> Path:
    return write_atomic(path, lambda fh: np.save(fh, array, allow_pickle=False))


def publish_dir(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``out``: the previous ``out`` is moved
    aside first and deleted only once the new one stands in its place."""
    old = temp_sibling(out, "old")
    try:
        if out.exists() or out.is_symlink():
            out.rename(old)
        tmp.rename(out)
    except OSError as exc:
        if old.exists() and not out.exists():
            old.rename(out)
        raise destination_error(out, exc) from None
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(out: Path, force: bool = False, *, marks: Sequence[str], hint: str = "replace it") -> Iterator[Path]:
    """Build a folder in a sibling temp folder, renamed to ``out`` only when the block ends
    without an error: a crash leaves the old folder (or none), never a half-built one.

    ``marks``: the manifests by which a previous ``out`` is recognised as kws's own (see
    ``refuse_existing``); anything else is refused even with ``force``."""
    out = Path(out)
    remove_stale(out)
    refuse_existing(out, force, marks=marks, hint=hint)
    make_dirs(out.parent)
    tmp = temp_sibling(out)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
    except OSError as exc:
        raise destination_error(out, exc) from None
    try:
        yield tmp
        publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
