"""Safe, all-or-nothing extraction of a ``.tar.gz`` with a SHA-256 manifest of what came out.

An archive from the network is untrusted: a member may try to escape the tree (absolute path,
``..``, a link pointing outside) or be a device file, and a damaged file must never leave a
half-extracted dataset behind. So every member is checked by our own rules and, where this
Python has it, by ``tarfile.data_filter`` too; everything goes into a hidden temporary folder
beside the destination, which is renamed to its final name only once the whole archive (gzip
CRC, tar end marker, every member's size) has been read without fault.

Size is bounded too (a 408 KB gzip can hold 400 MB of zeros): members, their total, their count
and the extracted/compressed ratio are checked against ``ExtractLimits`` from each member's
header, before its data is written; a hard link, copied out as a file, counts in full.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import shutil
import tarfile
import unicodedata
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from data_prep.atomic import publish_dir, remove_stale, temp_sibling, write_text_atomic
from data_prep.errors import DownloadError, first_line
from data_prep.outputs import destination_error, make_dirs, refuse_existing

MANIFEST_NAME = "SHA256SUMS"
METADATA_NAME = "download.json"
_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
_CONTROL_CATEGORIES = {"Cc", "Zl", "Zp"}  # C0/C1 controls (newline, CR, ESC, ...), line/paragraph separators
_LOCAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}

Progress = Callable[[int, int | None], None]

# What the largest known release (Speech Commands v0.02, see data_prep.download.OFFICIAL) holds:
# 105,829 utterances of at most 1 s of 16-bit 16 kHz mono (32,044 bytes with the WAV header), six
# background-noise recordings (the longest, doing_the_dishes.wav, 3,046,050 bytes), list files.
_RELEASE_FILES = 105_829 + 6 + 4
_RELEASE_LARGEST_FILE = 3_046_050
_RELEASE_BYTES = 105_829 * 32_044 + 6 * _RELEASE_LARGEST_FILE + 1_000_000  # ~3.41 GB, an upper bound


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds on what an archive may extract to. The defaults are twice what the largest known
    release can hold; ``max_ratio`` bounds extracted bytes / archive bytes (v0.02: ~1.4, since
    PCM audio hardly compresses; a gzip bomb: up to ~1000)."""

    max_member_bytes: int = 2 * _RELEASE_LARGEST_FILE
    max_total_bytes: int = 2 * _RELEASE_BYTES
    max_members: int = 2 * _RELEASE_FILES
    max_ratio: float = 10.0


class CorruptArchive(DownloadError):
    """An archive that is damaged or unsafe: re-downloading the same bytes cannot help."""


@dataclass(frozen=True)
class Extracted:
    path: Path
    files: int
    bytes: int
    manifest: Path


def extract_tar_gz(
    archive: Path,
    target: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    metadata: Mapping[str, object] | None = None,
    limits: ExtractLimits = ExtractLimits(),
) -> Extracted:
    """Extract ``archive`` into the folder ``target``, or leave nothing at all.

    ``SHA256SUMS`` (``sha256sum -c`` format) lists every extracted regular file; ``metadata``,
    if given, is saved beside it as ``download.json``. Beyond ``limits``: ``CorruptArchive``.
    """
    archive, target = Path(archive), Path(target)
    check_target(target, force)
    make_dirs(target.parent)
    tmp = temp_sibling(target, "extracting")  # a killed run's one is removed by the next (check_target)
    try:
        tmp.mkdir()
    except OSError as exc:
        raise destination_error(target, exc) from None
    try:
        hashes, nbytes = _extract_all(archive, tmp, progress, limits)
        manifest = "".join(f"{digest}  {name}\n" for name, digest in sorted(hashes.items()))
        write_text_atomic(tmp / MANIFEST_NAME, manifest)
        if metadata is not None:
            info = {**metadata, "files": len(hashes), "extracted_bytes": nbytes}
            write_text_atomic(tmp / METADATA_NAME, json.dumps(info, indent=2) + "\n")
        publish_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Extracted(target, len(hashes), nbytes, target / MANIFEST_NAME)


def check_target(target: Path, force: bool) -> None:
    """Refuse an existing ``target`` without ``force``, and with it anything but a dataset kws
    extracted (its ``SHA256SUMS``); first remove what killed runs left beside it."""
    remove_stale(target)
    refuse_existing(target, force, marks=(MANIFEST_NAME, METADATA_NAME), hint="replace it", error=DownloadError)


