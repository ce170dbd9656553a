"""Words that sound like a keyword: the hard negatives a custom keyword model must learn to reject.

A model trained on "keyword vs other speech" learns little about the boundary that matters:
"left" against "lift", "loft", "theft". Candidates are CMUdict words (alphabetic, two letters or
more, with a vowel letter) within a phoneme edit distance of 2 (stress ignored) of any
pronunciation of the keyword, one spelling per sound.

Real words come first: those in the system's word lists (``wamerican-small``, then ``wamerican``:
SCOWL's lists by commonness; capitalised entries are names people say), then, only to fill the
count, CMUdict's other entries (mostly surnames). Then by distance; within one distance a
candidate ranks higher the more of these it has: only vowels changed, the same rhyme (stressed
vowel to the end), the same first phone, the same stress pattern, and commonness (its list, or
without lists a word family in the dictionary: ``lift`` has ``lifts``, ``lifted``). A candidate
that merely extends the keyword ("lefty") ranks last in its distance: a streaming detector has
heard the whole keyword before the extra sound. Never returned: the keyword, its homophones, and
the other keywords (``exclude``, they are positives) with their homophones.

A phrase ("hey snowboy") gets the phrase with one word swapped for a sound-alike ("hi snowboy"),
taking the words in turn, and each of its words alone.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from data_prep.errors import KwsError
from data_prep.phones import VOWELS, Pron, load_cmudict, pronunciations, strip_stress

MAX_DISTANCE = 2
WORD_LISTS = (Path("/usr/share/dict/american-english-small"), Path("/usr/share/dict/american-english"))
WORD = re.compile(r"^[a-z]{2,}$")
VOWEL_LETTER = re.compile(r"[aeiouy]")
SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "ers", "ly", "y")


@dataclasses.dataclass(frozen=True)
class Confusable:
    text: str  # a word, or a phrase with one word swapped
    distance: int  # phoneme edit distance to the keyword (stress ignored)
    phones: str  # its pronunciation closest to the keyword, ARPAbet

    def as_json(self) -> dict[str, object]:
        return {"word": self.text, "distance": self.distance, "phones": self.phones}


def edit_distance(a: Pron, b: Pron) -> int:
    """Levenshtein distance between two phone sequences."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def family_size(word: str, vocabulary: frozenset[str]) -> int:
    """How many inflected or derived forms of ``word`` (or of its stem) the dictionary lists: a
    common word has them (lift: lifts, lifted, lifting), a surname rarely. The forms a shorter
    word makes by doubling its last consonant are that word's (stepped is step's, not stepp's)."""
    forms = {word + s for s in SUFFIXES}
    if word[-1] not in "aeiouwxy":
        forms |= {word + word[-1] + s for s in ("ed", "ing", "er", "ers", "y")}  # step: stepped, stepping
    forms |= {word[: -len(s)] for s in SUFFIXES if word.endswith(s) and len(word) - len(s) >= 2}
    forms |= {word[:-1] + "ies", word[:-1] + "ied"} if word.endswith("y") else set()
    if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "aeiou" and word[:-1] in vocabulary:
        forms -= {word + s for s in ("ed", "ing", "er", "ers", "y")}
    return len((forms - {word}) & vocabulary)


@dataclasses.dataclass(frozen=True)
class Index:
    """CMUdict's candidate words, their stress-free pronunciations as phone codes grouped by length."""

    lexicon: Mapping[str, tuple[Pron, ...]]
    vocabulary: frozenset[str]
    codes: Mapping[str, int]  # phone (with or without stress) -> code
    groups: Mapping[int, tuple[np.ndarray, tuple[tuple[str, Pron], ...]]]  # length -> (codes (N, L), rows)
    tiers: Mapping[str, int]  # word -> 3 (first list), 2 (second list), 1 (a name in a list); absent: 0
    word_lists: tuple[str, ...]  # the lists read

    @classmethod
    def build(cls, lexicon: Mapping[str, tuple[Pron, ...]], word_lists: Sequence[Path] = WORD_LISTS) -> Index:
        words = sorted(w for w in lexicon if WORD.match(w) and VOWEL_LETTER.search(w))
        codes: dict[str, int] = {}
        rows: dict[int, list[tuple[str, Pron]]] = {}
        for word in words:
            for pron in lexicon[word]:
                for phone in pron:
                    if phone not in codes:
                        codes[phone] = codes.setdefault(phone.rstrip("012"), len(codes) + 1)
                rows.setdefault(len(pron), []).append((word, pron))
        groups = {length: (np.array([[codes[p] for p in pron] for _, pron in group], np.uint8), tuple(group))
                  for length, group in rows.items()}
        tiers, read = read_word_lists(word_lists, frozenset(words))
        return cls(lexicon, frozenset(words), codes, groups, tiers, read)

    def family(self, word: str) -> int:
        return family_size(word, self.vocabulary)

    def commonness(self, word: str) -> int:
        """0..3 from the word lists; without any, 1 for a word with a family in the dictionary."""
        return self.tiers.get(word, 0) if self.word_lists else int(self.family(word) > 0)

    def is_real(self, word: str) -> bool:
        return not self.word_lists or word in self.tiers

    def near(self, pron: Pron, max_distance: int = MAX_DISTANCE) -> dict[str, tuple[int, Pron]]:
        """word -> (distance, its closest pronunciation) for every candidate within ``max_distance``."""
        query = np.array([self.codes.get(p, self.codes.get(p.rstrip("012"), 0)) for p in pron], np.int32)
        found: dict[str, tuple[int, Pron]] = {}
        for length in range(max(1, len(query) - max_distance), len(query) + max_distance + 1):
            if length not in self.groups:
                continue
            table, rows = self.groups[length]
            distance = _distances(query, table)
            for i in np.flatnonzero(distance <= max_distance):
                word, candidate = rows[i]
                if word not in found or distance[i] < found[word][0]:
                    found[word] = (int(distance[i]), candidate)
        return found


