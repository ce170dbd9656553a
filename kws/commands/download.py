"""``kws data download``: fetch, verify and safely extract a Speech Commands release."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from data_prep.download import check_sha256, download_speech_commands, official_archive, resolve_base_url


class Version(str, Enum):
    v0_02 = "v0.02"
    v0_01 = "v0.01"


def download(
    version: Annotated[Version, typer.Option(help="Speech Commands release.")] = Version.v0_02,
    test_set: Annotated[bool, typer.Option(
        "--test-set", help="The canonical 12-class test set instead of the full release.")] = False,
    dest: Annotated[Path, typer.Option(
        help="Folder that receives <archive name>/ (the .tar.gz is downloaded there too).")] = Path("data"),
    url: Annotated[Optional[str], typer.Option(
        help="Base URL of the archives (else $KWS_DOWNLOAD_BASE_URL, else "
             "https://download.tensorflow.org/data/).")] = None,
    sha256: Annotated[Optional[str], typer.Option(
        help="Expected SHA-256 of the archive, replacing the published one (mirrors).")] = None,
    keep_archive: Annotated[bool, typer.Option(
        "--keep-archive", help="Keep the verified .tar.gz after extraction.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing extracted folder.")] = False,
) -> None:
    """Download a Speech Commands archive (resumable), check size and SHA-256, extract it safely."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    if sha256 is not None:
        check_sha256(sha256)  # a typo is the only line, not after the URL
    archive = official_archive(version.value, test_set)
    console = Console(stderr=True)
    console.print(f"{resolve_base_url(url)}{archive.filename} -> {dest / archive.stem}", soft_wrap=True,
                  markup=False, highlight=False)
    if sha256 is None and archive.sha256 is None:
        console.print(f"warning: {archive.filename} has no published checksum: it cannot be verified "
                      "(pass --sha256 if you have a trusted one)", soft_wrap=True, markup=False, highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        result = download_speech_commands(
            dest, version=version.value, test_set=test_set, base_url=url, sha256=sha256, force=force,
            keep_archive=keep_archive,
            progress=_bar_task(bar, "download"), extract_progress=_bar_task(bar, "extract"))
    if sha256 is not None:
        check = "SHA-256 matches --sha256"
    elif archive.sha256 is not None:
        check = f"size and SHA-256 match the published ones ({archive.source})"
    else:
        check = (f"UNVERIFIED: no published checksum for {archive.filename}, only gzip/tar integrity was "
                 f"checked (its SHA-256 is in {result.path / 'download.json'}: compare it with a trusted source, "
                 "or pass --sha256)")
    typer.echo(f"{result.path}: {result.files:,} files, {result.bytes / 1e6:,.1f} MB; {check}; "
               f"per-file hashes in {result.manifest}")


def _bar_task(bar, description: str):
    """A progress callback that (re)starts its bar when the transfer starts over or resumes."""
    state: dict[str, int] = {}

    def update(done: int, total: int | None) -> None:
        if "task" not in state:
            state["task"] = bar.add_task(description, total=total, completed=done)
        elif done < state["last"]:
            bar.reset(state["task"], total=total, completed=done)
        else:
            bar.update(state["task"], total=total, completed=done)
        state["last"] = done

    return update
