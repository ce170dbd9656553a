"""Speech Commands on disk -> a labelled, split listing of examples, and the audio of each.

Two real layouts are read and told apart automatically:

- the release (v0.01 / v0.02): one folder per word, ``_background_noise_/``, and either the
  ``validation_list.txt`` / ``testing_list.txt`` lists or, without them, the release's hash split;
  ``_silence_`` and ``_unknown_`` examples are added per split as the reference training code does;
- the canonical test-set archive (``speech_commands_test_set_v0.02``): 12 class folders including
  real ``_silence_`` and ``_unknown_`` clips, all of them testing; nothing is generated.

Scanning touches the disk; building the listing from a scan is pure and seeded.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.audio import AUDIO_SUFFIXES, load_audio, load_clip
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError, DatasetError
from data_prep.labels import SILENCE, UNKNOWN, LabelSet, parse_labels, twelve_class
from data_prep.splits import SPLITS, assign_by_hash, assign_from_lists, parse_list, speaker_id

BACKGROUND_NOISE_DIR = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"

RELEASE_LISTS = "release-lists"
RELEASE_HASH = "release-hash"
TEST_SET = "test-set"
LAYOUTS = {
    RELEASE_LISTS: "release, split by validation_list.txt / testing_list.txt",
    RELEASE_HASH: "release without lists, split by the release's hash of the speaker",
    TEST_SET: "canonical test-set archive (12 class folders, all testing)",
}


@dataclasses.dataclass(frozen=True)
class Scan:
    """What is on disk, before any labelling: clips as relative ``word/file.wav`` paths (any audio format)."""

    root: Path
    layout: str
    clips: tuple[str, ...]
    noise_files: tuple[Path, ...]
    validation: frozenset[str] = frozenset()
    testing: frozenset[str] = frozenset()

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(sorted({c.split("/", 1)[0] for c in self.clips}))


@dataclasses.dataclass(frozen=True)
class Example:
    """One labelled clip. A generated ``_silence_`` clip has ``path=None`` and is cut from
    ``noise`` (None = digital silence) at ``noise_position`` (0 = file start, 1 = last full
    clip, so it holds for any sample rate and clip length) and scaled by ``noise_gain``."""

    label: str
    split: str
    path: Path | None = None
    speaker: str = ""
    noise: Path | None = None
    noise_position: float = 0.0
    noise_gain: float = 0.0

    @property
    def generated(self) -> bool:
        return self.path is None

    @property
    def word(self) -> str:
        """The folder the clip came from (e.g. 'bed' for an _unknown_ example)."""
        return self.path.parent.name if self.path is not None else SILENCE


@dataclasses.dataclass(frozen=True)
class Dataset:
    root: Path
    layout: str
    label_set: LabelSet
    all_examples: tuple[Example, ...]
    background_noise_files: tuple[Path, ...]
    silence_pct: float = 10.0
    unknown_pct: float = 10.0
    seed: int = 0

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names in index order."""
        return self.label_set.names

    @functools.cached_property
    def _by_split(self) -> dict[str, tuple[Example, ...]]:
        return {s: tuple(e for e in self.all_examples if e.split == s) for s in SPLITS}

    def examples(self, split: str) -> tuple[Example, ...]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r} (use one of {', '.join(SPLITS)})")
        return self._by_split[split]

    def counts(self) -> dict[str, dict[str, int]]:
        """{split: {label: examples}}, every label present, in index order."""
        out = {}
        for split in SPLITS:
            have = Counter(e.label for e in self._by_split[split])
            out[split] = {label: have.get(label, 0) for label in self.labels}
        return out

    def noise_recordings(self, sample_rate: int) -> list[np.ndarray]:
        """The background-noise files at ``sample_rate``, each decoded once per process and
        shared (read-only: cut from them, never write into them)."""
        return [_noise_samples(str(p), sample_rate) for p in self.background_noise_files]

    def speakers(self, split: str) -> frozenset[str]:
        return frozenset(e.speaker for e in self.examples(split) if not e.generated)

    def summary(self) -> dict[str, Any]:
        """Everything ``kws data info`` shows, JSON-ready."""
        counts = self.counts()
        return {
            "root": str(self.root),
            "layout": self.layout,
            "layout_description": LAYOUTS[self.layout],
            "labels": list(self.labels),
            "label_set": self.label_set.spec,
            "silence_pct": self.silence_pct,
            "unknown_pct": self.unknown_pct,
            "seed": self.seed,
            "counts": counts,
            "totals": {s: sum(c.values()) for s, c in counts.items()},
            "speakers": {s: len(self.speakers(s)) for s in SPLITS},
            "speakers_total": len({e.speaker for e in self.all_examples if not e.generated}),
            "background_noise_files": [p.name for p in self.background_noise_files],
        }


