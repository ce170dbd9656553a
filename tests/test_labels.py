"""Label sets: class order, vocabularies, user keyword lists."""

from __future__ import annotations

import pytest

from data_prep.errors import ConfigError
from data_prep.labels import SILENCE, UNKNOWN, WORDS_V1, WORDS_V2, all_words, parse_labels, twelve_class


def test_twelve_class_order_matches_reference_code():
    assert twelve_class().names == (
        "_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    )  # fmt: skip
    assert twelve_class().index("yes") == 2


def test_release_vocabularies():
    assert len(WORDS_V2) == 35 and len(WORDS_V1) == 30
    assert set(WORDS_V2) - set(WORDS_V1) == {"backward", "forward", "follow", "learn", "visual"}
    v2 = parse_labels("35")
    assert v2.names == WORDS_V2 and not v2.unknown and not v2.silence
    assert parse_labels("30").names == WORDS_V1
    assert parse_labels("35+silence").names == (SILENCE,) + WORDS_V2
    with pytest.raises(ConfigError, match="version"):
        all_words(3)


def test_label_of_maps_other_words():
    twelve = twelve_class()
    assert twelve.label_of("yes") == "yes"
    assert twelve.label_of("marvin") == UNKNOWN
    assert twelve.label_of(SILENCE) == SILENCE
    v1 = parse_labels("30")
    assert v1.label_of("backward") is None  # no _unknown_ class: the word is left out
    assert v1.label_of(SILENCE) is None


def test_custom_keywords():
    labels = parse_labels(" marvin, sheila ")
    assert labels.names == (SILENCE, UNKNOWN, "marvin", "sheila")
    assert labels.label_of("yes") == UNKNOWN
    assert parse_labels(labels.spec) == labels
    for spec in ("12", "35", "30+silence"):
        assert parse_labels(parse_labels(spec).spec) == parse_labels(spec)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("13", "unknown label set '13'"),
        ("35+noise", "only '\\+silence'"),
        ("yes,,no", "empty word"),
        ("yes,yes", "repeated words \\['yes'\\]"),
        ("yes,_unknown_", "invalid word names \\['_unknown_'\\]"),
        ("a/b", "invalid word names"),
    ],
)
def test_bad_label_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_labels(spec)


def test_index_of_unknown_label():
    with pytest.raises(ConfigError, match="'bed' is not one of"):
        twelve_class().index("bed")
