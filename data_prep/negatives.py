"""A corpus of non-keyword audio (music, other speech, synthetic speech) split once, on disk,
into training / validation / testing folders, so what a model trains on and what its false
accepts are measured on can never mix.

Files are assigned by a hash of their source name and path (a music *track* is one unit, so
no part of a test track is heard in training); a ``held_out`` source goes to testing whole
(e.g. a different wake phrase recorded by a different campaign). Everything is decoded once
to 16-bit FLAC at the feature rate, so training and stream building never decode OGG again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_prep import synth_kokoro as kokoro
from data_prep.atomic import atomic_dir, write_text_atomic
from data_prep.audio import audio_files, load_audio, write_audio
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError, KwsError
from data_prep.synth import random_voices, speak

SPLITS = ("training", "validation", "testing")
MANIFEST = "negatives.json"
MUSIC_PACKAGE = "wesnoth-1.16-music"
MUSIC_DIR = Path("/usr/share/games/wesnoth/1.16/data/core/music")
SENTENCES = Path(__file__).with_name("negative_sentences.txt")
SENTENCES_PER_READER = 4


@dataclasses.dataclass(frozen=True, kw_only=True)
class Source:
    name: str  # folder name under each split, e.g. "music"
    path: Path
    held_out: bool = False  # every file to testing


def held_out_twin(folder: Path, split: str = "validation") -> Path | None:
    """The same source's ``split`` folder when ``folder`` is a training folder of a corpus this
    module wrote (its manifest two levels up), else None: audio no model trained on, to measure
    false accepts with."""
    folder = Path(folder)
    root = folder.parent.parent
    if folder.parent.name != SPLITS[0] or not (root / MANIFEST).is_file():
        return None
    twin = root / split / folder.name
    return twin if twin.is_dir() and any(twin.iterdir()) else None


def split_of(key: str, shares: tuple[float, float] = (0.7, 0.15)) -> str:
    """training / validation / testing from a stable hash of ``key`` (shares of the first two)."""
    u = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return SPLITS[0] if u < shares[0] else SPLITS[1] if u < shares[0] + shares[1] else SPLITS[2]


def ensure_music(music_dir: Path = MUSIC_DIR) -> Path:
    """The Debian music package's folder, installing it with apt-get when run as root."""
    if music_dir.is_dir() and any(music_dir.glob("*.ogg")):
        return music_dir
    if os.geteuid() != 0:
        raise KwsError(f"{music_dir}: no music; install it with `sudo apt-get install {MUSIC_PACKAGE}`")
    proc = subprocess.run(["apt-get", "install", "-y", "-q", MUSIC_PACKAGE], capture_output=True, text=True,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if proc.returncode != 0 or not music_dir.is_dir():
        raise KwsError(f"apt-get install {MUSIC_PACKAGE} failed: {proc.stderr.strip()[-200:]}")
    return music_dir


def sentences() -> list[str]:
    return [s for s in SENTENCES.read_text().splitlines() if s.strip() and not s.startswith("#")]


def _write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    write_audio(path, audio, sample_rate, "FLAC")


def _add_source(source: Source, root: Path, sample_rate: int, rows: list[dict[str, Any]],
                skipped: list[str], tick: Callable[[], None]) -> None:
    """Unreadable files (real corpora have a few) are skipped and listed, not fatal."""
    for file in audio_files(source.path):
        rel = file.relative_to(source.path)
        split = "testing" if source.held_out else split_of(f"{source.name}/{rel.as_posix()}")
        tick()
        try:
            audio = load_audio(file, sample_rate)
        except KwsError as exc:
            skipped.append(str(exc))
            continue
        target = root / split / source.name / rel.with_suffix(".flac")
        _write_flac(target, audio, sample_rate)
        rows.append({"split": split, "source": source.name, "file": str(target.relative_to(root)),
                     "origin": str(file), "seconds": round(len(audio) / sample_rate, 3)})


def _add_readers(name: str, readers: Sequence[tuple[str, str, Any]], say: Callable[[str, Any], np.ndarray],
                 rng: np.random.Generator, root: Path, sample_rate: int, rows: list[dict[str, Any]],
                 tick: Callable[[], None]) -> None:
    """Each reader (one synthetic "speaker": id, description, voice) reads a few sentences at a
    random level; a reader lives in one split, so no voice is heard in training and testing."""
    text = sentences()
    for reader_id, description, voice in readers:
        split = split_of(f"{name}/{reader_id}")
        for k in rng.choice(len(text), size=min(SENTENCES_PER_READER, len(text)), replace=False):
            audio = say(text[int(k)], voice)
            audio = audio * np.float32(rng.uniform(0.2, 0.9) / max(float(np.abs(audio).max()), 1e-6))
            target = root / split / name / f"{reader_id}_{int(k):03d}.flac"
            _write_flac(target, audio, sample_rate)
            rows.append({"split": split, "source": name, "file": str(target.relative_to(root)),
                         "origin": f"{description}: {text[int(k)][:60]}", "seconds": round(len(audio) / sample_rate, 3)})
        tick()


def _add_synth(voices: int, seed: int, root: Path, sample_rate: int, rows: list[dict[str, Any]],
               tick: Callable[[], None]) -> None:
    """espeak-ng voices (a language voice, variant, speed and pitch) reading sentences."""
    config = FeatureConfig(sample_rate=sample_rate)
    readers = [(v.speaker_id, f"espeak-ng {v.name} s{v.speed} p{v.pitch}", v) for v in random_voices(voices, seed)]
    with tempfile.TemporaryDirectory() as tmp:
        _add_readers("synth", readers, lambda text, voice: speak(text, voice, config, Path(tmp)),
                     np.random.default_rng(seed), root, sample_rate, rows, tick)


def _add_kokoro(count: int, seed: int, model_dir: Path | None, root: Path, sample_rate: int,
                rows: list[dict[str, Any]], tick: Callable[[], None]) -> None:
    """Kokoro-82M speakers (its voices, then blends of two) reading sentences: other speech
    far closer to people than espeak-ng, and in the very voices text-only keywords are made of,
    so a model cannot take "a Kokoro voice" for the keyword."""
    engine = kokoro.load_engine(model_dir, kokoro.cores())
    speakers = kokoro.speakers_for(count, kokoro.voice_names(model_dir), kokoro.SPEED_RANGE, seed)
    readers = [(s.speaker_id, f"kokoro {s.source.key} x{s.speed}", s) for s in speakers]
    _add_readers("kokoro", readers, lambda text, speaker: kokoro.speak(engine, text, speaker, sample_rate),
                 np.random.default_rng([seed, 7]), root, sample_rate, rows, tick)


def build_negatives(out: Path, sources: Sequence[Source], *, synth_voices: int = 0, kokoro_voices: int = 0,
                    kokoro_dir: Path | None = None, seed: int = 0, sample_rate: int = 16000, force: bool = False,
                    tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Write ``out/<split>/<source>/...flac`` and a manifest; atomic (temp dir + rename)."""
    if not sources and synth_voices <= 0 and kokoro_voices <= 0:
        raise ConfigError(f"{out}: nothing to write: give --source, --held-out, --music, --synth-voices or --kokoro-voices")
    if kokoro_voices:  # before any work: a missing model or package is a one-line error, not a half-built corpus
        kokoro.model_files(kokoro_dir)
        kokoro.check_packages()
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    with atomic_dir(out, force, marks=(MANIFEST,)) as tmp:
        for source in sources:
            _add_source(source, tmp, sample_rate, rows, skipped, tick)
        if synth_voices:
            _add_synth(synth_voices, seed, tmp, sample_rate, rows, tick)
        if kokoro_voices:
            _add_kokoro(kokoro_voices, seed, kokoro_dir, tmp, sample_rate, rows, tick)
        summary = {f"{split}/{name}": {"files": sum(1 for r in rows if (r["split"], r["source"]) == (split, name)),
                                       "seconds": round(sum(r["seconds"] for r in rows if (r["split"], r["source"]) == (split, name)), 1)}
                   for split in SPLITS for name in sorted({r["source"] for r in rows})}
        manifest = {"sample_rate": sample_rate, "sources": [{"name": s.name, "path": str(s.path), "held_out": s.held_out}
                                                            for s in sources],
                    "synth_voices": synth_voices, "kokoro_voices": kokoro_voices, "seed": seed, "summary": summary, "skipped": skipped, "files": rows}
        write_text_atomic(tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def count_files(sources: Sequence[Source]) -> int:
    return sum(len(audio_files(s.path)) for s in sources)
