"""Atomic writes: a reader never sees a half-written artefact, a crash never leaves one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from data_prep.errors import KwsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write through ``write(fileobj)`` into a temporary sibling, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

def write_bytes_atomic(path: Path, data: bytes) -> Path:
    return write_atomic(path, lambda fh: fh.write(data))

def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))

def save_npy_atomic(path: Path, array: np.ndarray) -> Path:
    return write_atomic(path, lambda fh: np.save(fh, array, allow_pickle=False))

@contextlib.contextmanager
def atomic_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Build a folder in a sibling temp folder, renamed to ``out`` only when the block ends
    without an error: a crash leaves the old folder (or none), never a half-built one."""

    out = Path(out)
    if out.exists() and not force:
        raise KwsError(f"{out}: already exists (use --force to replace it)")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
