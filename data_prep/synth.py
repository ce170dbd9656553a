"""Synthetic keyword clips with espeak-ng, in the Speech Commands layout.

Real data is scarce (the dev subset has ~150 clips per keyword); many synthetic voices,
speeds and pitches add variety that augmentation of a few speakers cannot. Each voice
combination is one "speaker", so the release's hash split keeps a voice in one split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_prep.audio import load_audio, write_wav
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError
from data_prep.synth_clips import clip_path, place, trim_silence, word_folder

__all__ = ["Voice", "espeak_binary", "place", "random_voices", "speak", "synthesize"]

BASE_VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
            "croak", "whisper", "Andy", "Annie", "Denis", "Gene", "Lee", "Mike", "boris", "david", "edward", "grandma", "grandpa")


@dataclasses.dataclass(frozen=True)
class Voice:
    name: str  # espeak-ng voice with variant, e.g. "en-us+f3"
    speed: int  # words per minute
    pitch: int  # 0..99

    @property
    def speaker_id(self) -> str:
        return "synth" + hashlib.sha1(f"{self.name}/{self.speed}/{self.pitch}".encode()).hexdigest()[:8]


def espeak_binary() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise KwsError("espeak-ng not found: install it with `apt-get install espeak-ng`")
    return path


def random_voices(count: int, seed: int) -> list[Voice]:
    rng = np.random.default_rng(seed)
    voices = []
    for _ in range(count):
        base, variant = BASE_VOICES[rng.integers(len(BASE_VOICES))], VARIANTS[rng.integers(len(VARIANTS))]
        voices.append(Voice(f"{base}+{variant}" if variant else base, int(rng.integers(110, 230)), int(rng.integers(20, 80))))
    return voices


def speak(word: str, voice: Voice, config: FeatureConfig, workdir: Path) -> np.ndarray:
    """One utterance at the config's rate, trimmed of leading/trailing silence."""
    wav = workdir / "say.wav"
    cmd = [espeak_binary(), "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "-w", str(wav), word]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or not wav.is_file():
        raise KwsError(f"espeak-ng failed for voice {voice.name}: {proc.stderr.strip()[:200]}")
    return trim_silence(load_audio(wav, config.sample_rate))


def synthesize(words: Sequence[str], out: Path, *, voices: int = 40, seed: int = 0,
               config: FeatureConfig | None = None, progress=None) -> int:
    """Write ``voices`` clips per word into ``out/<word>/<speaker>_nohash_0.wav`` (a phrase's folder
    joins its words with underscores, as Kokoro's does); returns the count."""
    config = config or FeatureConfig()
    folders = {word: word_folder(word) for word in words}
    rng = np.random.default_rng(seed + 1)
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for voice in random_voices(voices, seed):
            for word in words:
                clip = place(speak(word, voice, config, Path(tmp)), config, rng)
                write_wav(clip_path(out, folders[word], voice.speaker_id), clip, config.sample_rate)
                count += 1
                if progress is not None:
                    progress()
    return count
