"""The release's split rules: list files and the SHA-1 hash of the speaker (``which_set``)."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from data_prep.errors import ConfigError, DatasetError
from data_prep.splits import (
    assign_by_hash,
    assign_from_lists,
    hash_name,
    parse_list,
    speaker_id,
    which_set,
)


def reference_split(filename: str, val: float = 10.0, test: float = 10.0) -> str:
    """The documented rule, written out independently: SHA-1 of the name before '_nohash_',
    taken modulo 2**27 as a percentage of 2**27 - 1."""
    base = filename.rsplit("/", 1)[-1]
    key = base.split("_nohash_")[0] if "_nohash_" in base else base
    value = int.from_bytes(hashlib.sha1(key.encode()).digest(), "big")
    pct = (value % 2**27) * 100.0 / (2**27 - 1)
    return "validation" if pct < val else "testing" if pct < val + test else "training"


def _clips(root: Path) -> list[str]:
    return sorted(
        f"{p.parent.name}/{p.name}" for p in root.glob("*/*.wav") if p.parent.name != "_background_noise_"
    )


def test_which_set_matches_documented_formula_on_many_names():
    names = [f"{i:08x}_nohash_{i % 5}.wav" for i in range(0, 3_000_000, 997)] + ["no_marker.wav", "a", "ü_nohash_1.wav"]
    for val, test in ((10, 10), (5, 20), (0, 0), (33.3, 33.3)):
        assert [which_set(n, val, test) for n in names] == [reference_split(n, val, test) for n in names]


def test_which_set_known_outcomes_on_release_test_speakers(dev_data: Path):
    # The dev subset's README: its clips are all from the release's *test* speakers, so the
    # standard 10 %/10 % hash assigns every one of them to 'testing'.
    clips = _clips(dev_data)
    assert len(clips) == 2192
    assert {which_set(c) for c in clips} == {"testing"}


def test_hash_split_keeps_every_speaker_in_one_split(shared_data: Path):
    clips = _clips(shared_data / "speech_commands_v0.01_sample")
    assert len(clips) == 249
    splits = assign_by_hash(clips)
    assert splits == {c: reference_split(c) for c in clips}
    by_speaker = defaultdict(set)
    for clip, split in splits.items():
        by_speaker[speaker_id(clip)].add(split)
    assert all(len(s) == 1 for s in by_speaker.values())
    assert len(by_speaker) > 30  # many speakers, several words each
    assert set(splits.values()) >= {"training", "validation"}


def test_nohash_suffix_and_folder_do_not_matter():
    assert which_set("yes/bobby_nohash_0.wav") == which_set("/x/no/bobby_nohash_7.wav")
    assert hash_name("/a/b/bobby_nohash_0.wav") == "bobby"
    assert hash_name("bobby.wav") == "bobby.wav"  # no marker: the whole base name, as the reference
    assert speaker_id("yes/0a7c2a8d_nohash_1.wav") == "0a7c2a8d"
    assert speaker_id("odd/recording.wav") == "recording"


def test_hash_split_proportions():
    counts = Counter(which_set(f"spk{i}_nohash_0.wav") for i in range(20_000))
    assert counts["validation"] / 20_000 == pytest.approx(0.10, abs=0.01)
    assert counts["testing"] / 20_000 == pytest.approx(0.10, abs=0.01)
    assert set(assign_by_hash(["a/x_nohash_0.wav", "b/y_nohash_0.wav"], 0, 0).values()) == {"training"}


@pytest.mark.parametrize("val,test", [(-1, 10), (10, -5), (60, 50)])
def test_bad_percentages(val, test):
    with pytest.raises(ConfigError, match="percentages"):
        assign_by_hash(["a/b.wav"], val, test)


def test_parse_list_accepts_blank_lines_and_refuses_odd_entries():
    assert parse_list("yes/a_nohash_0.wav\n\n  no/b_nohash_1.wav  \n", "l.txt") == {
        "yes/a_nohash_0.wav",
        "no/b_nohash_1.wav",
    }
    with pytest.raises(DatasetError, match=r"l.txt:2: expected 'word/file.wav'"):
        parse_list("yes/a.wav\nfoo.wav\n", "l.txt")
    with pytest.raises(DatasetError, match=r"l.txt:1"):
        parse_list("../yes/a.wav\n", "l.txt")


def test_assign_from_lists():
    clips = ["yes/a_nohash_0.wav", "yes/b_nohash_0.wav", "no/c_nohash_0.wav"]
    got = assign_from_lists(clips, frozenset({"yes/b_nohash_0.wav"}), frozenset({"no/c_nohash_0.wav"}), source="d")
    assert got == {"yes/a_nohash_0.wav": "training", "yes/b_nohash_0.wav": "validation", "no/c_nohash_0.wav": "testing"}
    with pytest.raises(DatasetError, match=r"d/testing_list.txt: 1 listed files are missing, e.g. no/zz.wav"):
        assign_from_lists(clips, frozenset(), frozenset({"no/zz.wav"}), source="d")
    with pytest.raises(DatasetError, match="in both list files"):
        assign_from_lists(clips, frozenset({clips[0]}), frozenset({clips[0]}), source="d")
