"""Tar archives built in memory for the download and extraction tests: a Speech-Commands-like
tree of real WAVs and the members (files, folders, links, devices) an archive can hold."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf


def make_tree() -> dict[str, bytes]:
    """A Speech-Commands-like tree: word folders of real WAVs, noise, list files, LICENSE."""
    rng = np.random.default_rng(7)
    files: dict[str, bytes] = {}
    for rel, seconds in [("yes/0a7c2a8d_nohash_0.wav", 0.25), ("yes/0b09edd3_nohash_1.wav", 0.25),
                         ("no/0a7c2a8d_nohash_0.wav", 0.25), ("no/0c40e715_nohash_0.wav", 0.25),
                         ("_background_noise_/white_noise.wav", 0.5)]:
        buf = io.BytesIO()
        sf.write(buf, (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000,
                 format="WAV", subtype="PCM_16")
        files[rel] = buf.getvalue()
    files["validation_list.txt"] = b"yes/0b09edd3_nohash_1.wav\n"
    files["testing_list.txt"] = b"no/0c40e715_nohash_0.wav\n"
    files["LICENSE"] = b"CC BY 4.0\n"
    return files


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    """A data-less member: a symlink, a hard link, or (with ``kind``) a device or FIFO."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def release_members(tree: dict[str, bytes]) -> list:
    members: list = [_dir("."), *[_dir(f"./{d}") for d in sorted({k.split("/")[0] for k in tree if "/" in k})]]
    return members + [_file(f"./{rel}", data) for rel, data in tree.items()]


def make_release(tree: dict[str, bytes]) -> bytes:
    return gzip.compress(tar_bytes(release_members(tree)), mtime=0)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_tree(folder: Path, tree: dict[str, bytes]) -> None:
    got = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    manifest = got.pop("SHA256SUMS").decode()
    got.pop("download.json")
    assert got == tree
    assert manifest.splitlines() == [f"{sha(tree[k])}  {k}" for k in sorted(tree)]
    data, rate = sf.read(folder / "yes" / "0a7c2a8d_nohash_0.wav")
    assert rate == 16000 and data.shape == (4000,)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []
