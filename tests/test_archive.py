"""Safe extraction of a release archive: hostile members, decompression bombs and forged
manifest lines are refused before anything is written (data_prep.archive)."""

from __future__ import annotations

import gzip
import re
import tarfile

import numpy as np
import pytest
from tar_archives import _file, _link, leftovers, release_members, tar_bytes

from data_prep.archive import CorruptArchive, ExtractLimits, extract_tar_gz

MALICIOUS = {
    "absolute path": [_file("/tmp/kws-evil.txt", b"x")],
    "dotdot traversal": [_file("./yes/../../evil.txt", b"x")],
    "symlink out of the tree": [_link("./yes/escape", "../../outside")],
    "absolute symlink": [_link("./yes/escape", "/etc")],
    "symlink chain out of the tree": [_link("./yes/sub/l1", "../../no"), _link("./yes/sub/l1/l2", "../../../outside")],
    "hardlink out of the tree": [_link("./yes/hard", "../outside.txt", tarfile.LNKTYPE)],
    "device file": [_link("./yes/dev", "", tarfile.CHRTYPE)],
    "fifo": [_link("./yes/pipe", "", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("stdlib_filter", [True, False], ids=["with-data_filter", "own-checks-only"])
@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archive_is_refused_with_nothing_extracted(tmp_path, tree, case, stdlib_filter, monkeypatch):
    if not stdlib_filter:  # as on Python 3.11 < 3.11.4, which lacks tarfile.data_filter
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    members = release_members(tree) + MALICIOUS[case]
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes(members)))
    dest = tmp_path / "out" / "speech_commands"
    with pytest.raises(CorruptArchive, match=r"refused (member|link)"):
        extract_tar_gz(archive, dest)
    assert leftovers(dest.parent) == []  # good files that came before were not left behind
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()


TIGHT = ExtractLimits(max_member_bytes=1_000_000, max_total_bytes=2_000_000, max_members=20, max_ratio=10.0)


def _random(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


BOMBS = {  # each small on disk, each beyond TIGHT: (members, what the refusal says)
    "zeros: compression ratio": ([_file("./yes/zeros.wav", bytes(900_000))], "a compression bomb"),
    "one member too large": ([_file("./yes/big.wav", _random(1_100_000))], "more than the 1,000,000"),
    "total too large": ([_file(f"./yes/r{i}.wav", _random(700_000, i)) for i in range(3)], "more than 2,000,000 bytes"),
    "hard links multiply a file": ([_file("./yes/r.wav", _random(700_000)),
                                    *[_link(f"./yes/h{i}.wav", "./yes/r.wav", tarfile.LNKTYPE) for i in range(3)]],
                                   "more than 2,000,000 bytes"),
    "too many members": ([_file(f"./no/e{i}.txt", b"") for i in range(30)], "more than 20 members"),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_archive_beyond_the_size_limits_is_refused_before_it_is_written(tmp_path, tree, case):
    members, message = BOMBS[case]
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes(release_members(tree) + members)))
    dest = tmp_path / "out" / "speech_commands"
    with pytest.raises(CorruptArchive, match=re.escape(message)) as err:
        extract_tar_gz(archive, dest, limits=TIGHT)
    assert "\n" not in str(err.value) and leftovers(dest.parent) == []


def test_default_limits_refuse_a_real_gzip_bomb_and_pass_the_release(tmp_path, tree, release):
    bomb = tmp_path / "bomb.tar.gz"
    bomb.write_bytes(gzip.compress(tar_bytes(release_members(tree) + [_file("./yes/z.wav", bytes(5_000_000))])))
    assert bomb.stat().st_size < 100_000  # 5 MB of zeros (a plausible member size) in a few tens of KB
    with pytest.raises(CorruptArchive, match="a compression bomb"):
        extract_tar_gz(bomb, tmp_path / "out")
    assert leftovers(tmp_path / "out") == []
    good = tmp_path / "good.tar.gz"
    good.write_bytes(release)
    assert extract_tar_gz(good, tmp_path / "ok").files == len(tree)  # real audio is far inside every bound
    assert ExtractLimits().max_total_bytes > 6_000_000_000 and ExtractLimits().max_member_bytes > 3_046_050


@pytest.mark.parametrize("name", ["./yes/a.wav\nffff  yes/forged.wav", "./yes/b\r.wav", "./yes/\x1b[31mred.wav",
                                  "./yes/c\u2028.wav", "./yes/d\x85.wav"])
def test_member_names_with_control_characters_are_refused(tmp_path, tree, name):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes(release_members(tree) + [_file(name, b"x")])))
    dest = tmp_path / "out" / "speech_commands"
    with pytest.raises(CorruptArchive, match="control character") as err:
        extract_tar_gz(archive, dest)
    assert "\n" not in str(err.value) and leftovers(dest.parent) == []
