"""Which split a Speech Commands clip belongs to: the release's list files or its hash rule.

``which_set`` reproduces the release's reference ``input_data.which_set`` bit for bit, so a
folder without lists is split exactly as every published result on the release was: by a
SHA-1 of the speaker part of the file name, which keeps each speaker in one split.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from data_prep.errors import ConfigError, DatasetError

SPLITS = ("training", "validation", "testing")
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # the release's constant (~134M): fixes the hash buckets
NOHASH = "_nohash_"
_NOHASH_TAIL = re.compile(r"_nohash_.*$")


def _base_name(filename: str | Path) -> str:
    # String ops, not pathlib: this runs once per clip (~105k in the release).
    return str(filename).replace("\\", "/").rsplit("/", 1)[-1]


def hash_name(filename: str | Path) -> str:
    """The part of a file name the split hash sees: everything before ``_nohash_``."""
    return _NOHASH_TAIL.sub("", _base_name(filename))


def speaker_id(filename: str | Path) -> str:
    """Speaker of a clip: the name's prefix before ``_nohash_`` (the stem if there is none)."""
    name = _base_name(filename)
    return name.split(NOHASH, 1)[0] if NOHASH in name else name.rsplit(".", 1)[0]


def check_percentages(validation_percentage: float, testing_percentage: float) -> None:
    if validation_percentage < 0 or testing_percentage < 0 or validation_percentage + testing_percentage > 100:
        raise ConfigError(
            f"split percentages must be >= 0 and sum to <= 100, got validation={validation_percentage}, "
            f"testing={testing_percentage}"
        )


def which_set(filename: str | Path, validation_percentage: float = 10.0, testing_percentage: float = 10.0) -> str:
    """'training', 'validation' or 'testing' for one file, as the release's reference code decides."""
    digest = hashlib.sha1(hash_name(filename).encode("utf-8")).hexdigest()
    percentage_hash = (int(digest, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < testing_percentage + validation_percentage:
        return "testing"
    return "training"


def parse_list(text: str, source: str) -> frozenset[str]:
    """Entries of a ``validation_list.txt``/``testing_list.txt``: ``word/file.wav`` per line."""
    entries: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip().replace("\\", "/")
        if not entry:
            continue
        parts = PurePosixPath(entry).parts
        if len(parts) != 2 or ".." in parts or entry.startswith("/"):
            raise DatasetError(f"{source}:{number}: expected 'word/file.wav', got {line.strip()!r}")
        entries.add(entry)
    return frozenset(entries)


def assign_from_lists(
    clips: Iterable[str], validation: frozenset[str], testing: frozenset[str], *, source: str
) -> dict[str, str]:
    """Split of every clip (relative ``word/file.wav``): listed ones as listed, the rest training.

    A listed file that is not among the clips, or one listed twice, is refused: it means the
    folder is not the one the lists were written for.
    """
    clips = list(clips)
    both = sorted(validation & testing)
    if both:
        raise DatasetError(f"{source}: {len(both)} files are in both list files, e.g. {both[0]}")
    present = set(clips)
    for name, listed in (("validation_list.txt", validation), ("testing_list.txt", testing)):
        missing = sorted(listed - present)
        if missing:
            raise DatasetError(
                f"{Path(source) / name}: {len(missing)} listed files are missing, e.g. {missing[0]}"
            )
    return {c: "validation" if c in validation else "testing" if c in testing else "training" for c in clips}


def assign_by_hash(
    clips: Iterable[str], validation_percentage: float = 10.0, testing_percentage: float = 10.0
) -> dict[str, str]:
    """Split of every clip by the release's hash rule (used when the lists are absent)."""
    check_percentages(validation_percentage, testing_percentage)
    return {c: which_set(c, validation_percentage, testing_percentage) for c in clips}