def read_word_lists(paths: Sequence[Path], vocabulary: frozenset[str]) -> tuple[dict[str, int], tuple[str, ...]]:
    """Tier of each vocabulary word from the lists that exist: a lower-case entry of the n-th list
    scores ``len(paths) + 1 - n``, a capitalised one (a name) 1."""
    tiers: dict[str, int] = {}
    read = []
    for rank, path in enumerate(paths):
        try:
            entries = Path(path).read_text(encoding="utf-8", errors="replace").split()
        except OSError:
            continue
        read.append(str(path))
        for entry in entries:
            word = entry.lower()
            if word in vocabulary:
                tier = len(paths) + 1 - rank if entry == word else 1
                tiers[word] = max(tiers.get(word, 0), tier)
    return tiers, tuple(read)


def _distances(query: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Levenshtein distance from ``query`` to every row of ``table``, one DP over all rows at once."""
    rows = np.broadcast_to(np.arange(len(query) + 1, dtype=np.int32), (len(table), len(query) + 1)).copy()
    for i in range(table.shape[1]):
        column = table[:, i].astype(np.int32)[:, None]
        diagonal = rows[:, :-1] + (column != query[None, :])
        current = np.empty_like(rows)
        current[:, 0] = i + 1
        current[:, 1:] = np.minimum(rows[:, 1:] + 1, diagonal)
        for j in range(1, len(query) + 1):  # insertions run along the row
            np.minimum(current[:, j], current[:, j - 1] + 1, out=current[:, j])
        rows = current
    return rows[:, -1]


@functools.lru_cache(maxsize=1)
def default_index() -> Index:
    return Index.build(load_cmudict())


def _rhyme(pron: Pron) -> Pron:
    stressed = [i for i, p in enumerate(pron) if p.endswith("1")] or [i for i, p in enumerate(pron) if p[:-1] in VOWELS]
    return strip_stress(pron[stressed[-1]:]) if stressed else strip_stress(pron)


def _stress(pron: Pron) -> str:
    return "".join(p[-1] for p in pron if p[-1:].isdigit())


def search_distance(pron: Pron) -> int:
    """Edit distance searched: 2, or a third of a long pronunciation (nine phones and more: few
    words lie within 2 of "snowboarding")."""
    return max(MAX_DISTANCE, len(pron) // 3)


def closeness(keyword: Pron, candidate: Pron) -> int:
    """Higher is closer in the ways a listener confuses words; orders candidates of one distance."""
    a, b = strip_stress(keyword), strip_stress(candidate)
    vowel_only = len(a) == len(b) and all(x == y or (x in VOWELS and y in VOWELS) for x, y in zip(a, b))
    extends = len(b) > len(a) and any(b[i : i + len(a)] == a for i in range(len(b) - len(a) + 1))
    return (2 * vowel_only + (_rhyme(keyword) == _rhyme(candidate)) + (a[:1] == b[:1])
            + (_stress(keyword) == _stress(candidate)) - 6 * extends)


def is_spelled(token: str) -> bool:
    """A token with no vowel letter ("kws") is said letter by letter."""
    return token.isascii() and token.isalpha() and not VOWEL_LETTER.search(token)


def token_prons(token: str, index: Index) -> tuple[Pron, ...]:
    """Pronunciations of one token: a spelled one as its letters' names, a word as CMUdict or espeak-ng has it."""
    if is_spelled(token):
        return (sum((index.lexicon[letter][0] for letter in token), ()),)
    return pronunciations(token, index.lexicon)


def _phrase_prons(text: str, index: Index) -> set[Pron]:
    """Stress-free pronunciations of a word or phrase (each word's variants combined, capped)."""
    parts = [[strip_stress(p) for p in token_prons(w, index)] for w in text.split()]
    return {sum(combo, ()) for combo in itertools.islice(itertools.product(*parts), 64)}


def _ranked_words(word: str, index: Index) -> list[Confusable]:
    """Every dictionary word near ``word`` but not a homophone of it, best first, one spelling per sound."""
    best: dict[str, tuple[int, int, Pron]] = {}
    for pron in token_prons(word, index):
        for candidate, (distance, cand_pron) in index.near(pron, search_distance(pron)).items():
            score = closeness(pron, cand_pron)
            if candidate not in best or (distance, -score) < (best[candidate][0], -best[candidate][1]):
                best[candidate] = (distance, score, cand_pron)
    ranked = []
    for candidate, (distance, score, cand_pron) in best.items():
        if distance == 0:
            continue  # the word itself or a homophone
        common = index.commonness(candidate)
        key = (not index.is_real(candidate), distance, -(score + common), -common, -index.family(candidate), len(candidate))
        ranked.append((key, candidate, cand_pron))
    out, heard = [], set()
    for _, candidate, cand_pron in sorted(ranked):
        if strip_stress(cand_pron) not in heard:  # "step" and "stepp" are one sound: keep the better spelling
            heard.add(strip_stress(cand_pron))
            out.append(Confusable(candidate, best[candidate][0], " ".join(cand_pron)))
    return out


def _spelled_neighbours(token: str, index: Index) -> list[Confusable]:
    """A spelled token with one letter swapped for a consonant letter whose name sounds close
    ("kws": "kwf", "jws"), best first; vowel letters would turn it into a word."""
    (keyword,) = token_prons(token, index)
    found = []
    for position, letter in enumerate(token):
        for other in "bcdfghjklmnpqrstvwxz":
            candidate = token[:position] + other + token[position + 1 :]
            if other == letter:
                continue
            (pron,) = token_prons(candidate, index)
            distance = edit_distance(strip_stress(keyword), strip_stress(pron))
            if 0 < distance <= MAX_DISTANCE:
                found.append(((distance, -closeness(keyword, pron), position, other), candidate, pron))
    return [Confusable(candidate, key[0], " ".join(pron)) for key, candidate, pron in sorted(found)]


def _near_token(token: str, index: Index) -> list[Confusable]:
    return _spelled_neighbours(token, index) if is_spelled(token) else _ranked_words(token, index)


def _phones(tokens: Sequence[str], index: Index) -> str:
    return " ".join(" ".join(token_prons(t, index)[0]) for t in tokens)


def confusables(word: str, count: int, *, exclude: Iterable[str] = (), index: Index | None = None) -> list[Confusable]:
    """Up to ``count`` words (or phrases) that sound like ``word``, closest first."""
    index = index or default_index()
    text = " ".join(word.lower().split())
    if not text:
        raise KwsError("an empty keyword has no confusable words")
    others = {" ".join(e.lower().split()) for e in exclude} - {text, ""}
    banned_texts = {text} | others
    banned_prons = _phrase_prons(text, index).union(*(_phrase_prons(o, index) for o in others))
    tokens = text.split()
    if len(tokens) == 1:
        candidates = _near_token(text, index)
    else:  # each word alone, then the phrase with one word swapped, the words in turn
        keyword = min(_phrase_prons(text, index))
        ranked: list[tuple[tuple[int, int, int], Confusable]] = []
        for position, token in enumerate(tokens):
            alone = Confusable(token, edit_distance(keyword, min(_phrase_prons(token, index))), _phones([token], index))
            ranked.append(((0, alone.distance, position), alone))
            for rank, near in enumerate(_near_token(token, index), 1):
                swapped = [*tokens[:position], near.text, *tokens[position + 1 :]]
                phones = " ".join([_phones(tokens[:position], index), near.phones, _phones(tokens[position + 1 :], index)])
                ranked.append(((rank, near.distance, position), Confusable(" ".join(swapped), near.distance, phones.strip())))
        candidates = [c for _, c in sorted(ranked, key=lambda r: r[0])]
    out: list[Confusable] = []
    for candidate in candidates:
        if len(out) == count:
            break
        if candidate.text in banned_texts or candidate.text in {c.text for c in out}:
            continue
        if _phrase_prons(candidate.text, index) & banned_prons:
            continue  # sounds like the keyword or like another keyword
        out.append(candidate)
    return out


def confusable_words(word: str, count: int, *, exclude: Iterable[str] = (), index: Index | None = None) -> list[str]:
    """The texts of :func:`confusables`: words that sound like ``word``, closest first."""
    return [c.text for c in confusables(word, count, exclude=exclude, index=index)]
