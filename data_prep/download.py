"""Download the Speech Commands archives: resumable HTTP, verified size and checksum.

The release is 2.4 GB (fetched over HTTPS by default), so a dropped connection must not cost the whole
transfer: bytes go to ``<archive>.part`` and a retry asks for the rest with an HTTP ``Range``
request (a server that answers 200 instead of 206 makes us start over; 416 means the part is
already whole). A file only takes its final name once its size and SHA-256 match the published
figures, and it is then extracted by :mod:`data_prep.archive` (safe, all-or-nothing).
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from data_prep.archive import CorruptArchive, Extracted, Progress, check_target, extract_tar_gz, sha256_file
from data_prep.errors import DownloadError, first_line
from data_prep.outputs import destination_error, make_dirs

DEFAULT_BASE_URL = "https://download.tensorflow.org/data/"  # HTTPS: the v0.01 test set has no checksum to catch tampering
BASE_URL_ENV = "KWS_DOWNLOAD_BASE_URL"
VERSIONS = ("v0.02", "v0.01")
_CHUNK = 1 << 20
_USER_AGENT = "kws-downloader/1"


@dataclass(frozen=True)
class Archive:
    """One downloadable file and what we know it must be (``None``: not published)."""

    filename: str
    size: int | None = None
    sha256: str | None = None
    source: str = "none"  # where size/sha256 come from, recorded in download.json

    @property
    def stem(self) -> str:
        return self.filename.removesuffix(".tar.gz")


# Sizes and SHA-256 as published by TensorFlow Datasets (url_checksums/speech_commands.txt) and
# torchaudio (datasets/speechcommands.py); the v0.01 size is the server's Content-Length. No
# checksum is published for the v0.01 test set (none could be fetched here to add): it is
# extracted with gzip/tar integrity checks only, and reported as unverified.
_TFDS = "tensorflow-datasets url_checksums"
OFFICIAL: dict[tuple[str, bool], Archive] = {
    ("v0.02", False): Archive(
        "speech_commands_v0.02.tar.gz", 2_428_923_189,
        "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58", _TFDS),
    ("v0.02", True): Archive(
        "speech_commands_test_set_v0.02.tar.gz", 112_563_277,
        "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df", _TFDS),
    ("v0.01", False): Archive(
        "speech_commands_v0.01.tar.gz", 1_489_096_277,
        "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d", "torchaudio _CHECKSUMS"),
    ("v0.01", True): Archive("speech_commands_test_set_v0.01.tar.gz"),
}


def official_archive(version: str, test_set: bool = False) -> Archive:
    try:
        return OFFICIAL[(version, bool(test_set))]
    except KeyError:
        raise DownloadError(f"unknown Speech Commands version {version!r} (expected one of {', '.join(VERSIONS)})") from None


def resolve_base_url(url: str | None = None) -> str:
    """``--url``, else ``$KWS_DOWNLOAD_BASE_URL``, else the official location; always ends in '/'."""
    base = url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    if not re.match(r"https?://", base):
        raise DownloadError(f"base URL {base!r}: must start with http:// or https://")
    return base if base.endswith("/") else base + "/"


def download_speech_commands(
    dest: Path,
    *,
    version: str = "v0.02",
    test_set: bool = False,
    base_url: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    keep_archive: bool = False,
    timeout: float = 30.0,
    retries: int = 3,
    retry_wait: float = 1.0,
    progress: Progress | None = None,
    extract_progress: Progress | None = None,
) -> Extracted:
    """Fetch, verify and extract one release into ``dest/<archive name>``; return what came out.

    ``sha256`` replaces the published figures (for a mirror serving other bytes); the size
    is then whatever the server says.
    """
    archive = official_archive(version, test_set)
    if sha256 is not None:
        archive = replace(archive, size=None, sha256=check_sha256(sha256), source="--sha256")
    dest = Path(dest)
    target = dest / archive.stem
    check_target(target, force)
    make_dirs(dest)  # before the download: a file in the way or a read-only folder is one line
    url = resolve_base_url(base_url) + archive.filename
    path = dest / archive.filename
    if path.exists():
        try:
            verify_file(path, archive.size, archive.sha256)  # a kept archive from an earlier run
        except DownloadError:
            pass  # verify_file removed it: fetch afresh
    if not path.exists():
        fetch(url, path, size=archive.size, sha256=archive.sha256, timeout=timeout,
              retries=retries, retry_wait=retry_wait, progress=progress)
    metadata = {
        "url": url, "archive": archive.filename, "archive_bytes": path.stat().st_size,
        "archive_sha256": archive.sha256 or sha256_file(path),
        "checksum_verified": archive.sha256 is not None, "checksum_source": archive.source,
    }
    try:
        result = extract_tar_gz(path, target, force=force, progress=extract_progress, metadata=metadata)
    except CorruptArchive:
        path.unlink(missing_ok=True)  # resuming cannot repair it
        raise
    if not keep_archive:
        path.unlink()
    return result


def fetch(
    url: str,
    path: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    retry_wait: float = 1.0,
    progress: Progress | None = None,
) -> Path:
    """Download ``url`` to ``path`` through ``path.part``, resuming after a dropped connection.

    Connection failures (refused, timeout, HTTP errors) raise at once; a transfer cut short is
    resumed up to ``retries`` times, after which the part is kept for the next run.
    """
    path = Path(path)
    part = path.with_name(path.name + ".part")
    make_dirs(path.parent)
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, size, timeout, progress)
            break
        except OSError as exc:  # network errors become DownloadError inside: this is the local file
            raise destination_error(part, exc) from None
        except _Interrupted as exc:
            if attempt == retries:
                raise DownloadError(
                    f"{url}: {exc}; gave up after {attempt + 1} attempt(s), partial download kept "
                    f"at {part} (run again to resume)") from None
            time.sleep(retry_wait)
    verify_file(part, size, sha256, name=path)
    os.replace(part, path)
    return path


def verify_file(path: Path, size: int | None, sha256: str | None, *, name: Path | None = None) -> None:
    """Size and checksum check; a file that fails is deleted, since resuming cannot fix it."""
    path = Path(path)
    shown = name or path
    actual = path.stat().st_size
    if size is not None and actual != size:
        path.unlink()
        raise DownloadError(f"{shown}: {actual:,} bytes, expected {size:,} (removed; run again to download afresh)")
    if sha256 is not None:
        digest = sha256_file(path)
        if digest != sha256.lower():
            path.unlink()
            raise DownloadError(
                f"{shown}: sha256 {digest} does not match the expected {sha256.lower()} "
                "(removed; run again to download afresh)")


class _Interrupted(Exception):
    """A transfer that stopped part-way: worth resuming."""


def _transfer(url: str, part: Path, size: int | None, timeout: float, progress: Progress | None) -> None:
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:  # nothing left to send: the part is whole (verified next)
            total = _range_total(exc.headers.get("Content-Range"))
            if total is not None and total != have:
                part.unlink()
                raise _Interrupted(f"server refused the range at byte {have:,} of {total:,}") from None
            return
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: {_reason(exc.reason, timeout)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"{url}: {_reason(exc, timeout)}") from None
    with response:
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"), url)
            if start != have:
                part.unlink()
                raise _Interrupted(f"server resumed at byte {start:,} instead of {have:,}")
            mode = "ab"
        else:  # 200 (Range ignored or not asked): start over from zero
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if size is not None and total is not None and total != size:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: server reports {total:,} bytes, expected {size:,} (not the expected archive)")
        total = total if total is not None else size
        _copy_body(response, part, mode, have, total, timeout, progress)


def _copy_body(response, part: Path, mode: str, have: int, total: int | None,
               timeout: float, progress: Progress | None) -> None:
    done = have
    if progress:
        progress(done, total)
    with open(part, mode) as fh:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _Interrupted(f"connection lost after {done:,} bytes ({_reason(exc, timeout)})") from None
            if not chunk:
                break
            fh.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if total is not None and done < total:
        raise _Interrupted(f"connection closed after {done:,} of {total:,} bytes")
    if total is not None and done > total:
        part.unlink()
        raise DownloadError(f"{response.url}: server sent {done:,} bytes, more than the {total:,} announced")


def _content_range(header: str | None, url: str) -> tuple[int, int | None]:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", header or "")
    if not match:
        raise DownloadError(f"{url}: unreadable Content-Range {header!r} in a 206 answer")
    return int(match[1]), None if match[3] == "*" else int(match[3])


def _range_total(header: str | None) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", header or "")
    return int(match[1]) if match else None


def _reason(exc: object, timeout: float) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return first_line(exc)


def check_sha256(sha256: str) -> str:
    """A --sha256 as lowercase hex, or one line saying it is not one (checked before any output)."""
    value = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise DownloadError(f"--sha256 {sha256!r}: not a SHA-256 (64 hex digits)")
    return value
