"""The Speech Commands downloader against a real HTTP server on 127.0.0.1 (with Range support).

Archives are generated here: a tiny tree in the release layout with real 16-bit WAVs written by
soundfile, packed like the official tarballs ("./word/file.wav" members).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import socket
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
from tar_archives import _link, assert_tree, leftovers, release_members, sha, tar_bytes
from typer.testing import CliRunner

from data_prep.download import BASE_URL_ENV, DEFAULT_BASE_URL, download_speech_commands, fetch, official_archive, resolve_base_url
from data_prep.errors import DownloadError
from kws.commands import download as download_cmd

V2 = official_archive("v0.02").filename  # served with our own bytes, so tests pass --sha256
V1_TEST = official_archive("v0.01", test_set=True).filename  # no published checksum


# ---------------------------------------------------------------- a real server with Range


class ArchiveServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.ranges = True  # False: ignore Range and always answer 200 (like SimpleHTTPRequestHandler)
        self.cut_after: int | None = None  # close the next transfer after this many body bytes
        self.stall = 0.0  # seconds to wait before answering
        self.log: list[tuple[str, str | None, int]] = []  # (path, Range header, status)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/data/"

    def handle_error(self, request, client_address) -> None:  # a client that gave up: not news
        pass


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        srv: ArchiveServer = self.server  # type: ignore[assignment]
        if srv.stall:
            time.sleep(srv.stall)
        asked = self.headers.get("Range")
        data = srv.files.get(self.path.removeprefix("/data/"))
        if data is None:
            srv.log.append((self.path, asked, 404))
            self.send_error(404, "Not Found")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", asked or "")
        if match and srv.ranges:
            start = int(match[1])
            if start >= len(data):
                srv.log.append((self.path, asked, 416))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            srv.log.append((self.path, asked, 206))
        else:
            self.send_response(200)
            srv.log.append((self.path, asked, 200))
        body = data[start:]
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cut_after is not None:
            body, srv.cut_after = body[: srv.cut_after], None
        self.wfile.write(body)


@pytest.fixture()
def server():
    srv = ArchiveServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def get(server: ArchiveServer, dest: Path, **kw):
    kw.setdefault("retry_wait", 0.0)
    return download_speech_commands(dest, base_url=server.url, **kw)


# ---------------------------------------------------------------- tests


def test_full_download_and_extract(server, tmp_path, tree, release):
    server.files[V2] = release
    result = get(server, tmp_path, sha256=sha(release))
    assert result.path == tmp_path / "speech_commands_v0.02" and result.files == len(tree)
    assert_tree(result.path, tree)
    info = json.loads((result.path / "download.json").read_text())
    assert info["archive_sha256"] == sha(release) and info["checksum_verified"] is True
    assert info["url"] == server.url + V2
    assert leftovers(tmp_path) == ["speech_commands_v0.02"]  # no archive, .part or temp dir left
    assert server.log == [("/data/" + V2, None, 200)]


def test_interrupted_transfer_keeps_part_and_resumes_with_range(server, tmp_path, tree, release):
    server.files[V2] = release
    cut = len(release) // 3
    server.cut_after = cut
    with pytest.raises(DownloadError, match=r"connection closed after 1.* of .*kept at .*\.part \(run again to resume\)") as err:
        get(server, tmp_path, sha256=sha(release), retries=0)
    assert "\n" not in str(err.value)
    part = tmp_path / (V2 + ".part")
    assert part.read_bytes() == release[:cut]
    assert not (tmp_path / "speech_commands_v0.02").exists()

    result = get(server, tmp_path, sha256=sha(release))
    assert server.log[-1] == ("/data/" + V2, f"bytes={cut}-", 206)
    assert_tree(result.path, tree)
    assert leftovers(tmp_path) == ["speech_commands_v0.02"]


def test_dropped_connection_is_resumed_within_one_run(server, tmp_path, tree, release):
    server.files[V2] = release
    server.cut_after = 1000
    seen: list[tuple[int, int | None]] = []
    result = get(server, tmp_path, sha256=sha(release), retries=2, progress=lambda d, t: seen.append((d, t)))
    assert [status for *_, status in server.log] == [200, 206]
    assert seen[-1] == (len(release), len(release)) and (1000, len(release)) in seen
    assert_tree(result.path, tree)


def test_server_without_range_support_restarts_from_zero(server, tmp_path, tree, release):
    server.files[V2] = release
    server.ranges = False
    server.cut_after = len(release) // 2
    result = get(server, tmp_path, sha256=sha(release), retries=1)
    assert server.log[1] == ("/data/" + V2, f"bytes={len(release) // 2}-", 200)  # asked, got 200
    assert_tree(result.path, tree)


def test_whole_part_answered_416_is_verified_and_used(server, tmp_path, tree, release):
    server.files[V2] = release
    (tmp_path / (V2 + ".part")).write_bytes(release)
    result = get(server, tmp_path, sha256=sha(release))
    assert server.log == [("/data/" + V2, f"bytes={len(release)}-", 416)]
    assert_tree(result.path, tree)


def test_checksum_mismatch_removes_the_download(server, tmp_path, release):
    server.files[V2] = release
    wrong = "0" * 64
    with pytest.raises(DownloadError, match=rf"{V2}: sha256 {sha(release)} does not match the expected {wrong}"):
        get(server, tmp_path, sha256=wrong)
    assert leftovers(tmp_path) == []


def test_published_size_is_enforced_before_anything_is_written(server, tmp_path, release):
    server.files[V2] = release  # not the real 2.4 GB release: must be refused from its size alone
    with pytest.raises(DownloadError, match=rf"server reports {len(release):,} bytes, expected 2,428,923,189"):
        get(server, tmp_path)
    assert leftovers(tmp_path) == []


def _last_header(tar: bytes) -> int:
    return tarfile.open(fileobj=io.BytesIO(tar)).getmembers()[-1].offset


@pytest.mark.parametrize("damage, problem", [
    (lambda good, tar: b"<html>not an archive</html>", "Not a gzipped file"),
    (lambda good, tar: good[: len(good) * 2 // 3], "ended before the end-of-stream marker"),
    (lambda good, tar: good[:-8] + bytes(b ^ 0xFF for b in good[-8:-4]) + good[-4:], "CRC check failed"),
    (lambda good, tar: gzip.compress(tar[: len(tar) // 2]), "truncated gzip/tar .unexpected end of data"),
    (lambda good, tar: gzip.compress(tar[: _last_header(tar)]), "truncated tar .no end-of-archive marker"),
], ids=["not-gzip", "truncated-gzip", "bad-crc", "tar-cut-in-member", "tar-cut-at-header"])
def test_corrupt_archive_is_refused_and_removed(server, tmp_path, tree, release, damage, problem):
    tar = tar_bytes(release_members(tree))
    server.files[V1_TEST] = damage(release, tar)  # v0.01 test set: no published checksum to catch it
    with pytest.raises(DownloadError, match=problem) as err:
        get(server, tmp_path, version="v0.01", test_set=True)
    assert str(err.value).startswith(str(tmp_path / V1_TEST) + ": ")
    assert "\n" not in str(err.value)
    assert leftovers(tmp_path) == []


def test_malicious_archive_through_download_leaves_nothing(server, tmp_path, tree):
    evil = gzip.compress(tar_bytes(release_members(tree) + [_link("./yes/escape", "../../outside")]))
    server.files[V2] = evil
    with pytest.raises(DownloadError, match="target outside the tree"):
        get(server, tmp_path, sha256=sha(evil))
    assert leftovers(tmp_path) == []


def test_http_404_is_one_line_with_url(server, tmp_path):
    with pytest.raises(DownloadError) as err:
        get(server, tmp_path)
    assert str(err.value) == f"{server.url}{V2}: HTTP 404 Not Found"
    assert leftovers(tmp_path) == []


def test_connection_refused_and_timeout_are_one_line(server, tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x/"
    with pytest.raises(DownloadError, match=rf"^{re.escape(url + V2)}: connection refused$"):
        download_speech_commands(tmp_path, base_url=url)
    server.files[V2] = b"late"
    server.stall = 1.0
    with pytest.raises(DownloadError, match=rf"^{re.escape(server.url + V2)}: timed out after 0.2 s$"):
        get(server, tmp_path, timeout=0.2)


def test_existing_destination_needs_force_and_kept_archive_is_reused(server, tmp_path, tree, release):
    server.files[V2] = release
    old = tmp_path / "speech_commands_v0.02"
    old.mkdir()
    (old / "stale.txt").write_text("old")
    with pytest.raises(DownloadError, match="already exists .*--force"):
        get(server, tmp_path, sha256=sha(release))
    assert server.log == [] and (old / "stale.txt").exists()
    with pytest.raises(DownloadError, match="not written by kws"):  # a folder kws did not extract: kept
        get(server, tmp_path, sha256=sha(release), force=True)
    assert server.log == [] and (old / "stale.txt").exists()
    (old / "SHA256SUMS").write_text("")  # as a previous `kws data download` leaves it
    get(server, tmp_path, sha256=sha(release), force=True, keep_archive=True)
    assert_tree(old, tree)
    assert (tmp_path / V2).read_bytes() == release
    get(server, tmp_path, sha256=sha(release), force=True)  # verified local archive: no request
    assert len(server.log) == 1 and leftovers(tmp_path) == ["speech_commands_v0.02"]


def test_fetch_without_content_length_or_checksum(server, tmp_path, release):
    server.files["blob"] = release
    out = fetch(server.url + "blob", tmp_path / "blob", retry_wait=0.0)
    assert out.read_bytes() == release


def test_base_url_from_environment(server, tmp_path, tree, release, monkeypatch):
    server.files[V2] = release
    monkeypatch.setenv(BASE_URL_ENV, server.url.rstrip("/"))
    result = download_speech_commands(tmp_path, sha256=sha(release))
    assert_tree(result.path, tree)


def _cli_app() -> typer.Typer:
    """The real ``kws`` app once the lead has registered the command, else a local stand-in."""
    from kws.cli import app
    from kws.commands import data

    if any(c.name == "download" for c in data.app.registered_commands):
        return app
    local = typer.Typer()
    sub = typer.Typer()
    sub.command("download")(download_cmd.download)
    local.add_typer(sub, name="data")
    local.command("noop")(lambda: None)
    return local


def test_cli_download(server, tmp_path, tree, release):
    server.files[V2] = release
    runner = CliRunner()
    args = ["data", "download", "--dest", str(tmp_path), "--url", server.url]
    result = runner.invoke(_cli_app(), [*args, "--sha256", sha(release)])
    assert result.exit_code == 0, result.output
    assert f"{len(tree)} files" in result.stdout and "SHA-256 matches --sha256" in result.stdout
    assert_tree(tmp_path / "speech_commands_v0.02", tree)

    again = runner.invoke(_cli_app(), [*args, "--version", "v0.01", "--test-set"])
    assert again.exit_code != 0
    if isinstance(again.exception, DownloadError):  # local stand-in app: no one-line wrapper
        assert "HTTP 404" in str(again.exception)
    else:
        assert "error:" in again.output and "HTTP 404" in again.output


# ---------------------------------------------------------------- issue #18: unverified archives


def test_default_base_url_is_https(monkeypatch) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    assert resolve_base_url() == DEFAULT_BASE_URL == "https://download.tensorflow.org/data/"


def test_cli_says_an_archive_without_published_checksum_is_unverified(server, tmp_path, tree, release):
    server.files[V1_TEST] = release
    result = CliRunner().invoke(_cli_app(), ["data", "download", "--dest", str(tmp_path), "--url", server.url,
                                             "--version", "v0.01", "--test-set"])
    assert result.exit_code == 0, result.output
    assert "UNVERIFIED: no published checksum for speech_commands_test_set_v0.01.tar.gz" in result.stdout
    assert "has no published checksum: it cannot be verified" in result.output  # warned before the transfer
    info = json.loads((tmp_path / "speech_commands_test_set_v0.01" / "download.json").read_text())
    assert info["checksum_verified"] is False and info["archive_sha256"] == sha(release)


def test_a_malformed_sha256_is_the_only_line_and_nothing_is_fetched(server, tmp_path, release):
    """--sha256 xyz printed the URL it would fetch, then the error."""
    server.files[V2] = release
    result = CliRunner().invoke(_cli_app(), ["data", "download", "--dest", str(tmp_path / "d"), "--url", server.url,
                                             "--sha256", "xyz"])
    assert result.exit_code != 0
    if isinstance(result.exception, DownloadError):  # local stand-in app: no one-line wrapper
        assert "not a SHA-256" in str(result.exception) and result.output == ""
    else:
        assert result.output.strip() == "error: --sha256 'xyz': not a SHA-256 (64 hex digits)", result.output
    assert not (tmp_path / "d").exists()
