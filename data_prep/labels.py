"""Label sets of Speech Commands: which words are classes, and what the others become.

The 12-class order (``_silence_``, ``_unknown_``, then the keywords) is the release's reference
training code's (``prepare_words_list``), so class indices match published models.
"""

from __future__ import annotations

import dataclasses

from data_prep.errors import ConfigError

SILENCE = "_silence_"
UNKNOWN = "_unknown_"
RESERVED = (SILENCE, UNKNOWN)

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_AUXILIARY_V1 = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
_ADDED_V2 = ("backward", "forward", "follow", "learn", "visual")
WORDS_V1 = tuple(sorted(KEYWORDS + _DIGITS + _AUXILIARY_V1))
WORDS_V2 = tuple(sorted(WORDS_V1 + _ADDED_V2))

NAMED_SETS = ("12", "35", "30")


@dataclasses.dataclass(frozen=True)
class LabelSet:
    """Class names in index order; ``words`` are the folder names that keep their own class.

    With ``unknown`` every other word maps to ``_unknown_``; without it other words are dropped.
    With ``silence`` the listing adds ``_silence_`` clips cut from background noise.
    """

    words: tuple[str, ...]
    silence: bool = True
    unknown: bool = True
    name: str = "custom"

    def __post_init__(self) -> None:
        if not self.words:
            raise ConfigError("label set: no words given")
        bad = [w for w in self.words if not w or w in RESERVED or "/" in w or w != w.strip()]
        if bad:
            raise ConfigError(f"label set: invalid word names {bad} ({', '.join(RESERVED)} are added automatically)")
        dupes = sorted({w for w in self.words if self.words.count(w) > 1})
        if dupes:
            raise ConfigError(f"label set: repeated words {dupes}")

    @property
    def names(self) -> tuple[str, ...]:
        """Class names in index order: the reference code's [_silence_, _unknown_] + words."""
        head = ((SILENCE,) if self.silence else ()) + ((UNKNOWN,) if self.unknown else ())
        return head + self.words

    def __len__(self) -> int:
        return len(self.names)

    def index(self, label: str) -> int:
        try:
            return self.names.index(label)
        except ValueError:
            raise ConfigError(f"label {label!r} is not one of {list(self.names)}") from None

    def label_of(self, word: str) -> str | None:
        """The class of a word folder, or None when the word is not used at all."""
        if word in self.words:
            return word
        if word == SILENCE:
            return SILENCE if self.silence else None
        return UNKNOWN if self.unknown else None

    @property
    def spec(self) -> str:
        """The string ``parse_labels`` turns back into this set (for JSON and manifests)."""
        if self.name in NAMED_SETS:
            return self.name + ("+silence" if self.silence and self.name != "12" else "")
        return ",".join(self.words)


def twelve_class() -> LabelSet:
    """The standard 12-class task: 10 keywords + _silence_ + _unknown_."""
    return LabelSet(KEYWORDS, silence=True, unknown=True, name="12")


def all_words(version: int, *, silence: bool = False) -> LabelSet:
    """Every word of a release as its own class (v0.02: 35, v0.01: 30); nothing is unknown."""
    if version not in (1, 2):
        raise ConfigError(f"Speech Commands version must be 1 or 2, got {version}")
    words = WORDS_V2 if version == 2 else WORDS_V1
    return LabelSet(words, silence=silence, unknown=False, name=str(len(words)))


def keywords(words: list[str] | tuple[str, ...]) -> LabelSet:
    """A user's keyword list; every other word becomes _unknown_."""
    return LabelSet(tuple(words), silence=True, unknown=True, name="custom")


def parse_labels(spec: str) -> LabelSet:
    """``12``, ``35``, ``30`` (``+silence`` to add _silence_ to the last two) or ``yes,no,...``."""
    text = spec.strip().lower()
    base, plus, extra = text.partition("+")
    if base in NAMED_SETS:
        if plus and extra != "silence":
            raise ConfigError(f"label set {spec!r}: only '+silence' may follow {base}")
        if base == "12":
            return twelve_class()
        return all_words(2 if base == "35" else 1, silence=bool(plus))
    if base.isdigit() or plus:
        raise ConfigError(
            f"unknown label set {spec!r} (use 12, 35, 30, 35+silence, 30+silence or a comma-separated word list)"
        )
    words = [w.strip() for w in spec.strip().split(",")]
    if any(not w for w in words):
        raise ConfigError(f"label set {spec!r}: empty word in the list")
    return keywords(words)