def _extract_all(archive: Path, root: Path, progress: Progress | None,
                 limits: ExtractLimits) -> tuple[dict[str, str], int]:
    total = archive.stat().st_size
    hashes: dict[str, str] = {}
    nbytes = members = 0
    with open(archive, "rb") as raw_fh:
        raw = _CountingReader(raw_fh, lambda n: progress(n, total) if progress else None)
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        stream = _TailReader(gz)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    members += 1
                    _check_size(member, members, nbytes, total, limits, archive)
                    nbytes += _extract_one(tar, member, root, hashes, archive, limits, nbytes)
                end = tar.offset
            _require_end_marker(stream, end, archive)
            while stream.read(_CHUNK):  # drain, so gzip checks its CRC and length trailer
                pass
        except (EOFError, gzip.BadGzipFile, zlib.error, tarfile.TarError) as exc:
            raise CorruptArchive(f"{archive}: corrupt or truncated gzip/tar ({first_line(exc)})") from None
    return hashes, nbytes


def _check_size(member: tarfile.TarInfo, count: int, before: int, archive_bytes: int,
                limits: ExtractLimits, archive: Path) -> None:
    """Refuse a member from its header, before any of its data is written."""
    name = member.name
    if count > limits.max_members:
        raise CorruptArchive(f"{archive}: refused member {name!r}: more than {limits.max_members:,} members")
    if member.size > limits.max_member_bytes:
        raise CorruptArchive(f"{archive}: refused member {name!r}: {member.size:,} bytes, more than the "
                             f"{limits.max_member_bytes:,} any file of the release can have")
    _check_total(name, before + member.size, archive_bytes, limits, archive)


def _check_total(name: str, total: int, archive_bytes: int, limits: ExtractLimits, archive: Path) -> None:
    if total > limits.max_total_bytes:
        raise CorruptArchive(f"{archive}: refused member {name!r}: extracting more than {limits.max_total_bytes:,} "
                             "bytes, beyond what the release can hold")
    if total > limits.max_ratio * archive_bytes:
        raise CorruptArchive(f"{archive}: refused member {name!r}: extracts to over {limits.max_ratio:g}x the "
                             f"archive's {archive_bytes:,} bytes (a compression bomb?)")


def _extract_one(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path,
                 hashes: dict[str, str], archive: Path, limits: ExtractLimits, before: int) -> int:
    """Sort file-system errors: a full disk is ours to fix, a clash inside the tree is the archive's."""
    try:
        return _extract_member(tar, member, root, hashes, archive, limits, before)
    except gzip.BadGzipFile:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in _LOCAL_ERRNOS:
            raise DownloadError(f"{root.parent}: cannot write {member.name!r} ({reason})") from None
        raise CorruptArchive(f"{archive}: cannot extract member {member.name!r} ({reason})") from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path,
                    hashes: dict[str, str], archive: Path, limits: ExtractLimits, before: int) -> int:
    rel = safe_member_path(member, archive)
    if rel is None:  # the archive's own root entry ("./")
        return 0
    _apply_data_filter(member, root, archive)
    dest = root / rel
    _require_inside(dest.parent, root, member, archive)
    if member.isdir():
        dest.mkdir(parents=True, exist_ok=True)
        _require_inside(dest, root, member, archive)
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    _require_inside(dest.parent, root, member, archive)
    if dest.is_symlink() or dest.is_file():
        dest.unlink()  # a later entry of the same name wins, as with tar; never write through a link
    if member.issym():  # lexically inside is not enough: links already on disk may lead out
        _require_inside(Path(os.path.join(dest.parent, member.linkname)), root, member, archive)
        os.symlink(member.linkname, dest)
        return 0
    if member.islnk():
        source = root / _normalise(member.linkname)
        if source.is_symlink() or not source.is_file():
            raise CorruptArchive(f"{archive}: hard link {member.name!r} -> {member.linkname!r} has no earlier file")
        _require_inside(source, root, member, archive)
        _check_total(member.name, before + source.stat().st_size, archive.stat().st_size, limits, archive)
        shutil.copyfile(source, dest)  # a copy costs its full size: links must not multiply a file
        hashes[rel.as_posix()] = sha256_file(dest)
        return dest.stat().st_size
    fileobj = tar.extractfile(member)
    if fileobj is None:
        raise CorruptArchive(f"{archive}: member {member.name!r} has no data")
    digest = hashlib.sha256()
    written = 0
    with open(dest, "xb") as out:
        while chunk := fileobj.read(_CHUNK):
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    if written != member.size:
        raise CorruptArchive(f"{archive}: member {member.name!r} truncated ({written} of {member.size} bytes)")
    hashes[rel.as_posix()] = digest.hexdigest()
    return written