# --- I/O: what is on disk -----------------------------------------------------------------------
def _clips(folder: Path) -> list[str]:
    """Names of the audio entries of a folder, in every format the loader reads. Anything
    that is not a folder counts (a broken link, a FIFO): loading it reports what is wrong
    with it, by name, instead of the file silently vanishing from the listing."""
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and not p.is_dir())


def scan_folder(root: Path) -> Scan:
    """Read a folder's word directories, noise files and lists; decide its layout."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such directory")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    word_dirs = sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != BACKGROUND_NOISE_DIR
    )
    if not word_dirs:
        raise DatasetError(f"{root}: no word folders (expected one folder of .wav clips per word)")
    clips = tuple(f"{d.name}/{name}" for d in word_dirs for name in _clips(d))
    if not clips:
        raise DatasetError(f"{root}: no audio files ({'/'.join(AUDIO_SUFFIXES)}) in any of its {len(word_dirs)} word folders")
    noise_files: tuple[Path, ...] = ()
    noise_dir = root / BACKGROUND_NOISE_DIR
    if noise_dir.is_dir():
        noise_files = tuple(noise_dir / n for n in _clips(noise_dir))
        if not noise_files:
            raise DatasetError(f"{noise_dir}: no audio files (remove the folder or add the noise files)")
    has_lists = [(root / n).is_file() for n in (VALIDATION_LIST, TESTING_LIST)]
    special = sorted({d.name for d in word_dirs} & {SILENCE, UNKNOWN})
    if special:
        if any(has_lists):
            raise DatasetError(
                f"{root}: has both class folders {special} (test-set layout) and list files (release layout)"
            )
        return Scan(root, TEST_SET, clips, noise_files)
    if all(has_lists):
        validation, testing = (_read_list(root / n) for n in (VALIDATION_LIST, TESTING_LIST))
        return Scan(root, RELEASE_LISTS, clips, noise_files, validation, testing)
    if any(has_lists):
        have, lack = (VALIDATION_LIST, TESTING_LIST) if has_lists[0] else (TESTING_LIST, VALIDATION_LIST)
        raise DatasetError(f"{root}: has {have} but not {lack} (need both lists, or neither for the hash split)")
    return Scan(root, RELEASE_HASH, clips, noise_files)


def _read_list(path: Path) -> frozenset[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read list file ({exc})") from None
    return parse_list(text, str(path))


# --- pure: scan -> labelled, split examples --------------------------------------------------------
def split_of_clips(scan: Scan, validation_pct: float = 10.0, testing_pct: float = 10.0) -> dict[str, str]:
    """Split of every clip in the scan, by the rule of its layout."""
    if scan.layout == TEST_SET:
        return {c: "testing" for c in scan.clips}
    if scan.layout == RELEASE_LISTS:
        return assign_from_lists(scan.clips, scan.validation, scan.testing, source=str(scan.root))
    return assign_by_hash(scan.clips, validation_pct, testing_pct)


def build_examples(
    scan: Scan,
    labels: LabelSet,
    *,
    silence_pct: float = 10.0,
    unknown_pct: float = 10.0,
    seed: int = 0,
    validation_pct: float = 10.0,
    testing_pct: float = 10.0,
    partial: bool = False,
) -> tuple[Example, ...]:
    """Label and split every clip; for the release add _unknown_ and _silence_ shares per split.

    As in the reference training code, each split gets ceil(n * pct / 100) unknown clips (drawn
    from the other words of that split) and silence clips, n being its keyword clips. Each split
    draws from its own seeded stream, so one split's listing never depends on another's.
    ``partial``: the folder may lack some of the words, not all (an extra training folder made for
    the recorded keywords of a run whose others are text-only).
    """
    if not (0 <= silence_pct < math.inf and 0 <= unknown_pct < math.inf):  # NaN too
        raise ConfigError(f"silence_pct and unknown_pct must be >= 0 and finite, got {silence_pct} and {unknown_pct}")
    splits = split_of_clips(scan, validation_pct, testing_pct)
    available = set(scan.words)
    missing = [w for w in labels.words if w not in available]
    if missing and (not partial or len(missing) == len(labels.words)):  # none at all: it would add nothing
        raise DatasetError(
            f"{scan.root}: labels not in the dataset: {', '.join(missing)} "
            f"(its folders: {', '.join(scan.words)})"
        )
    kept: dict[str, list[Example]] = {s: [] for s in SPLITS}
    unknown_pool: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for clip in scan.clips:
        word = clip.split("/", 1)[0]
        label = labels.label_of(word)
        if label is None:
            continue
        example = Example(label, splits[clip], scan.root / clip, speaker_id(clip))
        is_pool = label == UNKNOWN and scan.layout != TEST_SET
        (unknown_pool if is_pool else kept)[example.split].append(example)
    out: list[Example] = []
    for split in SPLITS:
        rng = random.Random(f"speech_commands:{seed}:{split}")
        n = len(kept[split])
        out.extend(kept[split])
        if scan.layout == TEST_SET:
            continue
        if labels.unknown:
            pool = unknown_pool[split]
            rng.shuffle(pool)
            out.extend(sorted(pool[: math.ceil(n * unknown_pct / 100)], key=lambda e: str(e.path)))
        if labels.silence:
            out.extend(_silence_examples(split, math.ceil(n * silence_pct / 100), scan.noise_files, rng))
    order = {name: i for i, name in enumerate(labels.names)}
    split_order = {s: i for i, s in enumerate(SPLITS)}
    # Stable, readable order: by split, then class index; generated clips keep their draw order.
    return tuple(sorted(out, key=lambda e: (split_order[e.split], order[e.label])))


def _silence_examples(split: str, count: int, noise_files: tuple[Path, ...], rng: random.Random) -> list[Example]:
    """Silence as the reference code makes it: a random stretch of a random noise file at a
    random volume in [0, 1); digital silence when the folder has no background noise."""
    out = []
    for _ in range(count):
        noise = rng.choice(noise_files) if noise_files else None
        position, gain = rng.random(), rng.random()
        out.append(Example(SILENCE, split, None, "", noise, position if noise else 0.0, gain if noise else 0.0))
    return out


def load_dataset(
    root: Path,
    labels: LabelSet | str | None = None,
    *,
    silence_pct: float = 10.0,
    unknown_pct: float = 10.0,
    seed: int = 0,
    validation_pct: float = 10.0,
    testing_pct: float = 10.0,
    partial: bool = False,
) -> Dataset:
    """The listing of a Speech Commands folder under a label set (default: 12 classes);
    ``partial`` as in build_examples."""
    label_set = twelve_class() if labels is None else parse_labels(labels) if isinstance(labels, str) else labels
    scan = scan_folder(root)
    examples = build_examples(
        scan,
        label_set,
        silence_pct=silence_pct,
        unknown_pct=unknown_pct,
        seed=seed,
        validation_pct=validation_pct,
        testing_pct=testing_pct,
        partial=partial,
    )
    return Dataset(scan.root, scan.layout, label_set, examples, scan.noise_files, silence_pct, unknown_pct, seed)


# --- audio of an example ----------------------------------------------------------------------
def example_audio(example: Example, config: FeatureConfig) -> np.ndarray:
    """The clip of L samples a feature extractor sees for this example (deterministic)."""
    length = config.clip_samples
    if example.path is not None:
        return load_clip(example.path, config)
    if example.noise is None:
        return np.zeros(length, dtype=np.float32)
    noise = _noise_samples(str(example.noise), config.sample_rate)
    if noise.shape[0] < length:
        raise DatasetError(
            f"{example.noise}: background noise has {noise.shape[0]} samples, shorter than one clip ({length})"
        )
    start = round(example.noise_position * (noise.shape[0] - length))
    return (noise[start : start + length] * np.float32(example.noise_gain)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _noise_samples(path: str, sample_rate: int) -> np.ndarray:
    """Noise files are a minute long and cut thousands of times: decode each once."""
    samples = load_audio(Path(path), sample_rate)
    samples.setflags(write=False)
    return samples