def safe_member_path(member: tarfile.TarInfo, archive: Path | str = "archive") -> PurePosixPath | None:
    """The member's path relative to the tree, or ``CorruptArchive`` if it is unsafe.

    Refused: absolute paths, ``..`` components, links whose target leaves the tree, and
    anything but regular files, directories and links (devices, FIFOs, ...), and names with a
    control character (a newline in a name would forge a line of ``SHA256SUMS``).
    """
    name = member.name
    for text, what in ((name, "name"), (member.linkname, "link target")):
        bad = next((c for c in text if unicodedata.category(c) in _CONTROL_CATEGORIES), None)
        if bad is not None:
            raise CorruptArchive(f"{archive}: refused member {name!r}: control character {bad!r} in its {what}")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise CorruptArchive(f"{archive}: refused member {name!r}: absolute path")
    rel = _normalise(name)
    if ".." in rel.parts:
        raise CorruptArchive(f"{archive}: refused member {name!r}: '..' leaves the tree")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise CorruptArchive(f"{archive}: refused member {name!r}: device, FIFO or other special file")
    if member.issym() or member.islnk():
        link = member.linkname
        if link.startswith(("/", "\\")):
            raise CorruptArchive(f"{archive}: refused link {name!r} -> {link!r}: absolute target")
        base = rel.parent if member.issym() else PurePosixPath()
        resolved = os.path.normpath((base / link).as_posix())
        if resolved == ".." or resolved.startswith("../"):
            raise CorruptArchive(f"{archive}: refused link {name!r} -> {link!r}: target outside the tree")
        if resolved == ".":
            raise CorruptArchive(f"{archive}: refused link {name!r} -> {link!r}: target is the tree itself")
    return rel if rel.parts else None


def _normalise(name: str) -> PurePosixPath:
    return PurePosixPath(*[p for p in PurePosixPath(name).parts if p not in ("", ".", "/")])


def _apply_data_filter(member: tarfile.TarInfo, root: Path, archive: Path) -> None:
    """Second opinion from the stdlib's own 'data' filter (3.11.4+/3.12+), when present."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:
        return
    try:
        data_filter(member, str(root))
    except tarfile.FilterError as exc:
        raise CorruptArchive(f"{archive}: refused member {member.name!r}: {exc}") from None


def _require_inside(path: Path, root: Path, member: tarfile.TarInfo, archive: Path) -> None:
    """Resolve links already on disk: a member must not land outside ``root`` through one."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise CorruptArchive(f"{archive}: refused member {member.name!r}: resolves outside the tree")


def _require_end_marker(stream: "_TailReader", end: int, archive: Path) -> None:
    """tarfile stops silently at a cut-off header; a complete tar has a zero block there."""
    have = stream.bytes_from(end)
    if have is None:
        raise CorruptArchive(f"{archive}: corrupt tar (cannot locate its end)")
    while len(have) < _BLOCK:
        more = stream.read(_BLOCK - len(have))
        if not more:
            break
        have += more
    if len(have) < _BLOCK or have[:_BLOCK].count(0) != _BLOCK:
        raise CorruptArchive(f"{archive}: truncated tar (no end-of-archive marker after {end:,} bytes)")


class _CountingReader:
    """Reports how many compressed bytes have been read: extraction progress for free."""

    def __init__(self, fh: BinaryIO, report: Callable[[int], object]):
        self._fh, self._report, self.count = fh, report, 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.count += len(data)
        self._report(self.count)
        return data


class _TailReader:
    """A read-only stream that remembers its last bytes, so the tar end marker can be checked."""

    _KEEP = 1 << 17

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self.pos = 0
        self._tail: deque[bytes] = deque()
        self._tail_len = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        if data:
            self.pos += len(data)
            self._tail.append(data)
            self._tail_len += len(data)
            while self._tail_len - len(self._tail[0]) >= self._KEEP:
                self._tail_len -= len(self._tail.popleft())
        return data

    def bytes_from(self, offset: int) -> bytes | None:
        """The bytes already read from ``offset`` on, or None if they are no longer kept."""
        start = self.pos - self._tail_len
        if offset < start or offset > self.pos:
            return None
        return b"".join(self._tail)[offset - start:]
